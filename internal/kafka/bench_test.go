package kafka

import (
	"bytes"
	"testing"

	"github.com/sluice-mq/sluice/internal/log"
)

// BenchmarkProduce: one connection keeping 5 produce requests in flight
// (as Kafka clients do), each one 16 KiB batch of 16 records of 1 KiB, over
// loopback to an in-process server on the real disk. Allocations include
// the client side's response decoding.
func BenchmarkProduce(b *testing.B) {
	for _, pol := range []struct {
		name string
		d    log.Durability
	}{{"fsync", log.Durability{Kind: log.DurabilityFsync}}, {"none", log.Durability{Kind: log.DurabilityNone}}} {
		b.Run("durability="+pol.name+"/batch=16KiB", func(b *testing.B) {
			ts := startServer(b, withDurability(pol.d))
			ts.createTopic("bench", 1)
			c := ts.dial()
			defer c.close()
			batch := makeBatch(16, bytes.Repeat([]byte{'x'}, 1000))
			req := produceRequest(9, -1, "bench", 0, batch)
			frame := c.f.AppendRequest(nil, req, 0)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			const window = 5
			inflight := 0
			buf := make([]byte, 4096)
			for i := 0; i < b.N; i++ {
				if inflight == window {
					if _, err := c.readFrameInto(buf); err != nil {
						b.Fatal(err)
					}
					inflight--
				}
				if _, err := c.nc.Write(frame); err != nil {
					b.Fatal(err)
				}
				inflight++
			}
			for ; inflight > 0; inflight-- {
				if _, err := c.readFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFetch: catch-up reads of 1 MiB per fetch from a partition
// written beforehand (records sent with sendfile from the page cache).
func BenchmarkFetch(b *testing.B) {
	ts := startServer(b, withDurability(log.Durability{Kind: log.DurabilityNone}))
	ts.createTopic("bench", 1)
	const batches = 1024 // 16 MiB
	c := ts.dial()
	defer c.close()
	batch := makeBatch(16, bytes.Repeat([]byte{'x'}, 1000))
	for i := 0; i < batches; i++ {
		b := append([]byte(nil), batch...)
		c.send(produceRequest(9, 1, "bench", 0, b))
	}
	for i := 0; i < batches; i++ {
		if _, err := c.readFrame(); err != nil {
			b.Fatal(err)
		}
	}
	end := int64(batches * 16)
	req := fetchRequest(11, "bench", 0, 0, 0, 0)
	req.MaxBytes = 1 << 20
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1 << 20
	buf := make([]byte, 2<<20)
	b.ReportAllocs()
	b.ResetTimer()
	var total int64
	offset := int64(0)
	for i := 0; i < b.N; i++ {
		req.Topics[0].Partitions[0].FetchOffset = offset
		c.send(req)
		frame, err := c.readFrameInto(buf)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(frame))
		// 1 MiB holds 63 whole batches of 16 records.
		offset += 63 * 16
		if offset >= end-63*16 {
			offset = 0
		}
	}
	b.SetBytes(total / int64(b.N))
}

// benchRecords is 16 records of 1 KiB of JSON-like text, as a producer's
// 16 KiB batch.
func benchRecords() []byte {
	value := make([]byte, 1000)
	words := []string{`"user":`, `"id":`, `12345`, `"name":"ada",`, `"ts":1700000000`, `{`, `}`, `,`, `"ok"`}
	seed := uint32(1)
	var out []byte
	for r := 0; r < 16; r++ {
		for i := 0; i < len(value); {
			seed = seed*1664525 + 1013904223
			i += copy(value[i:], words[seed>>28%uint32(len(words))])
			if i < len(value) {
				value[i] = '0' + byte(seed>>8%10)
				i++
			}
		}
		out = append(out, record(int64(r), nil, value)...)
	}
	return out
}

// BenchmarkValidateCompressed: the produce path's validation of one
// compressed 16 KiB batch (inflating, parsing its 16 records), per codec,
// next to the CRC-32C check every batch pays in the log ("crc-only").
// Bytes are the inflated records.
func BenchmarkValidateCompressed(b *testing.B) {
	recs := benchRecords()
	b.Run("crc-only", func(b *testing.B) {
		batch := compressedBatch(0, 16, recs)
		b.SetBytes(int64(len(recs)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := log.ValidateRecordSet(batch, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	for codec := 1; codec <= 5; codec++ {
		cd, payload := compressWith(b, codec, recs)
		batch := compressedBatch(cd, 16, payload)
		b.Run("codec="+codecName[codec], func(b *testing.B) {
			b.ReportMetric(float64(len(recs))/float64(len(payload)), "ratio")
			b.SetBytes(int64(len(recs)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := validateCompressed(batch, DefaultMaxInflatedBatchBytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
