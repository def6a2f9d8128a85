package broker

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/log"
)

func sampleChanges() []change {
	id1 := [16]byte{1, 2, 3}
	id2 := [16]byte{9, 9}
	return []change{
		{kind: changeCluster, id: [16]byte{7}},
		{kind: changeTopicCreated, id: id1, name: "orders", partitions: 3, configs: map[string]string{"retention.ms": "1000", "sluice.durability": "none"}},
		{kind: changeTopicCreated, id: id2, name: "empty-configs", partitions: 1, configs: map[string]string{}},
		{kind: changePartitionsCreated, id: id1, partitions: 5},
		{kind: changeTopicConfigs, id: id1, configs: map[string]string{"segment.bytes": "4096"}},
		{kind: changeProducerIDs, firstID: 0, count: 1000},
		{kind: changeTopicDeleted, id: id2},
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range sampleChanges() {
		key, value := encodeChange(&c)
		got, err := decodeChange(key, value)
		if err != nil {
			t.Fatalf("decode kind %d: %v", c.kind, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("kind %d: got %+v, want %+v", c.kind, got, c)
		}
		// Every truncation of the value must be refused, never panic.
		for n := 0; n < len(value); n++ {
			if _, err := decodeChange(key, value[:n]); !errors.Is(err, errBadChange) {
				t.Errorf("kind %d truncated to %d: err %v", c.kind, n, err)
			}
		}
		if _, err := decodeChange(key, append(value, 0)); !errors.Is(err, errBadChange) {
			t.Errorf("kind %d with a trailing byte: err %v", c.kind, err)
		}
	}
	for _, key := range [][]byte{nil, {0}, {1, changeCluster}, {0, 99}} {
		if _, err := decodeChange(key, make([]byte, 16)); !errors.Is(err, errBadChange) {
			t.Errorf("key %x: err %v", key, err)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	changes := sampleChanges()
	b := encodeBatch(changes, 1234)
	// The log must accept it as a producer-style record set.
	if _, offsets, err := log.ValidateRecordSet(b, 0); err != nil || offsets != int64(len(changes)) {
		t.Fatalf("ValidateRecordSet: %d offsets, %v", offsets, err)
	}
	base, got, err := decodeBatch(b)
	if err != nil || base != 0 {
		t.Fatalf("decodeBatch: base %d, %v", base, err)
	}
	if !reflect.DeepEqual(got, changes) {
		t.Fatalf("got %+v\nwant %+v", got, changes)
	}
	for _, pos := range []int{21, 30, len(b) - 1} {
		bad := append([]byte(nil), b...)
		bad[pos] ^= 0x40
		if _, _, err := decodeBatch(bad); err == nil {
			t.Errorf("flipped byte %d: decoded", pos)
		}
	}
	if _, _, err := decodeBatch(b[:len(b)-3]); err == nil {
		t.Error("truncated batch decoded")
	}
}

func TestStateApplyAndSnapshot(t *testing.T) {
	s := newMetaState()
	for _, c := range sampleChanges() {
		if err := s.apply(&c); err != nil {
			t.Fatalf("apply kind %d: %v", c.kind, err)
		}
	}
	if len(s.topics) != 1 || s.topics["orders"].partitions != 5 || s.topics["orders"].configs["segment.bytes"] != "4096" ||
		len(s.topics["orders"].configs) != 1 || s.producerIDEnd != 1000 || s.clusterID != ([16]byte{7}) {
		t.Fatalf("state after apply: %+v %+v", s, s.topics["orders"])
	}
	// A snapshot rebuilds the same state, through its encoding.
	raw := encodeMetaSnapshot(42, encodeBatch(s.snapshot(), 0))
	covered, changes, err := decodeMetaSnapshot(raw)
	if err != nil || covered != 42 {
		t.Fatalf("decode snapshot: %d %v", covered, err)
	}
	s2 := newMetaState()
	for _, c := range changes {
		if err := s2.apply(&c); err != nil {
			t.Fatalf("apply snapshot: %v", err)
		}
	}
	if !reflect.DeepEqual(s, s2) {
		t.Fatalf("snapshot state differs:\n%+v\n%+v", s, s2)
	}
	raw[len(raw)/2] ^= 1
	if _, _, err := decodeMetaSnapshot(raw); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("damaged snapshot: %v", err)
	}
}

func TestStateRejectsInconsistentChanges(t *testing.T) {
	id := [16]byte{5}
	base := []change{
		{kind: changeTopicCreated, id: id, name: "t", partitions: 2},
		{kind: changeProducerIDs, firstID: 0, count: 10},
	}
	tests := []struct {
		name string
		c    change
	}{
		{"duplicate name", change{kind: changeTopicCreated, id: [16]byte{6}, name: "t", partitions: 1}},
		{"duplicate id", change{kind: changeTopicCreated, id: id, name: "u", partitions: 1}},
		{"zero id", change{kind: changeTopicCreated, name: "u", partitions: 1}},
		{"no partitions", change{kind: changeTopicCreated, id: [16]byte{6}, name: "u"}},
		{"delete unknown", change{kind: changeTopicDeleted, id: [16]byte{6}}},
		{"shrink partitions", change{kind: changePartitionsCreated, id: id, partitions: 2}},
		{"partitions of unknown", change{kind: changePartitionsCreated, id: [16]byte{6}, partitions: 3}},
		{"configs of unknown", change{kind: changeTopicConfigs, id: [16]byte{6}}},
		{"overlapping producer ids", change{kind: changeProducerIDs, firstID: 5, count: 10}},
		{"cluster id changes", change{kind: changeCluster, id: [16]byte{2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMetaState()
			s.clusterID = [16]byte{1}
			for _, c := range base {
				if err := s.apply(&c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.apply(&tt.c); !errors.Is(err, errBadChange) {
				t.Fatalf("apply: %v, want errBadChange", err)
			}
		})
	}
}
