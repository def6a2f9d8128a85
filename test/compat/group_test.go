package compat

// Consumer groups (issue 4, acceptance 1). For every client: three members
// of one group on a 6-partition topic get disjoint, complete assignments;
// SIGKILL of one rebalances within its session timeout and the survivors
// take over with no gaps (a record is read twice only if no commit covering
// it had been acknowledged before the second read); after a graceful stop
// and a broker restart, a new member resumes exactly at the committed
// offsets.
//
// Members are separate processes, so a kill is a real crash: Go clients run
// through test/compat/cmd/groupmember, the others through the scripts in
// test/compat/py and test/compat/js ("group" mode). Each prints JSON event
// lines: {"ev":"assign","parts":[...]} (its whole assignment after every
// change), {"ev":"rec","p":P,"o":O} (a record read) and
// {"ev":"commit","p":P,"o":NEXT} (a synchronous commit acknowledged).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	groupPartitions = 6
	groupPerRound   = 50 // records per partition per produce round
	classicSession  = 6 * time.Second
	// kip848Session is the broker-side KIP-848 session timeout the test's
	// broker runs with (--group-consumer-session-timeout; Kafka's default
	// is 45s), so the kill phase waits seconds, not most of a minute.
	kip848Session = 6 * time.Second
)

// groupClient says how to start one member of a given client.
type groupClient struct {
	name    string
	session time.Duration // after which the broker evicts a killed member
	kip848  bool
	argv    func(t *testing.T, broker, topic, group string) []string
}

func goMember(client string) func(*testing.T, string, string, string) []string {
	return func(t *testing.T, broker, topic, group string) []string {
		return []string{groupMemberBin, client, broker, topic, group, strconv.Itoa(int(classicSession / time.Millisecond))}
	}
}

func scriptMember(interp func(t *testing.T) []string) func(*testing.T, string, string, string) []string {
	return func(t *testing.T, broker, topic, group string) []string {
		return append(interp(t), "group", broker, topic, group, strconv.Itoa(int(classicSession/time.Millisecond)))
	}
}

func TestGroups(t *testing.T) {
	clients := []groupClient{
		{name: "franz-eager", session: classicSession, argv: goMember("franz-eager")},
		{name: "franz-cooperative", session: classicSession, argv: goMember("franz-cooperative")},
		{name: "franz-848", session: kip848Session, kip848: true, argv: goMember("franz-848")},
		{name: "sarama", session: classicSession, argv: goMember("sarama")},
		{name: "kafka-go", session: classicSession, argv: goMember("kafka-go")},
		{name: "confluent-kafka", session: classicSession, argv: scriptMember(func(t *testing.T) []string {
			return []string{needTool(t, "/usr/bin/python3", "-c", "import confluent_kafka"),
				filepath.Join(repoRoot(), "test/compat/py/confluent_client.py")}
		})},
		{name: "kafka-python", session: classicSession, argv: scriptMember(func(t *testing.T) []string {
			return []string{needTool(t, "/usr/bin/python3", "-c", "import kafka"),
				filepath.Join(repoRoot(), "test/compat/py/kafka_python_client.py")}
		})},
		{name: "kafkajs", session: classicSession, argv: scriptMember(func(t *testing.T) []string {
			return []string{needKafkaJS(t), filepath.Join(repoRoot(), "test/compat/js/client.js")}
		})},
	}
	// Mostly waiting (session timeouts), so the clients run side by side,
	// each with its own broker; `make compat` raises -parallel to run all.
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testGroup(t, c)
		})
	}
}

// consumed is one read a member reported, with when the suite saw it.
type consumed struct {
	p    int32
	o    int64
	at   time.Time
	from *member
}

// member is one consumer-group member process.
type member struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *syncBuffer

	mu      sync.Mutex
	parts   []int32
	reads   []consumed
	commits map[int32][]consumed // acknowledged commits per partition, in order
	bad     []string             // unparsable output
}

func startMember(t *testing.T, name string, argv []string) *member {
	t.Helper()
	m := &member{t: t, name: name, stderr: &syncBuffer{}, done: make(chan struct{}), commits: map[int32][]consumed{}}
	m.cmd = exec.Command(argv[0], argv[1:]...)
	m.cmd.Stderr = m.stderr
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m.event(sc.Bytes())
		}
		m.cmd.Wait()
	}()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", m.name, tail(m.stderr.String(), 2000))
		}
	})
	return m
}

func (m *member) event(line []byte) {
	var ev struct {
		Ev    string  `json:"ev"`
		Parts []int32 `json:"parts"`
		P     int32   `json:"p"`
		O     int64   `json:"o"`
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := json.Unmarshal(line, &ev); err != nil {
		m.bad = append(m.bad, string(line))
		return
	}
	switch ev.Ev {
	case "assign":
		m.parts = ev.Parts
	case "rec":
		m.reads = append(m.reads, consumed{p: ev.P, o: ev.O, at: now, from: m})
	case "commit":
		m.commits[ev.P] = append(m.commits[ev.P], consumed{p: ev.P, o: ev.O, at: now, from: m})
	default:
		m.bad = append(m.bad, string(line))
	}
}

func (m *member) alive() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

func (m *member) kill() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.done
}

// stop sends SIGTERM (the member leaves the group) and waits.
func (m *member) stop() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		m.t.Errorf("%s did not exit within 30s of SIGTERM", m.name)
		m.kill()
	}
}

func (m *member) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int32(nil), m.parts...)
}

// waitFor polls cond until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not reached after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// balanced reports whether the live members' assignments are disjoint,
// complete and each non-empty.
func balanced(ms []*member) error {
	owner := map[int32]string{}
	for _, m := range ms {
		if !m.alive() {
			return fmt.Errorf("%s exited: %s", m.name, tail(m.stderr.String(), 500))
		}
		ps := m.assignment()
		if len(ps) == 0 {
			return fmt.Errorf("%s has no partitions", m.name)
		}
		for _, p := range ps {
			if o, ok := owner[p]; ok {
				return fmt.Errorf("partition %d assigned to %s and %s", p, o, m.name)
			}
			owner[p] = m.name
		}
	}
	if len(owner) != groupPartitions {
		return fmt.Errorf("%d of %d partitions assigned: %v", len(owner), groupPartitions, owner)
	}
	return nil
}

// allReads merges every member's reads, in the order the suite saw them.
func allReads(ms []*member) []consumed {
	var out []consumed
	for _, m := range ms {
		m.mu.Lock()
		out = append(out, m.reads...)
		m.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// covered reports whether every offset below ends[p] was read.
func covered(ms []*member, ends map[int32]int64) error {
	seen := map[int32]map[int64]bool{}
	for _, r := range allReads(ms) {
		if seen[r.p] == nil {
			seen[r.p] = map[int64]bool{}
		}
		seen[r.p][r.o] = true
	}
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			if !seen[p][o] {
				return fmt.Errorf("partition %d offset %d not read (end %d)", p, o, end)
			}
		}
	}
	return nil
}

// committedUpTo reports whether, for every partition, some member had a
// commit of ends[p] acknowledged.
func committedUpTo(ms []*member, ends map[int32]int64) error {
	for p, end := range ends {
		if c := maxCommit(ms, p, time.Time{}); c != end {
			return fmt.Errorf("partition %d committed %d, end %d", p, c, end)
		}
	}
	return nil
}

// maxCommit is the highest commit for p acknowledged before `before` (the
// zero time: at any time), or 0.
func maxCommit(ms []*member, p int32, before time.Time) int64 {
	best := int64(0)
	for _, m := range ms {
		m.mu.Lock()
		for _, c := range m.commits[p] {
			if (before.IsZero() || c.at.Before(before)) && c.o > best {
				best = c.o
			}
		}
		m.mu.Unlock()
	}
	return best
}

// checkDuplicates fails on a record read twice although a commit past it
// had been acknowledged before the second read.
func checkDuplicates(t *testing.T, ms []*member) int {
	t.Helper()
	first := map[[2]int64]bool{}
	dups := 0
	for _, r := range allReads(ms) {
		k := [2]int64{int64(r.p), r.o}
		if !first[k] {
			first[k] = true
			continue
		}
		dups++
		if c := maxCommit(ms, r.p, r.at); c > r.o {
			t.Errorf("partition %d offset %d read again by %s although offset %d was committed before", r.p, r.o, r.from.name, c)
		}
	}
	return dups
}

// produceRound writes groupPerRound records to every partition.
func produceRound(t *testing.T, addr, topic string, round int) map[int32]int64 {
	t.Helper()
	// Uncompressed: KafkaJS reads only none and gzip.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for p := int32(0); p < groupPartitions; p++ {
		for i := 0; i < groupPerRound; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("g-%d-%d-%d", round, p, i)),
				Value: []byte("group-record")})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce round %d: %v", round, err)
	}
	return listEnds(t, cl, topic)
}

// describe848 checks, with ConsumerGroupDescribe, that the group is a
// KIP-848 group with n members (so the client did not fall back to the
// classic protocol).
func describe848(t *testing.T, addr, group string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return fmt.Errorf("ConsumerGroupDescribe %s: %+v", group, resp.Groups)
	}
	if got := len(resp.Groups[0].Members); got != n {
		return fmt.Errorf("KIP-848 group %s has %d members, want %d", group, got, n)
	}
	return nil
}

func testGroup(t *testing.T, c groupClient) {
	var b *broker
	if c.kip848 {
		b = startBroker(t, "--group-consumer-session-timeout", c.session.String(), "--group-consumer-heartbeat-interval", "1s")
	} else {
		b = startBroker(t)
	}
	topic := topicName("grp-" + c.name)
	group := topicName("g-" + c.name)
	createTopic(t, b.addr, topic, groupPartitions)
	ends := produceRound(t, b.addr, topic, 1)

	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, startMember(t, fmt.Sprintf("%s#%d", c.name, i), c.argv(t, b.addr, topic, group)))
	}
	took := waitFor(t, 60*time.Second, "three members balanced", func() error { return balanced(ms) })
	t.Logf("3 members: disjoint, complete assignment after %v", took.Round(time.Millisecond))
	if c.kip848 {
		if err := describe848(t, b.addr, group, 3); err != nil {
			t.Fatal(err)
		}
	}
	took = waitFor(t, 60*time.Second, "round 1 read", func() error { return covered(ms, ends) })
	took += waitFor(t, 30*time.Second, "round 1 committed", func() error { return committedUpTo(ms, ends) })
	t.Logf("round 1 read and committed in %v", took.Round(time.Millisecond))

	// Crash one member; the survivors must take its partitions over. All it
	// read is committed, so they must not read any of it again
	// (checkDuplicates).
	victim, survivors := ms[0], ms[1:]
	victim.kill()
	killed := time.Now()
	ends = produceRound(t, b.addr, topic, 2)
	took = waitFor(t, c.session+20*time.Second, "survivors balanced", func() error { return balanced(survivors) })
	t.Logf("SIGKILL of one member: survivors own all %d partitions %v after the kill (session timeout %v)",
		groupPartitions, time.Since(killed).Round(time.Millisecond), c.session)
	if limit := c.session + 10*time.Second; time.Since(killed) > limit {
		t.Errorf("rebalance after a crash took %v, more than the session timeout %v plus 10s", time.Since(killed), c.session)
	}
	took = waitFor(t, 60*time.Second, "round 2 read", func() error { return covered(ms, ends) })
	took += waitFor(t, 30*time.Second, "round 2 committed", func() error { return committedUpTo(ms, ends) })
	t.Logf("round 2 read and committed %v after the takeover", took.Round(time.Millisecond))
	dups := checkDuplicates(t, ms)
	t.Logf("rounds 1-2: every offset read, %d re-read after the crash (uncommitted)", dups)

	// Committed offsets resume after a broker restart.
	stopping := time.Now()
	for _, m := range survivors {
		m.stop()
	}
	t.Logf("survivors stopped (SIGTERM) in %v", time.Since(stopping).Round(time.Millisecond))
	committed := ends
	if b.external {
		t.Log("external broker: restart skipped; checking that committed offsets resume")
	} else {
		b.restart()
	}
	ends = produceRound(t, b.addr, topic, 3)
	m := startMember(t, c.name+"#resume", c.argv(t, b.addr, topic, group))
	took = waitFor(t, 60*time.Second, "resumed member reads round 3", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		seen := map[int32]map[int64]bool{}
		for _, r := range m.reads {
			if r.o < committed[r.p] {
				return fmt.Errorf("resumed member read partition %d offset %d, below the committed %d", r.p, r.o, committed[r.p])
			}
			if seen[r.p] == nil {
				seen[r.p] = map[int64]bool{}
			}
			seen[r.p][r.o] = true
		}
		for p, end := range ends {
			for o := committed[p]; o < end; o++ {
				if !seen[p][o] {
					return fmt.Errorf("partition %d offset %d not read yet", p, o)
				}
			}
		}
		return nil
	})
	t.Logf("after a broker restart a new member resumed at the committed offsets and read round 3 in %v", took.Round(time.Millisecond))
	m.mu.Lock()
	for _, r := range m.reads {
		if r.o < committed[r.p] {
			t.Errorf("resumed member read partition %d offset %d, below the committed %d", r.p, r.o, committed[r.p])
		}
	}
	m.mu.Unlock()
	for _, m := range append(ms, m) {
		m.mu.Lock()
		if len(m.bad) > 0 {
			t.Errorf("%s printed unparsable lines: %q", m.name, m.bad)
		}
		m.mu.Unlock()
	}
	stopping = time.Now()
	m.stop()
	t.Logf("resumed member stopped (SIGTERM) in %v", time.Since(stopping).Round(time.Millisecond))
}
