package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"syscall"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// Partition is one topic partition: its log and its idempotent-producer
// state.
type Partition struct {
	topic   string
	index   int32
	topicID [16]byte
	log     *log.Log
	logger  *slog.Logger

	// mu is held across the producer checks and the append, so a check and
	// the write it allows are atomic. It guards producers, pending and
	// unsnapshotted.
	mu            sync.Mutex
	producers     *producerTable
	pending       []pendingBatch // scratch for Produce
	unsnapshotted int            // producer-state changes since the last snapshot
}

// pendingBatch is what Produce knows of an idempotent batch of the request
// being checked, so later batches of the same request see it.
type pendingBatch struct {
	producerID int64
	view       producerView
}

// Log is the partition's log.
func (p *Partition) Log() *log.Log { return p.log }

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// Index is the partition number.
func (p *Partition) Index() int32 { return p.index }

// TopicID is the topic's 16-byte ID.
func (p *Partition) TopicID() [16]byte { return p.topicID }

// Produce appends records (one or more record batches v2, as a producer sends
// them) after the idempotent-producer checks: for each batch with a producer
// ID ≥ 0, an epoch older than the producer's is INVALID_PRODUCER_EPOCH (47);
// a new epoch must start at sequence 0 and a sequence that does not follow
// the producer's last one is OUT_OF_ORDER_SEQUENCE_NUMBER (45), unless the
// partition has no state for the producer. A retry of one of the producer's
// last five batches (same epoch, first and last sequence) is not written: it
// returns the original's offsets and durability ticket with code 0 (a
// duplicate inside a request of several batches is
// DUPLICATE_SEQUENCE_NUMBER (46)). Transactional batches are
// INVALID_TXN_STATE (48) and control batches INVALID_RECORD (87) until
// transactions exist.
//
// Other codes: CORRUPT_MESSAGE (2) for a bad CRC or framing,
// MESSAGE_TOO_LARGE (10), NOT_LEADER_OR_FOLLOWER (6) when the partition is
// closed (deleted or shutting down), KAFKA_STORAGE_ERROR (56) when the log
// failed; err is non-nil only for log failures. The caller waits for the
// result's Ticket (Store.WhenDurable) before acknowledging.
func (p *Partition) Produce(records []byte) (log.AppendResult, int16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = p.pending[:0]
	idempotent := false
	var dup *batchRecord
	batches := 0
	for rest := records; len(rest) > 0; batches++ {
		h, err := log.ParseHeader(rest)
		if err != nil || h.TotalSize() > int64(len(rest)) {
			return log.AppendResult{}, codeCorruptMessage, nil
		}
		rest = rest[h.TotalSize():]
		switch {
		case h.IsControl():
			return log.AppendResult{}, codeInvalidRecord, nil
		case h.IsTransactional():
			return log.AppendResult{}, codeInvalidTxnState, nil
		case h.ProducerID < 0:
			continue
		}
		idempotent = true
		v := p.viewLocked(h.ProducerID)
		d, code := p.producers.checkBatch(&h, v)
		if code != 0 {
			return log.AppendResult{}, code, nil
		}
		if d != nil {
			dup = d
			continue
		}
		p.pending = append(p.pending, pendingBatch{h.ProducerID, producerView{
			known: true, epoch: h.ProducerEpoch,
			lastSeq: lastSequence(h.BaseSequence, h.LastOffsetDelta), hasSeq: true,
		}})
	}
	if batches == 0 {
		return log.AppendResult{}, codeCorruptMessage, nil
	}
	if dup != nil {
		if batches > 1 {
			return log.AppendResult{}, codeDuplicateSequence, nil
		}
		// The header fields that matched are inside the CRC: make sure a
		// damaged batch is not taken for a retry (rare path, full check).
		if _, _, err := log.ValidateRecordSet(records, 0); err != nil {
			return log.AppendResult{}, appendErrorCode(err), nil
		}
		res := log.AppendResult{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset, LogAppendTime: -1, Ticket: dup.ticket}
		if p.log.Config().LogAppendTime {
			res.LogAppendTime = dup.maxTimestamp
		}
		return res, 0, nil
	}
	res, err := p.log.Append(records, 0)
	if err != nil {
		return log.AppendResult{}, appendErrorCode(err), err
	}
	if idempotent {
		// Append assigned the offsets in place; record each batch.
		for rest := records; len(rest) > 0; {
			h, _ := log.ParseHeader(rest)
			rest = rest[h.TotalSize():]
			if h.ProducerID >= 0 {
				p.producers.update(&h, res.Ticket)
				p.unsnapshotted++
			}
		}
	}
	return res, 0, nil
}

// viewLocked is the producer's state as seen by the next batch of the
// request being checked.
func (p *Partition) viewLocked(pid int64) producerView {
	for i := len(p.pending) - 1; i >= 0; i-- {
		if p.pending[i].producerID == pid {
			return p.pending[i].view
		}
	}
	return p.producers.view(pid)
}

// appendErrorCode maps a log append error to a Kafka error code.
func appendErrorCode(err error) int16 {
	switch {
	case errors.Is(err, log.ErrStorage), errors.Is(err, log.ErrOffline), errors.Is(err, syscall.ENOSPC):
		// First: an offline log's error also wraps the damage found in
		// its segment (ErrInvalidBatch), which is not the client's batch.
		return codeStorageError
	case errors.Is(err, log.ErrCorruptBatch), errors.Is(err, log.ErrInvalidBatch):
		return codeCorruptMessage
	case errors.Is(err, log.ErrBatchTooLarge):
		return codeMessageTooLarge
	case errors.Is(err, log.ErrClosed):
		return codeNotLeader
	default:
		return codeStorageError
	}
}

// loadProducers restores the producer state from the partition's snapshot
// and rebuilds it from the log after the snapshot. A snapshot that covers
// more than the log holds (the tail was lost in a crash under a non-fsync
// policy) or is damaged is ignored and the state rebuilt from the log start.
func (p *Partition) loadProducers(fsys vfs.FS) error {
	from := p.log.LogStartOffset()
	p.producers = newProducerTable()
	raw, ok, err := readWhole(fsys, path.Join(p.log.Dir(), producerSnapshotFile))
	if err != nil {
		return err
	}
	if ok {
		t, covered, err := decodeProducerSnapshot(raw)
		switch {
		case err != nil:
			p.logger.Warn("ignoring damaged producer snapshot", "topic", p.topic, "partition", p.index, "err", err)
		case covered > p.log.NextOffset():
			p.logger.Warn("ignoring producer snapshot beyond the log end", "topic", p.topic, "partition", p.index,
				"covered", covered, "log_end", p.log.NextOffset())
		default:
			p.producers, from = t, max(covered, from)
		}
	}
	scanned := 0
	err = p.log.ScanHeaders(from, func(h log.BatchHeader) bool {
		if h.LastOffset() >= from && h.ProducerID >= 0 && !h.IsControl() {
			p.producers.update(&h, 0)
			scanned++
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("rebuild producer state: %w", err)
	}
	p.unsnapshotted = scanned
	return nil
}

// writeProducerSnapshot persists the producer state if it changed since the
// last snapshot, first forgetting producers whose batches all lie below the
// log start offset (retention or DeleteRecords removed them).
func (p *Partition) writeProducerSnapshot(fsys vfs.FS) error {
	p.mu.Lock()
	p.unsnapshotted += p.producers.evictBelow(p.log.LogStartOffset())
	if p.unsnapshotted == 0 {
		p.mu.Unlock()
		return nil
	}
	raw := p.producers.encode(p.log.NextOffset())
	n := p.unsnapshotted
	p.unsnapshotted = 0
	p.mu.Unlock()
	if err := writeFileAtomic(fsys, p.log.Dir(), producerSnapshotFile, raw); err != nil {
		p.mu.Lock()
		p.unsnapshotted += n
		p.mu.Unlock()
		return err
	}
	return nil
}
