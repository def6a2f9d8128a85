package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/bench"
)

// TestBenchSmoke runs every sluice workload of `sluice bench` in miniature
// against an in-process broker (no peers), checking that each produced a
// result without error and that the report renders. Its figures mean
// nothing: the broker shares the process (and the race detector).
func TestBenchSmoke(t *testing.T) {
	cfg := bench.Quick()
	cfg.Peers = nil
	cfg.Out = io.Discard
	if testing.Verbose() {
		cfg.Out = os.Stderr
	}
	cfg.WorkDir = t.TempDir()
	cfg.Duration, cfg.LatencyDuration, cfg.Warmup = time.Second, 1500*time.Millisecond, 200*time.Millisecond
	cfg.Partitions, cfg.Producers = 4, 2
	cfg.RatesMBps = []float64{0.5}
	cfg.CatchupBytes = 2 << 20
	cfg.ScalePartitions = []int{2}
	cfg.IdlePartitions = 20
	cfg.FanoutGroups = 2
	cfg.Settle = 200 * time.Millisecond
	cfg.Ceiling = false
	cfg.StartSluice = func(ctx context.Context, dataDir, _ string) (*bench.Process, error) {
		sc, err := loadServeConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir,
			"--auto-create-topics=false", "--group-initial-rebalance-delay", "50ms"}, envMap(nil), io.Discard)
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- serve(sctx, sc, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a net.Addr) { ready <- a.String() })
		}()
		select {
		case addr := <-ready:
			return bench.InProcess("sluice", addr, dataDir, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}), nil
		case err := <-done:
			cancel()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s/%s: %s", r.Workload, r.Target, r.Error)
		}
		seen[r.Workload] = true
		if r.Target == "sluice" && !strings.Contains(r.Settings, "linger 1 ms") {
			t.Errorf("%s: settings %q do not state the producers' linger", r.Workload, r.Settings)
		}
		switch r.Workload {
		case bench.WThroughput, bench.WScaling, bench.WCatchup, bench.WFanout:
			if r.Bytes <= 0 || r.MBps <= 0 {
				t.Errorf("%s: no bytes moved: %+v", r.Workload, r)
			}
		case bench.WLatency:
			if r.Latency == nil || r.Latency.Count == 0 || r.Latency.P50ms <= 0 || r.Latency.MaxMs < r.Latency.P99ms {
				t.Errorf("latency result implausible: %+v", r.Latency)
			}
		case bench.WIdle:
			if r.Extra["rss_after_bytes"] <= 0 {
				t.Errorf("idle: no RSS read: %+v", r.Extra)
			}
		}
	}
	for _, w := range bench.AllWorkloads {
		if !seen[w] {
			t.Errorf("workload %s produced no result", w)
		}
	}
	md := rep.Markdown()
	if !strings.Contains(md, "**(a) produce throughput**") || !strings.Contains(md, "**(b) end-to-end latency**") {
		t.Errorf("markdown:\n%s", md)
	}
	if err := bench.WriteChart(rep, filepath.Join(t.TempDir(), "c.png")); err != nil {
		t.Error(err)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-workloads", "nope"},
		{"-peers", "kafka"},
		{"-rates", "0"},
		{"-catchup-bytes", "lots"},
		{"-scale-partitions", "1,x"},
		{"-linger", "-1ms"},
		{"extra"},
	} {
		if code := runBench(args); code != 2 {
			t.Errorf("sluice bench %v: exit %d, want 2", args, code)
		}
	}
	if w, err := parseWorkloads("a,b,latency,f"); err != nil || strings.Join(w, ",") != "throughput,latency,idle" {
		t.Errorf("parseWorkloads: %v %v", w, err)
	}
	for in, want := range map[string]int64{"2GiB": 2 << 30, "256MiB": 256 << 20, "1000": 1000, "5MB": 5e6} {
		if n, err := parseBytes(in); err != nil || n != want {
			t.Errorf("parseBytes(%q) = %d, %v", in, n, err)
		}
	}
}
