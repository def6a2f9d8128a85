package group

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAssignorProperties checks both assignors on random subscriptions:
// every partition of a subscribed topic is assigned exactly once, only to
// a subscriber; with identical subscriptions uniform is balanced to within
// one partition; and feeding uniform its own output changes nothing.
func TestAssignorProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		meta := map[string]topicInfo{}
		var names []string
		for i := range 1 + rng.IntN(4) {
			name := fmt.Sprintf("t%d", i)
			var id [16]byte
			id[0] = byte(i + 1)
			meta[name] = topicInfo{n: int32(1 + rng.IntN(12)), id: id}
			names = append(names, name)
		}
		homogeneous := rng.IntN(2) == 0
		var members []assignMember
		for i := range 1 + rng.IntN(7) {
			m := assignMember{id: fmt.Sprintf("m%02d", i)}
			for _, n := range names {
				if homogeneous || rng.IntN(2) == 0 {
					m.topics = append(m.topics, n)
				}
			}
			members = append(members, m)
		}
		for _, name := range []string{assignorUniform, assignorRange} {
			out := assign(name, members, meta, nil)
			owner := map[tp]string{}
			for id, set := range out {
				for p := range set {
					if prev, dup := owner[p]; dup {
						t.Fatalf("round %d %s: partition %v given to %s and %s", round, name, p, prev, id)
					}
					owner[p] = id
				}
			}
			for _, m := range members {
				for p := range out[m.id] {
					subscribed := false
					for _, tn := range m.topics {
						subscribed = subscribed || meta[tn].id == p.id
					}
					if !subscribed {
						t.Fatalf("round %d %s: %s got %v without subscribing", round, name, m.id, p)
					}
				}
			}
			for _, tn := range names {
				subscribed := false
				for _, m := range members {
					for _, mt := range m.topics {
						subscribed = subscribed || mt == tn
					}
				}
				for p := int32(0); subscribed && p < meta[tn].n; p++ {
					if _, ok := owner[tp{meta[tn].id, p}]; !ok {
						t.Fatalf("round %d %s: %s-%d unassigned", round, name, tn, p)
					}
				}
			}
			if name == assignorUniform && homogeneous {
				lo, hi := 1<<30, 0
				for _, m := range members {
					lo, hi = min(lo, len(out[m.id])), max(hi, len(out[m.id]))
				}
				if hi-lo > 1 {
					t.Fatalf("round %d: uniform unbalanced: %d..%d", round, lo, hi)
				}
				again := assign(name, members, meta, out)
				for id := range out {
					if !again[id].equal(out[id]) {
						t.Fatalf("round %d: uniform not sticky for %s", round, id)
					}
				}
			}
		}
	}
}

// TestUniformStickyOnJoin: a new member takes partitions only from members
// above their share; nobody else's partitions move.
func TestUniformStickyOnJoin(t *testing.T) {
	meta := map[string]topicInfo{"t": {n: 6, id: [16]byte{1}}}
	two := []assignMember{{id: "a", topics: []string{"t"}}, {id: "b", topics: []string{"t"}}}
	prev := assign(assignorUniform, two, meta, nil)
	three := append(two, assignMember{id: "c", topics: []string{"t"}})
	next := assign(assignorUniform, three, meta, prev)
	for _, id := range []string{"a", "b"} {
		for p := range next[id] {
			if _, ok := prev[id][p]; !ok {
				t.Fatalf("%s gained %v from a join", id, p)
			}
		}
		if len(next[id]) != 2 {
			t.Fatalf("%s has %d partitions", id, len(next[id]))
		}
	}
	if len(next["c"]) != 2 {
		t.Fatalf("c has %d partitions", len(next["c"]))
	}
}

// FuzzDecodeRecords: bytes from the offsets log never panic the decoder.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(encodeBatch(1, []record{
		{key: offsetKey("g", "t", 3), value: offsetValue(offsetEntry{offset: 7, leaderEpoch: -1, metadata: "m"})},
		{key: groupKey(keyGroupMetadata, "g")},
		{key: groupKey(keyConsumerGroup, "g"), value: consumerGroupValue(4)},
		{key: memberKey("g", "m"), value: memberValue(&consumerMember{id: "m", epoch: 3, topics: []string{"t"},
			assigned: tpSet{{[16]byte{1}, 0}: {}}, revoking: tpSet{{[16]byte{1}, 1}: {}}})},
	}))
	var cs classicState
	cs.init()
	cs.protocolType, cs.protocol, cs.generation = "consumer", "range", 3
	cs.members["m"] = &classicMember{id: "m", instanceID: "i", protocols: []protocol{{name: "range", metadata: []byte("x")}}}
	f.Add(encodeBatch(2, []record{{key: groupKey(keyGroupMetadata, "g"), value: cs.metadataValue(newManualClock().Now())}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		state := map[string]*recovered{}
		_ = decodeBatches(b, func(r record) error { return applyRecord(state, r) })
	})
}

// TestTopicIDVersions: OffsetCommit v10 and OffsetFetch v10 name topics by
// ID; unknown IDs are UNKNOWN_TOPIC_ID.
func TestTopicIDVersions(t *testing.T) {
	topics := newFakeTopics()
	topics.set("orders", 2)
	c, err := New(Config{journal: &memJournal{}, Clock: newManualClock(), Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := topics.id("orders")
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 10
	commit.Group, commit.Generation = "g", -1
	for _, tid := range [][16]byte{id, {9, 9}} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.TopicID = tid
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 1, 33
		rt.Partitions = append(rt.Partitions, rp)
		commit.Topics = append(commit.Topics, rt)
	}
	cr := mustHandle[*kmsg.OffsetCommitResponse](t, c, commit)
	if cr.Topics[0].TopicID != id || cr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit by id: %+v", cr.Topics[0])
	}
	if code := cr.Topics[1].Partitions[0].ErrorCode; code != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: %v", kerr.ErrorForCode(code))
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 10
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "g"
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{TopicID: id, Partitions: []int32{0, 1}}, {TopicID: [16]byte{9, 9}, Partitions: []int32{0}}}
	fetch.Groups = append(fetch.Groups, rg)
	fr := mustHandle[*kmsg.OffsetFetchResponse](t, c, fetch)
	got := fr.Groups[0].Topics[0]
	if got.TopicID != id || got.Partitions[0].Offset != -1 || got.Partitions[1].Offset != 33 {
		t.Fatalf("fetch by id: %+v", got)
	}
	if p := fr.Groups[0].Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code || fr.Groups[0].Topics[1].TopicID != [16]byte{9, 9} {
		t.Fatalf("fetch of an unknown topic id: %+v", fr.Groups[0].Topics[1])
	}
	// All offsets (null topics) by ID too.
	fetch.Groups[0].Topics = nil
	fr = mustHandle[*kmsg.OffsetFetchResponse](t, c, fetch)
	if all := fr.Groups[0].Topics; len(all) != 1 || all[0].TopicID != id || all[0].Partitions[0].Offset != 33 {
		t.Fatalf("fetch all by id: %+v", all)
	}
	// OffsetFetch v1 (kafka-go) for a group that does not exist.
	old := kmsg.NewPtrOffsetFetchRequest()
	old.Version = 1
	old.Group = "nosuch"
	old.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0}}}
	or := mustHandle[*kmsg.OffsetFetchResponse](t, c, old)
	if p := or.Topics[0].Partitions[0]; p.Offset != -1 || p.ErrorCode != 0 {
		t.Fatalf("v1 fetch of unknown group: %+v", p)
	}
}

// TestOffsetDeleteClassic: OffsetDelete refuses topics a classic consumer
// group's members subscribe to (read from their protocol metadata), and
// any topic of a non-empty group of another protocol type.
func TestOffsetDeleteClassic(t *testing.T) {
	topics := newFakeTopics()
	topics.set("t", 1)
	topics.set("u", 1)
	c, err := New(Config{journal: &memJournal{}, Clock: newManualClock(), Topics: topics, InitialRebalanceDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	for _, ptype := range []string{"consumer", "connect"} {
		group := "g-" + ptype
		for _, topic := range []string{"t", "u"} {
			if r := mustHandle[*kmsg.OffsetCommitResponse](t, c, commitReq(group, "", -1, topic, map[int32]int64{0: 5})); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatal("commit failed")
			}
		}
		jr := joinReq(group, "", "")
		jr.Version = 3
		jr.ProtocolType = ptype
		jr.Protocols[0].Metadata = md.AppendTo(nil)
		if r := mustHandle[*kmsg.JoinGroupResponse](t, c, jr); r.ErrorCode != 0 {
			t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		del := kmsg.NewPtrOffsetDeleteRequest()
		del.Group = group
		for _, topic := range []string{"t", "u"} {
			del.Topics = append(del.Topics, kmsg.OffsetDeleteRequestTopic{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}})
		}
		r := mustHandle[*kmsg.OffsetDeleteResponse](t, c, del)
		if ptype == "connect" {
			if r.ErrorCode != kerr.NonEmptyGroup.Code {
				t.Fatalf("offset delete in a non-empty %s group: %v", ptype, kerr.ErrorForCode(r.ErrorCode))
			}
			continue
		}
		if r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || r.Topics[1].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset delete: %+v", r)
		}
		if got := fetchOffsets(t, c, group, "u", 0); got[0] != -1 {
			t.Fatalf("u's offset not deleted: %v", got)
		}
		if got := fetchOffsets(t, c, group, "t", 0); got[0] != 5 {
			t.Fatalf("t's offset deleted: %v", got)
		}
	}
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "nosuch"
	if r := mustHandle[*kmsg.OffsetDeleteResponse](t, c, del); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset delete of unknown group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
