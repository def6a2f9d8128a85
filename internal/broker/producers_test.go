package broker

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/log"
)

func hdr(pid int64, epoch int16, seq int32, records int32, base int64) log.BatchHeader {
	return log.BatchHeader{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: records - 1, NumRecords: records, BaseOffset: base}
}

func TestLastSequenceWraps(t *testing.T) {
	tests := []struct{ base, delta, want int32 }{
		{0, 0, 0},
		{0, 4, 4},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1},
	}
	for _, tt := range tests {
		if got := lastSequence(tt.base, tt.delta); got != tt.want {
			t.Errorf("lastSequence(%d, %d) = %d, want %d", tt.base, tt.delta, got, tt.want)
		}
	}
	if !inSequence(math.MaxInt32, 0) || !inSequence(4, 5) || inSequence(4, 6) || inSequence(4, 4) {
		t.Error("inSequence wrong")
	}
}

func TestCheckBatch(t *testing.T) {
	// State: producer 7 at epoch 2 wrote seq 0-4 and 5-9; producer 8 wrote
	// up to MaxInt32.
	table := newProducerTable()
	table.update(ptr(hdr(7, 2, 0, 5, 100)), 1)
	table.update(ptr(hdr(7, 2, 5, 5, 105)), 2)
	table.update(ptr(hdr(8, 0, math.MaxInt32-1, 2, 200)), 3)
	tests := []struct {
		name     string
		h        log.BatchHeader
		wantCode int16
		wantDup  int64 // base offset of the duplicate, -1: none
	}{
		{"next in sequence", hdr(7, 2, 10, 3, 0), 0, -1},
		{"gap", hdr(7, 2, 11, 3, 0), codeOutOfOrderSequence, -1},
		{"behind without match", hdr(7, 2, 3, 3, 0), codeOutOfOrderSequence, -1},
		{"retry of last batch", hdr(7, 2, 5, 5, 0), 0, 105},
		{"retry of earlier batch", hdr(7, 2, 0, 5, 0), 0, 100},
		{"same first seq, other length", hdr(7, 2, 5, 4, 0), codeOutOfOrderSequence, -1},
		{"older epoch", hdr(7, 1, 10, 1, 0), codeInvalidEpoch, -1},
		{"older epoch retry", hdr(7, 1, 5, 5, 0), codeInvalidEpoch, -1},
		{"new epoch from 0", hdr(7, 3, 0, 1, 0), 0, -1},
		{"new epoch not from 0", hdr(7, 3, 10, 1, 0), codeOutOfOrderSequence, -1},
		{"unknown producer any seq", hdr(9, 0, 12345, 1, 0), 0, -1},
		{"wrap to 0", hdr(8, 0, 0, 1, 0), 0, -1},
		{"after wrap wrong", hdr(8, 0, 1, 1, 0), codeOutOfOrderSequence, -1},
		{"negative epoch", hdr(7, -1, 10, 1, 0), codeInvalidRecord, -1},
		{"negative sequence", hdr(7, 2, -1, 1, 0), codeInvalidRecord, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dup, code := table.checkBatch(&tt.h, table.view(tt.h.ProducerID))
			if code != tt.wantCode {
				t.Fatalf("code %d, want %d", code, tt.wantCode)
			}
			switch {
			case tt.wantDup < 0 && dup != nil:
				t.Fatalf("unexpected duplicate of %+v", dup)
			case tt.wantDup >= 0 && (dup == nil || dup.baseOffset != tt.wantDup):
				t.Fatalf("duplicate %+v, want base offset %d", dup, tt.wantDup)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestProducerEntryKeepsLastFive(t *testing.T) {
	table := newProducerTable()
	for i := int32(0); i < 8; i++ {
		table.update(ptr(hdr(1, 0, i*2, 2, int64(i)*2)), 0)
	}
	e := table.entries[1]
	if e.n != maxTrackedBatches || e.batches[0].firstSeq != 6 || e.last().firstSeq != 14 {
		t.Fatalf("entry %+v", e)
	}
	if dup, _ := table.checkBatch(ptr(hdr(1, 0, 4, 2, 0)), table.view(1)); dup != nil {
		t.Fatal("sixth-newest batch still detected as a duplicate")
	}
	// An epoch bump forgets the old epoch's batches.
	table.update(ptr(hdr(1, 1, 0, 1, 100)), 0)
	if e := table.entries[1]; e.n != 1 || e.epoch != 1 {
		t.Fatalf("after bump %+v", e)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	table := newProducerTable()
	table.update(ptr(hdr(7, 2, 0, 5, 100)), 9)
	table.update(ptr(hdr(7, 2, 5, 5, 105)), 9)
	table.update(ptr(hdr(8, 0, 0, 1, 110)), 9)
	raw := table.encode(111)
	got, covered, err := decodeProducerSnapshot(raw)
	if err != nil || covered != 111 {
		t.Fatalf("decode: %d %v", covered, err)
	}
	// Tickets are not persisted: everything in a snapshot is durable.
	for _, e := range table.entries {
		for i := range e.batches {
			e.batches[i].ticket = 0
		}
	}
	if !reflect.DeepEqual(got, table) {
		t.Fatalf("got %+v\nwant %+v", got, table)
	}
	for n := 0; n < len(raw); n++ {
		if _, _, err := decodeProducerSnapshot(raw[:n]); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	raw[20] ^= 1
	if _, _, err := decodeProducerSnapshot(raw); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("flipped: %v", err)
	}
}

func TestEvictBelow(t *testing.T) {
	table := newProducerTable()
	table.update(ptr(hdr(1, 0, 0, 5, 0)), 0)  // offsets 0-4
	table.update(ptr(hdr(2, 0, 0, 5, 5)), 0)  // offsets 5-9
	table.update(ptr(hdr(1, 0, 5, 5, 10)), 0) // producer 1 again: 10-14
	if n := table.evictBelow(10); n != 1 || table.entries[2] != nil || table.entries[1] == nil {
		t.Fatalf("evicted %d, entries %v", n, table.entries)
	}
}
