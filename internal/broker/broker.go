package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// Config configures a Broker.
type Config struct {
	FS      vfs.FS
	DataDir string
	NodeID  int32
	Host    string // advertised host
	Port    int32  // advertised port

	AutoCreateTopics  bool
	DefaultPartitions int32 // for auto-created topics and CreateTopics with -1 (0 means 1)

	DefaultDurability log.Durability
	Logger            *slog.Logger
	Clock             func() time.Time
}

// Broker owns the topics of one node.
type Broker struct {
	cfg   Config
	store *log.Store
	mu    sync.RWMutex
}

var errNotImplemented = errors.New("broker: not implemented yet")

// Open opens the data directory and recovers topics, configs and producer
// state.
func Open(cfg Config) (*Broker, error) { return nil, errNotImplemented }

// Close makes everything durable and closes the store.
func (b *Broker) Close() error { return errNotImplemented }

// Store is the partition-log store the broker writes through. GROUP opens
// its internal logs here.
func (b *Broker) Store() *log.Store { return b.store }

// Partition returns a topic partition or a Kafka error code.
func (b *Broker) Partition(topic string, partition int32) (*Partition, int16) { return nil, 3 }

// PartitionByID returns a partition of the topic with the given ID.
func (b *Broker) PartitionByID(topicID [16]byte, partition int32) (*Partition, int16) {
	return nil, 100
}

// TopicPartitions returns a topic's partition count and ID.
func (b *Broker) TopicPartitions(topic string) (n int32, id [16]byte, ok bool) { return 0, id, false }

// TopicName returns the name of the topic with the given ID.
func (b *Broker) TopicName(id [16]byte) (string, bool) { return "", false }

func (b *Broker) Metadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	r := req.ResponseKind().(*kmsg.MetadataResponse)
	return r
}
func (b *Broker) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	return req.ResponseKind().(*kmsg.CreateTopicsResponse)
}
func (b *Broker) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	return req.ResponseKind().(*kmsg.DeleteTopicsResponse)
}
func (b *Broker) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	return req.ResponseKind().(*kmsg.CreatePartitionsResponse)
}
func (b *Broker) DescribeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	return req.ResponseKind().(*kmsg.DescribeConfigsResponse)
}
func (b *Broker) AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	return req.ResponseKind().(*kmsg.AlterConfigsResponse)
}
func (b *Broker) IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	return req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
}
func (b *Broker) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	return req.ResponseKind().(*kmsg.InitProducerIDResponse)
}
func (b *Broker) DeleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	return req.ResponseKind().(*kmsg.DeleteRecordsResponse)
}
func (b *Broker) DescribeLogDirs(ctx context.Context, req *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	return req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
}
func (b *Broker) DescribeCluster(ctx context.Context, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	return req.ResponseKind().(*kmsg.DescribeClusterResponse)
}

// Partition is one topic partition.
type Partition struct {
	topic   string
	index   int32
	topicID [16]byte
	log     *log.Log
}

// Produce validates records, runs the idempotent-producer checks and appends.
func (p *Partition) Produce(records []byte) (log.AppendResult, int16, error) {
	return log.AppendResult{}, -1, errNotImplemented
}

// Log is the partition's log.
func (p *Partition) Log() *log.Log { return p.log }

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// Index is the partition number.
func (p *Partition) Index() int32 { return p.index }

// TopicID is the topic's 16-byte ID.
func (p *Partition) TopicID() [16]byte { return p.topicID }
