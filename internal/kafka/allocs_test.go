package kafka

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/sluice-mq/sluice/internal/log"
)

// TestProduceAllocsPerRecord: a produce request's allocations (server and
// test client together, the client reusing its buffers) do not grow with
// the number of records in its batch.
func TestProduceAllocsPerRecord(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	// Segment files, durability none: the request path alone. With the
	// journal log each commit group costs a few allocations (none per
	// record: internal/log TestAppendAllocs), which land on requests
	// unevenly as groups form.
	ts := startServer(t, withSegmentLog, withDurability(log.Durability{Kind: log.DurabilityNone}))
	ts.createTopic("alloc", 1)
	c := ts.dial()
	defer c.close()
	buf := make([]byte, 4096)
	measure := func(records int) float64 {
		frame := c.f.AppendRequest(nil, produceRequest(9, -1, "alloc", 0, makeBatch(records, []byte("0123456789"))), 1)
		return testing.AllocsPerRun(200, func() {
			if _, err := c.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := c.readFrameInto(buf); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := measure(1), measure(1000)
	t.Logf("allocations per produce request: %.1f (1 record), %.1f (1000 records)", one, many)
	if many > one+1 {
		t.Fatalf("1000 records cost %.1f allocations, 1 record %.1f: allocation per record", many, one)
	}
	// A 4 MiB produce frame is read into a reused mapping (bigframe.go):
	// no heap bytes per request in proportion to its size.
	frame := c.f.AppendRequest(nil, produceRequest(9, -1, "alloc", 0, makeBatch(230_000, []byte("0123456789"))), 1)
	if len(frame) < 4<<20 {
		t.Fatalf("test frame of %d bytes, want >= 4 MiB", len(frame))
	}
	big := func() {
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := c.readFrameInto(buf); err != nil {
			t.Fatal(err)
		}
	}
	big()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < 20; i++ {
		big()
	}
	runtime.ReadMemStats(&m1)
	per := (m1.TotalAlloc - m0.TotalAlloc) / 20
	t.Logf("heap bytes per 4 MiB produce request: %d", per)
	if per > 64<<10 {
		t.Fatalf("a %d-byte produce request allocated %d heap bytes", len(frame), per)
	}
}

// TestFetchAllocsPerBatch: a fetch's allocations do not grow with the
// number of batches it returns.
func TestFetchAllocsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, journalLog := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal-log=%v", journalLog), func(t *testing.T) {
			// Journal log: batches served from the journal's files, one
			// region per produced batch (fsync: produceN then waits until
			// they are readable).
			opts := []serverOpt{withDurability(log.Durability{})}
			if !journalLog {
				opts = []serverOpt{withSegmentLog, withDurability(log.Durability{Kind: log.DurabilityNone})}
			}
			fetchAllocsPerBatch(t, startServer(t, opts...))
		})
	}
}

func fetchAllocsPerBatch(t *testing.T, ts *testServer) {
	ts.createTopic("alloc", 1)
	ts.produceN("alloc", 0, 100, 10, 100)
	c := ts.dial()
	defer c.close()
	buf := make([]byte, 1<<20)
	batch := len(makeBatch(10, bytes.Repeat([]byte{0}, 100)))
	measure := func(batches int) float64 {
		req := fetchRequest(11, "alloc", 0, 0, 0, 0)
		req.Topics[0].Partitions[0].PartitionMaxBytes = int32(batches * batch)
		frame := c.f.AppendRequest(nil, req, 1)
		return testing.AllocsPerRun(200, func() {
			if _, err := c.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := c.readFrameInto(buf); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := measure(1), measure(100)
	t.Logf("allocations per fetch: %.1f (1 batch), %.1f (100 batches)", one, many)
	if many > one+1 {
		t.Fatalf("100 batches cost %.1f allocations, 1 batch %.1f", many, one)
	}
}

// TestProduceCompressedAllocsPerRecord: validating a compressed batch on
// produce (every codec) allocates nothing per record once the decoders are
// warm.
func TestProduceCompressedAllocsPerRecord(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	// Segment files, durability none: the request path alone. With the
	// journal log each commit group costs a few allocations (none per
	// record: internal/log TestAppendAllocs), which land on requests
	// unevenly as groups form.
	ts := startServer(t, withSegmentLog, withDurability(log.Durability{Kind: log.DurabilityNone}))
	ts.createTopic("alloc", 1)
	c := ts.dial()
	defer c.close()
	buf := make([]byte, 4096)
	for codec := 1; codec <= 5; codec++ {
		measure := func(n int) float64 {
			cd, payload := compressWith(t, codec, records(n, []byte("0123456789")))
			frame := c.f.AppendRequest(nil, produceRequest(9, -1, "alloc", 0, compressedBatch(cd, n, payload)), 1)
			return testing.AllocsPerRun(200, func() {
				if _, err := c.nc.Write(frame); err != nil {
					t.Fatal(err)
				}
				resp, err := c.readFrameInto(buf)
				if err != nil {
					t.Fatal(err)
				}
				// The partition's error code: a rejected batch would
				// make the figures meaningless.
				if code := resp[len(resp)-30 : len(resp)-28]; code[0] != 0 || code[1] != 0 {
					t.Fatalf("%s: produce failed: % x", codecName[codec], resp)
				}
			})
		}
		one, many := measure(1), measure(1000)
		t.Logf("%s: allocations per produce request: %.1f (1 record), %.1f (1000 records)", codecName[codec], one, many)
		if many > one+1 {
			t.Fatalf("%s: 1000 records cost %.1f allocations, 1 record %.1f: allocation per record", codecName[codec], many, one)
		}
	}
}
