package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var ctx = context.Background()

// testConfig is a broker config over fs with a fixed clock.
func testConfig(fs vfs.FS) Config {
	return Config{
		FS: fs, DataDir: "/data", NodeID: 1, Host: "127.0.0.1", Port: 9092,
		AutoCreateTopics: true, DefaultPartitions: 1,
		Clock: func() time.Time { return time.UnixMilli(1_700_000_000_000) },
	}
}

func openBroker(t *testing.T, fs vfs.FS) *Broker {
	t.Helper()
	b, err := Open(testConfig(fs))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

// closeBroker closes b, failing the test on error.
func closeBroker(t *testing.T, b *Broker) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// batch builds an uncompressed record batch v2 of n records as a producer
// would: base offset 0, producer ID pid (-1: not idempotent), epoch and base
// sequence seq.
func batch(n int, pid int64, epoch int16, seq int32) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		var rec []byte
		rec = append(rec, 0)
		rec = binary.AppendVarint(rec, 0)
		rec = binary.AppendVarint(rec, int64(i))
		rec = binary.AppendVarint(rec, -1)
		rec = binary.AppendVarint(rec, 3)
		rec = append(rec, 'v', byte('0'+i%10), 'x')
		rec = binary.AppendVarint(rec, 0)
		records = binary.AppendVarint(records, int64(len(rec)))
		records = append(records, rec...)
	}
	rb := kmsg.RecordBatch{
		Length: int32(49 + len(records)), Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(n), Records: records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// produce appends records and waits until they are durable.
func produce(t *testing.T, b *Broker, p *Partition, records []byte) (log.AppendResult, int16) {
	t.Helper()
	res, code, err := p.Produce(records)
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	if code == 0 {
		if err := b.waitDurable(res.Ticket); err != nil {
			t.Fatalf("durability: %v", err)
		}
	}
	return res, code
}

// createTopic creates a topic and fails the test unless it succeeds.
func createTopic(t *testing.T, b *Broker, name string, partitions int32, configs map[string]string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	resp := b.CreateTopics(ctx, req)
	if got := resp.Topics[0]; got.ErrorCode != 0 {
		t.Fatalf("create %s: code %d %v", name, got.ErrorCode, deref(got.ErrorMessage))
	}
	return resp.Topics[0].TopicID
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func mustPartition(t *testing.T, b *Broker, topic string, i int32) *Partition {
	t.Helper()
	p, code := b.Partition(topic, i)
	if code != 0 {
		t.Fatalf("Partition(%s, %d): code %d", topic, i, code)
	}
	return p
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
