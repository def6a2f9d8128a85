package main

// End-to-end tests of the client verbs against an in-process fake Kafka
// cluster (franz-go's kfake, a test-only dependency), so they exercise the
// real wire protocol without depending on sluice's own broker.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

var verbs = map[string]func(*cliIO, []string) int{
	"topic":   runTopic,
	"produce": runProduce,
	"consume": runConsume,
	"group":   runGroup,
}

// fakeCluster starts a one-broker kfake cluster, closed when the test ends.
func fakeCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs one verb in-process against brokers, with stdin, like
// `sluice <verb> <args...>` would.
func cli(t *testing.T, brokers, stdin string, verb string, args ...string) result {
	t.Helper()
	env, stdout, stderr := testIO(context.Background(), stdin, map[string]string{envBrokers: brokers})
	code := verbs[verb](env, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI is cli that fails the test on a non-zero exit.
func mustCLI(t *testing.T, brokers, stdin string, verb string, args ...string) result {
	t.Helper()
	r := cli(t, brokers, stdin, verb, args...)
	if r.code != exitOK {
		t.Fatalf("sluice %s %s: exit %d\nstdout: %s\nstderr: %s", verb, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func TestTopicLifecycle(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=60000")

	r := cli(t, b, "", "topic", "create", "orders")
	if r.code != exitFail || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("duplicate create: exit %d, stderr %q", r.code, r.stderr)
	}

	mustCLI(t, b, "", "topic", "create", "--partitions=1", "audit")
	if got := mustCLI(t, b, "", "topic", "list").stdout; got != "audit\norders\n" {
		t.Fatalf("topic list = %q", got)
	}
	var listed []topicListJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "topic", "list", "--json").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[1].Name != "orders" || listed[1].Partitions != 3 || listed[1].ReplicationFactor != 1 || listed[1].ID == "" {
		t.Fatalf("topic list --json = %+v", listed)
	}

	mustCLI(t, b, "a\nb\nc\nd\n", "produce", "orders", "--partition", "1")
	var d topicDescribeJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "topic", "describe", "orders", "--json").stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "orders" || len(d.Partitions) != 3 {
		t.Fatalf("describe = %+v", d)
	}
	for _, p := range d.Partitions {
		wantEnd := int64(0)
		if p.Partition == 1 {
			wantEnd = 4
		}
		if p.StartOffset != 0 || p.EndOffset != wantEnd || p.Leader < 0 || len(p.Replicas) != 1 {
			t.Fatalf("partition %+v: want start 0, end %d, a leader and 1 replica", p, wantEnd)
		}
	}
	if v := configValue(d, "retention.ms"); v != "60000" {
		t.Fatalf("retention.ms = %q, want 60000", v)
	}
	text := mustCLI(t, b, "", "topic", "describe", "orders").stdout
	if !strings.Contains(text, "Partitions: 3") || !strings.Contains(text, "retention.ms") {
		t.Fatalf("describe text:\n%s", text)
	}

	mustCLI(t, b, "", "topic", "alter", "orders", "--partitions", "5", "--config", "segment.ms=1000", "--delete-config", "retention.ms")
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "topic", "describe", "orders", "--json").stdout), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 5 || configValue(d, "segment.ms") != "1000" || configValue(d, "retention.ms") == "60000" {
		t.Fatalf("after alter: %d partitions, segment.ms %q, retention.ms %q",
			len(d.Partitions), configValue(d, "segment.ms"), configValue(d, "retention.ms"))
	}
	r = cli(t, b, "", "topic", "alter", "orders", "--partitions", "2")
	if r.code != exitFail || !strings.Contains(r.stderr, "INVALID_PARTITIONS") {
		t.Fatalf("shrinking: exit %d, stderr %q", r.code, r.stderr)
	}

	mustCLI(t, b, "", "topic", "delete", "orders")
	if got := mustCLI(t, b, "", "topic", "list").stdout; got != "audit\n" {
		t.Fatalf("after delete, topic list = %q", got)
	}
	r = cli(t, b, "", "topic", "describe", "orders")
	if r.code != exitFail || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describe deleted: exit %d, stderr %q", r.code, r.stderr)
	}
}

func configValue(d topicDescribeJSON, name string) string {
	for _, c := range d.Configs {
		if c.Name == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

func TestUsageErrors(t *testing.T) {
	b := "127.0.0.1:1" // never contacted: usage is checked first
	for _, args := range [][]string{
		{"topic"},
		{"topic", "frobnicate"},
		{"topic", "create"},
		{"topic", "create", "t", "--partitions", "0"},
		{"topic", "create", "t", "--config", "nokey"},
		{"topic", "alter", "t"},
		{"topic", "delete", "a", "b"},
		{"produce"},
		{"consume", "t", "--format", "%q"},
		{"group", "seek", "g", "--topic", "t"},
		{"group", "seek", "g", "--to", "earliest"},
		{"group", "describe"},
	} {
		r := cli(t, b, "", args[0], args[1:]...)
		if r.code != exitUsage || r.stderr == "" {
			t.Errorf("sluice %s: exit %d (want %d), stderr %q", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	if r := cli(t, b, "", "topic", "create", "-h"); r.code != exitOK || !strings.Contains(r.stderr, "--partitions") {
		t.Errorf("-h: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUnreachableBrokerFailsFast(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"topic", "list"},
		{"consume", "t"},
		{"produce", "t"},
		{"group", "list"},
	} {
		start := time.Now()
		r := cli(t, addr, "x\n", args[0], append(args[1:], "--timeout", "1s")...)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%v took %v with --timeout 1s", args, took)
		}
		if r.code != exitFail || !strings.Contains(r.stderr, "cannot reach any broker at "+addr) {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// A listener that accepts connections and never answers (a hung broker, or
// something that is not Kafka): the CLI must still give up within --timeout.
func TestSilentBrokerFailsWithinTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		l.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	r := cli(t, l.Addr().String(), "", "topic", "list", "--timeout", "1s")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v with --timeout 1s", took)
	}
	if r.code != exitFail || !strings.Contains(r.stderr, "cannot reach any broker") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestProduceConsume(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "events", "--partitions", "2")

	in := "k1:v1\nk2:v2\nno-key\n:empty-key\nk3:v:3"
	r := mustCLI(t, b, in, "produce", "events", "--key-delimiter", ":", "--header", "src=test", "--header", "n=1", "--partition", "1")
	if !strings.Contains(r.stderr, "produced 5 record(s)") {
		t.Fatalf("produce summary %q", r.stderr)
	}

	r = mustCLI(t, b, "", "consume", "events", "--from-beginning", "--count", "5", "--format", `%p %o [%k|%K] %v %h\n`)
	want := "1 0 [k1|2] v1 src=test,n=1\n" +
		"1 1 [k2|2] v2 src=test,n=1\n" +
		"1 2 [|-1] no-key src=test,n=1\n" +
		"1 3 [|0] empty-key src=test,n=1\n" +
		"1 4 [k3|2] v:3 src=test,n=1\n"
	if r.stdout != want {
		t.Fatalf("consume output:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = mustCLI(t, b, "", "consume", "events", "--partition", "1", "--offset", "3", "--count", "2", "--json")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("--json output %q", r.stdout)
	}
	var rec recordJSON
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "events" || rec.Partition != 1 || rec.Offset != 4 || rec.Key == nil || *rec.Key != "k3" ||
		rec.Value == nil || *rec.Value != "v:3" || len(rec.Headers) != 2 || rec.Headers[0].Key != "src" || rec.Timestamp <= 0 {
		t.Fatalf("json record %s", lines[1])
	}

	// -N: the last N records of the partition.
	r = mustCLI(t, b, "", "consume", "events", "--partition", "1", "--offset", "-2", "--count", "2", "--format", `%o\n`)
	if r.stdout != "3\n4\n" {
		t.Fatalf("--offset -2 gave %q", r.stdout)
	}

	// Unkeyed records without --partition spread across both partitions
	// (the sticky partitioner may keep them on one; every record must
	// arrive either way).
	mustCLI(t, b, "a\nb\nc\n", "produce", "events", "--acks", "1")
	r = mustCLI(t, b, "", "consume", "events", "--from-beginning", "--count", "8", "--format", `%v\n`)
	got := strings.Fields(r.stdout)
	slices.Sort(got)
	if strings.Join(got, " ") != "a b c empty-key no-key v1 v2 v:3" {
		t.Fatalf("all records: %q", got)
	}
}

func TestConsumeExitAtEnd(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "dump", "--partitions", "3")
	r := mustCLI(t, b, "", "consume", "dump", "--from-beginning", "--exit-at-end")
	if r.stdout != "" {
		t.Fatalf("empty topic printed %q", r.stdout)
	}
	mustCLI(t, b, "a\nb\n", "produce", "dump", "--partition", "0")
	mustCLI(t, b, "c\n", "produce", "dump", "--partition", "2")
	r = mustCLI(t, b, "", "consume", "dump", "--from-beginning", "-e", "--format", `%p:%v\n`)
	got := strings.Fields(r.stdout)
	slices.Sort(got)
	if strings.Join(got, " ") != "0:a 0:b 2:c" {
		t.Fatalf("dump printed %q", r.stdout)
	}
	r = mustCLI(t, b, "", "consume", "dump", "--partition", "0", "--offset", "1", "-e")
	if r.stdout != "b\n" {
		t.Fatalf("from offset 1 printed %q", r.stdout)
	}
	// Starting at the end: nothing to read, exits at once.
	if r = mustCLI(t, b, "", "consume", "dump", "-e"); r.stdout != "" {
		t.Fatalf("from the end printed %q", r.stdout)
	}
}

func TestProduceStopsOnInterrupt(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "typed", "--partitions", "1")

	// A terminal: two lines typed, then nothing more.
	idle := blockingReader{done: make(chan struct{})}
	defer close(idle.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, _, stderr := testIO(ctx, "", map[string]string{envBrokers: b})
	env.stdin = io.MultiReader(strings.NewReader("one\ntwo\n"), idle)
	done := make(chan int, 1)
	go func() { done <- runProduce(env, []string{"typed"}) }()
	waitFor(t, "both lines to be written", func() bool {
		r := cli(t, b, "", "topic", "describe", "typed", "--json")
		var d topicDescribeJSON
		return r.code == exitOK && json.Unmarshal([]byte(r.stdout), &d) == nil && d.Partitions[0].EndOffset == 2
	})
	cancel() // what SIGINT does
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(stderr.String(), "produced 2 record(s)") || !strings.Contains(stderr.String(), "interrupted") {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("produce did not stop after interrupt")
	}
}

func TestProduceFailuresExitNonZero(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "small", "--partitions", "1")
	r := cli(t, b, "a\nb\n", "produce", "small", "--partition", "7", "--timeout", "2s")
	if r.code != exitFail || !strings.Contains(r.stderr, "not acknowledged") {
		t.Fatalf("produce to a missing partition: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConsumeUnknownTopic(t *testing.T) {
	b := fakeCluster(t)
	r := cli(t, b, "", "consume", "nope", "--timeout", "2s")
	if r.code != exitFail || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	mustCLI(t, b, "", "topic", "create", "one", "--partitions", "1")
	r = cli(t, b, "", "consume", "one", "--partition", "3")
	if r.code != exitFail || !strings.Contains(r.stderr, "no partition 3") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConsumeStopsOnInterrupt(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "live", "--partitions", "1")
	mustCLI(t, b, "first\nsecond\n", "produce", "live")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, stdout, stderr := testIO(ctx, "", map[string]string{envBrokers: b})
	done := make(chan int, 1)
	go func() { done <- runConsume(env, []string{"live", "--group", "g1", "--from-beginning"}) }()
	waitFor(t, "both records printed", func() bool { return stdout.String() == "first\nsecond\n" })
	cancel() // what SIGINT does
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after interrupt, stderr %q", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("consume did not stop after interrupt")
	}
	// The printed records were committed on the way out.
	var d groupDescribeJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "group", "describe", "g1", "--json").stdout), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Offsets) != 1 || d.Offsets[0].CommittedOffset != 2 || d.Offsets[0].Lag != 0 {
		t.Fatalf("after interrupt: %+v", d.Offsets)
	}
}

func TestGroupLifecycle(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "jobs", "--partitions", "1")
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, "job-%d\n", i)
	}
	mustCLI(t, b, lines.String(), "produce", "jobs")

	// A group member reads 4 and leaves; the 4 are committed.
	r := mustCLI(t, b, "", "consume", "jobs", "--group", "workers", "--from-beginning", "--count", "4")
	if r.stdout != "job-0\njob-1\njob-2\njob-3\n" {
		t.Fatalf("group consume printed %q", r.stdout)
	}
	// The next member resumes from the commit.
	r = mustCLI(t, b, "", "consume", "jobs", "--group", "workers", "--count", "1")
	if r.stdout != "job-4\n" {
		t.Fatalf("resumed consume printed %q", r.stdout)
	}

	var listed []groupListJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "group", "list", "--json").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Group != "workers" || listed[0].State != "Empty" {
		t.Fatalf("group list = %+v", listed)
	}
	if out := mustCLI(t, b, "", "group", "list").stdout; !strings.Contains(out, "workers") {
		t.Fatalf("group list text %q", out)
	}

	d := describeGroup(t, b, "workers")
	if d.State != "Empty" || len(d.Members) != 0 || d.TotalLag != 5 || len(d.Offsets) != 1 {
		t.Fatalf("describe = %+v", d)
	}
	if o := d.Offsets[0]; o.Topic != "jobs" || o.CommittedOffset != 5 || o.EndOffset != 10 || o.Lag != 5 {
		t.Fatalf("offsets = %+v", o)
	}
	if text := mustCLI(t, b, "", "group", "describe", "workers").stdout; !strings.Contains(text, "Total lag: 5") || !strings.Contains(text, "Group protocol: classic") {
		t.Fatalf("describe text:\n%s", text)
	}

	for _, tc := range []struct {
		to   string
		want int64
	}{
		{"earliest", 0},
		{"latest", 10},
		{"7", 7},
		{"99", 10}, // clamped to the end
		{"@0", 0},  // the first record at or after the epoch
		{"@" + fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()), 10}, // none after: the end
	} {
		mustCLI(t, b, "", "group", "seek", "workers", "--topic", "jobs", "--to", tc.to)
		if got := describeGroup(t, b, "workers").Offsets[0].CommittedOffset; got != tc.want {
			t.Fatalf("seek --to %s: committed %d, want %d", tc.to, got, tc.want)
		}
	}
	r = mustCLI(t, b, "", "group", "seek", "workers", "--topic", "jobs", "--to", "3", "--dry-run", "--json")
	var seeked []seekResultJSON
	if err := json.Unmarshal([]byte(r.stdout), &seeked); err != nil {
		t.Fatal(err)
	}
	if len(seeked) != 1 || seeked[0].Offset != 3 || describeGroup(t, b, "workers").Offsets[0].CommittedOffset != 10 {
		t.Fatalf("dry run: %+v, and it must not commit", seeked)
	}

	mustCLI(t, b, "", "group", "delete", "workers")
	r = cli(t, b, "", "group", "describe", "workers")
	if r.code != exitFail || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("describe deleted group: exit %d, stderr %q", r.code, r.stderr)
	}
}

func describeGroup(t *testing.T, brokers, group string) groupDescribeJSON {
	t.Helper()
	var d groupDescribeJSON
	if err := json.Unmarshal([]byte(mustCLI(t, brokers, "", "group", "describe", group, "--json").stdout), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGroupSeekRefusedWhileMembersActive(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "busy", "--partitions", "2")
	mustCLI(t, b, "x\n", "produce", "busy")

	member, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b, ",")...), kgo.ConsumerGroup("active"), kgo.ConsumeTopics("busy"),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	waitFor(t, "the member to join", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		member.PollFetches(ctx)
		d := describeGroup(t, b, "active")
		return d.State == "Stable" && len(d.Members) == 1 && len(d.Members[0].Assignment) == 1
	})
	d := describeGroup(t, b, "active")
	if got := d.Members[0].Assignment[0]; got.Topic != "busy" || !slices.Equal(got.Partitions, []int32{0, 1}) {
		t.Fatalf("assignment %+v", got)
	}

	r := cli(t, b, "", "group", "seek", "active", "--topic", "busy", "--to", "earliest")
	if r.code != exitFail || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "group is empty") {
		t.Fatalf("seek on an active group: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, b, "", "group", "delete", "active")
	if r.code != exitFail || !strings.Contains(r.stderr, "NON_EMPTY_GROUP") {
		t.Fatalf("delete of an active group: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestGroupDescribeKIP848(t *testing.T) {
	b := fakeCluster(t)
	mustCLI(t, b, "", "topic", "create", "nextgen", "--partitions", "3")
	mustCLI(t, b, "x\ny\n", "produce", "nextgen", "--partition", "2")

	// The CLI itself consumes as a KIP-848 member and commits what it printed.
	r := mustCLI(t, b, "", "consume", "nextgen", "--group", "cli848", "--group-protocol", "consumer", "--from-beginning", "--count", "2")
	if r.stdout != "x\ny\n" {
		t.Fatalf("KIP-848 consume printed %q", r.stdout)
	}
	if d := describeGroup(t, b, "cli848"); d.TotalLag != 0 || len(d.Offsets) != 1 || d.Offsets[0].CommittedOffset != 2 {
		t.Fatalf("after KIP-848 consume: %+v", d)
	}

	member, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b, ",")...), kgo.ConsumerGroup("g848"), kgo.ConsumeTopics("nextgen"),
		kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer(), kgo.ClientID("member-848"),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	waitFor(t, "the member to be assigned every partition", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		member.PollFetches(ctx)
		r := cli(t, b, "", "group", "describe", "g848", "--json")
		var d groupDescribeJSON
		if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &d) != nil {
			return false
		}
		return len(d.Members) == 1 && len(d.Members[0].Assignment) == 1 && len(d.Members[0].Assignment[0].Partitions) == 3
	})
	d := describeGroup(t, b, "g848")
	if d.GroupProtocol != "consumer" || d.Members[0].ClientID != "member-848" || d.Protocol == "" {
		t.Fatalf("describe = %+v", d)
	}
	if err := member.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	d = describeGroup(t, b, "g848")
	var p2 *groupOffsetJSON
	for i := range d.Offsets {
		if d.Offsets[i].Partition == 2 {
			p2 = &d.Offsets[i]
		}
	}
	if p2 == nil || p2.EndOffset != 2 || p2.MemberID != d.Members[0].MemberID {
		t.Fatalf("offsets = %+v", d.Offsets)
	}
}
