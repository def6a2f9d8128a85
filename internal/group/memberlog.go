package group

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

// KIP-848 members are persisted so that a restart does not make every
// consumer drop its partitions and rejoin. One record per member:
//
//	key   int16 5, string group, string member id
//	value int16 0 (version), int32 epoch, int32 previous epoch,
//	      int32 rebalance timeout ms, string instance id, string rack id,
//	      string client id, string client host, string assignor,
//	      string regex, [string] topics, [partitions] assigned,
//	      [partitions] revoking, int8 left (1: a static member that
//	      left with epoch -2)
//	      partitions: [16]byte topic id, [int32] partitions
//
// A null value removes the member. These layouts are part of the on-disk
// format (they are sluice's own; Kafka splits this state over several
// record types). On recovery the group epoch is bumped once, so that any
// partition not owned at the crash is assigned again on the next
// heartbeats; members that do not come back expire with their sessions.
const (
	keyConsumerMember        int16 = 5
	consumerMemberValueVer   int16 = 0
	maxRecoveredArrayEntries       = 1 << 20
)

func memberKey(group, member string) []byte {
	b := kbin.AppendInt16(nil, keyConsumerMember)
	b = kbin.AppendString(b, group)
	return kbin.AppendString(b, member)
}

func appendPartitions(b []byte, s tpSet) []byte {
	topics := assignmentTopics(s)
	b = kbin.AppendArrayLen(b, len(topics))
	for _, t := range topics {
		b = append(b, t.TopicID[:]...)
		b = kbin.AppendArrayLen(b, len(t.Partitions))
		for _, p := range t.Partitions {
			b = kbin.AppendInt32(b, p)
		}
	}
	return b
}

func memberValue(m *consumerMember) []byte {
	b := kbin.AppendInt16(nil, consumerMemberValueVer)
	b = kbin.AppendInt32(b, m.epoch)
	b = kbin.AppendInt32(b, m.prevEpoch)
	b = kbin.AppendInt32(b, int32(m.rebalanceTimeout/time.Millisecond))
	for _, s := range []string{m.instanceID, m.rackID, m.clientID, m.clientHost, m.assignor, m.regexSource} {
		b = kbin.AppendString(b, s)
	}
	b = kbin.AppendArrayLen(b, len(m.topics))
	for _, t := range m.topics {
		b = kbin.AppendString(b, t)
	}
	b = appendPartitions(b, m.assigned)
	b = appendPartitions(b, m.revoking)
	left := int8(0)
	if m.leftStatic {
		left = 1
	}
	return kbin.AppendInt8(b, left)
}

// decodeMemberKey returns the group and member of a member key.
func decodeMemberKey(key []byte) (string, string, error) {
	r := kbin.Reader{Src: key}
	r.Int16()
	group, member := r.String(), r.String()
	if err := r.Complete(); err != nil {
		return "", "", fmt.Errorf("%w: member key: %v", errCorruptRecord, err)
	}
	return group, member, nil
}

// arrayLen reads an array length, refusing counts that cannot fit in what
// is left (corrupt data must not make recovery allocate wildly).
func arrayLen(r *kbin.Reader, minEntry int) (int, bool) {
	n := r.ArrayLen()
	if !r.Ok() || n < 0 || int(n)*minEntry > len(r.Src) || n > maxRecoveredArrayEntries {
		return 0, false
	}
	return int(n), true
}

func readPartitions(r *kbin.Reader) (tpSet, bool) {
	n, ok := arrayLen(r, 20)
	if !ok {
		return nil, false
	}
	s := tpSet{}
	for range n {
		var id [16]byte
		copy(id[:], r.Span(16))
		np, ok := arrayLen(r, 4)
		if !ok {
			return nil, false
		}
		for range np {
			s[tp{id, r.Int32()}] = struct{}{}
		}
	}
	return s, r.Ok()
}

// decodeMember rebuilds a member from its value.
func decodeMember(id string, value []byte) (*consumerMember, error) {
	bad := func(what string) (*consumerMember, error) {
		return nil, fmt.Errorf("%w: member %s: %s", errCorruptRecord, id, what)
	}
	r := kbin.Reader{Src: value}
	if v := r.Int16(); v != consumerMemberValueVer {
		return bad(fmt.Sprintf("value version %d", v))
	}
	m := &consumerMember{id: id}
	m.epoch, m.prevEpoch = r.Int32(), r.Int32()
	m.rebalanceTimeout = time.Duration(r.Int32()) * time.Millisecond
	for _, s := range []*string{&m.instanceID, &m.rackID, &m.clientID, &m.clientHost, &m.assignor, &m.regexSource} {
		*s = r.String()
	}
	n, ok := arrayLen(&r, 2)
	if !ok {
		return bad("topics")
	}
	for range n {
		m.topics = append(m.topics, r.String())
	}
	if m.assigned, ok = readPartitions(&r); !ok {
		return bad("assigned partitions")
	}
	if m.revoking, ok = readPartitions(&r); !ok {
		return bad("revoking partitions")
	}
	m.leftStatic = r.Int8() == 1
	if err := r.Complete(); err != nil {
		return bad(err.Error())
	}
	sort.Strings(m.topics)
	if len(m.revoking) > 0 {
		m.state = mUnrevoked
	} else {
		m.revoking = nil
	}
	return m, nil
}

// maybePersistMember writes m's record if it changed since the last write.
func (g *group) maybePersistMember(m *consumerMember) {
	v := memberValue(m)
	if bytes.Equal(v, m.written) {
		return
	}
	m.written = v
	g.persist([]record{{key: memberKey(g.id, m.id), value: v}}, nil)
}

// forgetMember writes m's tombstone.
func (g *group) forgetMember(m *consumerMember) {
	if m.written != nil {
		g.persist([]record{{key: memberKey(g.id, m.id)}}, nil)
		m.written = nil
	}
}

// restoreMembers rebuilds recovered members. It runs before the group
// goroutine starts; startTimers then bumps the epoch and arms sessions.
func (cs *consumerState) restoreMembers(members map[string][]byte) error {
	for id, v := range members {
		m, err := decodeMember(id, v)
		if err != nil {
			return err
		}
		m.written = v
		if m.regexSource != "" {
			// Recompiled on the next refresh; an invalid one (impossible
			// unless the log is damaged) is dropped.
			if re, err := compileSubscription(m.regexSource); err == nil {
				m.regex = re
			} else {
				m.regexSource = ""
			}
		}
		cs.members[id] = m
		if m.instanceID != "" {
			cs.static[m.instanceID] = id
		}
		for _, set := range []tpSet{m.assigned, m.revoking} {
			for p := range set {
				cs.owners[p] = id
			}
		}
		cs.target[id] = m.assigned.clone()
	}
	return nil
}
