package kafka

import (
	"encoding/binary"
	"path"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestCorruptSealedSegmentOffline: damage to a sealed segment of one
// partition (its last batch's length field) takes that partition offline
// after a restart — Produce, Fetch, ListOffsets and Metadata answer
// KAFKA_STORAGE_ERROR (56), Produce with a message saying it is offline —
// while the broker keeps serving every other partition, and the damaged
// segment keeps every byte. Runs with segment files (--journal-log=false):
// with the journal as the log the records live in journal files instead.
func TestCorruptSealedSegmentOffline(t *testing.T) {
	mem := vfs.NewMem()
	dir := t.TempDir()
	withDir := func(o *testOptions) { o.bcfg.DataDir = dir }
	ts := startServer(t, withFS(mem), withDir, withSegmentLog)
	c := ts.dial()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	for _, name := range []string{"bad", "good"} {
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = name, 2, 1
		v := "2000"
		tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "segment.bytes", Value: &v}}
		req.Topics = append(req.Topics, tp)
	}
	for _, tr := range c.request(req).(*kmsg.CreateTopicsResponse).Topics {
		if tr.ErrorCode != 0 {
			t.Fatalf("create %s: %d", tr.Topic, tr.ErrorCode)
		}
	}
	c.close()
	for _, name := range []string{"bad", "good"} {
		for p := int32(0); p < 2; p++ {
			ts.produceN(name, p, 20, 2, 200)
		}
	}
	ts.close()

	// Break the length field of the last batch of bad-0's first segment.
	seg := path.Join(dir, "bad-0", "00000000000000000000.log")
	f, err := mem.OpenRW(seg)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	var pos int64
	var hdr [12]byte
	for {
		f.ReadAt(hdr[:], pos)
		next := pos + 12 + int64(binary.BigEndian.Uint32(hdr[8:]))
		if next >= size {
			break
		}
		pos = next
	}
	binary.BigEndian.PutUint32(hdr[8:], 1<<30)
	f.WriteAt(hdr[8:], pos+8)
	f.Sync()
	f.Close()

	ts = startServer(t, withFS(mem), withDir, withSegmentLog)
	c = ts.dial()
	defer c.close()

	pr := c.request(produceRequest(9, -1, "bad", 0, makeBatch(1, []byte("x")))).(*kmsg.ProduceResponse)
	got := pr.Topics[0].Partitions[0]
	if got.ErrorCode != 56 || got.ErrorMessage == nil || !strings.Contains(*got.ErrorMessage, "offline") {
		t.Fatalf("produce to the damaged partition: code %d message %v", got.ErrorCode, derefOr(got.ErrorMessage, "<nil>"))
	}
	t.Logf("produce: code %d, message %q", got.ErrorCode, *got.ErrorMessage)
	fr := c.request(fetchRequest(12, "bad", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	if code := fr.Topics[0].Partitions[0].ErrorCode; code != 56 {
		t.Fatalf("fetch from the damaged partition: code %d", code)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	lo.ReplicaID = -1
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "bad", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
	if code := c.request(lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode; code != 56 {
		t.Fatalf("list offsets on the damaged partition: code %d", code)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("bad")}}
	for _, p := range c.request(md).(*kmsg.MetadataResponse).Topics[0].Partitions {
		if want := map[int32]int16{0: 56, 1: 0}[p.Partition]; p.ErrorCode != want {
			t.Fatalf("metadata bad/%d: code %d, want %d", p.Partition, p.ErrorCode, want)
		}
	}

	// Everything else is served.
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"bad", 1}, {"good", 0}, {"good", 1}} {
		pr := c.request(produceRequest(9, -1, tp.topic, tp.part, makeBatch(1, []byte("y")))).(*kmsg.ProduceResponse)
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %s/%d beside the damaged partition: code %d", tp.topic, tp.part, code)
		}
		fr := c.request(fetchRequest(12, tp.topic, tp.part, 0, 0, 0)).(*kmsg.FetchResponse)
		if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 41 || len(p.RecordBatches) == 0 {
			t.Fatalf("fetch %s/%d beside the damaged partition: code %d hw %d, %d bytes", tp.topic, tp.part, p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
		}
	}
	if got, _, _ := mem.Stat(seg); got != size {
		t.Fatalf("damaged segment cut from %d to %d bytes", size, got)
	}
}
