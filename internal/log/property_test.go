package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// modelLog is the obviously-correct model: a list of batches with offsets
// and a log start offset.
type modelLog struct {
	batches [][]byte
	bases   []int64
	next    int64
	start   int64
}

func (m *modelLog) firstIndexFrom(offset int64) int {
	for i, b := range m.bases {
		h, _ := ParseHeader(m.batches[i])
		if b+int64(h.LastOffsetDelta) >= offset {
			return i
		}
	}
	return len(m.bases)
}

// TestPropertyAgainstModel drives random sequences of append, read, roll,
// retention, DeleteRecords and reopen, checking the log against the model
// after every step: offsets contiguous, reads return exactly what was
// appended.
func TestPropertyAgainstModel(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 40
	}
	for it := 0; it < iterations; it++ {
		rng := rand.New(rand.NewPCG(42, uint64(it)))
		propertyRound(t, rng, it)
		if t.Failed() {
			return
		}
	}
}

func propertyRound(t *testing.T, rng *rand.Rand, it int) {
	fs := vfs.NewMem()
	clk := newFakeClock(time.Unix(0, 0))
	opts := StoreOptions{Clock: clk.now, RetentionCheckInterval: -1, JournalCheckpointBytes: 4096}
	s := openMem(t, fs, opts)
	defer func() { s.Close() }()
	cfg := Config{SegmentBytes: int64(512 + rng.IntN(4096)), IndexIntervalBytes: int32(32 + rng.IntN(512))}
	if rng.IntN(2) == 0 {
		cfg.Durability.Kind = DurabilityNone
	}
	l, err := s.Open("m-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &modelLog{}
	var last Ticket
	for step := 0; step < 150; step++ {
		switch op := rng.IntN(100); {
		case op < 60:
			b := makeBatch(1+rng.IntN(5), rng.IntN(200), int64(step), byte(step))
			res, err := l.Append(b, 0)
			if err != nil {
				t.Fatalf("it %d step %d append: %v", it, step, err)
			}
			if res.BaseOffset != m.next {
				t.Fatalf("it %d: base %d, model %d", it, res.BaseOffset, m.next)
			}
			m.batches = append(m.batches, b)
			m.bases = append(m.bases, m.next)
			h, _ := ParseHeader(b)
			m.next = h.LastOffset() + 1
			last = res.Ticket
		case op < 75:
			waitDurable(t, s, last)
			if l.HighWatermark() != m.next {
				t.Fatalf("it %d: hw %d, model %d", it, l.HighWatermark(), m.next)
			}
			from := m.start
			if m.next > m.start {
				from += rng.Int64N(m.next - m.start)
			}
			maxBytes := int64(1 + rng.IntN(3000))
			var res ReadResult
			if err := l.Read(from, maxBytes, &res); err != nil {
				t.Fatalf("it %d: read %d: %v", it, from, err)
			}
			var got []byte
			for _, r := range res.Regions {
				b := make([]byte, r.Len)
				r.File.ReadAt(b, r.Pos)
				got = append(got, b...)
			}
			res.Release()
			i := m.firstIndexFrom(from)
			var want []byte
			for ; i < len(m.batches); i++ {
				if len(want) > 0 && int64(len(want)+len(m.batches[i])) > maxBytes {
					break
				}
				want = append(want, m.batches[i]...)
			}
			if !bytes.HasPrefix(want, got) || (len(got) == 0 && from < m.next) {
				t.Fatalf("it %d: read from %d max %d: got %d bytes, model %d", it, from, maxBytes, len(got), len(want))
			}
		case op < 82:
			waitDurable(t, s, last)
			target := m.start
			if m.next > m.start {
				target += rng.Int64N(m.next - m.start + 1)
			}
			got, err := l.DeleteRecords(target)
			if err != nil || got != max(target, m.start) {
				t.Fatalf("it %d: delete records %d: %d %v", it, target, got, err)
			}
			m.start = got
		case op < 88:
			waitDurable(t, s, last)
			l.SetConfig(Config{SegmentBytes: cfg.SegmentBytes, IndexIntervalBytes: cfg.IndexIntervalBytes,
				Durability: cfg.Durability, RetentionBytes: int64(500 + rng.IntN(3000))})
			if err := s.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			l.SetConfig(cfg)
			m.start = max(m.start, l.LogStartOffset())
			if l.LogStartOffset() != m.start {
				t.Fatalf("it %d: start %d model %d", it, l.LogStartOffset(), m.start)
			}
		case op < 94:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openMem(t, fs, opts)
			if l, err = s.Open("m-0", cfg); err != nil {
				t.Fatal(err)
			}
			last = 0
			if l.NextOffset() != m.next || l.LogStartOffset() < m.start {
				t.Fatalf("it %d: reopen next %d start %d, model %d %d", it, l.NextOffset(), l.LogStartOffset(), m.next, m.start)
			}
			m.start = l.LogStartOffset()
		default:
			// Reads below the start or past the high watermark are errors.
			var res ReadResult
			if m.start > 0 {
				if err := l.Read(m.start-1, 10, &res); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("it %d: read below start: %v", it, err)
				}
			}
			// Appends may still be in flight, so the high watermark can
			// move under the test; one past the next offset is beyond
			// every high watermark it can reach.
			if err := l.Read(m.next+1, 10, &res); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("it %d: read past next offset: %v", it, err)
			}
			waitDurable(t, s, last)
			if err := l.Read(l.HighWatermark()+1, 10, &res); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("it %d: read past hw: %v", it, err)
			}
		}
	}
	// Everything from the start is exactly the model.
	waitDurable(t, s, last)
	got := readAll(t, l, l.LogStartOffset())
	i := m.firstIndexFrom(l.LogStartOffset())
	if len(got) != len(m.batches)-i {
		t.Fatalf("it %d: %d batches, model %d", it, len(got), len(m.batches)-i)
	}
	for j := range got {
		if !bytes.Equal(got[j], m.batches[i+j]) {
			t.Fatal(fmt.Sprintf("it %d: batch %d differs", it, j))
		}
	}
}
