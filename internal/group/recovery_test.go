package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func mustHandle[T kmsg.Response](t *testing.T, c *Coordinator, req kmsg.Request) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Handle(ctx, req)
	if err != nil {
		t.Fatalf("Handle(%T): %v", req, err)
	}
	return resp.(T)
}

func joinReq(group, member, instance string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 5
	r.Group, r.MemberID = group, member
	if instance != "" {
		r.InstanceID = &instance
	}
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 30000, 60000
	r.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("meta")
	r.Protocols = append(r.Protocols, p)
	return r
}

func commitReq(group, member string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 8
	r.Group, r.MemberID, r.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchOffsets(t *testing.T, c *Coordinator, group, topic string, parts ...int32) map[int32]int64 {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: parts}}
	r.Groups = append(r.Groups, rg)
	resp := mustHandle[*kmsg.OffsetFetchResponse](t, c, r)
	out := map[int32]int64{}
	for _, g := range resp.Groups {
		if g.ErrorCode != 0 {
			t.Fatalf("fetch %s: %v", group, kerr.ErrorForCode(g.ErrorCode))
		}
		for _, tp := range g.Topics {
			for _, p := range tp.Partitions {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}

// TestRecoveryAfterPowerLoss commits offsets and forms a static group on
// the real offsets log, drops every unsynced byte (power loss), and
// recovers: every acknowledged commit and the group's members and
// assignments must be back, and the static member rejoins without a
// rebalance.
func TestRecoveryAfterPowerLoss(t *testing.T) {
	mem := vfs.NewMem()
	topics := newFakeTopics()
	topics.set("orders", 4)
	clock := newManualClock()
	open := func(fs vfs.FS) (*log.Store, *Coordinator) {
		s, err := log.OpenStore(fs, "/data", log.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Store: s, Topics: topics, Clock: clock, InitialRebalanceDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	store, c := open(mem)

	join := mustHandle[*kmsg.JoinGroupResponse](t, c, joinReq("g", "", "inst-1"))
	if join.ErrorCode != 0 || join.Generation != 1 {
		t.Fatalf("join: %v gen %d", kerr.ErrorForCode(join.ErrorCode), join.Generation)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 3
	sync.Group, sync.MemberID, sync.Generation = "g", join.MemberID, 1
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: []byte("assignment")}}
	if r := mustHandle[*kmsg.SyncGroupResponse](t, c, sync); r.ErrorCode != 0 || string(r.MemberAssignment) != "assignment" {
		t.Fatalf("sync: %v %q", kerr.ErrorForCode(r.ErrorCode), r.MemberAssignment)
	}
	for i := int64(1); i <= 20; i++ {
		r := mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("g", join.MemberID, 1, "orders", map[int32]int64{0: i * 10, 3: i}))
		for _, p := range r.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("commit %d: %v", i, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	// A simple commit for another group, then delete a third one.
	if r := mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("simple", "", -1, "orders", map[int32]int64{1: 77})); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatal("simple commit failed")
	}
	mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("gone", "", -1, "orders", map[int32]int64{1: 5}))
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"gone"}
	if r := mustHandle[*kmsg.DeleteGroupsResponse](t, c, del); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(r.Groups[0].ErrorCode))
	}

	// Power loss: everything acknowledged was fsynced, so nothing is lost.
	mem.CrashDropUnsynced()
	c.Close()
	store.Abandon()
	store, c = open(mem.Restart())
	defer store.Close()
	defer c.Close()

	if got := fetchOffsets(t, c, "g", "orders", 0, 1, 3); got[0] != 200 || got[3] != 20 || got[1] != -1 {
		t.Fatalf("recovered offsets %v", got)
	}
	if got := fetchOffsets(t, c, "simple", "orders", 1); got[1] != 77 {
		t.Fatalf("recovered simple offsets %v", got)
	}
	if got := fetchOffsets(t, c, "gone", "orders", 1); got[1] != -1 {
		t.Fatalf("deleted group's offsets came back: %v", got)
	}
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Groups = []string{"g", "gone"}
	dr := mustHandle[*kmsg.DescribeGroupsResponse](t, c, desc)
	if g := dr.Groups[0]; g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != join.MemberID || string(g.Members[0].MemberAssignment) != "assignment" {
		t.Fatalf("recovered group: %+v", g)
	}
	if g := dr.Groups[1]; g.State != "Dead" {
		t.Fatalf("deleted group recovered as %q", g.State)
	}

	// The member heartbeats on as if nothing happened.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", join.MemberID, 1
	if r := mustHandle[*kmsg.HeartbeatResponse](t, c, hb); r.ErrorCode != 0 {
		t.Fatalf("heartbeat after recovery: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A restarted static member gets its place back without a rebalance.
	// (It is the leader, so it needs v9 to be told to keep the assignment.)
	rj := joinReq("g", "", "inst-1")
	rj.Version = 9
	rejoin := mustHandle[*kmsg.JoinGroupResponse](t, c, rj)
	if rejoin.ErrorCode != 0 || rejoin.Generation != 1 || rejoin.MemberID == join.MemberID || !rejoin.SkipAssignment {
		t.Fatalf("static rejoin: %v gen %d", kerr.ErrorForCode(rejoin.ErrorCode), rejoin.Generation)
	}
	sync.MemberID, sync.GroupAssignment = rejoin.MemberID, nil
	if r := mustHandle[*kmsg.SyncGroupResponse](t, c, sync); r.ErrorCode != 0 || string(r.MemberAssignment) != "assignment" {
		t.Fatalf("sync after static rejoin: %v %q", kerr.ErrorForCode(r.ErrorCode), r.MemberAssignment)
	}
}

// TestCommitWaitsForDurability: an OffsetCommit is answered only once its
// batch is durable, and only then is it visible to OffsetFetch.
func TestCommitWaitsForDurability(t *testing.T) {
	j := &memJournal{hold: true}
	c, err := New(Config{journal: j, Clock: newManualClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan *kmsg.OffsetCommitResponse, 1)
	go func() {
		resp, _ := c.Handle(context.Background(), commitReq("g", "", -1, "t", map[int32]int64{0: 42}))
		done <- resp.(*kmsg.OffsetCommitResponse)
	}()
	waitFor(t, "the commit to reach the journal", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.held) == 1
	})
	select {
	case <-done:
		t.Fatal("commit answered before it was durable")
	default:
	}
	if got := fetchOffsets(t, c, "g", "t", 0); got[0] != -1 {
		t.Fatalf("offset visible before durable: %v", got)
	}
	j.release()
	if r := <-done; r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	if got := fetchOffsets(t, c, "g", "t", 0); got[0] != 42 {
		t.Fatalf("offset after durable: %v", got)
	}
}

// TestCommitFsyncFailure: a failed fsync answers the commit with a
// retriable error and the offset is not applied.
func TestCommitFsyncFailure(t *testing.T) {
	mem := vfs.NewMem()
	s, err := log.OpenStore(mem, "/data", log.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abandon()
	c, err := New(Config{Store: s, Clock: newManualClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mem.SetSyncFault(func(string) error { return vfs.ErrInjected })
	r := mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("g", "", -1, "t", map[int32]int64{0: 42}))
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit with failing fsync: %v", kerr.ErrorForCode(code))
	}
	if got := fetchOffsets(t, c, "g", "t", 0); got[0] != -1 {
		t.Fatalf("offset applied despite failed fsync: %v", got)
	}
}

// TestClosedCoordinator answers with COORDINATOR_NOT_AVAILABLE.
func TestClosedCoordinator(t *testing.T) {
	c, err := New(Config{journal: &memJournal{}, Clock: newManualClock()})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g"
	if r := mustHandle[*kmsg.HeartbeatResponse](t, c, hb); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("heartbeat after close: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	bad := kmsg.NewPtrJoinGroupRequest()
	bad.Version = 10
	if _, err := c.Handle(context.Background(), bad); err == nil {
		t.Fatal("unserved version accepted")
	}
}

// TestCompactionAtStartup: a log with much more history than live state is
// rewritten at startup; the state is the same before and after, and after
// a second restart.
func TestCompactionAtStartup(t *testing.T) {
	dir := t.TempDir()
	open := func(compactAbove int) (*log.Store, *Coordinator) {
		s, err := log.OpenStore(vfs.OS{}, dir, log.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Store: s, Clock: newManualClock(), compactAbove: compactAbove})
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	s, c := open(1 << 30) // no compaction while running
	for i := int64(1); i <= 100; i++ {
		mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("g", "", -1, "t", map[int32]int64{0: i, 1: 1000 + i}))
	}
	mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("dead", "", -1, "t", map[int32]int64{0: 1}))
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"dead"}
	mustHandle[*kmsg.DeleteGroupsResponse](t, c, del)
	c.Close()
	l, _ := s.Lookup(OffsetsLogName)
	before := l.NextOffset()
	s.Close()

	for range 2 {
		s, c = open(10)
		l, _ = s.Lookup(OffsetsLogName)
		if start := l.LogStartOffset(); start < before {
			t.Fatalf("log start %d: history before %d not dropped", start, before)
		}
		if got := fetchOffsets(t, c, "g", "t", 0, 1); got[0] != 100 || got[1] != 1100 {
			t.Fatalf("offsets after compaction: %v", got)
		}
		if got := fetchOffsets(t, c, "dead", "t", 0); got[0] != -1 {
			t.Fatalf("deleted group back after compaction: %v", got)
		}
		c.Close()
		s.Close()
	}
}

// TestCompactionWhileRunning: enough commits trigger a background
// compaction; commits racing with it are kept, and a restart recovers the
// latest offsets from the compacted log.
func TestCompactionWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s, err := log.OpenStore(vfs.OS{}, dir, log.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: s, Clock: newManualClock(), compactAbove: 50})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.Lookup(OffsetsLogName)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 300; i++ {
			mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("other", "", -1, "t", map[int32]int64{7: i}))
		}
	}()
	for i := int64(1); i <= 300; i++ {
		mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq("g", "", -1, "t", map[int32]int64{0: i, 1: 1000 + i}))
	}
	<-done
	waitFor(t, "a compaction", func() bool { return l.LogStartOffset() > 0 && !c.compacting.Load() })
	if got := fetchOffsets(t, c, "g", "t", 0, 1); got[0] != 300 || got[1] != 1300 {
		t.Fatalf("offsets after compaction: %v", got)
	}
	c.Close()
	s.Close()

	s, err = log.OpenStore(vfs.OS{}, dir, log.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err = New(Config{Store: s, Clock: newManualClock(), compactAbove: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := fetchOffsets(t, c, "g", "t", 0, 1); got[0] != 300 || got[1] != 1300 {
		t.Fatalf("offsets recovered after compaction: %v", got)
	}
	if got := fetchOffsets(t, c, "other", "t", 7); got[7] != 300 {
		t.Fatalf("racing group's offsets recovered after compaction: %v", got)
	}
}

// TestConsumerGroupRecovery: KIP-848 members, epochs and assignments
// survive power loss; after recovery members continue at their epochs and
// keep their partitions (the restore bumps the group epoch once, with a
// sticky target, so nothing is revoked).
func TestConsumerGroupRecovery(t *testing.T) {
	mem := vfs.NewMem()
	topics := newFakeTopics()
	topics.set("t", 6)
	id := topics.id("t")
	open := func(fs vfs.FS, compactAbove int) (*log.Store, *Coordinator) {
		s, err := log.OpenStore(fs, "/data", log.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Store: s, Topics: topics, Clock: newManualClock(), compactAbove: compactAbove})
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	hb := func(c *Coordinator, member string, epoch int32, owned ...int32) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.MemberEpoch = "g", member, epoch
		if epoch == 0 {
			r.SubscribedTopicNames = []string{"t"}
			r.RebalanceTimeoutMillis = 30000
		}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: id, Partitions: owned}}
		resp := mustHandle[*kmsg.ConsumerGroupHeartbeatResponse](t, c, r)
		if resp.ErrorCode != 0 {
			t.Fatalf("heartbeat %s@%d: %v", member, epoch, kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	parts := func(r *kmsg.ConsumerGroupHeartbeatResponse) string {
		if r.Assignment == nil {
			return "unchanged"
		}
		var ps []int32
		for _, at := range r.Assignment.Topics {
			ps = append(ps, at.Partitions...)
		}
		return joinInts(ps)
	}

	s, c := open(mem, 1<<30)
	if r := hb(c, "a", 0); r.MemberEpoch != 1 || parts(r) != "0,1,2,3,4,5" {
		t.Fatalf("a joins: epoch %d %s", r.MemberEpoch, parts(r))
	}
	hb(c, "b", 0)
	if r := hb(c, "a", 1, 0, 1, 2, 3, 4, 5); parts(r) != "0,1,2" {
		t.Fatalf("a told to revoke: %s", parts(r))
	}
	hb(c, "a", 1, 0, 1, 2)
	if r := hb(c, "b", 2); parts(r) != "3,4,5" {
		t.Fatalf("b's partitions: %s", parts(r))
	}

	mem.CrashDropUnsynced()
	c.Close()
	s.Abandon()
	// Recover once with a compaction (the members are rewritten into the
	// snapshot), then again from the compacted log.
	fs := mem.Restart()
	s, c = open(fs, 1)
	l, _ := s.Lookup(OffsetsLogName)
	if l.LogStartOffset() == 0 {
		t.Fatal("no compaction at startup")
	}
	c.Close()
	s.Close()
	s, c = open(fs, 1<<30)
	defer s.Close()
	defer c.Close()

	ra := hb(c, "a", 2, 0, 1, 2)
	rb := hb(c, "b", 2, 3, 4, 5)
	// Each recovery bumped the group epoch once: 2 -> 3 -> 4.
	if ra.MemberEpoch != 4 || rb.MemberEpoch != 4 {
		t.Fatalf("epochs after recovery: a %d b %d", ra.MemberEpoch, rb.MemberEpoch)
	}
	if parts(ra) != "unchanged" && parts(ra) != "0,1,2" || parts(rb) != "unchanged" && parts(rb) != "3,4,5" {
		t.Fatalf("assignments after recovery: a %s b %s", parts(ra), parts(rb))
	}
	d := kmsg.NewPtrConsumerGroupDescribeRequest()
	d.Groups = []string{"g"}
	g := mustHandle[*kmsg.ConsumerGroupDescribeResponse](t, c, d).Groups[0]
	if g.ErrorCode != 0 || len(g.Members) != 2 || g.State != "Stable" {
		t.Fatalf("recovered group: %+v", g)
	}
}
