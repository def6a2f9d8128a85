package kafka

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestProduceVersions(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("p", 1)
	c := ts.dial()
	defer c.close()
	next := int64(0)
	_, topicID, _ := ts.broker.TopicPartitions("p")
	for v := int16(0); v <= 13; v++ {
		for _, acks := range []int16{1, -1} {
			req := produceRequest(v, acks, "p", 0, makeBatch(4, []byte("v")))
			req.Topics[0].TopicID = topicID
			resp := c.request(req).(*kmsg.ProduceResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.BaseOffset != next {
				t.Fatalf("v%d acks=%d: error %d base %d, want 0 and %d", v, acks, p.ErrorCode, p.BaseOffset, next)
			}
			if v >= 2 && p.LogAppendTime != -1 {
				t.Fatalf("v%d: log append time %d on a CreateTime topic", v, p.LogAppendTime)
			}
			if v >= 5 && p.LogStartOffset != 0 {
				t.Fatalf("v%d: log start %d", v, p.LogStartOffset)
			}
			next += 4
		}
	}
	part, _ := ts.broker.Partition("p", 0)
	if hw := part.Log().HighWatermark(); hw != next {
		t.Fatalf("high watermark %d, want %d", hw, next)
	}
}

// TestProduceAcksZero: no response; the next request's response is the
// next thing on the wire; a failed acks=0 produce closes the connection.
func TestProduceAcksZero(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("z", 1)
	c := ts.dial()
	defer c.close()
	c.send(produceRequest(7, 0, "z", 0, makeBatch(2, []byte("x"))))
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 4
	c.request(meta) // fails on a correlation mismatch if the produce was answered
	part, _ := ts.broker.Partition("z", 0)
	waitFor(t, "acks=0 records", func() bool { return part.Log().NextOffset() == 2 })

	bad := makeBatch(2, []byte("x"))
	bad[len(bad)-1] ^= 1 // CRC mismatch
	c.send(produceRequest(7, 0, "z", 0, bad))
	c.expectClosed()
}

func TestProduceErrors(t *testing.T) {
	ts := startServer(t, func(o *testOptions) { o.bcfg.AutoCreateTopics = false })
	ts.createTopic("e", 1)
	c := ts.dial()
	defer c.close()

	corrupt := makeBatch(3, []byte("abc"))
	corrupt[len(corrupt)-2] ^= 0xff
	legacy := makeBatch(1, []byte("old"))
	legacy[legacyMagicOffset] = 1
	huge := makeBatch(1, bytes.Repeat([]byte{1}, 2<<20)) // above the default max.message.bytes
	txn := produceRequest(7, -1, "e", 0, makeBatch(1, []byte("t")))
	txn.TransactionID = kmsg.StringPtr("tx")

	cases := []struct {
		name string
		req  *kmsg.ProduceRequest
		code int16
	}{
		{"unknown topic", produceRequest(7, -1, "missing", 0, makeBatch(1, []byte("a"))), errUnknownTopicOrPartition},
		{"unknown partition", produceRequest(7, -1, "e", 3, makeBatch(1, []byte("a"))), errUnknownTopicOrPartition},
		{"invalid topic name", produceRequest(7, -1, "bad/name", 0, makeBatch(1, []byte("a"))), errUnknownTopicOrPartition},
		{"corrupt crc", produceRequest(7, -1, "e", 0, corrupt), errCorruptMessage},
		{"legacy message set on v7", produceRequest(7, -1, "e", 0, legacy), errUnsupportedForMessageFormat},
		{"message too large", produceRequest(7, -1, "e", 0, huge), errMessageTooLarge},
		{"invalid acks", produceRequest(7, 2, "e", 0, makeBatch(1, []byte("a"))), errInvalidRequiredAcks},
		{"transactional", txn, errTransactionalIDAuthFailed},
		{"unknown topic id", produceRequest(13, -1, "", 0, makeBatch(1, []byte("a"))), errUnknownTopicID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.request(tc.req).(*kmsg.ProduceResponse)
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.code {
				t.Fatalf("error %d, want %d", got, tc.code)
			}
		})
	}
	part, _ := ts.broker.Partition("e", 0)
	if n := part.Log().NextOffset(); n != 0 {
		t.Fatalf("%d records written by failed produces", n)
	}
}

// TestProduceWaitsForFsync: with the fsync policy the response comes only
// after the bytes are synced.
func TestProduceWaitsForFsync(t *testing.T) {
	gfs := &gatedFS{FS: vfs.OS{}}
	ts := startServer(t, withFS(gfs))
	ts.createTopic("d", 1)
	c := ts.dial()
	defer c.close()
	release := gfs.hold()
	req := produceRequest(9, -1, "d", 0, makeBatch(1, []byte("durable")))
	corr := c.send(req)
	c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	if n, _ := c.nc.Read(b[:]); n != 0 {
		release()
		t.Fatal("produce answered before its fsync")
	}
	release()
	if code := c.receive(req, corr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("error %d", code)
	}
}

func TestProduceDurabilityNoneAnswersAtOnce(t *testing.T) {
	gfs := &gatedFS{FS: vfs.OS{}}
	ts := startServer(t, withFS(gfs), withDurability(log.Durability{Kind: log.DurabilityNone}))
	ts.createTopic("n", 1)
	c := ts.dial()
	defer c.close()
	release := gfs.hold()
	defer release()
	resp := c.request(produceRequest(9, -1, "n", 0, makeBatch(1, []byte("fast")))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("error %d", code)
	}
}

// TestProduceManyPartitions: one request over many partitions waits on one
// ticket and answers each partition.
func TestProduceManyPartitions(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("many", 16)
	c := ts.dial()
	defer c.close()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	for _, topic := range []string{"many", "absent-topic-x"} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		for p := int32(0); p < 16; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p, makeBatch(int(p)+1, []byte(fmt.Sprint(p)))
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := c.request(req).(*kmsg.ProduceResponse)
	for i, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != 0 || p.Partition != int32(i) {
			t.Fatalf("partition %d: error %d base %d", p.Partition, p.ErrorCode, p.BaseOffset)
		}
	}
	// Produce never creates topics (Metadata does).
	for _, p := range resp.Topics[1].Partitions {
		if p.ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("absent topic partition %d: error %d", p.Partition, p.ErrorCode)
		}
	}
}

// TestProduceMayUseFullRequestSize: the smaller frame limit for other keys
// does not apply to Produce.
func TestProduceMayUseFullRequestSize(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.MaxNonProduceRequestBytes = 64 << 10 }))
	ts.createTopic("big", 1)
	c := ts.dial()
	defer c.close()
	resp := c.request(produceRequest(9, -1, "big", 0, makeBatch(100, bytes.Repeat([]byte{'b'}, 1000)))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("error %d", code)
	}
}

// TestProduceFrameReleasedBeforeFsync: a Produce frame read into a mapping
// goes back to the pool once the appends are done, not when the response
// is written after the fsync, so a connection's frames in flight do not
// outgrow the mapping cache (bigframe.go).
func TestProduceFrameReleasedBeforeFsync(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	liveAtSync := atomic.Int64{}
	liveAtSync.Store(-1)
	mem.SetSyncFault(func(name string) error {
		if strings.HasSuffix(name, ".wal") && armed.CompareAndSwap(true, false) {
			// The commit of the produce below: give the handler time to
			// finish, then count the mappings still in use.
			time.Sleep(200 * time.Millisecond)
			bigFrames.mu.Lock()
			liveAtSync.Store(int64(len(bigFrames.live)))
			bigFrames.mu.Unlock()
		}
		return nil
	})
	ts := startServer(t, withFS(mem))
	ts.createTopic("big", 1)
	b := makeBatch(200, bytes.Repeat([]byte{'x'}, 1000)) // ~200 KiB: a mapped frame
	c := ts.dial()
	defer c.close()
	armed.Store(true)
	r := c.request(produceRequest(9, -1, "big", 0, b)).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	switch got := liveAtSync.Load(); got {
	case -1:
		t.Fatal("the produce's journal fsync was not seen")
	case 0:
	default:
		t.Fatalf("%d frame mappings still held while the produce waited for its fsync, want 0", got)
	}
}
