package kafka

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestFetchEncodingMatchesKmsg: the hand-written fetch response, with its
// records spliced in from files, is byte-identical to kmsg's encoding of
// the same response, at every served version.
func TestFetchEncodingMatchesKmsg(t *testing.T) {
	mem := vfs.NewMem()
	if err := mem.MkdirAll("d"); err != nil {
		t.Fatal(err)
	}
	f, err := mem.Create("d/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var file []byte
	for i := 0; i < 8; i++ {
		file = append(file, makeBatch(1+i, bytes.Repeat([]byte{byte('a' + i)}, 10*i))...)
	}
	if _, err := f.WriteAt(file, 0); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for v := int16(4); v <= 16; v++ {
		for trial := 0; trial < 20; trial++ {
			t.Run(fmt.Sprintf("v%d/%d", v, trial), func(t *testing.T) {
				req := kmsg.NewPtrFetchRequest()
				req.Version = v
				want := kmsg.NewPtrFetchResponse()
				want.Version = v
				var parts []fetchPart
				for ti := 0; ti < rng.IntN(3); ti++ {
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic = fmt.Sprintf("topic-%d", ti)
					rt.TopicID = [16]byte{byte(ti), 9, 9}
					wt := kmsg.NewFetchResponseTopic()
					wt.Topic, wt.TopicID = rt.Topic, rt.TopicID
					if v >= 13 {
						wt.Topic = ""
					}
					for pi := 0; pi < rng.IntN(4); pi++ {
						rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
						p := fetchPart{partition: int32(pi), hw: rng.Int64N(1 << 40), logStart: rng.Int64N(100)}
						wp := kmsg.NewFetchResponseTopicPartition()
						wp.Partition, wp.HighWatermark, wp.LastStableOffset, wp.LogStartOffset = p.partition, p.hw, p.hw, p.logStart
						if v < 5 {
							wp.LogStartOffset = -1 // not on the wire before v5
						}
						wp.RecordBatches = []byte{}
						switch rng.IntN(3) {
						case 0:
							p.code = errUnknownTopicOrPartition
							wp.ErrorCode = p.code
						case 1:
							// Two regions, like a read spanning two segments.
							a := rng.IntN(len(file))
							b := a + rng.IntN(len(file)-a)
							c := b + rng.IntN(len(file)-b)
							p.res.Regions = []log.Region{{File: f, Pos: int64(a), Len: int64(b - a)}, {File: f, Pos: int64(b), Len: int64(c - b)}}
							p.res.Bytes = int64(c - a)
							wp.RecordBatches = file[a:c]
						}
						parts = append(parts, p)
						wt.Partitions = append(wt.Partitions, wp)
					}
					req.Topics = append(req.Topics, rt)
					want.Topics = append(want.Topics, wt)
				}
				headerV1 := v >= 12
				sl := &slot{correlation: 77, headerV1: headerV1}
				var r fetchResponse
				r.encode(sl, req, parts)
				defer r.reset()
				got := assemble(t, &r)

				exp := appendResponseHeader(nil, 77, headerV1)
				exp = want.AppendTo(exp)
				finishFrame(exp, 0, 0)
				if !bytes.Equal(got, exp) {
					t.Fatalf("encoding differs from kmsg:\n got %x\nwant %x", got, exp)
				}
				// And kmsg decodes it back.
				dec := kmsg.NewPtrFetchResponse()
				dec.Version = v
				body := got[8:]
				if headerV1 {
					body = body[1:]
				}
				if err := dec.ReadFrom(body); err != nil {
					t.Fatalf("kmsg decode: %v", err)
				}
			})
		}
	}
}

// assemble produces the bytes writeFetch would send.
func assemble(t *testing.T, r *fetchResponse) []byte {
	head := *r.head
	var out []byte
	prev := 0
	for _, cut := range r.cuts {
		out = append(out, head[prev:cut.at]...)
		prev = cut.at
		for _, rg := range r.parts[cut.part].res.Regions {
			b := make([]byte, rg.Len)
			if _, err := rg.File.ReadAt(b, rg.Pos); err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
	}
	return append(out, head[prev:]...)
}

func fetchRequest(version int16, topic string, partition int32, offset int64, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = minBytes
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produceN produces batches of records and returns the batches as sent.
func (ts *testServer) produceN(topic string, partition int32, batches, perBatch, valueSize int) [][]byte {
	ts.t.Helper()
	c := ts.dial()
	defer c.close()
	var sent [][]byte
	for i := 0; i < batches; i++ {
		b := makeBatch(perBatch, bytes.Repeat([]byte{byte(i)}, valueSize))
		sent = append(sent, append([]byte(nil), b...))
		r := c.request(produceRequest(9, -1, topic, partition, b)).(*kmsg.ProduceResponse)
		if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
			ts.t.Fatalf("produce: error %d", code)
		}
	}
	return sent
}

func decodeBatches(t *testing.T, raw []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(raw) >= 12 {
		var b kmsg.RecordBatch
		n := int(int32(uint32(raw[8])<<24|uint32(raw[9])<<16|uint32(raw[10])<<8|uint32(raw[11]))) + 12
		if n > len(raw) {
			break // a partial batch at the end is allowed
		}
		if err := b.ReadFrom(raw[:n]); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		out = append(out, b)
		raw = raw[n:]
	}
	return out
}

func TestFetchVersions(t *testing.T) {
	// os-segments: segment files on the OS file system, sent with
	// sendfile. os: the journal as the log, where batches this fresh are
	// copied from the journal's in-memory cache of recent commit groups.
	for _, fsName := range []string{"os", "os-segments", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			var opts []serverOpt
			switch fsName {
			case "mem":
				opts = append(opts, withFS(vfs.NewMem()))
			case "os-segments":
				opts = append(opts, withSegmentLog)
			}
			ts := startServer(t, opts...)
			ts.createTopic("f", 2)
			// Large enough batches that os-segments goes through sendfile.
			sent := ts.produceN("f", 1, 6, 40, 1000)
			c := ts.dial()
			defer c.close()
			sendfiles := sendfileCalls.Load()
			for v := int16(4); v <= 16; v++ {
				req := fetchRequest(v, "f", 1, 0, 0, 0)
				if v >= 13 {
					_, id, ok := ts.broker.TopicPartitions("f")
					if !ok {
						t.Fatal("topic f unknown")
					}
					req.Topics[0].TopicID = id
				}
				resp := c.request(req).(*kmsg.FetchResponse)
				p := resp.Topics[0].Partitions[0]
				if p.ErrorCode != 0 {
					t.Fatalf("v%d: error %d", v, p.ErrorCode)
				}
				if p.HighWatermark != 240 || (v >= 5 && p.LogStartOffset != 0) || p.LastStableOffset != 240 {
					t.Fatalf("v%d: hw %d lso %d start %d", v, p.HighWatermark, p.LastStableOffset, p.LogStartOffset)
				}
				got := decodeBatches(t, p.RecordBatches)
				if len(got) != len(sent) {
					t.Fatalf("v%d: %d batches, want %d", v, len(got), len(sent))
				}
				for i, b := range got {
					if b.FirstOffset != int64(40*i) || b.NumRecords != 40 {
						t.Fatalf("v%d: batch %d at offset %d with %d records", v, i, b.FirstOffset, b.NumRecords)
					}
					// Everything after the base offset and the leader
					// epoch is as produced.
					raw := sent[i]
					if !bytes.Equal(p.RecordBatches[sumLens(sent[:i])+16:sumLens(sent[:i+1])], raw[16:]) {
						t.Fatalf("v%d: batch %d differs from what was produced", v, i)
					}
				}
				if v >= 13 && resp.Topics[0].TopicID == ([16]byte{}) {
					t.Fatalf("v%d: no topic id in response", v)
				}
			}
			if used := sendfileCalls.Load() > sendfiles; used != (fsName == "os-segments") {
				t.Fatalf("sendfile used: %v on the %s file system", used, fsName)
			}
		})
	}
}

func sumLens(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

func TestFetchErrors(t *testing.T) {
	ts := startServer(t, func(o *testOptions) { o.bcfg.AutoCreateTopics = false })
	ts.createTopic("e", 1)
	ts.produceN("e", 0, 2, 5, 10)
	c := ts.dial()
	defer c.close()
	cases := []struct {
		name string
		req  *kmsg.FetchRequest
		code int16
	}{
		{"offset above hw", fetchRequest(11, "e", 0, 11, 0, 0), errOffsetOutOfRange},
		{"negative offset", fetchRequest(11, "e", 0, -5, 0, 0), errOffsetOutOfRange},
		{"unknown topic", fetchRequest(11, "nope", 0, 0, 0, 0), errUnknownTopicOrPartition},
		{"unknown partition", fetchRequest(11, "e", 7, 0, 0, 0), errUnknownTopicOrPartition},
		{"unknown topic id", fetchRequest(13, "", 0, 0, 0, 0), errUnknownTopicID},
		{"newer leader epoch", func() *kmsg.FetchRequest {
			r := fetchRequest(11, "e", 0, 0, 0, 0)
			r.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
			return r
		}(), errUnknownLeaderEpoch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A long max wait: errors must answer at once anyway.
			tc.req.MaxWaitMillis = 30_000
			tc.req.MinBytes = 1
			resp := c.request(tc.req).(*kmsg.FetchResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != tc.code {
				t.Fatalf("error %d, want %d", p.ErrorCode, tc.code)
			}
			if tc.code == errOffsetOutOfRange && p.HighWatermark != 10 {
				t.Fatalf("hw %d with OFFSET_OUT_OF_RANGE, want 10", p.HighWatermark)
			}
		})
	}
	t.Run("session id", func(t *testing.T) {
		r := fetchRequest(11, "e", 0, 0, 0, 0)
		r.SessionID, r.SessionEpoch = 42, 1
		if resp := c.request(r).(*kmsg.FetchResponse); resp.ErrorCode != errFetchSessionIDNotFound {
			t.Fatalf("error %d, want FETCH_SESSION_ID_NOT_FOUND", resp.ErrorCode)
		}
		r.SessionID, r.SessionEpoch = 0, 5
		if resp := c.request(r).(*kmsg.FetchResponse); resp.ErrorCode != errInvalidFetchSessionEpoch {
			t.Fatalf("error %d, want INVALID_FETCH_SESSION_EPOCH", resp.ErrorCode)
		}
		r.SessionID, r.SessionEpoch = 0, 0 // asks for a session: gets a full, sessionless response
		resp := c.request(r).(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Fatalf("error %d session %d", resp.ErrorCode, resp.SessionID)
		}
	})
}

func TestFetchLongPoll(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("lp", 3)
	c := ts.dial()
	defer c.close()

	t.Run("times out empty", func(t *testing.T) {
		start := time.Now()
		resp := c.request(fetchRequest(11, "lp", 0, 0, 150, 1)).(*kmsg.FetchResponse)
		if el := time.Since(start); el < 140*time.Millisecond {
			t.Fatalf("answered after %v, before max wait", el)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
			t.Fatalf("error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
		}
	})
	t.Run("woken by append on any partition", func(t *testing.T) {
		req := fetchRequest(11, "lp", 0, 0, 20_000, 1)
		for _, p := range []int32{1, 2} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<20
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		}
		corr := c.send(req)
		start := time.Now()
		ts.produceN("lp", 2, 1, 3, 10)
		resp := c.receive(req, corr).(*kmsg.FetchResponse)
		if time.Since(start) > 10*time.Second {
			t.Fatal("not woken by the append")
		}
		if got := len(resp.Topics[0].Partitions[2].RecordBatches); got == 0 {
			t.Fatal("no records for partition 2")
		}
	})
	t.Run("min bytes", func(t *testing.T) {
		// 1 batch is there; ask for far more than it with a short wait.
		start := time.Now()
		resp := c.request(fetchRequest(11, "lp", 2, 0, 100, 1<<20)).(*kmsg.FetchResponse)
		if time.Since(start) < 90*time.Millisecond {
			t.Fatal("answered before min bytes or max wait")
		}
		if len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Fatal("records dropped at max wait")
		}
	})
}

func TestFetchMaxBytes(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("mb", 2)
	ts.produceN("mb", 0, 5, 10, 100) // ~1.1 KiB batches
	ts.produceN("mb", 1, 5, 10, 100)
	c := ts.dial()
	defer c.close()
	one := len(makeBatch(10, bytes.Repeat([]byte{0}, 100)))

	req := fetchRequest(11, "mb", 0, 0, 0, 0)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = 1, 1<<20
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)

	// Partition max 1 byte: still one whole batch for the first partition
	// (KIP-74), none for the second, whose first batch does not fit.
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1
	req.Topics[0].Partitions[1].PartitionMaxBytes = 1
	resp := c.request(req).(*kmsg.FetchResponse)
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != one {
		t.Fatalf("partition 0: %d bytes, want one batch (%d)", n, one)
	}
	if n := len(resp.Topics[0].Partitions[1].RecordBatches); n != 0 {
		t.Fatalf("partition 1: %d bytes, want 0", n)
	}
	// Response max 2.5 batches: partition 0 gets 2, partition 1 nothing.
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1 << 20
	req.Topics[0].Partitions[1].PartitionMaxBytes = 1 << 20
	req.MaxBytes = int32(one*5/2) + 1
	resp = c.request(req).(*kmsg.FetchResponse)
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 2*one {
		t.Fatalf("partition 0: %d bytes, want 2 batches (%d)", n, 2*one)
	}
	if n := len(resp.Topics[0].Partitions[1].RecordBatches); n != 0 {
		t.Fatalf("partition 1: %d bytes, want 0", n)
	}
}
