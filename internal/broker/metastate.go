package broker

import (
	"fmt"
	"maps"
	"sort"
)

// topicMeta is a topic as the metadata state machine knows it.
type topicMeta struct {
	name       string
	id         [16]byte
	partitions int32
	configs    map[string]string // dynamic (explicitly set) configs
}

// metaState is the metadata state machine: it is changed only by apply, in
// metadata-log order, does no I/O and reads no clock, so replaying the same
// changes always yields the same state (the property a Raft-replicated
// metadata log will need).
type metaState struct {
	clusterID [16]byte
	topics    map[string]*topicMeta
	byID      map[[16]byte]*topicMeta
	// producerIDEnd: every producer ID below it has been reserved (handed
	// out or skipped); IDs at or above it have never been used.
	producerIDEnd int64
}

func newMetaState() *metaState {
	return &metaState{topics: make(map[string]*topicMeta), byID: make(map[[16]byte]*topicMeta)}
}

// check reports whether c can be applied to the current state. The broker
// calls it before writing a change; apply calls it again on replay, where a
// failure means the metadata log is inconsistent.
func (s *metaState) check(c *change) error {
	switch c.kind {
	case changeCluster:
		if s.clusterID != ([16]byte{}) && s.clusterID != c.id {
			return fmt.Errorf("cluster ID already set")
		}
	case changeTopicCreated:
		if _, ok := s.topics[c.name]; ok {
			return fmt.Errorf("topic %q already exists", c.name)
		}
		if _, ok := s.byID[c.id]; ok || c.id == ([16]byte{}) {
			return fmt.Errorf("topic ID %x of %q is zero or taken", c.id, c.name)
		}
		if c.partitions < 1 {
			return fmt.Errorf("topic %q with %d partitions", c.name, c.partitions)
		}
	case changeTopicDeleted:
		if _, ok := s.byID[c.id]; !ok {
			return fmt.Errorf("delete of unknown topic ID %x", c.id)
		}
	case changePartitionsCreated:
		t, ok := s.byID[c.id]
		if !ok {
			return fmt.Errorf("partitions for unknown topic ID %x", c.id)
		}
		if c.partitions <= t.partitions {
			return fmt.Errorf("topic %q: partition count %d does not grow %d", t.name, c.partitions, t.partitions)
		}
	case changeTopicConfigs:
		if _, ok := s.byID[c.id]; !ok {
			return fmt.Errorf("configs for unknown topic ID %x", c.id)
		}
	case changeProducerIDs:
		if c.firstID < s.producerIDEnd || c.count < 1 {
			return fmt.Errorf("producer ID block [%d, +%d) overlaps the reserved range below %d", c.firstID, c.count, s.producerIDEnd)
		}
	default:
		return fmt.Errorf("unknown change kind %d", c.kind)
	}
	return nil
}

// apply applies one change.
func (s *metaState) apply(c *change) error {
	if err := s.check(c); err != nil {
		return fmt.Errorf("%w: %v", errBadChange, err)
	}
	switch c.kind {
	case changeCluster:
		s.clusterID = c.id
	case changeTopicCreated:
		t := &topicMeta{name: c.name, id: c.id, partitions: c.partitions, configs: maps.Clone(c.configs)}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		s.topics[t.name] = t
		s.byID[t.id] = t
	case changeTopicDeleted:
		t := s.byID[c.id]
		delete(s.byID, c.id)
		delete(s.topics, t.name)
	case changePartitionsCreated:
		s.byID[c.id].partitions = c.partitions
	case changeTopicConfigs:
		cfg := maps.Clone(c.configs)
		if cfg == nil {
			cfg = map[string]string{}
		}
		s.byID[c.id].configs = cfg
	case changeProducerIDs:
		s.producerIDEnd = c.firstID + int64(c.count)
	}
	return nil
}

// snapshot returns changes that rebuild the current state from an empty
// one, in a deterministic order.
func (s *metaState) snapshot() []change {
	var out []change
	if s.clusterID != ([16]byte{}) {
		out = append(out, change{kind: changeCluster, id: s.clusterID})
	}
	names := make([]string, 0, len(s.topics))
	for n := range s.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := s.topics[n]
		out = append(out, change{kind: changeTopicCreated, id: t.id, name: t.name, partitions: t.partitions, configs: maps.Clone(t.configs)})
	}
	if s.producerIDEnd > 0 {
		out = append(out, change{kind: changeProducerIDs, firstID: 0, count: int32(min(s.producerIDEnd, 1<<31-1))})
		for first := int64(1<<31 - 1); first < s.producerIDEnd; first += 1<<31 - 1 {
			out = append(out, change{kind: changeProducerIDs, firstID: first, count: int32(min(s.producerIDEnd-first, 1<<31-1))})
		}
	}
	return out
}

// topicNames returns the topic names, sorted.
func (s *metaState) topicNames() []string {
	names := make([]string, 0, len(s.topics))
	for n := range s.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
