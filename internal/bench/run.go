// Package bench is the harness behind `sluice bench`: workloads in the
// style of the OpenMessaging Benchmark run against a sluice broker and the
// peer brokers it finds installed (NATS JetStream, RabbitMQ streams, Redis
// Streams), all on loopback, each started fresh by the harness for each
// run, plus the machine's physical ceilings measured in the same run. It
// writes progress while it runs and a JSON file, a markdown table and a PNG
// chart at the end.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// Workload names; the letters are the issue's.
const (
	WThroughput = "throughput" // (a)
	WLatency    = "latency"    // (b)
	WCatchup    = "catchup"    // (c)
	WFanout     = "fanout"     // (d)
	WScaling    = "scaling"    // (e)
	WIdle       = "idle"       // (f)
)

// AllWorkloads in run order.
var AllWorkloads = []string{WThroughput, WLatency, WCatchup, WFanout, WScaling, WIdle}

// AllPeers the harness knows how to start.
var AllPeers = []string{"nats", "redis", "rabbitmq"}

// Config is one benchmark run.
type Config struct {
	Out     io.Writer // progress
	WorkDir string    // data directories of the brokers (removed after each run)

	Workloads []string
	Peers     []string
	Ceiling   bool // measure the disk and loopback ceilings

	Duration        time.Duration // each throughput run
	LatencyDuration time.Duration // each fixed-rate latency run
	Warmup          time.Duration // left out of latency histograms
	RecordSize      int
	Producers       int
	// Linger is the Kafka producers' linger (franz-go ProducerLinger,
	// linger.ms in the Java client). The default, 1 ms, is the producer
	// setting of the OpenMessaging Benchmark's Kafka driver.
	Linger time.Duration
	// SluiceSettings is added to sluice's settings in the report (the
	// caller's extra serve flags, such as --journal-log).
	SluiceSettings  string
	Partitions      int
	RatesMBps       []float64
	CatchupBytes    int64
	ScalePartitions []int
	IdlePartitions  int
	FanoutGroups    int
	// Settle is how long the idle run lets the broker settle before each
	// RSS reading, and the fan-out run lets its groups form.
	Settle time.Duration

	// StartSluice starts a sluice broker on a free loopback port with
	// dataDir; cpuProfile, if not empty, is where it writes a CPU profile
	// when stopped.
	StartSluice func(ctx context.Context, dataDir, cpuProfile string) (*Process, error)
	// StartNull starts a NullBroker process on a free loopback port for
	// the latency runs' clients floor; nil runs one in this process.
	StartNull func(ctx context.Context) (*Process, error)
	// ProfileDir, if set, receives sluice CPU profiles of (a), (b), (c)
	// and (e).
	ProfileDir string
	// PeerBinDirs are searched for peer executables besides PATH.
	PeerBinDirs []string
	// OnResult, if set, is called with the report so far after each
	// result (to save partial results of a long run).
	OnResult func(*Report)
}

// Quick returns the settings of a run that takes about 2–3 minutes.
func Quick() Config {
	return Config{
		Workloads: AllWorkloads, Peers: AllPeers, Ceiling: true,
		Duration: 8 * time.Second, LatencyDuration: 8 * time.Second, Warmup: 2 * time.Second,
		RecordSize: 1024, Producers: 4, Partitions: 16, Linger: time.Millisecond,
		RatesMBps:    []float64{10, 50},
		CatchupBytes: 256 << 20, ScalePartitions: []int{1, 16, 256, 1024},
		IdlePartitions: 10000, FanoutGroups: 4, Settle: 2 * time.Second,
	}
}

// Full returns the documented full run's settings.
func Full() Config {
	c := Quick()
	c.Duration, c.LatencyDuration, c.Warmup = 30*time.Second, 60*time.Second, 10*time.Second
	c.CatchupBytes = 2 << 30
	return c
}

// Run executes the configured workloads and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.StartSluice == nil {
		return nil, fmt.Errorf("bench: no way to start sluice")
	}
	if cfg.WorkDir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.WorkDir = d
	}
	rep := &Report{Started: time.Now().UTC(), Host: hostInfo(), Settings: settingsOf(cfg), Skipped: map[string]string{}, onAdd: cfg.OnResult}
	peers := peerTargets(cfg, rep)
	sl := sluiceTarget(cfg)
	want := map[string]bool{}
	for _, w := range cfg.Workloads {
		want[w] = true
	}
	var sluiceA *Result
	if want[WThroughput] {
		fmt.Fprintf(cfg.Out, "== (a) produce throughput: 1 topic, %d partitions, %d B records, %d producers, %v each\n",
			cfg.Partitions, cfg.RecordSize, cfg.Producers, cfg.Duration)
		for _, t := range append([]target{sl}, peers...) {
			prof := ""
			if t.name == "sluice" && cfg.ProfileDir != "" {
				prof = filepath.Join(cfg.ProfileDir, "cpu-throughput.pprof")
			}
			r := runOne(ctx, cfg, t, WThroughput, prof, func(d Driver, p *Process) (Result, error) {
				return throughputRun(ctx, cfg, d, t.name, cfg.Partitions)
			})
			rep.add(r)
			if t.name == "sluice" && r.Error == "" {
				rr := r
				sluiceA = &rr
			}
		}
		if cfg.Ceiling && ctx.Err() == nil {
			n := int64(1 << 30)
			if sluiceA != nil && sluiceA.Bytes < n {
				n = sluiceA.Bytes
			}
			if n < 64<<20 {
				n = 64 << 20
			}
			fmt.Fprintf(cfg.Out, "  ceiling: %d MB written sequentially with fdatasync every %d KiB\n", n>>20, ceilingGroup>>10)
			dc := diskCeiling(cfg.WorkDir, n)
			fmt.Fprintf(cfg.Out, "  %s\n", dc.summary())
			rep.add(dc)
			fmt.Fprintf(cfg.Out, "  ceiling: %d MB written with direct I/O, fdatasync every %d MiB\n", n>>20, ceilingDirectGroup>>20)
			dd := diskCeilingDirect(cfg.WorkDir, n)
			fmt.Fprintf(cfg.Out, "  %s\n", dd.summary())
			rep.add(dd)
			fmt.Fprintf(cfg.Out, "  ceiling: loopback TCP for %v\n", 3*time.Second)
			tc := tcpCeiling(3 * time.Second)
			fmt.Fprintf(cfg.Out, "  %s\n", tc.summary())
			rep.add(tc)
		}
	}
	if want[WLatency] {
		for _, rate := range cfg.RatesMBps {
			fmt.Fprintf(cfg.Out, "== (b) end-to-end latency at %g MB/s, %d partitions, %v (first %v left out), from intended send time\n",
				rate, cfg.Partitions, cfg.LatencyDuration, cfg.Warmup)
			for _, t := range append([]target{sl}, peers...) {
				prof := ""
				if t.name == "sluice" && cfg.ProfileDir != "" {
					prof = filepath.Join(cfg.ProfileDir, fmt.Sprintf("cpu-latency-%.0fMBps.pprof", rate))
				}
				r := runOne(ctx, cfg, t, WLatency, prof, func(d Driver, p *Process) (Result, error) {
					return latencyRun(ctx, cfg, d, t.name, rate)
				})
				r.RateMBps = rate
				rep.add(r)
			}
			if cfg.Ceiling && ctx.Err() == nil {
				dur := min(cfg.LatencyDuration, 15*time.Second)
				warm := min(cfg.Warmup, dur/4)
				fmt.Fprintf(cfg.Out, "  ceiling: ideal group commit at %g MB/s for %v (first %v left out)\n", rate, dur, warm)
				fl := fsyncFloor(cfg.WorkDir, rate*1e6, cfg.RecordSize, dur+warm, warm)
				fl.RateMBps = rate
				fmt.Fprintf(cfg.Out, "  %s\n", fl.summary())
				rep.add(fl)
				fmt.Fprintf(cfg.Out, "  ceiling: the same clients against a Kafka server that does no work, %v\n", cfg.LatencyDuration)
				r := runOne(ctx, cfg, nullTarget(cfg), WLatency, "", func(d Driver, p *Process) (Result, error) {
					return latencyRun(ctx, cfg, d, "ceiling-clients", rate)
				})
				r.RateMBps = rate
				rep.add(r)
			}
		}
	}
	if want[WCatchup] {
		fmt.Fprintf(cfg.Out, "== (c) catch-up read of %d MiB already written\n", cfg.CatchupBytes>>20)
		prof := ""
		if cfg.ProfileDir != "" {
			prof = filepath.Join(cfg.ProfileDir, "cpu-catchup.pprof")
		}
		rep.add(runOne(ctx, cfg, sl, WCatchup, prof, func(d Driver, p *Process) (Result, error) {
			return catchupRun(ctx, cfg, d, p)
		}))
	}
	if want[WFanout] {
		fmt.Fprintf(cfg.Out, "== (d) fan-out: 1 producer, %d consumer groups, %v\n", cfg.FanoutGroups, cfg.Duration)
		rep.add(runOne(ctx, cfg, sl, WFanout, "", func(d Driver, p *Process) (Result, error) {
			return fanoutRun(ctx, cfg, d)
		}))
	}
	if want[WScaling] {
		for _, n := range cfg.ScalePartitions {
			fmt.Fprintf(cfg.Out, "== (e) partition scaling: (a) at %d partitions\n", n)
			prof := ""
			if cfg.ProfileDir != "" {
				prof = filepath.Join(cfg.ProfileDir, fmt.Sprintf("cpu-scaling-%d.pprof", n))
			}
			r := runOne(ctx, cfg, sl, WScaling, prof, func(d Driver, p *Process) (Result, error) {
				return throughputRun(ctx, cfg, d, fmt.Sprintf("sluice p=%d", n), n)
			})
			r.Partitions = n
			rep.add(r)
		}
	}
	if want[WIdle] {
		fmt.Fprintf(cfg.Out, "== (f) idle partitions: broker RSS with %d partitions\n", cfg.IdlePartitions)
		rep.add(runOne(ctx, cfg, sl, WIdle, "", func(d Driver, p *Process) (Result, error) {
			return idleRun(ctx, cfg, d, p)
		}))
	}
	rep.Finished = time.Now().UTC()
	rep.evaluate()
	return rep, nil
}

// target is a broker configuration the harness can start.
type target struct {
	name     string
	settings string
	start    func(ctx context.Context, dir, cpuProfile string) (*Process, Driver, error)
}

func sluiceTarget(cfg Config) target {
	return target{
		name:     "sluice",
		settings: "durability=fsync (ack after fdatasync, group commit), " + cfg.SluiceSettings + "franz-go acks=all, idempotent, " + lingerSetting(cfg.Linger),
		start: func(ctx context.Context, dir, prof string) (*Process, Driver, error) {
			p, err := cfg.StartSluice(ctx, dir, prof)
			if err != nil {
				return nil, nil, err
			}
			return p, newKafkaDriver(p.Addr, cfg.Linger), nil
		},
	}
}

// nullTarget is the latency runs' clients floor: the harness's Kafka
// clients, settings and schedule against a NullBroker, which acknowledges a
// produce on receipt and serves fetches from memory.
func nullTarget(cfg Config) target {
	return target{
		name: "ceiling-clients",
		settings: "the same franz-go clients and schedule against a Kafka server that does no work (acks a produce on receipt, no disk, fetches from memory; " +
			"a separate process like the brokers), " + lingerSetting(cfg.Linger),
		start: func(ctx context.Context, _, _ string) (*Process, Driver, error) {
			var p *Process
			if cfg.StartNull != nil {
				var err error
				if p, err = cfg.StartNull(ctx); err != nil {
					return nil, nil, err
				}
			} else {
				b, err := StartNullBroker("127.0.0.1:0")
				if err != nil {
					return nil, nil, err
				}
				p = InProcess("ceiling-clients", b.Addr(), "", b.Close)
			}
			return p, newKafkaDriver(p.Addr, cfg.Linger), nil
		},
	}
}

// lingerSetting states the producers' linger in a target's settings.
func lingerSetting(d time.Duration) string {
	if d == time.Millisecond {
		return "linger 1 ms (the OpenMessaging Benchmark Kafka driver's setting)"
	}
	if d == 0 {
		return "linger 0"
	}
	return "linger " + d.String()
}

// errInterrupted is the error of every run the harness skipped because it
// was interrupted.
const errInterrupted = "not run: interrupted"

// runOne starts t fresh in its own data directory, runs fn while the
// broker's CPU and RSS are sampled, and stops it.
func runOne(ctx context.Context, cfg Config, t target, workload, prof string, fn func(Driver, *Process) (Result, error)) Result {
	if ctx.Err() != nil {
		// Interrupted (SIGINT/SIGTERM): start nothing more; the report
		// keeps what finished.
		return Result{Workload: workload, Target: t.name, Settings: t.settings, Error: errInterrupted}
	}
	dir, err := os.MkdirTemp(cfg.WorkDir, t.name+"-")
	if err != nil {
		return Result{Workload: workload, Target: t.name, Error: err.Error()}
	}
	defer os.RemoveAll(dir)
	p, d, err := t.start(ctx, dir, prof)
	if err != nil {
		fmt.Fprintf(cfg.Out, "  %s: start failed: %v\n", t.name, err)
		return Result{Workload: workload, Target: t.name, Settings: t.settings, Error: "start: " + firstLine(err.Error())}
	}
	mon := startMonitor(p.PID)
	_, self0, _, _ := statOf(os.Getpid())
	// A client stuck on a broker that stopped answering must not hold up
	// the whole run: past the limit the run is recorded as failed and the
	// broker stopped, which unblocks the client.
	type outcome struct {
		r   Result
		err error
	}
	oc := make(chan outcome, 1)
	go func() {
		r, err := fn(d, p)
		oc <- outcome{r, err}
	}()
	var r Result

	limit := runLimit(cfg, workload)
	select {
	case o := <-oc:
		r, err = o.r, o.err
	case <-time.After(limit):
		err = fmt.Errorf("did not finish within %v; stopped", limit)
	}
	cpu, peak, diskWrite := mon.finish()
	_, self1, _, _ := statOf(os.Getpid())
	d.Close()
	if serr := p.Stop(); serr != nil && err == nil {
		err = serr
	}
	if p.StatsFile != "" {
		if bs, serr := readBrokerStats(p.StatsFile); serr == nil {
			if r.Extra == nil {
				r.Extra = map[string]float64{}
			}
			bs.addTo(r.Extra)
		} else {
			fmt.Fprintf(cfg.Out, "  %s: no commit statistics: %v\n", t.name, serr)
		}
		os.Remove(p.StatsFile)
	}
	r.Workload, r.Target, r.Settings = workload, t.name, t.settings
	if r.Label == "" {
		r.Label = t.name
	}
	r.CPUSeconds, r.PeakRSSBytes = cpu, peak
	// Bytes written to storage per byte the run moved: a broker that
	// writes its data twice (sluice's journal and segment) needs twice the
	// disk bandwidth of one that writes it once.
	if (workload == WThroughput || workload == WScaling) && r.Bytes > 0 && diskWrite > 0 && p.PID != os.Getpid() {
		if r.Extra == nil {
			r.Extra = map[string]float64{}
		}
		r.Extra["disk_write_per_byte"] = float64(diskWrite) / float64(r.Bytes)
	}
	if r.Bytes > 0 {
		r.CPUSecPerGB = cpu / (float64(r.Bytes) / 1e9)
		if p.PID != os.Getpid() {
			r.ClientCPUSecPerGB = (self1 - self0) / (float64(r.Bytes) / 1e9)
		}
	}
	if err != nil {
		r.Error = firstLine(err.Error())
		fmt.Fprintf(cfg.Out, "  %s: error: %v\n", t.name, err)
	} else {
		fmt.Fprintf(cfg.Out, "  %s\n", r.summary())
	}
	return r
}

// runLimit bounds one (workload, broker) run.
func runLimit(cfg Config, workload string) time.Duration {
	switch workload {
	case WCatchup:
		return 30 * time.Minute
	case WLatency:
		return cfg.LatencyDuration + 90*time.Second
	default:
		return cfg.Duration + 3*time.Minute
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

func throughputRun(ctx context.Context, cfg Config, d Driver, label string, partitions int) (Result, error) {
	topic := "bench-a"
	if err := d.Setup(ctx, topic, partitions); err != nil {
		return Result{}, err
	}
	tr, err := runThroughput(ctx, d, cfg.Out, label, topic, partitions, cfg.Producers, cfg.RecordSize, cfg.Duration, 0)
	r := Result{Label: label, Partitions: partitions, Producers: cfg.Producers, RecordSize: cfg.RecordSize,
		Records: tr.Records, Bytes: tr.Bytes, Seconds: tr.Seconds}
	if tr.Seconds > 0 {
		r.MBps = float64(tr.Bytes) / tr.Seconds / 1e6
	}
	if err == nil && tr.Errors > 0 {
		err = fmt.Errorf("%d records failed, first: %s", tr.Errors, tr.FirstErr)
	}
	return r, err
}

func latencyRun(ctx context.Context, cfg Config, d Driver, label string, rate float64) (Result, error) {
	topic := "bench-b"
	if err := d.Setup(ctx, topic, cfg.Partitions); err != nil {
		return Result{}, err
	}
	lr, err := runLatency(ctx, d, cfg.Out, label, topic, cfg.Partitions, cfg.Producers, cfg.RecordSize, rate*1e6, cfg.LatencyDuration, cfg.Warmup)
	r := Result{Partitions: cfg.Partitions, Producers: cfg.Producers, RecordSize: cfg.RecordSize, RateMBps: rate,
		Records: lr.Received, Bytes: lr.Bytes, Seconds: lr.Seconds}
	if lr.Seconds > 0 {
		r.MBps = float64(lr.Bytes) / lr.Seconds / 1e6
	}
	if lr.Hist != nil {
		r.Latency = summarize(lr.Hist)
	}
	if lr.Ack != nil && lr.Ack.Count() > 0 {
		r.Extra = map[string]float64{"ack_p50_ms": ms(lr.Ack.Quantile(0.5)), "ack_p99_ms": ms(lr.Ack.Quantile(0.99))}
	}
	if err == nil && lr.Errors > 0 {
		err = fmt.Errorf("%d sends failed", lr.Errors)
	}
	if err == nil && lr.Sent < lr.Due-lr.Due/100 {
		err = fmt.Errorf("could send only %d of the %d records due (%.1f of %.0f MB/s): the broker did not take the rate", lr.Sent, lr.Due,
			float64(lr.Sent)*float64(cfg.RecordSize)/lr.Seconds/1e6, rate)
	}
	if err == nil && lr.Received < lr.Sent {
		err = fmt.Errorf("received %d of %d records within 15s of the end", lr.Received, lr.Sent)
	}
	return r, err
}

func catchupRun(ctx context.Context, cfg Config, d Driver, p *Process) (Result, error) {
	topic := "bench-c"
	if err := d.Setup(ctx, topic, cfg.Partitions); err != nil {
		return Result{}, err
	}
	tr, err := runThroughput(ctx, d, cfg.Out, "writing", topic, cfg.Partitions, cfg.Producers, cfg.RecordSize, 30*time.Minute, cfg.CatchupBytes)
	if err != nil {
		return Result{}, err
	}
	if tr.Errors > 0 {
		return Result{}, fmt.Errorf("writing: %d records failed, first: %s", tr.Errors, tr.FirstErr)
	}
	var counter atomic.Int64
	stop := make(chan struct{})
	go progress(cfg.Out, "reading", 0, &counter, stop)
	n, b, secs, err := consumeAll(ctx, d, topic, cfg.Partitions, "", tr.Records, 10*time.Minute, &counter)
	close(stop)
	r := Result{Partitions: cfg.Partitions, RecordSize: cfg.RecordSize, Records: n, Bytes: b, Seconds: secs}
	if secs > 0 {
		r.MBps = float64(b) / secs / 1e6
	}
	if err == nil && n < tr.Records {
		err = fmt.Errorf("read %d of %d records", n, tr.Records)
	}
	r.Extra = map[string]float64{}
	// The broker's read path without a consumer library's per-record work:
	// plain Fetch requests from one connection per core, batches checked
	// (CRC) and counted, records not decoded.
	if rf, ok := d.(rawFetcher); ok && err == nil {
		readers := runtime.NumCPU()
		var rawCounter atomic.Int64
		stop := make(chan struct{})
		go progress(cfg.Out, "reading (raw fetch)", 0, &rawCounter, stop)
		rn, rb, rsecs, rerr := rf.RawFetch(ctx, topic, cfg.Partitions, readers, tr.Records, &rawCounter)
		close(stop)
		if rerr != nil {
			err = fmt.Errorf("raw fetch: %w", rerr)
		} else if rsecs > 0 {
			r.Extra["raw_fetch_MBps"] = float64(rn) * float64(cfg.RecordSize) / rsecs / 1e6
			r.Extra["raw_fetch_wire_MBps"] = float64(rb) / rsecs / 1e6
			r.Extra["raw_fetch_readers"] = float64(readers)
		}
	}
	// The page-cache read ceiling: the same files (segment or journal)
	// read with 1 MiB reads right after, warm as the consumers left them.
	if p.DataDir != "" {
		if cb, cs, cerr := readCeiling(p.DataDir); cerr == nil && cs > 0 {
			r.Extra["pagecache_read_MBps"] = float64(cb) / cs / 1e6
			r.Extra["pagecache_read_bytes"] = float64(cb)
		}
	}
	return r, err
}

func fanoutRun(ctx context.Context, cfg Config, d Driver) (Result, error) {
	topic := "bench-d"
	if err := d.Setup(ctx, topic, cfg.Partitions); err != nil {
		return Result{}, err
	}
	groups := cfg.FanoutGroups
	counters := make([]atomic.Int64, groups)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, groups)
	for g := 0; g < groups; g++ {
		go func(g int) {
			errc <- d.Consume(cctx, topic, cfg.Partitions, fmt.Sprintf("bench-group-%d", g), func(v []byte) {
				counters[g].Add(int64(len(v)))
			})
		}(g)
	}
	time.Sleep(cfg.Settle) // let the groups form
	start := time.Now()
	tr, err := runThroughput(ctx, d, cfg.Out, "producer (1)", topic, cfg.Partitions, 1, cfg.RecordSize, cfg.Duration, 0)
	prodSecs := time.Since(start).Seconds()
	// Let the groups drain what was produced (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for g := range counters {
			if counters[g].Load() < tr.Bytes {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	drainSecs := time.Since(start).Seconds()
	cancel()
	var cerr error
	for g := 0; g < groups; g++ {
		if e := <-errc; e != nil && cerr == nil {
			cerr = e
		}
	}
	if err == nil {
		err = cerr
	}
	r := Result{Partitions: cfg.Partitions, Producers: 1, RecordSize: cfg.RecordSize,
		Records: tr.Records, Bytes: tr.Bytes, Seconds: prodSecs, Extra: map[string]float64{}}
	if prodSecs > 0 {
		r.MBps = float64(tr.Bytes) / prodSecs / 1e6
	}
	minRead := int64(-1)
	var total int64
	for g := range counters {
		c := counters[g].Load()
		total += c
		if minRead < 0 || c < minRead {
			minRead = c
		}
	}
	r.Extra["groups"] = float64(groups)
	r.Extra["consumed_MBps_total"] = float64(total) / drainSecs / 1e6
	r.Extra["slowest_group_fraction"] = float64(minRead) / float64(max(tr.Bytes, 1))
	r.Bytes += total // CPU per GB counts bytes in and out
	if err == nil && minRead < tr.Bytes {
		err = fmt.Errorf("slowest group read %d of %d bytes within 30s of the end", minRead, tr.Bytes)
	}
	return r, err
}

func idleRun(ctx context.Context, cfg Config, d Driver, p *Process) (Result, error) {
	if err := d.Setup(ctx, "bench-f-base", 1); err != nil {
		return Result{}, err
	}
	time.Sleep(cfg.Settle)
	before, err := readTree(p.PID)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := d.Setup(ctx, "bench-f", cfg.IdlePartitions); err != nil {
		return Result{}, err
	}
	created := time.Since(start)
	time.Sleep(cfg.Settle)
	after, err := readTree(p.PID)
	if err != nil {
		return Result{}, err
	}
	delta := after.RSS - before.RSS
	r := Result{Partitions: cfg.IdlePartitions, Seconds: created.Seconds(), Extra: map[string]float64{
		"rss_before_bytes":        float64(before.RSS),
		"rss_after_bytes":         float64(after.RSS),
		"rss_per_partition_bytes": float64(delta) / float64(cfg.IdlePartitions),
		"create_seconds":          created.Seconds(),
	}}
	return r, nil
}

// StartCommand starts a broker process and waits for addr to accept.
func StartCommand(name string, cmd *exec.Cmd, addr, dataDir string) (*Process, error) {
	p, err := startProcess(name, cmd, addr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	p.DataDir = dataDir
	return p, nil
}

// InProcess describes a broker running inside this process (tests): its
// CPU and RSS figures then include the clients.
func InProcess(name, addr, dataDir string, stop func()) *Process {
	return &Process{Name: name, Addr: addr, PID: os.Getpid(), DataDir: dataDir, stop: stop}
}
