package broker

import (
	"fmt"
	"math/rand/v2"
	"path"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// model is what a client was told: acknowledged topics (name → partition
// count and retention.ms) and producer IDs handed out.
type model struct {
	topics map[string]modelTopic
	pids   map[int64]bool
}

type modelTopic struct {
	partitions int32
	retention  string
}

// adminOp runs one random admin operation and records in m what it
// acknowledged.
func adminOp(b *Broker, rng *rand.Rand, m *model, mu *sync.Mutex) {
	name := fmt.Sprintf("t%d", rng.IntN(6))
	switch rng.IntN(5) {
	case 0, 1:
		req := kmsg.NewPtrCreateTopicsRequest()
		n := int32(1 + rng.IntN(3))
		ret := fmt.Sprint(1000 + rng.IntN(1000))
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: n, ReplicationFactor: 1,
			Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: &ret}}}}
		if b.CreateTopics(ctx, req).Topics[0].ErrorCode == 0 {
			mu.Lock()
			m.topics[name] = modelTopic{n, ret}
			mu.Unlock()
		}
	case 2:
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{name}
		if b.DeleteTopics(ctx, req).Topics[0].ErrorCode == 0 {
			mu.Lock()
			delete(m.topics, name)
			mu.Unlock()
		}
	case 3:
		mu.Lock()
		cur, ok := m.topics[name]
		mu.Unlock()
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: name, Count: cur.partitions + 1}}
		if ok && b.CreatePartitions(ctx, req).Topics[0].ErrorCode == 0 {
			mu.Lock()
			cur.partitions++
			m.topics[name] = cur
			mu.Unlock()
		}
	case 4:
		r := b.InitProducerID(ctx, kmsg.NewPtrInitProducerIDRequest())
		if r.ErrorCode == 0 {
			mu.Lock()
			m.pids[r.ProducerID] = true
			mu.Unlock()
		}
	}
}

// TestMetadataPowerLoss runs random admin operations, crashes the file
// system (unsynced writes dropped or torn) with one operation in flight, and
// checks that everything acknowledged survived and the broker reopens.
func TestMetadataPowerLoss(t *testing.T) {
	defer func(n int32) { producerIDBlock = n }(producerIDBlock)
	producerIDBlock = 2 // exercise block reservation often
	defer func(n int) { metaSnapshotEvery = n }(metaSnapshotEvery)
	metaSnapshotEvery = 7

	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			mem := vfs.NewMem()
			m := &model{topics: map[string]modelTopic{}, pids: map[int64]bool{}}
			var mu sync.Mutex
			fs := mem
			// Several power cycles per seed.
			for cycle := 0; cycle < 3; cycle++ {
				b, err := Open(testConfig(fs))
				if err != nil {
					t.Fatalf("cycle %d: open: %v", cycle, err)
				}
				checkModel(t, b, m, &mu)
				for i, n := 0, rng.IntN(12); i < n; i++ {
					adminOp(b, rng, m, &mu)
				}
				// One operation in flight while the power goes.
				var wg sync.WaitGroup
				wg.Add(1)
				opRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
				go func() { defer wg.Done(); adminOp(b, opRng, m, &mu) }()
				if rng.IntN(2) == 0 {
					fs.Crash(rng)
				} else {
					fs.CrashDropUnsynced()
				}
				wg.Wait()
				b.Close() // fails after the crash; must not hang or leak
				fs = fs.Restart()
			}
		})
	}
}

// checkModel verifies that b holds every acknowledged topic and that
// producer IDs are not handed out again.
func checkModel(t *testing.T, b *Broker, m *model, mu *sync.Mutex) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for name, want := range m.topics {
		n, _, ok := b.TopicPartitions(name)
		if !ok || n < want.partitions {
			t.Fatalf("acknowledged topic %s: ok=%v partitions %d, want %d", name, ok, n, want.partitions)
		}
		b.mu.RLock()
		got := b.state.topics[name].configs["retention.ms"]
		b.mu.RUnlock()
		if got != want.retention {
			// A create acknowledged, deleted and recreated in flight can
			// legitimately differ only if the in-flight op succeeded; the
			// model records only acknowledged ones, so this is a loss.
			t.Fatalf("topic %s retention.ms %s, want %s", name, got, want.retention)
		}
		for i := int32(0); i < n; i++ {
			if _, code := b.Partition(name, i); code != 0 {
				t.Fatalf("topic %s partition %d: code %d", name, i, code)
			}
		}
	}
	for name := range b.state.topics {
		if _, ok := m.topics[name]; !ok {
			// Only the in-flight operation may have created it; it must
			// still be a complete topic.
			if n, _, _ := b.TopicPartitions(name); n < 1 {
				t.Fatalf("unacknowledged topic %s has no partitions", name)
			}
			m.topics[name] = modelTopic{b.state.topics[name].partitions, b.state.topics[name].configs["retention.ms"]}
		}
	}
	for name, want := range m.topics {
		if _, ok := b.state.topics[name]; !ok {
			t.Fatalf("topic %s lost (want %+v)", name, want)
		}
	}
	for i := 0; i < 3; i++ {
		r := b.InitProducerID(ctx, kmsg.NewPtrInitProducerIDRequest())
		if r.ErrorCode != 0 || m.pids[r.ProducerID] {
			t.Fatalf("producer ID %d (code %d) handed out twice", r.ProducerID, r.ErrorCode)
		}
		m.pids[r.ProducerID] = true
	}
}

func TestMetadataSnapshotTrimsLog(t *testing.T) {
	defer func(n int) { metaSnapshotEvery = n }(metaSnapshotEvery)
	metaSnapshotEvery = 5
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	for i := 0; i < 12; i++ {
		createTopic(t, b, fmt.Sprintf("s%02d", i), 1, map[string]string{"segment.ms": fmt.Sprint(60000 + i)})
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"s03", "s07"}
	b.DeleteTopics(ctx, req)
	if b.meta.LogStartOffset() == 0 {
		t.Fatal("metadata log not trimmed after snapshots")
	}
	if _, ok, _ := readWhole(fs, path.Join(b.meta.Dir(), metaSnapshotFile)); !ok {
		t.Fatal("no metadata snapshot")
	}
	wantIDs := map[string][16]byte{}
	for _, name := range b.state.topicNames() {
		wantIDs[name] = b.state.topics[name].id
	}
	// Crash rather than close: the state must come from snapshot + log tail.
	fs.CrashDropUnsynced()
	b.Close()
	b = openBroker(t, fs.Restart())
	defer closeBroker(t, b)
	if len(b.state.topics) != 10 {
		t.Fatalf("%d topics after reopen, want 10", len(b.state.topics))
	}
	for name, id := range wantIDs {
		_, got, ok := b.TopicPartitions(name)
		if !ok || got != id {
			t.Fatalf("topic %s: ok=%v id %x, want %x", name, ok, got, id)
		}
		if b.state.topics[name].configs["segment.ms"] == "" {
			t.Fatalf("topic %s lost its configs", name)
		}
	}
}

// TestProducerStatePowerLoss produces idempotent batches (snapshotting the
// producer state now and then), loses power with torn writes, and checks
// after each restart that a retry of the last acknowledged batch is
// answered with its original offset and not written again, and that the
// producer continues where it left off.
func TestProducerStatePowerLoss(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 3))
			mem := vfs.NewMem()
			fs := mem
			seq := int32(0)
			lastAcked := int64(-1) // base offset of the last acknowledged batch
			lastSeq := int32(-1)
			for cycle := 0; cycle < 3; cycle++ {
				b, err := Open(testConfig(fs))
				if err != nil {
					t.Fatalf("cycle %d: open: %v", cycle, err)
				}
				if cycle == 0 {
					createTopic(t, b, "ps", 1, nil)
				}
				p := mustPartition(t, b, "ps", 0)
				if lastAcked >= 0 {
					res, code, err := p.Produce(batch(2, 9, 0, lastSeq))
					if code != 0 || err != nil || res.BaseOffset != lastAcked {
						t.Fatalf("cycle %d: retry of the last acknowledged batch: code %d offset %d, want %d", cycle, code, res.BaseOffset, lastAcked)
					}
				}
				// The log may also hold batches produced but never
				// acknowledged before the crash; continue after whatever
				// survived.
				var end int32 = -1
				if err := p.Log().ScanHeaders(0, func(h log.BatchHeader) bool { end = h.BaseSequence + h.LastOffsetDelta; return true }); err != nil {
					t.Fatal(err)
				}
				seq = end + 1
				for i, n := 0, 1+rng.IntN(8); i < n; i++ {
					res, code := produce(t, b, p, batch(2, 9, 0, seq))
					if code != 0 {
						t.Fatalf("cycle %d: produce seq %d: code %d", cycle, seq, code)
					}
					lastAcked, lastSeq = res.BaseOffset, seq
					seq += 2
					if rng.IntN(3) == 0 {
						if err := b.snapshotProducers(); err != nil {
							t.Fatal(err)
						}
					}
				}
				// Unacknowledged writes in flight when the power goes.
				p.Produce(batch(2, 9, 0, seq))
				fs.Crash(rng)
				b.Close()
				fs = fs.Restart()
			}
		})
	}
}
