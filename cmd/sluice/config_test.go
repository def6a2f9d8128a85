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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-mq/sluice/internal/log"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestServeConfigLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(`
listen: 0.0.0.0:7000
data_dir: /from/file
durability: none
default_partitions: 3
log_level: debug
idle_timeout: 90s
auto_create_topics: false
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c serveConfig)
	}{
		{"defaults", nil, nil, func(t *testing.T, c serveConfig) {
			if c.Listen != "127.0.0.1:9092" || c.DataDir != "./sluice-data" || c.durability.Kind != log.DurabilityFsync ||
				!c.AutoCreateTopics || c.DefaultPartitions != 1 || c.MaxRequestBytes != 100<<20 ||
				c.MaxConnsPerIP != 1000 || c.FrameTimeout != 30*time.Second {
				t.Fatalf("%+v", c)
			}
		}},
		{"file", []string{"--config", file}, nil, func(t *testing.T, c serveConfig) {
			if c.Listen != "0.0.0.0:7000" || c.DataDir != "/from/file" || c.durability.Kind != log.DurabilityNone ||
				c.DefaultPartitions != 3 || c.logLevel != slog.LevelDebug || c.IdleTimeout != 90*time.Second || c.AutoCreateTopics {
				t.Fatalf("%+v", c)
			}
		}},
		{"env over file", nil, map[string]string{"SLUICE_CONFIG": file, "SLUICE_DATA_DIR": "/from/env", "SLUICE_DURABILITY": "interval=250"},
			func(t *testing.T, c serveConfig) {
				if c.DataDir != "/from/env" || c.Listen != "0.0.0.0:7000" ||
					c.durability != (log.Durability{Kind: log.DurabilityInterval, Interval: 250 * time.Millisecond}) {
					t.Fatalf("%+v", c)
				}
			}},
		{"flags over env", []string{"--data-dir", "/from/flag", "--auto-create-topics", "--listen=127.0.0.1:1"},
			map[string]string{"SLUICE_CONFIG": file, "SLUICE_DATA_DIR": "/from/env", "SLUICE_LISTEN": "127.0.0.1:2"},
			func(t *testing.T, c serveConfig) {
				if c.DataDir != "/from/flag" || c.Listen != "127.0.0.1:1" || !c.AutoCreateTopics || c.DefaultPartitions != 3 {
					t.Fatalf("%+v", c)
				}
			}},
		{"connection limits", []string{"--max-connections-per-ip", "0", "--frame-timeout", "2s"}, nil, func(t *testing.T, c serveConfig) {
			if c.MaxConnsPerIP != 0 || c.FrameTimeout != 2*time.Second {
				t.Fatalf("%+v", c)
			}
		}},
		{"bool flag with value", []string{"--auto-create-topics=false"}, nil, func(t *testing.T, c serveConfig) {
			if c.AutoCreateTopics {
				t.Fatal("auto-create still on")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadServeConfig(tc.args, envMap(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "bad.yaml")
	os.WriteFile(unknownKey, []byte("listen: 127.0.0.1:1\nlisen: typo\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad durability", []string{"--durability", "sometimes"}, nil, "durability"},
		{"zero interval", []string{"--durability", "interval=0"}, nil, "positive"},
		{"bad listen", []string{"--listen", "nope"}, nil, "listen"},
		{"bad env number", nil, map[string]string{"SLUICE_DEFAULT_PARTITIONS": "many"}, "SLUICE_DEFAULT_PARTITIONS"},
		{"zero partitions", []string{"--default-partitions", "0"}, nil, "at least 1"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log level"},
		{"unknown file key", []string{"--config", unknownKey}, nil, "lisen"},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.yaml")}, nil, "config file"},
		{"bad advertised", []string{"--advertised-addr", "host-without-port"}, nil, "advertised"},
		{"stray argument", []string{"extra"}, nil, "unexpected"},
		{"negative connection limit", []string{"--max-connections-per-ip", "-1"}, nil, "must not be negative"},
		{"zero frame timeout", []string{"--frame-timeout", "0s"}, nil, "frame timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadServeConfig(tc.args, envMap(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestServeRunsAndShutsDown: serve starts a working broker, franz-go
// produces to it, and cancelling the context shuts it down cleanly; a
// restart on the same data directory still has the record.
func TestServeRunsAndShutsDown(t *testing.T) {
	cfg, err := loadServeConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(body func(addr string)) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, cfg, logger, func(a net.Addr) { ready <- a.String() }) }()
		select {
		case addr := <-ready:
			body(addr)
		case err := <-done:
			t.Fatalf("serve: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve returned %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run(func(addr string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "served", Value: []byte("kept")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	})
	run(func(addr string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("served"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		fs := cl.PollRecords(ctx, 1)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatal(errs)
		}
		if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
			t.Fatalf("records after restart: %v", recs)
		}
	})
}
