package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/hist"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCoordinatedOmissionCorrection(t *testing.T) {
	start := time.Unix(1000, 0)
	s := NewSchedule(start, 1000)
	if s.Interval != time.Millisecond {
		t.Fatalf("interval %v", s.Interval)
	}
	const service = 100 * time.Microsecond
	stallAt, stallFor := 5*time.Second, time.Second
	var corrected, naive Histogram
	clock := start
	var next uint64
	end := start.Add(10 * time.Second)
	for clock.Before(end) {
		due := s.Due(clock)
		for ; next < due; next++ {
			sendAt := clock
			done := sendAt.Add(service)
			if el := sendAt.Sub(start); el >= stallAt && el < stallAt+stallFor {
				// The broker answers nothing until the stall ends; the
				// sender is blocked until then.
				done = start.Add(stallAt + stallFor + service)
				clock = done
			}
			corrected.Record(done.Sub(s.Intended(next)))
			naive.Record(done.Sub(sendAt))
		}
		if clock.Before(s.Intended(next)) {
			clock = s.Intended(next)
		}
	}
	if naive.Count() != corrected.Count() || corrected.Count() < 9990 {
		t.Fatalf("counts %d %d", naive.Count(), corrected.Count())
	}
	// ~1,000 of ~10,000 records were due during the stall: p99 must show
	// hundreds of ms, p90 about zero.
	if p99 := corrected.Quantile(0.99); p99 < 800*time.Millisecond {
		t.Errorf("corrected p99 = %v, want the stall to show (>= 800ms)", p99)
	}
	if p50 := corrected.Quantile(0.5); p50 > time.Millisecond {
		t.Errorf("corrected p50 = %v, want the service time", p50)
	}
	if p99 := naive.Quantile(0.99); p99 > 2*time.Millisecond {
		t.Errorf("naive p99 = %v: expected coordinated omission to hide the stall", p99)
	}
	if naive.Max() < stallFor/2 {
		t.Errorf("naive max %v: the one stalled record should show", naive.Max())
	}
	if d := s.Due(start.Add(-time.Second)); d != 0 {
		t.Errorf("Due before start = %d", d)
	}
	if d := s.Due(start.Add(2500 * time.Microsecond)); d != 3 {
		t.Errorf("Due at 2.5ms = %d, want 3 (records 0,1,2)", d)
	}
}

func TestReportRendering(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * 10 * time.Microsecond)
	}
	rep := &Report{Started: time.Unix(0, 0).UTC(), Finished: time.Unix(60, 0).UTC(),
		Host: map[string]string{"cpu": "test cpu", "cpus": "2"}, Settings: map[string]string{"partitions": "16"},
		Skipped: map[string]string{"rabbitmq": "rabbitmq-server not found"}}
	rep.add(Result{Workload: WThroughput, Target: "sluice", MBps: 400, Bytes: 4e9, CPUSecPerGB: 2.5, PeakRSSBytes: 100 << 20})
	rep.add(Result{Workload: WThroughput, Target: "nats", MBps: 80})
	rep.add(Result{Workload: WThroughput, Target: "nats-sync-always", MBps: 50})
	rep.add(Result{Workload: WThroughput, Target: "ceiling-disk", MBps: 500})
	// The better of the two disk ceilings is the one (a) is judged against.
	rep.add(Result{Workload: WThroughput, Target: "ceiling-disk-direct", MBps: 640})
	rep.add(Result{Workload: WThroughput, Target: "redis-always", Error: "boom"})
	sl := summarize(&h)
	// 10µs..10ms uniformly: the percentiles within the histogram's 1/64.
	for _, c := range []struct{ got, want float64 }{{sl.P50ms, 5}, {sl.P99ms, 9.9}, {sl.P999ms, 9.99}, {sl.MaxMs, 10}} {
		if c.got < c.want || c.got > c.want*(1+hist.RelativeError) {
			t.Errorf("summary %v, want %v (+1/64)", c.got, c.want)
		}
	}
	rep.add(Result{Workload: WLatency, Target: "sluice", RateMBps: 50, Latency: sl})
	rep.add(Result{Workload: WLatency, Target: "nats", RateMBps: 50, Latency: &Latency{P50ms: 1, P99ms: 20, P999ms: 30, MaxMs: 40}})
	// A machine floor, not a peer: it must not be "the best peer" of (b).
	rep.add(Result{Workload: WLatency, Target: "ceiling-fsync", RateMBps: 50, Latency: &Latency{P50ms: 0.25, P99ms: 0.5, P999ms: 1, MaxMs: 2}})
	rep.add(Result{Workload: WScaling, Target: "sluice", Partitions: 16, MBps: 100})
	rep.add(Result{Workload: WScaling, Target: "sluice", Partitions: 1024, MBps: 60})
	rep.add(Result{Workload: WIdle, Target: "sluice", Partitions: 10000, Extra: map[string]float64{"rss_per_partition_bytes": 4096}})
	rep.evaluate()
	md := rep.Markdown()
	for _, want := range []string{
		"| sluice | 400.0 | – | 2.5 | – | 100 MiB |",
		"| nats | 80.0 | 5.00x |",
		"| nats-sync-always | 50.0 | 8.00x |",
		"| redis-always | error: boom | – |",
		fmt.Sprintf("| 50 MB/s | sluice | %.2f | %.2f | %.2f | 10.00 | – | – |", sl.P50ms, sl.P99ms, sl.P999ms),
		fmt.Sprintf("| 50 MB/s | nats | 1.00 | 20.00 | 30.00 | 40.00 | %.2f | – |", sl.P99ms/20),
		fmt.Sprintf("| 50 MB/s | ceiling-fsync | 0.25 | 0.50 | 1.00 | 2.00 | %.2f | – |", sl.P99ms/0.5),
		"- rabbitmq: rabbitmq-server not found",
		"| (a) sluice >= 4x NATS JetStream (default sync) | 5.00x (400.0 vs 80.0 MB/s) | **yes** |",
		"| (a) sluice >= 10x NATS JetStream (sync always) | 8.00x (400.0 vs 50.0 MB/s) | **no** |",
		"| (a) sluice >= 60% of the disk ceiling (fdatasync group commit) | 62% (400.0 vs 640.0 MB/s, ceiling-disk-direct) | **yes** |",
		fmt.Sprintf("sluice p99 %.2f ms, best peer nats 20.00 ms (ideal group commit on this disk: p99 0.50 ms) | **yes** |", sl.P99ms),
		"| (c) catch-up >= 1 GB/s or >= 80% of the page-cache read ceiling | not measured | not measured |",
		"60% (60.0 vs 100.0 MB/s) | **no** |",
		"4.0 KiB per partition (10000 partitions) | **yes** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	js, err := rep.JSON()
	if err != nil || !strings.Contains(string(js), `"p99_ms": 9.9`) {
		t.Errorf("json: %v\n%s", err, js)
	}
	if err := WriteChart(rep, t.TempDir()+"/c.png"); err != nil {
		t.Errorf("chart: %v", err)
	}
}

// TestDiskCeilingDirect writes 16 MiB with direct I/O and a group fsync.
func TestDiskCeilingDirect(t *testing.T) {
	dir, err := os.MkdirTemp(".", "ceiling-test-") // the package dir: a real disk, where /tmp may be tmpfs
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r := diskCeilingDirect(dir, 16<<20)
	if strings.HasPrefix(r.Error, "direct I/O") {
		t.Skipf("SKIPPING: no direct I/O on this file system: %s", r.Error)
	}
	if r.Error != "" || r.Bytes != 16<<20 || r.MBps <= 0 {
		t.Fatalf("direct ceiling: %+v", r)
	}
	t.Logf("%.1f MB/s", r.MBps)
}

// TestFsyncFloor runs the ideal group committer briefly: every record due
// after the warm-up is timed, at about the asked rate.
func TestFsyncFloor(t *testing.T) {
	const rate, size = 2e6, 1024
	dur, warm := 600*time.Millisecond, 100*time.Millisecond
	r := fsyncFloor(t.TempDir(), rate, size, dur, warm)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	l := r.Latency
	if l == nil || l.P50ms <= 0 || l.MaxMs < l.P99ms || l.P99ms < l.P50ms {
		t.Fatalf("implausible latency %+v", l)
	}
	due := rate / size * dur.Seconds()
	if float64(r.Records) < due*0.9 || float64(r.Records) > due*1.1 {
		t.Errorf("%d records, want about %.0f", r.Records, due)
	}
	if want := rate / size * (dur - warm).Seconds(); float64(l.Count) < want*0.8 || float64(l.Count) > want*1.1 {
		t.Errorf("%d records timed, want about %.0f (warm-up left out)", l.Count, want)
	}
}

// TestRunStopsWhenInterrupted: once the context is cancelled (SIGINT or
// SIGTERM in `sluice bench`), the harness starts no further broker and
// measures no ceiling; every run left is reported as not run.
func TestRunStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Quick()
	cfg.Peers = nil
	cfg.WorkDir = t.TempDir()
	starts := 0
	cfg.StartSluice = func(context.Context, string, string) (*Process, error) {
		starts++
		cancel() // the signal arrives while the first broker starts
		return nil, errors.New("interrupted while starting")
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if starts != 1 {
		t.Errorf("sluice started %d times after the interrupt, want 1 start in all", starts)
	}
	if len(rep.Results) < 2 {
		t.Fatalf("%d results, want one per run the workloads ask for", len(rep.Results))
	}
	for i, r := range rep.Results {
		if strings.HasPrefix(r.Target, "ceiling") {
			t.Errorf("ceiling %s measured after the interrupt", r.Target)
		}
		if i > 0 && r.Error != errInterrupted {
			t.Errorf("result %d (%s %s): error %q, want %q", i, r.Workload, r.Target, r.Error, errInterrupted)
		}
	}
}
