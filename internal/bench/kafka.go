package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaDriver drives a Kafka-protocol broker (sluice) with franz-go:
// acks=all, idempotent producers with the configured linger, records
// placed on the partition the workload names.
type kafkaDriver struct {
	addr   string
	linger time.Duration
}

func newKafkaDriver(addr string, linger time.Duration) *kafkaDriver {
	return &kafkaDriver{addr: addr, linger: linger}
}

func (k *kafkaDriver) Setup(ctx context.Context, topic string, partitions int) error {
	// Creating 10,000 partitions durably takes a while on a busy disk:
	// give the request minutes, not the client's default seconds.
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addr), kgo.RequestTimeoutOverhead(5*time.Minute))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32((5 * time.Minute).Milliseconds()))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, resp.Err)
	}
	return nil
}

type kafkaProducer struct{ cl *kgo.Client }

func (k *kafkaDriver) NewProducer(ctx context.Context) (Producer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addr),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(k.linger),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(8192),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	if err != nil {
		return nil, err
	}
	return &kafkaProducer{cl: cl}, nil
}

func (p *kafkaProducer) Send(ctx context.Context, topic string, partition int, value []byte, done func(error)) {
	p.cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(partition), Value: value},
		func(_ *kgo.Record, err error) { done(err) })
}

func (p *kafkaProducer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }
func (p *kafkaProducer) Close()                          { p.cl.Close() }

func (k *kafkaDriver) Consume(ctx context.Context, topic string, partitions int, group string, handle func([]byte)) error {
	opts := []kgo.Opt{kgo.SeedBrokers(k.addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(8 << 20),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if group != "" {
		opts = append(opts, kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) { handle(r.Value) })
	}
}

func (k *kafkaDriver) Close() {}
