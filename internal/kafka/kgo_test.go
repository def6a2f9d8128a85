package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoEndToEnd: franz-go (idempotent by default, negotiating every
// version) produces keyed records with headers under each codec, then
// consumes them back in order, with values, keys and headers intact.
func TestFranzGoEndToEnd(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("e2e", 3)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	}
	const perCodec = 400
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cc := range codecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ProducerBatchCompression(cc.codec),
			kgo.DefaultProduceTopic("e2e"), kgo.ProducerLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for i := 0; i < perCodec; i++ {
			recs = append(recs, &kgo.Record{
				Key:     []byte(fmt.Sprintf("%s-k%d", cc.name, i%7)),
				Value:   []byte(fmt.Sprintf("%s-v%d", cc.name, i)),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(cc.name)}},
			})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			cl.Close()
			t.Fatalf("%s: produce: %v", cc.name, err)
		}
		cl.Close()
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumeTopics("e2e"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := perCodec * len(codecs)
	got := 0
	nextOffset := map[int32]int64{}
	lastIndex := map[string]int{} // per codec and key: values must come in produce order
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != nextOffset[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, nextOffset[r.Partition])
			}
			nextOffset[r.Partition]++
			if len(r.Headers) != 1 || r.Headers[0].Key != "codec" {
				t.Fatalf("headers %v", r.Headers)
			}
			codec := string(r.Headers[0].Value)
			var i int
			if _, err := fmt.Sscanf(string(r.Value[len(codec)+1:]), "v%d", &i); err != nil {
				t.Fatalf("value %q: %v", r.Value, err)
			}
			if wantKey := fmt.Sprintf("%s-k%d", codec, i%7); string(r.Key) != wantKey {
				t.Fatalf("key %q, want %q", r.Key, wantKey)
			}
			k := string(r.Key)
			if prev, ok := lastIndex[k]; ok && i <= prev {
				t.Fatalf("key %s: value %d after %d", k, i, prev)
			}
			lastIndex[k] = i
			got++
		})
	}
}

// TestFranzGoGroup: two franz-go consumers in one group (classic protocol)
// split a 4-partition topic, consume everything once and commit; a third
// client in the same group then finds nothing left to read.
func TestFranzGoGroup(t *testing.T) {
	ts := startServer(t, withGroups())
	ts.createTopic("g", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.DefaultProduceTopic("g"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	seen := make(chan string, n)
	var consumers []*kgo.Client
	for i := 0; i < 2; i++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumerGroup("grp"), kgo.ConsumeTopics("g"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.HeartbeatInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, cl)
	}
	done := make(chan struct{})
	errs := make(chan error, 2)
	for _, cl := range consumers {
		go func(cl *kgo.Client) {
			for {
				fs := cl.PollFetches(ctx)
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if fs.IsClientClosed() || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				fs.EachRecord(func(r *kgo.Record) { seen <- string(r.Value) })
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					errs <- err
					return
				}
			}
		}(cl)
	}
	got := map[string]bool{}
	for len(got) < n {
		select {
		case v := <-seen:
			got[v] = true
		case err := <-errs:
			t.Fatalf("consumer stopped early (%d of %d): %v", len(got), n, err)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d", len(got), n)
		}
	}
	close(done)
	for _, cl := range consumers {
		cl.Close() // wakes PollFetches; leaves the group
	}
	for range consumers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Offsets were committed: a new member starts at the end.
	adm, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = "grp"
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "g", []int32{0, 1, 2, 3}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			committed += p.Offset
		}
	}
	if committed != n {
		t.Fatalf("committed offsets sum to %d, want %d", committed, n)
	}
}
