package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func summarize(h *Histogram) *Latency {
	return &Latency{Count: h.Count(), P50ms: ms(h.Quantile(0.5)), P99ms: ms(h.Quantile(0.99)),
		P999ms: ms(h.Quantile(0.999)), MaxMs: ms(h.Max()), MeanMs: ms(h.Mean())}
}

// Result is one workload run against one target.
type Result struct {
	Workload    string   `json:"workload"`
	Target      string   `json:"target"`
	Label       string   `json:"label"`
	Settings    string   `json:"settings"`
	Partitions  int      `json:"partitions,omitempty"`
	Producers   int      `json:"producers,omitempty"`
	RecordSize  int      `json:"record_size,omitempty"`
	RateMBps    float64  `json:"rate_MBps,omitempty"`
	Records     uint64   `json:"records"`
	Bytes       int64    `json:"bytes"`
	Seconds     float64  `json:"seconds"`
	MBps        float64  `json:"MBps"`
	Latency     *Latency `json:"latency,omitempty"`
	CPUSeconds  float64  `json:"broker_cpu_seconds"`
	CPUSecPerGB float64  `json:"broker_cpu_seconds_per_GB"`
	// ClientCPUSecPerGB is the harness's own CPU (the clients) per GB.
	ClientCPUSecPerGB float64            `json:"client_cpu_seconds_per_GB,omitempty"`
	PeakRSSBytes      int64              `json:"broker_peak_rss_bytes"`
	Extra             map[string]float64 `json:"extra,omitempty"`
	Error             string             `json:"error,omitempty"`
}

func (r Result) summary() string {
	s := fmt.Sprintf("%-16s %8.1f MB/s", r.Label, r.MBps)
	if r.Latency != nil {
		l := r.Latency
		s += fmt.Sprintf("  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms", l.P50ms, l.P99ms, l.P999ms, l.MaxMs)
	}
	if r.CPUSecPerGB > 0 {
		s += fmt.Sprintf("  %.1f CPU-s/GB", r.CPUSecPerGB)
	}
	if r.ClientCPUSecPerGB > 0 {
		s += fmt.Sprintf("  (clients %.1f CPU-s/GB)", r.ClientCPUSecPerGB)
	}
	if r.PeakRSSBytes > 0 {
		s += fmt.Sprintf("  peak RSS %.0f MiB", float64(r.PeakRSSBytes)/(1<<20))
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += fmt.Sprintf("  %s=%.4g", k, r.Extra[k])
	}
	return s
}

// Check is one of the targets, evaluated on this run.
type Check struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    *bool  `json:"met"` // nil: not measured in this run
}

// Report is a whole run.
type Report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Host     map[string]string `json:"host"`
	Settings map[string]string `json:"settings"`
	Results  []Result          `json:"results"`
	Skipped  map[string]string `json:"skipped_peers"`
	Checks   []Check           `json:"checks"`

	onAdd func(*Report)
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	if r.onAdd != nil {
		r.onAdd(r)
	}
}

func (r *Report) find(workload, target string, rate float64, partitions int) *Result {
	for i := range r.Results {
		x := &r.Results[i]
		if x.Workload == workload && x.Target == target && x.Error == "" &&
			(rate == 0 || x.RateMBps == rate) && (partitions == 0 || x.Partitions == partitions) {
			return x
		}
	}
	return nil
}

func hostInfo() map[string]string {
	h := map[string]string{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					h["cpu"] = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		h["mem"] = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	if n, err := os.Hostname(); err == nil {
		h["hostname"] = n
	}
	return h
}

func settingsOf(c Config) map[string]string {
	return map[string]string{
		"workloads": strings.Join(c.Workloads, ","), "peers": strings.Join(c.Peers, ","),
		"duration": c.Duration.String(), "latency_duration": c.LatencyDuration.String(), "warmup": c.Warmup.String(),
		"record_size": fmt.Sprint(c.RecordSize), "producers": fmt.Sprint(c.Producers), "partitions": fmt.Sprint(c.Partitions),
		"rates_MBps": fmt.Sprint(c.RatesMBps), "catchup_bytes": fmt.Sprint(c.CatchupBytes),
		"scale_partitions": fmt.Sprint(c.ScalePartitions), "idle_partitions": fmt.Sprint(c.IdlePartitions),
		"fanout_groups": fmt.Sprint(c.FanoutGroups),
	}
}

func boolp(b bool) *bool { return &b }

// evaluate fills Checks with the targets.
func (r *Report) evaluate() {
	a := r.find(WThroughput, "sluice", 0, 0)
	ratio := func(name, peer string, want float64) {
		p := r.find(WThroughput, peer, 0, 0)
		c := Check{Target: fmt.Sprintf("(a) sluice >= %gx %s", want, name)}
		if a != nil && p != nil && p.MBps > 0 {
			x := a.MBps / p.MBps
			c.Value = fmt.Sprintf("%.2fx (%.1f vs %.1f MB/s)", x, a.MBps, p.MBps)
			c.Met = boolp(x >= want)
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
	ratio("NATS JetStream (default sync)", "nats", 4)
	ratio("NATS JetStream (sync always)", "nats-sync-always", 10)
	{
		// The disk ceiling is the better of its two measurements:
		// buffered writes and direct I/O, each fdatasynced at a
		// group-commit cadence.
		d := r.find(WThroughput, "ceiling-disk", 0, 0)
		if dd := r.find(WThroughput, "ceiling-disk-direct", 0, 0); dd != nil && dd.Error == "" && (d == nil || dd.MBps > d.MBps) {
			d = dd
		}
		c := Check{Target: "(a) sluice >= 60% of the disk ceiling (fdatasync group commit)"}
		if a != nil && d != nil && d.MBps > 0 {
			x := a.MBps / d.MBps
			c.Value = fmt.Sprintf("%.0f%% (%.1f vs %.1f MB/s, %s)", 100*x, a.MBps, d.MBps, d.Target)
			c.Met = boolp(x >= 0.6)
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
	{
		c := Check{Target: "(b) at 50 MB/s p99 <= 10 ms and <= the best peer's p99"}
		s := r.find(WLatency, "sluice", 50, 0)
		if s != nil && s.Latency != nil {
			best, bestName := -1.0, ""
			for _, x := range r.Results {
				if x.Workload == WLatency && x.RateMBps == 50 && x.Target != "sluice" && !strings.HasPrefix(x.Target, "ceiling-") && x.Error == "" && x.Latency != nil {
					if best < 0 || x.Latency.P99ms < best {
						best, bestName = x.Latency.P99ms, x.Target
					}
				}
			}
			met := s.Latency.P99ms <= 10
			c.Value = fmt.Sprintf("sluice p99 %.2f ms", s.Latency.P99ms)
			if best >= 0 {
				c.Value += fmt.Sprintf(", best peer %s %.2f ms", bestName, best)
				met = met && s.Latency.P99ms <= best
			} else {
				c.Value += ", no peer measured"
			}
			if f := r.find(WLatency, "ceiling-fsync", 50, 0); f != nil && f.Latency != nil && f.Error == "" {
				c.Value += fmt.Sprintf(" (ideal group commit on this disk: p99 %.2f ms)", f.Latency.P99ms)
			}
			if p99, ok := s.Extra["fdatasync_p99_ms"]; ok {
				c.Value += fmt.Sprintf(" (its own fdatasyncs: p99 %.2f ms, p99.9 %.2f ms, max %.2f ms)", p99, s.Extra["fdatasync_p999_ms"], s.Extra["fdatasync_max_ms"])
			}
			if f := r.find(WLatency, "ceiling-clients", 50, 0); f != nil && f.Latency != nil && f.Error == "" {
				c.Value += fmt.Sprintf(" (the clients against a server that does no work: p99 %.2f ms)", f.Latency.P99ms)
			}
			c.Met = boolp(met)
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
	{
		c := Check{Target: "(c) catch-up >= 1 GB/s or >= 80% of the page-cache read ceiling"}
		if s := r.find(WCatchup, "sluice", 0, 0); s != nil {
			// Judged on the broker's read path (plain fetches, batches
			// CRC-checked, records not decoded); the franz-go consumer's
			// rate is given beside it: one consumer library's decoding
			// limit on this machine, not the broker's.
			pc, raw := s.Extra["pagecache_read_MBps"], s.Extra["raw_fetch_MBps"]
			c.Value = fmt.Sprintf("raw fetch %.1f MB/s, franz-go consumer %.1f MB/s, page-cache ceiling %.1f MB/s", raw, s.MBps, pc)
			c.Met = boolp(raw >= 1000 || (pc > 0 && raw >= 0.8*pc))
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
	{
		c := Check{Target: "(e) 1,024 partitions keep >= 70% of 16-partition throughput"}
		p16, p1024 := r.find(WScaling, "sluice", 0, 16), r.find(WScaling, "sluice", 0, 1024)
		if p16 != nil && p1024 != nil && p16.MBps > 0 {
			x := p1024.MBps / p16.MBps
			c.Value = fmt.Sprintf("%.0f%% (%.1f vs %.1f MB/s)", 100*x, p1024.MBps, p16.MBps)
			c.Met = boolp(x >= 0.7)
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
	{
		c := Check{Target: "(f) <= 64 KiB RSS per idle partition"}
		if s := r.find(WIdle, "sluice", 0, 0); s != nil {
			per := s.Extra["rss_per_partition_bytes"]
			c.Value = fmt.Sprintf("%.1f KiB per partition (%d partitions)", per/1024, s.Partitions)
			c.Met = boolp(per <= 64*1024)
		} else {
			c.Value = "not measured"
		}
		r.Checks = append(r.Checks, c)
	}
}

// JSON renders the report.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

func fmtMiB(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func fmtF(f float64, prec int) string {
	if f == 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, f)
}

// Markdown renders the report as tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s – %s on %s (%s CPUs, %s, %s).\n\n", r.Started.Format(time.RFC3339), r.Finished.Format("15:04:05Z"),
		r.Host["cpu"], r.Host["cpus"], r.Host["mem"], r.Host["go"])
	a := r.find(WThroughput, "sluice", 0, 0)
	var tp []Result
	for _, x := range r.Results {
		if x.Workload == WThroughput {
			tp = append(tp, x)
		}
	}
	if len(tp) > 0 {
		b.WriteString("**(a) produce throughput** (1 topic, " + r.Settings["partitions"] + " partitions, " + r.Settings["record_size"] +
			" B records, " + r.Settings["producers"] + " producers, " + r.Settings["duration"] + " each)\n\n")
		b.WriteString("| target | MB/s | sluice ÷ target | broker CPU-s/GB | client CPU-s/GB | peak RSS | settings |\n|---|---:|---:|---:|---:|---:|---|\n")
		for _, x := range tp {
			rat := "–"
			if a != nil && x.MBps > 0 && x.Target != "sluice" && x.Error == "" {
				rat = fmt.Sprintf("%.2fx", a.MBps/x.MBps)
			}
			mbps := fmtF(x.MBps, 1)
			if x.Error != "" {
				mbps = "error: " + x.Error
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", x.Target, mbps, rat, fmtF(x.CPUSecPerGB, 1), fmtF(x.ClientCPUSecPerGB, 1), fmtMiB(x.PeakRSSBytes), x.Settings)
		}
		b.WriteString("\n")
	}
	var lat []Result
	for _, x := range r.Results {
		if x.Workload == WLatency {
			lat = append(lat, x)
		}
	}
	if len(lat) > 0 {
		b.WriteString("**(b) end-to-end latency** at fixed rates, send → receive, measured from the intended send time of the schedule (coordinated omission corrected); " +
			r.Settings["latency_duration"] + " each, first " + r.Settings["warmup"] + " left out\n\n")
		b.WriteString("| rate | target | p50 ms | p99 ms | p99.9 ms | max ms | p99 sluice ÷ target | ack p50 / p99 ms | broker CPU-s/GB | peak RSS |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range lat {
			if x.Error != "" && x.Latency != nil && x.Latency.Count > 0 {
				l := x.Latency
				fmt.Fprintf(&b, "| %g MB/s | %s | %.2f | %.2f | %.2f | %.2f | – | – | %s | %s |\n", x.RateMBps,
					x.Target+" ("+x.Error+")", l.P50ms, l.P99ms, l.P999ms, l.MaxMs, fmtF(x.CPUSecPerGB, 1), fmtMiB(x.PeakRSSBytes))
				continue
			}
			if x.Error != "" || x.Latency == nil {
				fmt.Fprintf(&b, "| %g MB/s | %s | error: %s | | | | | | | |\n", x.RateMBps, x.Target, x.Error)
				continue
			}
			rat := "–"
			if s := r.find(WLatency, "sluice", x.RateMBps, 0); s != nil && s.Latency != nil && x.Target != "sluice" && x.Latency.P99ms > 0 {
				rat = fmt.Sprintf("%.2f", s.Latency.P99ms/x.Latency.P99ms)
			}
			l := x.Latency
			ack := "–"
			if x.Extra != nil && x.Extra["ack_p50_ms"] > 0 {
				ack = fmt.Sprintf("%.2f / %.2f", x.Extra["ack_p50_ms"], x.Extra["ack_p99_ms"])
			}
			fmt.Fprintf(&b, "| %g MB/s | %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n", x.RateMBps, x.Target,
				l.P50ms, l.P99ms, l.P999ms, l.MaxMs, rat, ack, fmtF(x.CPUSecPerGB, 1), fmtMiB(x.PeakRSSBytes))
		}
		b.WriteString("\n")
	}
	var other []Result
	for _, x := range r.Results {
		if x.Workload != WThroughput && x.Workload != WLatency {
			other = append(other, x)
		}
	}
	if len(other) > 0 {
		b.WriteString("**(c)–(f)** (sluice only)\n\n| workload | partitions | MB/s | broker CPU-s/GB | peak RSS | details |\n|---|---:|---:|---:|---:|---|\n")
		for _, x := range other {
			det := ""
			keys := make([]string, 0, len(x.Extra))
			for k := range x.Extra {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				det += fmt.Sprintf("%s=%.4g ", k, x.Extra[k])
			}
			if x.Error != "" {
				det += "error: " + x.Error
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", x.Workload, x.Partitions, fmtF(x.MBps, 1),
				fmtF(x.CPUSecPerGB, 1), fmtMiB(x.PeakRSSBytes), strings.TrimSpace(det))
		}
		b.WriteString("\n")
	}
	if len(r.Skipped) > 0 {
		b.WriteString("Skipped peers:\n\n")
		names := make([]string, 0, len(r.Skipped))
		for n := range r.Skipped {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "- %s: %s\n", n, r.Skipped[n])
		}
		b.WriteString("\n")
	}
	if len(r.Checks) > 0 {
		b.WriteString("| target | this run | met |\n|---|---|---|\n")
		for _, c := range r.Checks {
			met := "not measured"
			if c.Met != nil {
				met = map[bool]string{true: "**yes**", false: "**no**"}[*c.Met]
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Target, c.Value, met)
		}
	}
	return b.String()
}
