package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-mq/sluice/internal/bench"
	"github.com/sluice-mq/sluice/internal/log"
)

func init() {
	register("bench", "benchmark sluice against peer brokers on loopback (BENCHMARKS.md)", runBench)
	register("bench-null-broker", "internal: the Kafka server that does no work, for `sluice bench`'s clients floor", runBenchNullBroker)
	register("bench-broker", "internal: `serve` with a CPU profile, started by `sluice bench`", runBenchBroker)
}

// runBench is `sluice bench`. It starts every broker itself: sluice as a
// child process of this same binary (`sluice bench-broker ... serve`), the
// peers from their installed executables, each fresh for each run.
func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	full := fs.Bool("full", false, "the documented full run (30 s throughput runs, 60 s latency runs, 2 GiB catch-up); default is the quick run (~2-3 min without peers)")
	workloads := fs.String("workloads", strings.Join(bench.AllWorkloads, ","), "comma-separated workloads: throughput,latency,catchup,fanout,scaling,idle (or a,b,c,d,e,f)")
	peers := fs.String("peers", strings.Join(bench.AllPeers, ","), "comma-separated peers to start if installed: nats,redis,rabbitmq (\"\" or none = sluice only)")
	duration := fs.Duration("duration", 0, "each throughput run (overrides the preset)")
	latDuration := fs.Duration("latency-duration", 0, "each fixed-rate latency run (overrides the preset)")
	warmup := fs.Duration("warmup", 0, "start of each latency run left out (overrides the preset)")
	rates := fs.String("rates", "", "fixed rates of the latency runs in MB/s, comma-separated (default 10,50)")
	catchup := fs.String("catchup-bytes", "", "bytes written before the catch-up read, e.g. 256MiB, 2GiB")
	scale := fs.String("scale-partitions", "", "partition counts of the scaling runs (default 1,16,256,1024)")
	idle := fs.Int("idle-partitions", 0, "partitions of the idle-RSS run (default 10000)")
	producers := fs.Int("producers", 0, "producers of the throughput runs (default 4)")
	linger := fs.Duration("linger", time.Millisecond, "linger of the Kafka producers (the default is the OpenMessaging Benchmark Kafka driver's; 0 sends at once)")
	noCeiling := fs.Bool("no-ceiling", false, "skip the disk and loopback ceilings")
	out := fs.String("out", "bench-results", "directory for results.json, results.md, results.png and the sluice CPU profiles")
	journalLog := fs.Bool("journal-log", true, "start sluice with the journal as the log (its default); false: segment files")
	profile := fs.Bool("profile", true, "write sluice CPU profiles of the throughput, latency, catch-up and scaling runs to --out")
	workDir := fs.String("work-dir", "", "where brokers keep their data (default: a temp dir; use a real disk, not tmpfs)")
	render := fs.String("render", "", "only re-render results.md and results.png in --out from this results.json")
	clientProf := fs.String("client-cpuprofile", "", "write a CPU profile of this process (the clients) over the whole run to this file")
	peerBin := fs.String("peer-bin", "", "extra directories (colon-separated) to look for peer executables (default includes ~/go/bin)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sluice bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *render != "" {
		b, err := os.ReadFile(*render)
		var rep bench.Report
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err == nil {
			err = writeBenchResults(&rep, *out, false)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
			return 1
		}
		return 0
	}
	cfg := bench.Quick()
	if *full {
		cfg = bench.Full()
	}
	var err error
	if cfg.Workloads, err = parseWorkloads(*workloads); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
		return 2
	}
	cfg.Peers = nil
	for _, p := range strings.Split(*peers, ",") {
		p = strings.TrimSpace(p)
		if p == "" || p == "none" {
			continue
		}
		switch p {
		case "nats", "redis", "rabbitmq":
			cfg.Peers = append(cfg.Peers, p)
		default:
			fmt.Fprintf(os.Stderr, "sluice bench: unknown peer %q (want nats, redis, rabbitmq)\n", p)
			return 2
		}
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *latDuration > 0 {
		cfg.LatencyDuration = *latDuration
	}
	if *warmup > 0 {
		cfg.Warmup = *warmup
	}
	if *rates != "" {
		cfg.RatesMBps = nil
		for _, s := range strings.Split(*rates, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f <= 0 {
				fmt.Fprintf(os.Stderr, "sluice bench: bad rate %q\n", s)
				return 2
			}
			cfg.RatesMBps = append(cfg.RatesMBps, f)
		}
	}
	if *catchup != "" {
		n, err := parseBytes(*catchup)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "sluice bench: bad --catchup-bytes %q\n", *catchup)
			return 2
		}
		cfg.CatchupBytes = n
	}
	if *scale != "" {
		cfg.ScalePartitions = nil
		for _, s := range strings.Split(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "sluice bench: bad partition count %q\n", s)
				return 2
			}
			cfg.ScalePartitions = append(cfg.ScalePartitions, n)
		}
	}
	if *idle > 0 {
		cfg.IdlePartitions = *idle
	}
	if *producers > 0 {
		cfg.Producers = *producers
	}
	if *linger < 0 {
		fmt.Fprintf(os.Stderr, "sluice bench: bad --linger %v\n", *linger)
		return 2
	}
	cfg.Linger = *linger
	cfg.Ceiling = !*noCeiling
	cfg.Out = os.Stdout
	cfg.WorkDir = *workDir
	if home, err := os.UserHomeDir(); err == nil {
		cfg.PeerBinDirs = append(cfg.PeerBinDirs, filepath.Join(home, "go", "bin"))
	}
	if *peerBin != "" {
		cfg.PeerBinDirs = append(strings.Split(*peerBin, ":"), cfg.PeerBinDirs...)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
		return 1
	}
	if *profile {
		cfg.ProfileDir = *out
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
		return 1
	}
	if *journalLog {
		cfg.SluiceSettings = "journal log (the journal is the log, the default), "
	} else {
		cfg.SluiceSettings = "--journal-log=false (segment files), "
	}
	cfg.StartSluice = func(ctx context.Context, dataDir, cpuProfile string) (*bench.Process, error) {
		addr, err := bench.FreeAddr()
		if err != nil {
			return nil, err
		}
		stats := dataDir + ".stats.json"
		args := []string{"bench-broker", "--stats-file", stats}
		if cpuProfile != "" {
			args = append(args, "--cpuprofile", cpuProfile)
		}
		args = append(args, "--", "--listen", addr, "--data-dir", dataDir, "--log-level", "warn",
			"--auto-create-topics=false", "--group-initial-rebalance-delay", "100ms")
		args = append(args, "--journal-log="+strconv.FormatBool(*journalLog))
		p, err := bench.StartCommand("sluice", exec.Command(self, args...), addr, dataDir)
		if p != nil {
			p.StatsFile = stats
		}
		return p, err
	}
	cfg.StartNull = func(ctx context.Context) (*bench.Process, error) {
		addr, err := bench.FreeAddr()
		if err != nil {
			return nil, err
		}
		return bench.StartCommand("ceiling-clients", exec.Command(self, "bench-null-broker", "--listen", addr), addr, "")
	}
	cfg.OnResult = func(r *bench.Report) {
		if js, err := r.JSON(); err == nil {
			_ = os.WriteFile(filepath.Join(*out, "results.partial.json"), js, 0o644)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *clientProf != "" {
		f, err := os.Create(*clientProf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// The clients (every broker's, in this process) allocate per record;
	// at the default GOGC=100 the collector runs so often that franz-go's
	// pooled request buffers are dropped and regrown each time (39% of the
	// harness's CPU in growslice in a profile of run (a)). Brokers are
	// separate processes and keep their own defaults.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	start := time.Now()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
		return 1
	}
	if err := writeBenchResults(rep, *out, true); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: writing results: %v\n", err)
		return 1
	}
	os.Remove(filepath.Join(*out, "results.partial.json"))
	md := rep.Markdown()
	if ctx.Err() != nil {
		// Interrupted: what finished is written, the rest is marked not run,
		// and the exit status says the run is incomplete.
		fmt.Printf("\n%s\ninterrupted after %v; partial results in %s/results.{json,md,png}\n", md, time.Since(start).Round(time.Second), *out)
		return 130
	}
	fmt.Printf("\n%s\nfinished in %v; results in %s/results.{json,md,png}\n", md, time.Since(start).Round(time.Second), *out)
	return 0
}

func parseWorkloads(s string) ([]string, error) {
	alias := map[string]string{"a": bench.WThroughput, "b": bench.WLatency, "c": bench.WCatchup,
		"d": bench.WFanout, "e": bench.WScaling, "f": bench.WIdle}
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if a, ok := alias[w]; ok {
			w = a
		}
		valid := false
		for _, k := range bench.AllWorkloads {
			valid = valid || k == w
		}
		if !valid {
			return nil, fmt.Errorf("unknown workload %q", w)
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workload selected")
	}
	return out, nil
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n * mult, err
}

// runBenchBroker is `sluice bench-broker [--cpuprofile FILE] -- <serve
// flags>`: `serve`, writing a CPU profile of the whole life of the broker
// when it stops.
func runBenchBroker(args []string) int {
	fs := flag.NewFlagSet("bench-broker", flag.ContinueOnError)
	prof := fs.String("cpuprofile", "", "write a CPU profile here when the broker stops")
	stats := fs.String("stats-file", "", "write the commit cycles' times here (bench.BrokerStats, JSON) when the broker stops")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench-broker: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "sluice bench-broker: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var onStopped func(log.CommitTimes)
	if *stats != "" {
		onStopped = func(ct log.CommitTimes) {
			if err := bench.NewBrokerStats(&ct.Cycle, &ct.Write, &ct.Sync).WriteFile(*stats); err != nil {
				fmt.Fprintf(os.Stderr, "sluice bench-broker: %v\n", err)
			}
		}
	}
	return runServeWith(fs.Args(), onStopped)
}

// runBenchNullBroker is `sluice bench-null-broker --listen ADDR`: a
// bench.NullBroker until SIGINT or SIGTERM.
func runBenchNullBroker(args []string) int {
	fs := flag.NewFlagSet("bench-null-broker", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.RunNullBroker(ctx, *listen); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench-null-broker: %v\n", err)
		return 1
	}
	return 0
}

// writeBenchResults writes results.json (if withJSON), results.md and
// results.png to dir.
func writeBenchResults(rep *bench.Report, dir string, withJSON bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if withJSON {
		js, err := rep.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	return bench.WriteChart(rep, filepath.Join(dir, "results.png"))
}
