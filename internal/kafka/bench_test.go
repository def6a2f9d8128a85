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
