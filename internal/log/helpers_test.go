package log

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// makeBatch builds a valid, uncompressed record batch v2 of n records with
// values of valueSize bytes, as a producer would (base offset 0).
func makeBatch(n, valueSize int, ts int64, fill byte) []byte {
	return appendBatch(nil, n, valueSize, ts, fill)
}

func appendBatch(dst []byte, n, valueSize int, ts int64, fill byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, batchHeaderSize)...)
	for i := 0; i < n; i++ {
		var rec []byte
		rec = append(rec, 0)                             // attributes
		rec = binary.AppendVarint(rec, 0)                // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))         // offset delta
		rec = binary.AppendVarint(rec, -1)               // key: null
		rec = binary.AppendVarint(rec, int64(valueSize)) // value length
		for j := 0; j < valueSize; j++ {
			rec = append(rec, fill+byte(i+j))
		}
		rec = binary.AppendVarint(rec, 0) // headers
		dst = binary.AppendVarint(dst, int64(len(rec)))
		dst = append(dst, rec...)
	}
	b := dst[start:]
	binary.BigEndian.PutUint64(b[0:], 0)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchOverhead))
	binary.BigEndian.PutUint32(b[12:], 0)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], 0)
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], ^uint16(0))
	binary.BigEndian.PutUint32(b[53:], ^uint32(0))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return dst
}

// fakeClock is a settable clock, safe for the store's goroutines.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// waitDurable blocks until ticket t is durable.
func waitDurable(t testing.TB, s *Store, ticket Ticket) {
	t.Helper()
	ch := make(chanNotifier, 1)
	s.WhenDurable(ticket, ch)
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("ticket %d: %v", ticket, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("ticket %d not durable after 10s", ticket)
	}
}

// readAll reads every batch from offset from to the high watermark.
func readAll(t testing.TB, l *Log, from int64) [][]byte {
	t.Helper()
	var out [][]byte
	var res ReadResult
	for from < l.HighWatermark() {
		if err := l.Read(from, 1<<20, &res); err != nil {
			t.Fatalf("read %s at %d: %v", l.name, from, err)
		}
		if len(res.Regions) == 0 {
			t.Fatalf("read %s at %d below hw %d returned nothing", l.name, from, l.HighWatermark())
		}
		for _, r := range res.Regions {
			buf := make([]byte, r.Len)
			if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
				t.Fatalf("read region: %v", err)
			}
			for len(buf) > 0 {
				h, size, err := checkBatch(buf)
				if err != nil {
					t.Fatalf("%s served an invalid batch at offset %d: %v", l.name, from, err)
				}
				if len(out) > 0 && h.BaseOffset != from {
					t.Fatalf("%s: batch at offset %d follows offset %d", l.name, h.BaseOffset, from-1)
				}
				out = append(out, buf[:size])
				from = h.LastOffset() + 1
				buf = buf[size:]
			}
		}
		res.Release()
	}
	return out
}

func tempDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "sluice-log-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
