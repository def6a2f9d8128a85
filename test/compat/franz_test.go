package compat

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const perCodec = 2000 // 5 codecs: 10,000 records per client

var franzCodecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

var allCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// franzProduce produces perCodec records with one codec, idempotently
// (franz-go's default), and waits for every acknowledgement.
func franzProduce(t testing.TB, addr, topic, codec string, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ProducerBatchCompression(franzCodecs[codec]),
		kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(recordKey(codec, i)), Value: []byte(recordValue(codec, i)),
			Headers: []kgo.RecordHeader{{Key: "idx", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte(codec)}}}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce (%s): %v", codec, err)
	}
}

// franzConsume reads want records from the start of topic.
func franzConsume(t testing.TB, addr, topic string, want int) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go consume: %d of %d records after 60s", len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch error %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			out = append(out, record{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value), Headers: h})
		})
	}
	return out
}

func TestFranzGo(t *testing.T) {
	b := startBroker(t)
	topic := topicName("franz")
	createTopic(t, b.addr, topic, 3)
	for i, codec := range allCodecs {
		if i == 2 {
			b.restart() // midway: nothing acknowledged may be lost
		}
		franzProduce(t, b.addr, topic, codec, perCodec)
	}
	got := franzConsume(t, b.addr, topic, perCodec*len(allCodecs))
	verify(t, "franz-go", got, allCodecs, perCodec, false)
}
