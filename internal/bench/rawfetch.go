package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFetcher is a driver that can read a topic with plain Fetch requests,
// without a client library's per-record work: what the broker's read path
// delivers, as opposed to what one consumer library can decode.
type rawFetcher interface {
	RawFetch(ctx context.Context, topic string, partitions, readers int, want uint64, counter *atomic.Int64) (records uint64, batchBytes int64, secs float64, err error)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RawFetch reads every partition of topic from offset 0 until want records
// arrived, with readers connections side by side (partition i is read by
// reader i mod readers), each sending Fetch v12 requests one after another
// (64 MiB per response, 8 MiB per partition). Every record batch is checked
// as a consumer library would check it — complete, magic 2, CRC-32C over
// attributes..end — and its records counted from the batch header; the
// records themselves are not decoded. counter gets the batches' bytes.
func (k *kafkaDriver) RawFetch(ctx context.Context, topic string, partitions, readers int, want uint64, counter *atomic.Int64) (uint64, int64, float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var records atomic.Uint64
	var batchBytes atomic.Int64
	var doneAt atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, readers)
	for r := 0; r < readers; r++ {
		var parts []int32
		for p := r; p < partitions; p += readers {
			parts = append(parts, int32(p))
		}
		if len(parts) == 0 {
			continue
		}
		fc, err := dialFetchConn(ctx, k.addr)
		if err != nil {
			return 0, 0, 0, err
		}
		defer fc.close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			offsets := make([]int64, len(parts))
			req := kmsg.NewPtrFetchRequest()
			resp := kmsg.NewPtrFetchResponse()
			for ctx.Err() == nil {
				req.Version = 12
				req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 500, 1, 64<<20
				req.SessionEpoch = -1
				t := kmsg.NewFetchRequestTopic()
				t.Topic = topic
				for i, p := range parts {
					fp := kmsg.NewFetchRequestTopicPartition()
					fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offsets[i], 8<<20
					fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
					t.Partitions = append(t.Partitions, fp)
				}
				req.Topics = append(req.Topics[:0], t)
				resp.Default()
				resp.Version = 12
				if err := fc.roundTrip(req, resp); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
					errc <- err
					return
				}
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
							errc <- fmt.Errorf("partition %d: %w", rp.Partition, err)
							return
						}
						i := -1
						for j, p := range parts {
							if p == rp.Partition {
								i = j
							}
						}
						if i < 0 {
							errc <- fmt.Errorf("answer for partition %d, not asked for", rp.Partition)
							return
						}
						n, next, used, err := walkBatches(rp.RecordBatches, offsets[i])
						if err != nil {
							errc <- fmt.Errorf("partition %d: %w", rp.Partition, err)
							return
						}
						offsets[i] = next
						batchBytes.Add(int64(used))
						if counter != nil {
							counter.Add(int64(used))
						}
						if total := records.Add(n); total >= want && total-n < want {
							doneAt.Store(int64(time.Since(start)))
							cancel()
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	el := time.Duration(doneAt.Load())
	if el == 0 {
		el = time.Since(start)
	}
	err := <-errc
	if records.Load() >= want {
		err = nil
	} else if err == nil {
		err = errors.New("stopped before every record was read")
	}
	return records.Load(), batchBytes.Load(), el.Seconds(), err
}

// walkBatches checks the record batches (v2) in b, which may end with a
// partial batch (a fetch response cuts at its byte limit), and returns the
// records they hold, the offset after the last, and the bytes of whole
// batches. Batches before from (the start of a batch the fetch offset
// falls inside) are skipped but still checked.
func walkBatches(b []byte, from int64) (records uint64, next int64, used int, err error) {
	next = from
	for len(b) >= 61 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		if size < 61 {
			return records, next, used, fmt.Errorf("batch length %d too small", size-12)
		}
		if size > len(b) {
			break // partial batch at the end of the response
		}
		batch := b[:size]
		if batch[16] != 2 {
			return records, next, used, fmt.Errorf("batch magic %d, want 2", batch[16])
		}
		if crc32.Checksum(batch[21:], castagnoli) != binary.BigEndian.Uint32(batch[17:21]) {
			return records, next, used, fmt.Errorf("batch at offset %d: CRC mismatch", int64(binary.BigEndian.Uint64(batch)))
		}
		base := int64(binary.BigEndian.Uint64(batch))
		last := base + int64(int32(binary.BigEndian.Uint32(batch[23:27])))
		if last >= next {
			records += uint64(binary.BigEndian.Uint32(batch[57:61]))
			next = last + 1
		}
		used += size
		b = b[size:]
	}
	return records, next, used, nil
}

// fetchConn is one Kafka connection of RawFetch: requests written and
// answers read one at a time into a buffer kept across requests (a client
// library allocates each response afresh, which at 64 MiB per response
// costs more than the fetch itself).
type fetchConn struct {
	c    net.Conn
	out  []byte
	in   []byte
	corr int32
}

func dialFetchConn(ctx context.Context, addr string) (*fetchConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	fc := &fetchConn{c: c}
	// A connection closed by the caller's cancellation unblocks a read.
	go func() { <-ctx.Done(); c.Close() }()
	return fc, nil
}

func (f *fetchConn) close() { f.c.Close() }

// roundTrip sends req (a flexible version: request header v2) and decodes
// the answer into resp; resp's byte fields point into f's buffer until the
// next roundTrip.
func (f *fetchConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	f.corr++
	b := append(f.out[:0], 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(f.corr))
	b = append(b, 0xff, 0xff, 0) // null client id, no tagged fields
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	f.out = b
	if _, err := f.c.Write(b); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(f.c, hdr[:]); err != nil {
		return err
	}
	size := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if size < 5 || size > 256<<20 {
		return fmt.Errorf("response size %d", size)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != f.corr {
		return fmt.Errorf("response correlation id %d, want %d", corr, f.corr)
	}
	if cap(f.in) < size-4 {
		f.in = make([]byte, size-4)
	}
	f.in = f.in[:size-4]
	if _, err := io.ReadFull(f.c, f.in); err != nil {
		return err
	}
	// Response header v1: the tagged fields (none) after the correlation id.
	return resp.ReadFrom(f.in[1:])
}
