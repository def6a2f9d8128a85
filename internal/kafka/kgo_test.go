package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
