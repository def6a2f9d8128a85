package group

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/kafka"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// testServer is an in-process sluice: broker, group coordinator and
// protocol server on a loopback port.
type testServer struct {
	addr   string
	b      *broker.Broker
	c      *Coordinator
	srv    *kafka.Server
	served chan error
}

func startServer(t *testing.T, dir string) *testServer { return startServerAt(t, dir, "127.0.0.1:0") }

func startServerAt(t *testing.T, dir, addr string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	b, err := broker.Open(broker.Config{FS: vfs.OS{}, DataDir: dir, NodeID: 1, Host: "127.0.0.1", Port: port, AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: b.Store(), Topics: b, MinSessionTimeout: 100 * time.Millisecond,
		InitialRebalanceDelay: 200 * time.Millisecond, ConsumerHeartbeatInterval: 200 * time.Millisecond,
		ConsumerSessionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var apis []kafka.APIRange
	for _, a := range APIs() {
		apis = append(apis, kafka.APIRange{Key: a.Key, MinVersion: a.MinVersion, MaxVersion: a.MaxVersion})
	}
	srv, err := kafka.New(kafka.Config{Broker: b, Groups: c, GroupAPIs: apis, NodeID: 1, Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), b: b, c: c, srv: srv, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ln) }()
	return ts
}

func (ts *testServer) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	<-ts.served
	ts.c.Close()
	if err := ts.b.Close(); err != nil {
		t.Errorf("broker close: %v", err)
	}
}

// member is one consumer of a group, tracking what it owns.
type member struct {
	cl       *kgo.Client
	mu       sync.Mutex
	owned    map[int32]bool
	consumed map[int32][]int64
	done     chan struct{}
}

func (m *member) snapshot() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.owned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func startMember(t *testing.T, addr, group, topic string, opts ...kgo.Opt) *member {
	m := &member{owned: map[int32]bool{}, consumed: map[int32][]int64{}, done: make(chan struct{})}
	base := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			cl.CommitMarkedOffsets(ctx)
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.AutoCommitMarks(), kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				m.mu.Lock()
				m.consumed[r.Partition] = append(m.consumed[r.Partition], r.Offset)
				m.mu.Unlock()
				cl.MarkCommitRecords(r)
			})
			cl.AllowRebalance()
		}
	}()
	return m
}

// settled reports whether the members own disjoint sets covering all n
// partitions, each member owning at least one.
func settled(ms []*member, n int32) (bool, string) {
	seen := map[int32]int{}
	desc := ""
	for i, m := range ms {
		s := m.snapshot()
		desc += fmt.Sprintf(" m%d=%v", i, s)
		if len(s) == 0 {
			return false, desc
		}
		for _, p := range s {
			seen[p]++
		}
	}
	if int32(len(seen)) != n {
		return false, desc
	}
	for _, c := range seen {
		if c != 1 {
			return false, desc
		}
	}
	return true, desc
}

func waitSettled(t *testing.T, what string, ms []*member, n int32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, desc := settled(ms, n)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: assignments never settled:%s", what, desc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClientGroups runs three kgo consumers in one group on a 6-partition
// topic, for the eager, cooperative-sticky and KIP-848 protocols: the
// assignment must be disjoint and complete, survive a member leaving, and
// every record must be consumed and its offset committed.
func TestClientGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ts := startServer(t, t.TempDir())
	defer ts.stop(t)
	admin, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)

	modes := []struct {
		name string
		opts []kgo.Opt
	}{
		{"eager", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"kip848", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic, group := "t-"+mode.name, "g-"+mode.name
			if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			const perPartition = 20
			for p := int32(0); p < 6; p++ {
				for i := 0; i < perPartition; i++ {
					r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}
					if err := admin.ProduceSync(ctx, r).FirstErr(); err != nil {
						t.Fatalf("produce: %v", err)
					}
				}
			}
			var ms []*member
			for i := 0; i < 3; i++ {
				ms = append(ms, startMember(t, ts.addr, group, topic, mode.opts...))
			}
			closed := map[int]bool{}
			defer func() {
				for i, m := range ms {
					if !closed[i] {
						m.cl.Close()
						<-m.done
					}
				}
			}()
			waitSettled(t, "three members", ms, 6)

			// Everything is consumed and committed.
			waitFor(t, "all offsets committed", func() bool {
				offs, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return false
				}
				for p := int32(0); p < 6; p++ {
					o, ok := offs.Lookup(topic, p)
					if !ok || o.At != perPartition {
						return false
					}
				}
				return true
			})

			// No gaps: every offset was consumed by some member.
			for p := int32(0); p < 6; p++ {
				seen := map[int64]bool{}
				for _, m := range ms {
					m.mu.Lock()
					for _, o := range m.consumed[p] {
						seen[o] = true
					}
					m.mu.Unlock()
				}
				for o := int64(0); o < perPartition; o++ {
					if !seen[o] {
						t.Fatalf("partition %d offset %d never consumed", p, o)
					}
				}
			}

			// One member leaves; the other two take over everything.
			ms[0].cl.Close()
			<-ms[0].done
			closed[0] = true
			waitSettled(t, "after a member left", ms[1:], 6)

			described, err := adm.DescribeGroups(ctx, group)
			if mode.name == "kip848" {
				cg, err := adm.DescribeConsumerGroups(ctx, group)
				if err != nil {
					t.Fatalf("describe consumer group: %v", err)
				}
				if g := cg[group]; g.Err != nil || len(g.Members) != 2 {
					t.Fatalf("consumer group described as %+v", g)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if g := described[group]; g.State != "Stable" || len(g.Members) != 2 {
					t.Fatalf("group described as %s with %d members", g.State, len(g.Members))
				}
			}
		})
	}
}

// TestClientResumeAfterRestart: a group's committed offsets survive a
// broker restart; a consumer in the group resumes exactly where the group
// left off.
func TestClientResumeAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	const topic, group = "resume", "resume-group"
	produce := func(ts *testServer, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if n == 10 {
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}
		for p := int32(0); p < 3; p++ {
			for range n {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	consumeAll := func(ts *testServer, want int) map[int32][]int64 {
		t.Helper()
		m := startMember(t, ts.addr, group, topic)
		defer func() { m.cl.Close(); <-m.done }()
		waitFor(t, fmt.Sprintf("%d records consumed", want), func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			n := 0
			for _, offs := range m.consumed {
				n += len(offs)
			}
			return n >= want
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.cl.CommitMarkedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		out := map[int32][]int64{}
		for p, offs := range m.consumed {
			out[p] = append([]int64(nil), offs...)
		}
		return out
	}

	ts := startServer(t, dir)
	produce(ts, 10)
	first := consumeAll(ts, 30)
	ts.stop(t)
	for p := int32(0); p < 3; p++ {
		if len(first[p]) != 10 {
			t.Fatalf("partition %d: consumed %v before the restart", p, first[p])
		}
	}

	ts = startServer(t, dir)
	defer ts.stop(t)
	produce(ts, 5)
	second := consumeAll(ts, 15)
	for p := int32(0); p < 3; p++ {
		if len(second[p]) != 5 || second[p][0] != 10 {
			t.Fatalf("partition %d: after the restart consumed %v, want offsets 10..14", p, second[p])
		}
	}
}

// TestClientsSurviveRestart: running consumers (classic and KIP-848) keep
// consuming across a broker restart: they rejoin the recovered group,
// settle on a complete, disjoint assignment again, and consume what is
// produced afterwards.
func TestClientsSurviveRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, mode := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"kip848", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			topic, group := "live-"+mode.name, "live-group-"+mode.name
			ts := startServer(t, dir)
			addr := ts.addr
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			admin, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			if _, err := kadm.NewClient(admin).CreateTopic(ctx, 4, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			ms := []*member{startMember(t, addr, group, topic, mode.opts...), startMember(t, addr, group, topic, mode.opts...)}
			defer func() {
				for _, m := range ms {
					m.cl.Close()
					<-m.done
				}
			}()
			waitSettled(t, "before the restart", ms, 4)

			ts.stop(t)
			ts = startServerAt(t, dir, addr)
			defer ts.stop(t)

			for p := int32(0); p < 4; p++ {
				if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("after")}).FirstErr(); err != nil {
					t.Fatalf("produce after restart: %v", err)
				}
			}
			waitFor(t, "records produced after the restart consumed", func() bool {
				n := 0
				for _, m := range ms {
					m.mu.Lock()
					for _, offs := range m.consumed {
						n += len(offs)
					}
					m.mu.Unlock()
				}
				return n >= 4
			})
			waitSettled(t, "after the restart", ms, 4)
		})
	}
}
