package compat

import (
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // required by Sarama for idempotence
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

func TestSarama(t *testing.T) {
	b := startBroker(t)
	topic := topicName("sarama")
	createTopic(t, b.addr, topic, 3)
	for i, codec := range allCodecs {
		if i == 2 {
			b.restart()
		}
		cfg := saramaConfig()
		cfg.Producer.Compression = saramaCodecs[codec]
		p, err := sarama.NewSyncProducer([]string{b.addr}, cfg)
		if err != nil {
			t.Fatalf("sarama producer: %v", err)
		}
		msgs := make([]*sarama.ProducerMessage, perCodec)
		for j := range msgs {
			msgs[j] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(recordKey(codec, j)),
				Value: sarama.StringEncoder(recordValue(codec, j)),
				Headers: []sarama.RecordHeader{{Key: []byte("idx"), Value: []byte(strconv.Itoa(j))},
					{Key: []byte("codec"), Value: []byte(codec)}}}
		}
		if err := p.SendMessages(msgs); err != nil {
			p.Close()
			t.Fatalf("sarama produce (%s): %v", codec, err)
		}
		p.Close()
	}

	c, err := sarama.NewConsumer([]string{b.addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := perCodec * len(allCodecs)
	var got []record
	out := make(chan record, 1024)
	parts, err := c.Partitions(topic)
	if err != nil || len(parts) != 3 {
		t.Fatalf("partitions %v %v", parts, err)
	}
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func(pc sarama.PartitionConsumer) {
			for m := range pc.Messages() {
				h := map[string]string{}
				for _, x := range m.Headers {
					h[string(x.Key)] = string(x.Value)
				}
				out <- record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value), Headers: h}
			}
		}(pc)
	}
	timeout := time.After(60 * time.Second)
	for len(got) < want {
		select {
		case r := <-out:
			got = append(got, r)
		case <-timeout:
			t.Fatalf("sarama consume: %d of %d records after 60s", len(got), want)
		}
	}
	verify(t, "sarama", got, allCodecs, perCodec, false)
}
