package group

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// The broker-level power-loss harness: the broker (topics, metadata log,
// partition logs) and the group coordinator (offsets log) share one
// crash-simulating file system, as in `sluice serve`. Producers, topic
// creation and offset commits run concurrently; the power fails with all
// of them in flight (unsynced writes dropped, or kept or torn at random);
// the broker and coordinator recover from what is left, and every
// acknowledged topic, record batch and offset commit is checked.

// plAck is one acknowledged record batch.
type plAck struct {
	base int64
	crc  uint32
	n    int32
}

// plModel is what clients were told.
type plModel struct {
	mu         sync.Mutex
	topics     map[string]int32    // topic → partitions
	batches    map[plTP][]plAck    // acknowledged batches per partition
	commits    map[[3]string]int64 // group, topic, partition → last acknowledged offset
	commitAcks int                 // acknowledged OffsetCommit partitions
	ops        atomic.Int64        // acknowledged operations, to time the crash
}

type plTP struct {
	topic string
	part  int32
}

func (m *plModel) clone() *plModel {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &plModel{topics: map[string]int32{}, batches: map[plTP][]plAck{}, commits: map[[3]string]int64{}, commitAcks: m.commitAcks}
	for k, v := range m.topics {
		c.topics[k] = v
	}
	for k, v := range m.batches {
		c.batches[k] = append([]plAck(nil), v...)
	}
	for k, v := range m.commits {
		c.commits[k] = v
	}
	return c
}

// plResult is one crash point's outcome.
type plResult struct {
	batches, records, topics int      // acknowledged before the crash, all checked
	commits                  int      // group/partition offsets checked (the last acknowledged of each)
	commitAcks               int      // OffsetCommit partitions acknowledged
	losses                   []string // what recovery lost
}

var plCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// plBatch is a record batch v2 of n records whose values name their writer.
func plBatch(n int, tag string) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		val := fmt.Sprintf("%s-%d", tag, i)
		var rec []byte
		rec = append(rec, 0)
		rec = binary.AppendVarint(rec, 0)
		rec = binary.AppendVarint(rec, int64(i))
		rec = binary.AppendVarint(rec, -1)
		rec = binary.AppendVarint(rec, int64(len(val)))
		rec = append(rec, val...)
		rec = binary.AppendVarint(rec, 0)
		records = binary.AppendVarint(records, int64(len(rec)))
		records = append(records, rec...)
	}
	rb := kmsg.RecordBatch{
		Length: int32(49 + len(records)), Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], plCastagnoli))
	return b
}

type plNotifier chan error

func (n plNotifier) Durable(err error) { n <- err }

func plOpen(t *testing.T, fs vfs.FS, d log.Durability, journalLog bool) (*broker.Broker, *Coordinator) {
	t.Helper()
	b, err := broker.Open(broker.Config{FS: fs, DataDir: "/data", NodeID: 1, Host: "127.0.0.1", Port: 9092,
		DefaultPartitions: 1, DefaultDurability: d, JournalLog: journalLog})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	c, err := New(Config{Store: b.Store(), Topics: b, Clock: newManualClock()})
	if err != nil {
		b.Close()
		t.Fatalf("open coordinator: %v", err)
	}
	return b, c
}

func plCreate(b *broker.Broker, name string, partitions int32) int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}
	return b.CreateTopics(context.Background(), req).Topics[0].ErrorCode
}

// plPoint runs one crash point, with the journal as the log (the serve
// default) or with segment files.
func plPoint(t *testing.T, seed uint64, d log.Durability, journalLog bool) plResult {
	rng := rand.New(rand.NewPCG(seed, 11))
	mem := vfs.NewMem()
	b, c := plOpen(t, mem, d, journalLog)
	m := &plModel{topics: map[string]int32{}, batches: map[plTP][]plAck{}, commits: map[[3]string]int64{}}
	if code := plCreate(b, "base", 2); code != 0 {
		t.Fatalf("create base: code %d", code)
	}
	m.topics["base"] = 2

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	pick := func(r *rand.Rand) (string, int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		names := make([]string, 0, len(m.topics))
		for n := range m.topics {
			names = append(names, n)
		}
		name := names[r.IntN(len(names))]
		return name, int32(r.IntN(int(m.topics[name])))
	}
	for w := range 2 { // producers
		r := rand.New(rand.NewPCG(rng.Uint64(), 1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				topic, part := pick(r)
				p, code := b.Partition(topic, part)
				if code != 0 {
					return
				}
				n := 1 + r.IntN(3)
				recs := plBatch(n, fmt.Sprintf("w%d-%d", w, i))
				crc := binary.BigEndian.Uint32(recs[17:])
				res, code, err := p.Produce(recs)
				if code != 0 || err != nil {
					return // the file system is gone
				}
				done := make(plNotifier, 1)
				b.Store().WhenDurable(res.Ticket, done)
				if <-done != nil {
					return
				}
				m.mu.Lock()
				k := plTP{topic, part}
				m.batches[k] = append(m.batches[k], plAck{res.BaseOffset, crc, int32(n)})
				m.mu.Unlock()
				m.ops.Add(1)
			}
		}()
	}
	{ // topic creation
		r := rand.New(rand.NewPCG(rng.Uint64(), 2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 40; i++ {
				name, n := fmt.Sprintf("x%d", i), int32(1+r.IntN(2))
				if plCreate(b, name, n) != 0 {
					return
				}
				m.mu.Lock()
				m.topics[name] = n
				m.mu.Unlock()
				m.ops.Add(1)
			}
		}()
	}
	for g := range 2 { // offset commits, increasing
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("g%d", g)
			for off := int64(1); ctx.Err() == nil; off++ {
				resp, err := c.Handle(ctx, commitReq(group, "", -1, "base", map[int32]int64{0: off, 1: 2 * off}))
				if err != nil || resp == nil {
					return
				}
				ps := resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions
				m.mu.Lock()
				for _, p := range ps {
					if p.ErrorCode == 0 {
						m.commitAcks++
						m.commits[[3]string{group, "base", strconv.Itoa(int(p.Partition))}] = off * int64(1+p.Partition)
					}
				}
				m.mu.Unlock()
				if ps[0].ErrorCode != 0 {
					return
				}
				m.ops.Add(1)
			}
		}()
	}

	// Power fails after a random number of acknowledgements, with every
	// kind of operation in flight. The model is copied under its lock
	// with the crash, so it holds exactly what was acknowledged before.
	target := int64(1 + rng.IntN(120))
	deadline := time.Now().Add(10 * time.Second)
	for m.ops.Load() < target && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	m.mu.Lock()
	if rng.IntN(2) == 0 {
		mem.Crash(rng)
	} else {
		mem.CrashDropUnsynced()
	}
	m.mu.Unlock()
	want := m.clone()
	cancel()
	c.Close()
	wg.Wait()
	b.Close() // fails after the crash; must not hang or leak

	// Recovery, and the check.
	b, c = plOpen(t, mem.Restart(), d, journalLog)
	defer b.Close()
	defer c.Close()
	var res plResult
	res.topics = len(want.topics)
	for name, n := range want.topics {
		got, _, ok := b.TopicPartitions(name)
		if !ok || got < n {
			res.losses = append(res.losses, fmt.Sprintf("topic %s: ok=%v, %d partitions, acknowledged %d", name, ok, got, n))
		}
	}
	for k, acks := range want.batches {
		res.batches += len(acks)
		stored := map[int64]plAck{}
		if p, code := b.Partition(k.topic, k.part); code == 0 {
			stored = plReadBack(t, p.Log())
		}
		for _, a := range acks {
			res.records += int(a.n)
			if got, ok := stored[a.base]; !ok || got != a {
				res.losses = append(res.losses, fmt.Sprintf("%s/%d batch at %d (%d records): found %v %+v", k.topic, k.part, a.base, a.n, ok, got))
			}
		}
	}
	res.commitAcks = want.commitAcks
	for k, off := range want.commits {
		res.commits++
		part, _ := strconv.Atoi(k[2])
		got := plFetchOffset(t, c, k[0], k[1], int32(part))
		if got < off {
			res.losses = append(res.losses, fmt.Sprintf("commit %s %s/%s: recovered %d, acknowledged %d", k[0], k[1], k[2], got, off))
		}
	}
	// The recovered broker takes writes again.
	p, code := b.Partition("base", 0)
	if code != 0 {
		t.Fatalf("seed %d: base/0 after recovery: code %d", seed, code)
	}
	if _, code, err := p.Produce(plBatch(1, "after")); code != 0 || err != nil {
		t.Fatalf("seed %d: produce after recovery: code %d err %v", seed, code, err)
	}
	return res
}

// plReadBack reads every batch of l up to its high watermark, checks each
// batch's CRC-32C (recovery must never serve a corrupt batch) and returns
// them by base offset.
func plReadBack(t *testing.T, l *log.Log) map[int64]plAck {
	t.Helper()
	out := map[int64]plAck{}
	var rr log.ReadResult
	defer rr.Release()
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		if err := l.Read(off, 1<<20, &rr); err != nil {
			t.Fatalf("read %s at %d: %v", l.Name(), off, err)
		}
		if len(rr.Regions) == 0 {
			break
		}
		for _, rg := range rr.Regions {
			buf := make([]byte, rg.Len)
			if _, err := rg.File.ReadAt(buf, rg.Pos); err != nil {
				t.Fatalf("read %s: %v", l.Name(), err)
			}
			for len(buf) > 0 {
				h, err := log.ParseHeader(buf)
				if err != nil || h.TotalSize() > int64(len(buf)) {
					t.Fatalf("%s: malformed batch served at %d: %v", l.Name(), off, err)
				}
				if crc32.Checksum(buf[21:h.TotalSize()], plCastagnoli) != h.CRC {
					t.Fatalf("%s: corrupt batch served at %d", l.Name(), h.BaseOffset)
				}
				out[h.BaseOffset] = plAck{h.BaseOffset, h.CRC, h.NumRecords}
				off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
				buf = buf[h.TotalSize():]
			}
		}
		rr.Release()
	}
	return out
}

func plFetchOffset(t *testing.T, c *Coordinator, group, topic string, part int32) int64 {
	got := fetchOffsets(t, c, group, topic, part)
	return got[part]
}

// plPoints is the number of crash points: SLUICE_BROKER_CRASH_POINTS, else
// 1,000 (200 under the race detector, 100 with -short).
func plPoints(t *testing.T) int {
	if v := os.Getenv("SLUICE_BROKER_CRASH_POINTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	switch {
	case testing.Short():
		return 100
	case raceEnabled:
		return 200
	}
	return 1000
}

// TestBrokerPowerLoss: with the default durability (fsync before the
// acknowledgement), no acknowledged topic, record batch or offset commit
// is lost at any crash point. Odd points run with the journal as the log
// (the serve default), even ones with segment files.
func TestBrokerPowerLoss(t *testing.T) {
	points := plPoints(t)
	var total plResult
	for seed := range points {
		r := plPoint(t, uint64(seed), log.Durability{}, seed%2 == 1)
		if len(r.losses) > 0 {
			t.Fatalf("seed %d: %d losses after recovery, first: %s", seed, len(r.losses), r.losses[0])
		}
		total.batches += r.batches
		total.records += r.records
		total.commits += r.commits
		total.topics += r.topics
		total.commitAcks += r.commitAcks
	}
	t.Logf("%d crash points: %d acknowledged batches (%d records), %d topics, %d committed offsets (last of %d acknowledged commits) checked; 0 lost",
		points, total.batches, total.records, total.topics, total.commits, total.commitAcks)
}

// TestBrokerPowerLossNegativeControl: the same harness with
// sluice.durability=none (acknowledged before fsync, Kafka's default)
// must report losses: the check can fail.
func TestBrokerPowerLossNegativeControl(t *testing.T) {
	points := max(plPoints(t)/10, 20)
	detected, lost := 0, 0
	for seed := range points {
		r := plPoint(t, uint64(seed), log.Durability{Kind: log.DurabilityNone}, seed%2 == 1)
		if len(r.losses) > 0 {
			detected++
			lost += len(r.losses)
		}
	}
	t.Logf("durability=none: %d of %d crash points lost acknowledged data (%d items)", detected, points, lost)
	if detected == 0 {
		t.Fatal("no loss detected without fsync: the harness cannot fail")
	}
}
