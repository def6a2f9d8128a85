package broker

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// step is one produce in an idempotence script.
type step struct {
	name  string
	batch []byte
	code  int16
	base  int64 // expected base offset when code == 0
}

func runSteps(t *testing.T, b *Broker, p *Partition, steps []step) {
	t.Helper()
	for _, s := range steps {
		before := p.Log().NextOffset()
		res, code := produce(t, b, p, s.batch)
		if code != s.code {
			t.Fatalf("%s: code %d, want %d", s.name, code, s.code)
		}
		if code == 0 && res.BaseOffset != s.base {
			t.Fatalf("%s: base offset %d, want %d", s.name, res.BaseOffset, s.base)
		}
		if code != 0 && p.Log().NextOffset() != before {
			t.Fatalf("%s: rejected batch was written", s.name)
		}
	}
}

func TestIdempotentProduce(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	createTopic(t, b, "idem", 1, nil)
	p := mustPartition(t, b, "idem", 0)
	runSteps(t, b, p, []step{
		{"first", batch(3, 10, 0, 0), 0, 0},
		{"second", batch(2, 10, 0, 3), 0, 3},
		{"retry of first", batch(3, 10, 0, 0), 0, 0},
		{"retry of second", batch(2, 10, 0, 3), 0, 3},
		{"gap", batch(1, 10, 0, 9), codeOutOfOrderSequence, 0},
		{"plain producer", batch(1, -1, -1, -1), 0, 5},
		{"third", batch(1, 10, 0, 5), 0, 6},
		{"other producer", batch(2, 11, 0, 0), 0, 7},
		{"bumped epoch", batch(1, 10, 1, 0), 0, 9},
		{"fenced old epoch", batch(1, 10, 0, 6), codeInvalidEpoch, 0},
		{"new epoch must start at 0", batch(1, 10, 2, 4), codeOutOfOrderSequence, 0},
		{"unknown producer starts anywhere", batch(1, 12, 3, 500), 0, 10},
	})
	if got := p.Log().NextOffset(); got != 11 {
		t.Fatalf("log end %d, want 11 (duplicates must not be written)", got)
	}
	closeBroker(t, b)

	// After a clean restart the state comes from the snapshot.
	b = openBroker(t, fs)
	p = mustPartition(t, b, "idem", 0)
	runSteps(t, b, p, []step{
		{"retry after restart", batch(1, 10, 1, 0), 0, 9},
		{"old epoch after restart", batch(1, 10, 0, 6), codeInvalidEpoch, 0},
		{"continue after restart", batch(1, 10, 1, 1), 0, 11},
		{"gap after restart", batch(1, 11, 0, 5), codeOutOfOrderSequence, 0},
	})
	closeBroker(t, b)
}

func TestIdempotenceSurvivesCrash(t *testing.T) {
	mem := vfs.NewMem()
	b := openBroker(t, mem)
	createTopic(t, b, "crash", 1, nil)
	p := mustPartition(t, b, "crash", 0)
	// Enough batches that some are in a snapshot and some only in the log.
	for i := int32(0); i < 4; i++ {
		runSteps(t, b, p, []step{{"before snapshot", batch(2, 5, 0, i*2), 0, int64(i) * 2}})
	}
	if err := b.snapshotProducers(); err != nil {
		t.Fatal(err)
	}
	for i := int32(4); i < 7; i++ {
		runSteps(t, b, p, []step{{"after snapshot", batch(2, 5, 0, i*2), 0, int64(i) * 2}})
	}
	mem.CrashDropUnsynced()
	b.Close() // fails: the disk is gone; it must still release everything

	b = openBroker(t, mem.Restart())
	defer closeBroker(t, b)
	p = mustPartition(t, b, "crash", 0)
	runSteps(t, b, p, []step{
		{"retry of the last acknowledged batch", batch(2, 5, 0, 12), 0, 12},
		{"retry of an older one", batch(2, 5, 0, 8), 0, 8},
		{"gap", batch(2, 5, 0, 16), codeOutOfOrderSequence, 0},
		{"next", batch(2, 5, 0, 14), 0, 14},
	})
}

func TestCorruptRetryIsNotADuplicate(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "cr", 1, nil)
	p := mustPartition(t, b, "cr", 0)
	runSteps(t, b, p, []step{{"first", batch(2, 3, 0, 0), 0, 0}})
	bad := batch(2, 3, 0, 0)
	bad[len(bad)-1] ^= 1
	runSteps(t, b, p, []step{{"corrupt retry", bad, codeCorruptMessage, 0}})
}

func TestProduceRequestWithSeveralBatches(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "multi", 1, nil)
	p := mustPartition(t, b, "multi", 0)
	two := append(batch(2, 3, 0, 0), batch(2, 3, 0, 2)...)
	runSteps(t, b, p, []step{
		{"two in sequence", two, 0, 0},
		{"duplicate inside several", append(batch(2, 3, 0, 2), batch(1, 3, 0, 4)...), codeDuplicateSequence, 0},
		{"gap inside request", append(batch(1, 3, 0, 4), batch(1, 3, 0, 9)...), codeOutOfOrderSequence, 0},
		{"next", batch(1, 3, 0, 4), 0, 4},
	})
}

func TestProduceRejectsBadInput(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "bad", 1, map[string]string{"max.message.bytes": "100"})
	p := mustPartition(t, b, "bad", 0)
	corrupt := batch(1, -1, -1, -1)
	corrupt[len(corrupt)-1] ^= 0xff
	txn := batch(1, 4, 0, 0)
	txn[22] |= 1 << 4
	control := batch(1, 4, 0, 0)
	control[22] |= 1 << 5
	tests := []struct {
		name    string
		records []byte
		code    int16
	}{
		{"empty", nil, codeCorruptMessage},
		{"short", []byte{1, 2, 3}, codeCorruptMessage},
		{"truncated", batch(2, -1, -1, -1)[:70], codeCorruptMessage},
		{"crc", corrupt, codeCorruptMessage},
		{"too large", batch(20, -1, -1, -1), codeMessageTooLarge},
		{"transactional", txn, codeInvalidTxnState},
		{"control", control, codeInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, code, _ := p.Produce(tt.records)
			if code != tt.code {
				t.Fatalf("code %d, want %d", code, tt.code)
			}
			if p.Log().NextOffset() != 0 {
				t.Fatal("bad input was written")
			}
		})
	}
}

func TestSequenceWrapThroughProduce(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "wrap", 1, nil)
	p := mustPartition(t, b, "wrap", 0)
	runSteps(t, b, p, []step{
		{"near max", batch(2, 1, 0, math.MaxInt32-2), 0, 0},
		{"across max", batch(3, 1, 0, math.MaxInt32), 0, 2},
		{"after wrap", batch(1, 1, 0, 2), 0, 5},
		{"retry across max", batch(3, 1, 0, math.MaxInt32), 0, 2},
	})
}

func TestInitProducerID(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	init := func(v int16, pid int64, epoch int16, txn *string) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.ProducerID, req.ProducerEpoch, req.TransactionalID = v, pid, epoch, txn
		return b.InitProducerID(ctx, req)
	}
	seen := map[int64]bool{}
	for i := 0; i < 3; i++ {
		r := init(4, -1, -1, nil)
		if r.ErrorCode != 0 || r.ProducerEpoch != 0 || seen[r.ProducerID] {
			t.Fatalf("init %d: %+v", i, r)
		}
		seen[r.ProducerID] = true
	}
	if r := init(4, 1, 3, nil); r.ErrorCode != 0 || r.ProducerID != 1 || r.ProducerEpoch != 4 {
		t.Fatalf("KIP-360 bump: %+v", r)
	}
	if r := init(4, 1, math.MaxInt16-1, nil); r.ErrorCode != 0 || r.ProducerID == 1 || r.ProducerEpoch != 0 {
		t.Fatalf("epoch exhausted: %+v", r)
	}
	txn := "tx"
	if r := init(4, -1, -1, &txn); r.ErrorCode != codeTransactionalIDNotAllowed || r.ProducerID != -1 {
		t.Fatalf("transactional: %+v", r)
	}
	closeBroker(t, b)

	// IDs are never handed out twice across restarts.
	b = openBroker(t, fs)
	defer closeBroker(t, b)
	for i := 0; i < 3; i++ {
		if r := init(0, -1, -1, nil); r.ErrorCode != 0 || seen[r.ProducerID] {
			t.Fatalf("after reopen: %+v reuses an ID", r)
		}
	}
}

// TestConcurrentIdempotentProducers runs producers with retries against one
// partition while producer state is snapshotted, then checks that every
// sequence was written exactly once, in order per producer.
func TestConcurrentIdempotentProducers(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	createTopic(t, b, "conc", 1, nil)
	p := mustPartition(t, b, "conc", 0)
	const producers, batches = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, producers+1)
	for pid := int64(0); pid < producers; pid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int32(0); i < batches; i++ {
				first, code, err := p.Produce(batch(2, pid, 0, i*2))
				if code != 0 || err != nil {
					errs <- fmt.Errorf("producer %d batch %d: code %d %v", pid, i, code, err)
					return
				}
				if i%3 == 0 { // a retry must land on the same offsets
					again, code, _ := p.Produce(batch(2, pid, 0, i*2))
					if code != 0 || again.BaseOffset != first.BaseOffset {
						errs <- fmt.Errorf("producer %d retry of %d: code %d offset %d, want %d", pid, i, code, again.BaseOffset, first.BaseOffset)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if err := b.snapshotProducers(); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := b.Store().Sync(); err != nil {
		t.Fatal(err)
	}
	next := map[int64]int32{}
	err := p.Log().ScanHeaders(0, func(h log.BatchHeader) bool {
		if h.BaseSequence != next[h.ProducerID] {
			t.Errorf("producer %d: sequence %d at offset %d, want %d", h.ProducerID, h.BaseSequence, h.BaseOffset, next[h.ProducerID])
		}
		next[h.ProducerID] = h.BaseSequence + 2
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Log().NextOffset(); got != producers*batches*2 {
		t.Fatalf("log end %d, want %d", got, producers*batches*2)
	}
	closeBroker(t, b)
}
