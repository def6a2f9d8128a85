package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"

	"github.com/sluice-mq/sluice/internal/log"
)

// Kafka error codes of the idempotent-producer checks.
const (
	codeOutOfOrderSequence = 45 // OUT_OF_ORDER_SEQUENCE_NUMBER
	codeDuplicateSequence  = 46 // DUPLICATE_SEQUENCE_NUMBER
	codeInvalidEpoch       = 47 // INVALID_PRODUCER_EPOCH
	codeInvalidTxnState    = 48 // INVALID_TXN_STATE
	codeInvalidRecord      = 87 // INVALID_RECORD
)

// maxTrackedBatches is how many recent batches per producer a partition
// remembers for duplicate detection: a producer keeps at most five requests
// in flight, so a retry is always one of its last five batches.
const maxTrackedBatches = 5

// batchRecord is what a partition remembers of one idempotent batch.
type batchRecord struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
	maxTimestamp           int64
	// ticket completes when the batch is durable; a retry waits on the
	// original's ticket. Not persisted: after a restart every batch is.
	ticket log.Ticket
}

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch   int16
	n       int // valid entries in batches, oldest first
	batches [maxTrackedBatches]batchRecord
}

func (e *producerEntry) last() *batchRecord {
	if e.n == 0 {
		return nil
	}
	return &e.batches[e.n-1]
}

// push records a batch, forgetting the oldest beyond maxTrackedBatches.
func (e *producerEntry) push(b batchRecord) {
	if e.n == maxTrackedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = b
	e.n++
}

// find returns the remembered batch with exactly this sequence range.
func (e *producerEntry) find(firstSeq, lastSeq int32) *batchRecord {
	for i := 0; i < e.n; i++ {
		if b := &e.batches[i]; b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b
		}
	}
	return nil
}

// producerTable is a partition's idempotent-producer state. It is guarded
// by the partition's mutex.
type producerTable struct {
	entries map[int64]*producerEntry
}

func newProducerTable() *producerTable {
	return &producerTable{entries: make(map[int64]*producerEntry)}
}

// lastSequence is the sequence of a batch's last record: sequences wrap from
// MaxInt32 to 0.
func lastSequence(base, lastOffsetDelta int32) int32 {
	if base > math.MaxInt32-lastOffsetDelta {
		return lastOffsetDelta - (math.MaxInt32 - base) - 1
	}
	return base + lastOffsetDelta
}

// inSequence reports whether next directly follows last.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// producerView is what check needs to know of a producer: its epoch and
// last sequence, as committed or as updated by earlier batches of the same
// request.
type producerView struct {
	known   bool
	epoch   int16
	lastSeq int32
	hasSeq  bool
}

func (t *producerTable) view(pid int64) producerView {
	e, ok := t.entries[pid]
	if !ok {
		return producerView{}
	}
	v := producerView{known: true, epoch: e.epoch}
	if b := e.last(); b != nil {
		v.lastSeq, v.hasSeq = b.lastSeq, true
	}
	return v
}

// checkBatch decides what to do with one idempotent batch (producer ID ≥ 0)
// given the producer's view. It returns a duplicate batch (to be answered
// with the original offsets, nothing written), or a Kafka error code, or
// neither (append it).
func (t *producerTable) checkBatch(h *log.BatchHeader, v producerView) (*batchRecord, int16) {
	if h.ProducerEpoch < 0 || h.BaseSequence < 0 {
		return nil, codeInvalidRecord
	}
	if !v.known {
		// No state: new producer, or its batches were all deleted by
		// retention. Kafka accepts any sequence here.
		return nil, 0
	}
	switch {
	case h.ProducerEpoch < v.epoch:
		return nil, codeInvalidEpoch
	case h.ProducerEpoch > v.epoch:
		// A new epoch (KIP-360 bump or a new InitProducerId) restarts at 0.
		if h.BaseSequence != 0 {
			return nil, codeOutOfOrderSequence
		}
		return nil, 0
	}
	last := lastSequence(h.BaseSequence, h.LastOffsetDelta)
	if e := t.entries[h.ProducerID]; e != nil && e.epoch == h.ProducerEpoch {
		if b := e.find(h.BaseSequence, last); b != nil {
			return b, 0
		}
	}
	if v.hasSeq && !inSequence(v.lastSeq, h.BaseSequence) {
		return nil, codeOutOfOrderSequence
	}
	return nil, 0
}

// update records an appended (or recovered) batch.
func (t *producerTable) update(h *log.BatchHeader, ticket log.Ticket) {
	e, ok := t.entries[h.ProducerID]
	if !ok {
		e = &producerEntry{epoch: h.ProducerEpoch}
		t.entries[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		*e = producerEntry{epoch: h.ProducerEpoch}
	}
	e.push(batchRecord{
		firstSeq:     h.BaseSequence,
		lastSeq:      lastSequence(h.BaseSequence, h.LastOffsetDelta),
		baseOffset:   h.BaseOffset,
		lastOffset:   h.LastOffset(),
		maxTimestamp: h.MaxTimestamp,
		ticket:       ticket,
	})
}

// evictBelow forgets producers whose last batch ends below offset and
// returns how many it forgot.
func (t *producerTable) evictBelow(offset int64) int {
	n := 0
	for pid, e := range t.entries {
		if b := e.last(); b == nil || b.lastOffset < offset {
			delete(t.entries, pid)
			n++
		}
	}
	return n
}

// Producer-state snapshot file (part of the on-disk format), one per
// partition, in the partition log's directory, replaced atomically:
//
//	"SLPS" version:uint16 covered:int64 count:uint32
//	count × { producerID:int64 epoch:int16 n:uint8
//	          n × { firstSeq:int32 lastSeq:int32 baseOffset:int64
//	                lastOffset:int64 maxTimestamp:int64 } }
//	crc:uint32 (CRC-32C of everything before it)
//
// covered is the log offset the snapshot reflects: every batch below it is
// in the snapshot; batches from covered on are rebuilt from the log.
const (
	producerSnapshotFile    = "producer.snapshot"
	producerSnapshotMagic   = "SLPS"
	producerSnapshotVersion = 1
)

var errBadSnapshot = errors.New("broker: damaged snapshot")

func (t *producerTable) encode(covered int64) []byte {
	pids := make([]int64, 0, len(t.entries))
	for pid := range t.entries {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	b := append([]byte(nil), producerSnapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, producerSnapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(covered))
	b = binary.BigEndian.AppendUint32(b, uint32(len(pids)))
	for _, pid := range pids {
		e := t.entries[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = append(b, uint8(e.n))
		for i := 0; i < e.n; i++ {
			r := &e.batches[i]
			b = binary.BigEndian.AppendUint32(b, uint32(r.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(r.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(r.baseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(r.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(r.maxTimestamp))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeProducerSnapshot parses a snapshot written by encode.
func decodeProducerSnapshot(b []byte) (*producerTable, int64, error) {
	if len(b) < 4+2+8+4+4 || string(b[:4]) != producerSnapshotMagic {
		return nil, 0, fmt.Errorf("%w: bad header", errBadSnapshot)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, fmt.Errorf("%w: crc mismatch", errBadSnapshot)
	}
	r := reader{b: body[4:], ok: true}
	if v := r.u16(); v != producerSnapshotVersion {
		return nil, 0, fmt.Errorf("%w: version %d", errBadSnapshot, v)
	}
	covered := int64(r.u64())
	n := r.u32()
	t := newProducerTable()
	for i := uint32(0); i < n && r.ok; i++ {
		pid := int64(r.u64())
		e := &producerEntry{epoch: int16(r.u16())}
		nb := r.take(1)
		if nb == nil || int(nb[0]) > maxTrackedBatches {
			return nil, 0, fmt.Errorf("%w: producer %d", errBadSnapshot, pid)
		}
		for j := 0; j < int(nb[0]); j++ {
			e.push(batchRecord{
				firstSeq:     int32(r.u32()),
				lastSeq:      int32(r.u32()),
				baseOffset:   int64(r.u64()),
				lastOffset:   int64(r.u64()),
				maxTimestamp: int64(r.u64()),
			})
		}
		t.entries[pid] = e
	}
	if !r.ok || len(r.b) != 0 {
		return nil, 0, fmt.Errorf("%w: truncated or trailing bytes", errBadSnapshot)
	}
	return t, covered, nil
}
