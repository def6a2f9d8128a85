package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	crashTopic      = "crash"
	crashGroup      = "crash-group"
	crashPartitions = 4
)

// crashValue is the value of record seq of partition p; padding makes the
// batches big enough to cross pages and segments now and then.
func crashValue(p int32, seq int64) string {
	return fmt.Sprintf("%d %d %s", p, seq, strings.Repeat("x", 40+int(seq%97)))
}

func parseCrashValue(v []byte) (int32, int64, error) {
	f := strings.SplitN(string(v), " ", 3)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("malformed value %q", v)
	}
	p, err1 := strconv.ParseInt(f[0], 10, 32)
	seq, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || f[2] != strings.Repeat("x", 40+int(seq%97)) {
		return 0, 0, fmt.Errorf("corrupt value %q", v)
	}
	return int32(p), seq, nil
}

// producer writes sequence numbers 0, 1, 2… to each partition with an
// idempotent acks=all client and records what the broker acknowledged.
type producer struct {
	cl   *kgo.Client
	stop atomic.Bool
	done chan struct{}

	mu      sync.Mutex
	acks    []Ack
	maxAck  map[int32]int64 // largest acknowledged offset per partition
	failed  int             // records that failed for good (never acknowledged)
	lastErr error
}

func startProducer(t *testing.T, addr string) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(crashTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(2000),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	pr := &producer{cl: cl, done: make(chan struct{}), maxAck: map[int32]int64{}}
	go func() {
		defer close(pr.done)
		next := make([]int64, crashPartitions)
		for i := 0; !pr.stop.Load(); i++ {
			p := int32(i % crashPartitions)
			seq := next[p]
			next[p]++
			r := &kgo.Record{Partition: p, Value: []byte(crashValue(p, seq))}
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				pr.mu.Lock()
				defer pr.mu.Unlock()
				if err != nil {
					pr.failed++
					pr.lastErr = err
					return
				}
				pr.acks = append(pr.acks, Ack{Partition: r.Partition, Offset: r.Offset, Seq: seq})
				if m, ok := pr.maxAck[r.Partition]; !ok || r.Offset > m {
					pr.maxAck[r.Partition] = r.Offset
				}
			})
			if i%32 == 31 {
				time.Sleep(time.Millisecond) // a steady stream, not a flood
			}
		}
	}()
	return pr
}

// committer commits ever larger offsets for every partition of the topic
// to a group, one commit at a time, and records what was attempted and
// what was acknowledged. It can be paused between commits.
type committer struct {
	cl   *kgo.Client
	adm  *kadm.Client
	stop atomic.Bool
	done chan struct{}

	pauseMu sync.Mutex // held by a commit in progress, and while paused

	mu        sync.Mutex
	attempted map[int32]int64
	acked     map[int32]int64
	commits   int // acknowledged commits
	n         int64
}

func startCommitter(t *testing.T, addr string) *committer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	c := &committer{cl: cl, adm: kadm.NewClient(cl), done: make(chan struct{}),
		attempted: map[int32]int64{}, acked: map[int32]int64{}}
	go func() {
		defer close(c.done)
		for !c.stop.Load() {
			c.commitOnce()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return c
}

func (c *committer) commitOnce() {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	c.n++
	offs := kadm.Offsets{}
	c.mu.Lock()
	for p := int32(0); p < crashPartitions; p++ {
		o := c.n*crashPartitions + int64(p)
		offs.Add(kadm.Offset{Topic: crashTopic, Partition: p, At: o, LeaderEpoch: -1})
		c.attempted[p] = o
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.adm.CommitOffsets(ctx, crashGroup, offs)
	if err != nil || resp.Error() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := true
	resp.Each(func(r kadm.OffsetResponse) { ok = ok && r.Err == nil })
	if !ok {
		return
	}
	for p := int32(0); p < crashPartitions; p++ {
		c.acked[p] = offs[crashTopic][p].At
	}
	c.commits++
}

func copyMap(m map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestSIGKILL: SIGKILL the broker at random moments under an idempotent
// acks=all produce stream and a stream of offset commits, restart it on the
// same data directory, and check the history: after every restart, no
// partition ends before its last acknowledged offset and no committed
// offset is behind the last acknowledged commit; at the end, every
// acknowledged record is on the log exactly once, at its acknowledged
// offset, in sequence order (CheckLog). SLUICE_KILL_CYCLES sets the number
// of kills (default 20), SLUICE_KILL_SEED the random seed.
func TestSIGKILL(t *testing.T) {
	cycles := envInt(t, "SLUICE_KILL_CYCLES", 20)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SLUICE_KILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("%d kill cycles, SLUICE_KILL_SEED=%d", cycles, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	start := time.Now()

	b := startBroker(t, "")
	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if _, err := adm.CreateTopic(ctx, crashPartitions, 1, nil, crashTopic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	cancel()

	pr := startProducer(t, b.addr)
	cm := startCommitter(t, b.addr)
	stopped := false
	stopClients := func() {
		if stopped {
			return
		}
		stopped = true
		pr.stop.Store(true)
		cm.stop.Store(true)
		<-pr.done
		<-cm.done
		pr.cl.Close()
		cm.cl.Close()
	}
	defer stopClients()

	commitChecks, endChecks := 0, 0
	// killAndCheck kills the broker, restarts it and checks that nothing
	// acknowledged before the kill went back.
	killAndCheck := func(cycle int) {
		b.kill()
		cm.pauseMu.Lock() // the commit in flight at the kill (if any) has failed or landed
		defer cm.pauseMu.Unlock()
		pr.mu.Lock()
		maxAck := copyMap(pr.maxAck)
		pr.mu.Unlock()
		cm.mu.Lock()
		acked, attempted := copyMap(cm.acked), copyMap(cm.attempted)
		cm.mu.Unlock()
		b.start()

		ends := listEndsRetry(t, adm, cycle)
		for p, off := range maxAck {
			if ends[p] <= off {
				t.Fatalf("cycle %d: partition %d ends at %d after restart, but offset %d was acknowledged", cycle, p, ends[p], off)
			}
			endChecks++
		}
		if len(acked) > 0 {
			got := fetchCommittedRetry(t, adm, cycle)
			if problems := CheckCommits(acked, attempted, got); len(problems) > 0 {
				t.Fatalf("cycle %d: committed offsets: %s", cycle, strings.Join(problems, "; "))
			}
			commitChecks++
		}
	}

	for cycle := 0; cycle < cycles; cycle++ {
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		killAndCheck(cycle)
	}
	// Let everything in flight be acknowledged (or fail), then one more
	// kill so the last acknowledgements also face a crash.
	pr.stop.Store(true)
	<-pr.done
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := pr.cl.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	fcancel()
	killAndCheck(cycles)
	stopClients()

	pr.mu.Lock()
	acks, failed, lastErr := pr.acks, pr.failed, pr.lastErr
	pr.mu.Unlock()
	reads := readAll(t, b.addr, adm)
	r := CheckLog(acks, reads)
	t.Logf("%d SIGKILLs in %v: %v; %d records failed at the client; %d commits acknowledged, %d commit checks and %d end-offset checks after restarts",
		cycles+1, time.Since(start).Round(time.Millisecond), r, failed, cm.commits, commitChecks, endChecks)
	if failed > 0 {
		t.Logf("last client failure: %v", lastErr)
	}
	if !r.OK() {
		t.Fatalf("history check failed:\n%s", strings.Join(r.Problems, "\n"))
	}
	if len(acks) == 0 || cm.commits == 0 {
		t.Fatalf("no progress: %d records and %d commits acknowledged", len(acks), cm.commits)
	}
}

// listEndsRetry lists the topic's end offsets, retrying while the broker
// finishes starting.
func listEndsRetry(t *testing.T, adm *kadm.Client, cycle int) map[int32]int64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, crashTopic)
		cancel()
		if err == nil && ends.Error() == nil {
			out := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			if len(out) == crashPartitions {
				return out
			}
			err = fmt.Errorf("%d partitions listed", len(out))
		} else if err == nil {
			err = ends.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle %d: list end offsets: %v", cycle, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetchCommittedRetry(t *testing.T, adm *kadm.Client, cycle int) map[int32]int64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := adm.FetchOffsets(ctx, crashGroup)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			resp.Each(func(o kadm.OffsetResponse) {
				if o.Topic == crashTopic {
					out[o.Partition] = o.At
				}
			})
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle %d: fetch committed offsets: %v", cycle, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAll reads every partition of the topic from its start to its end
// offset.
func readAll(t *testing.T, addr string, adm *kadm.Client) []Read {
	ends := listEndsRetry(t, adm, -1)
	offsets := map[int32]kgo.Offset{}
	total := int64(0)
	for p, e := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
		total += e
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: offsets}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var reads []Read
	got := map[int32]int64{}
	n := int64(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before timing out", n, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			p, seq, err := parseCrashValue(r.Value)
			if err != nil || p != r.Partition {
				t.Fatalf("partition %d offset %d: %v (partition %d in value)", r.Partition, r.Offset, err, p)
			}
			reads = append(reads, Read{Partition: r.Partition, Offset: r.Offset, Seq: seq})
			got[r.Partition]++
			n++
		})
	}
	return reads
}
