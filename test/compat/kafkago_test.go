package compat

import (
	"context"
	"strconv"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

var kafkaGoCodecs = map[string]compress.Compression{
	"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd,
}

// TestKafkaGo drives segmentio/kafka-go, which hard-codes old request
// versions for several APIs.
func TestKafkaGo(t *testing.T) {
	b := startBroker(t)
	topic := topicName("kafkago")
	createTopic(t, b.addr, topic, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tr := &kafka.Transport{} // owned here so its pooled connections close (goleak)
	defer tr.CloseIdleConnections()
	for i, codec := range allCodecs {
		if i == 2 {
			b.restart()
		}
		w := &kafka.Writer{Addr: kafka.TCP(b.addr), Topic: topic, Balancer: &kafka.Hash{}, Transport: tr,
			RequiredAcks: kafka.RequireAll, Compression: kafkaGoCodecs[codec], BatchSize: 500,
			BatchTimeout: 5 * time.Millisecond, MaxAttempts: 10}
		msgs := make([]kafka.Message, perCodec)
		for j := range msgs {
			msgs[j] = kafka.Message{Key: []byte(recordKey(codec, j)), Value: []byte(recordValue(codec, j)),
				Headers: []kafka.Header{{Key: "idx", Value: []byte(strconv.Itoa(j))}, {Key: "codec", Value: []byte(codec)}}}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			t.Fatalf("kafka-go produce (%s): %v", codec, err)
		}
		w.Close()
	}
	want := perCodec * len(allCodecs)
	var got []record
	ends := map[int32]int64{}
	for p := 0; p < 3; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", b.addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[int32(p)] = end
	}
	for p := 0; p < 3; p++ {
		if ends[int32(p)] == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.addr}, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("kafka-go consume partition %d: %v (have %d records)", p, err, len(got))
			}
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			got = append(got, record{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value), Headers: h})
			if m.Offset+1 >= ends[int32(p)] {
				break
			}
		}
		r.Close()
	}
	if len(got) != want {
		t.Fatalf("kafka-go consumed %d records, want %d", len(got), want)
	}
	verify(t, "kafka-go", got, allCodecs, perCodec, false)
}
