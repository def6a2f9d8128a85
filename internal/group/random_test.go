package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomConsumerGroup drives a KIP-848 group with random heartbeats
// (joins, leaves, static leaves, stale epochs, subscription changes,
// clients that revoke late or report stale owned sets) and random clock
// jumps, and checks the invariants after every step: no partition is ever
// assigned to two members, ownership bookkeeping matches the members, and
// no member is ahead of the group epoch.
func TestRandomConsumerGroup(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		clock := newManualClock()
		topics := newFakeTopics()
		topics.set("a", 6)
		topics.set("b", 3)
		c, err := New(Config{journal: &memJournal{}, Clock: clock, Topics: topics})
		if err != nil {
			t.Fatal(err)
		}
		type client struct {
			id    string
			epoch int32
			owned map[tp]bool // what the client believes it owns
		}
		clients := make([]*client, 5)
		for i := range clients {
			clients[i] = &client{id: fmt.Sprintf("m%d", i), owned: map[tp]bool{}}
		}
		ctx := context.Background()
		for step := range 400 {
			cl := clients[rng.IntN(len(clients))]
			r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			r.Group, r.MemberID, r.MemberEpoch = "g", cl.id, cl.epoch
			if cl.id == "m4" {
				inst := "static"
				r.InstanceID = &inst
			}
			switch x := rng.IntN(20); {
			case x == 0:
				r.MemberEpoch = -1
			case x == 1 && r.InstanceID != nil:
				r.MemberEpoch = -2
			case x == 2:
				r.MemberEpoch = cl.epoch + 1 + int32(rng.IntN(3)) // a bogus epoch
			case x == 3:
				r.SubscribedTopicNames = [][]string{{"a"}, {"b"}, {"a", "b"}}[rng.IntN(3)]
			case x == 4:
				clock.Advance(time.Duration(rng.IntN(60)) * time.Second)
			case x == 5:
				topics.set("b", int32(3+rng.IntN(3)))
			}
			if r.MemberEpoch == 0 {
				r.SubscribedTopicNames = []string{"a", "b"}
				r.RebalanceTimeoutMillis = 20000
			}
			if rng.IntN(3) > 0 { // report what the client owns
				r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
				for p := range cl.owned {
					r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: p.id, Partitions: []int32{p.p}})
				}
			}
			resp, err := c.Handle(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			hr := resp.(*kmsg.ConsumerGroupHeartbeatResponse)
			switch {
			case hr.ErrorCode != 0 || hr.MemberEpoch < 0:
				// Fenced, unknown or left: the client starts over.
				cl.epoch, cl.owned = 0, map[tp]bool{}
			default:
				cl.epoch = hr.MemberEpoch
				if hr.Assignment != nil {
					// A client revokes what it lost and takes what it got.
					cl.owned = map[tp]bool{}
					for _, at := range hr.Assignment.Topics {
						for _, p := range at.Partitions {
							cl.owned[tp{at.TopicID, p}] = true
						}
					}
				}
			}
			g := c.lookup("g", false)
			problem, _ := ask(ctx, g, func() string { return consumerInvariants(g) })
			if problem != "" {
				t.Fatalf("seed %d step %d: %s", seed, step, problem)
			}
		}
		c.Close()
	}
}

// consumerInvariants returns a description of the first broken invariant.
func consumerInvariants(g *group) string {
	cs := &g.cons
	seen := map[tp]string{}
	for id, m := range cs.members {
		if m.epoch > cs.groupEpoch {
			return fmt.Sprintf("member %s at epoch %d beyond group epoch %d", id, m.epoch, cs.groupEpoch)
		}
		for _, set := range []tpSet{m.assigned, m.revoking} {
			for p := range set {
				if other, dup := seen[p]; dup {
					return fmt.Sprintf("partition %v held by %s and %s", p, other, id)
				}
				seen[p] = id
				if cs.owners[p] != id {
					return fmt.Sprintf("partition %v held by %s but owned by %q", p, id, cs.owners[p])
				}
			}
		}
	}
	for p, owner := range cs.owners {
		if seen[p] != owner {
			return fmt.Sprintf("owner entry %v -> %s held by nobody", p, owner)
		}
	}
	return ""
}

// TestRandomClassicGroup drives a classic group with random joins (of
// every version, dynamic and static), syncs, heartbeats, leaves and clock
// jumps, and checks the state machine's invariants after every step.
func TestRandomClassicGroup(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		clock := newManualClock()
		c, err := New(Config{journal: &memJournal{}, Clock: clock, MinSessionTimeout: time.Second, InitialRebalanceDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		g := c.lookup("g", true)
		type client struct {
			id, instance string
			gen          int32
			leader       bool
			members      []string
			pending      []<-chan kmsg.Response
		}
		clients := make([]*client, 5)
		for i := range clients {
			clients[i] = &client{}
			if i >= 3 {
				clients[i].instance = fmt.Sprintf("inst-%d", i)
			}
		}
		absorb := func(cl *client, resp kmsg.Response) {
			switch r := resp.(type) {
			case *kmsg.JoinGroupResponse:
				switch r.ErrorCode {
				case 0:
					cl.id, cl.gen, cl.leader = r.MemberID, r.Generation, r.LeaderID == r.MemberID
					cl.members = cl.members[:0]
					for _, m := range r.Members {
						cl.members = append(cl.members, m.MemberID)
					}
				case 79: // MEMBER_ID_REQUIRED
					cl.id = r.MemberID
				case 25, 82: // UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID
					cl.id = ""
				}
			case *kmsg.SyncGroupResponse, *kmsg.HeartbeatResponse, *kmsg.LeaveGroupResponse:
			}
		}
		lastGen := int32(0)
		for step := range 500 {
			cl := clients[rng.IntN(len(clients))]
			var inst *string
			if cl.instance != "" {
				inst = &cl.instance
			}
			var ch <-chan kmsg.Response
			switch x := rng.IntN(10); {
			case x < 3:
				r := joinReq("g", cl.id, cl.instance)
				r.Version = []int16{0, 1, 4, 5, 9}[rng.IntN(5)]
				r.SessionTimeoutMillis = int32(2000 + rng.IntN(8000))
				r.RebalanceTimeoutMillis = int32(2000 + rng.IntN(8000))
				if rng.IntN(4) == 0 {
					r.Protocols[0].Metadata = []byte{byte(rng.IntN(3))}
				}
				ch = g.submit(func(done func(kmsg.Response)) { g.join(r, clientInfo{}, done) })
			case x < 5:
				r := kmsg.NewPtrSyncGroupRequest()
				r.Version = 3
				r.Group, r.MemberID, r.Generation, r.InstanceID = "g", cl.id, cl.gen, inst
				if cl.leader {
					for _, m := range cl.members {
						r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte("x")})
					}
				}
				ch = g.submit(func(done func(kmsg.Response)) { g.sync(r, done) })
			case x < 8:
				r := kmsg.NewPtrHeartbeatRequest()
				r.Version = 3
				r.Group, r.MemberID, r.Generation, r.InstanceID = "g", cl.id, cl.gen, inst
				ch = g.submit(func(done func(kmsg.Response)) { done(g.heartbeat(r)) })
			case x == 8:
				r := kmsg.NewPtrLeaveGroupRequest()
				r.Version = 3
				r.Group = "g"
				r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: cl.id, InstanceID: inst}}
				ch = g.submit(func(done func(kmsg.Response)) { done(g.leave(r)) })
			default:
				clock.Advance(time.Duration(rng.IntN(12000)) * time.Millisecond)
			}
			if ch != nil {
				cl.pending = append(cl.pending, ch)
			}
			g.barrier()
			for _, o := range clients {
				kept := o.pending[:0]
				for _, p := range o.pending {
					select {
					case resp := <-p:
						absorb(o, resp)
					default:
						kept = append(kept, p)
					}
				}
				o.pending = kept
			}
			problem, _ := ask(context.Background(), g, func() string { return classicInvariants(g, &lastGen) })
			if problem != "" {
				t.Fatalf("seed %d step %d: %s", seed, step, problem)
			}
		}
		c.Close()
	}
}

func classicInvariants(g *group, lastGen *int32) string {
	cs := &g.classic
	if cs.generation < *lastGen {
		return fmt.Sprintf("generation went back from %d to %d", *lastGen, cs.generation)
	}
	*lastGen = cs.generation
	switch cs.state {
	case stEmpty:
		if len(cs.members) != 0 {
			return fmt.Sprintf("Empty with %d members", len(cs.members))
		}
	case stStable, stCompleting:
		if cs.members[cs.leader] == nil {
			return fmt.Sprintf("%s without its leader %q", cs.state, cs.leader)
		}
	}
	for id, m := range cs.members {
		if m.join != nil && cs.state != stPreparing {
			return fmt.Sprintf("join parked for %s in %s", id, cs.state)
		}
		if m.sync != nil && cs.state != stCompleting {
			return fmt.Sprintf("sync parked for %s in %s", id, cs.state)
		}
		if m.join == nil && m.session == nil {
			return fmt.Sprintf("member %s can never expire", id)
		}
		if m.instanceID != "" && cs.static[m.instanceID] != id {
			return fmt.Sprintf("static member %s not in the instance map", id)
		}
	}
	for inst, id := range cs.static {
		if m := cs.members[id]; m == nil || m.instanceID != inst {
			return fmt.Sprintf("instance %s maps to %s, not a member with it", inst, id)
		}
	}
	if cs.state == stPreparing && cs.rebalance == nil {
		return "preparing without a rebalance timer"
	}
	return ""
}
