package broker

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

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

	// AutoCreateTopics lets Metadata create unknown topics (Kafka's
	// auto.create.topics.enable).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics with -1 (0 means 1).
	DefaultPartitions int32

	// DefaultDurability is sluice.durability for topics that do not set it.
	DefaultDurability log.Durability
	// JournalLog opens the store in journal-log mode (log.StoreOptions).
	JournalLog bool
	Logger     *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Tunables. Variables so tests can shrink them.
var (
	// metaSnapshotEvery: metadata changes between metadata snapshots.
	metaSnapshotEvery = 1000
	// producerSnapshotInterval: how often dirty producer state is snapshotted.
	producerSnapshotInterval = 30 * time.Second
	// producerIDBlock: producer IDs reserved per metadata record.
	producerIDBlock int32 = 1000
)

// maxPartitions bounds one topic's partition count.
const maxPartitions = 100_000

// ErrClosed is returned by operations on a closed broker.
var ErrClosed = errors.New("broker: closed")

// Broker owns the topics of one node.
//
// Lock order: pidMu → adminMu → mu → Partition.mu.
//
// adminMu serialises metadata changes (check, open logs, write, wait for
// durability, apply): its holder may read state without mu, since only it
// writes. mu guards state and parts: writers hold adminMu and mu, readers
// hold mu.RLock.
type Broker struct {
	cfg      Config
	logger   *slog.Logger
	now      func() time.Time
	store    *log.Store
	meta     *log.Log
	defaults topicDefaults

	adminMu          sync.Mutex
	changesSinceSnap int // guarded by adminMu: changes since the last metadata snapshot

	mu    sync.RWMutex
	state *metaState
	parts map[[16]byte][]*Partition // by topic ID

	pidMu   sync.Mutex
	nextPID int64 // guarded by pidMu; below state.producerIDEnd when usable

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{}
	wg        sync.WaitGroup
}

// Open opens the data directory and recovers topics, configs and producer
// state: the metadata snapshot is loaded and the metadata log replayed after
// it, each topic partition's log is opened (logs of deleted topics are
// removed) and each partition's producer state is loaded from its snapshot
// and rebuilt from the log after it.
func Open(cfg Config) (*Broker, error) {
	if cfg.FS == nil {
		return nil, errors.New("broker: no file system")
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "sluice-data"
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	b := &Broker{
		cfg: cfg, logger: cfg.Logger, now: cfg.Clock,
		defaults: topicDefaults{durability: cfg.DefaultDurability},
		state:    newMetaState(),
		parts:    make(map[[16]byte][]*Partition),
		stop:     make(chan struct{}),
	}
	store, err := log.OpenStore(cfg.FS, cfg.DataDir, log.StoreOptions{Clock: cfg.Clock, Logger: cfg.Logger, JournalLog: cfg.JournalLog})
	if err != nil {
		return nil, fmt.Errorf("broker: open store: %w", err)
	}
	b.store = store
	if err := b.recover(); err != nil {
		store.Close()
		return nil, err
	}
	b.wg.Add(1)
	go b.maintain()
	return b, nil
}

func (b *Broker) recover() error {
	meta, err := b.store.Open(metaLogName, metaLogConfig)
	if err != nil {
		return fmt.Errorf("broker: open metadata log: %w", err)
	}
	b.meta = meta
	if err := b.replayMeta(); err != nil {
		return err
	}
	if b.state.clusterID == ([16]byte{}) {
		if err := b.commit([]change{{kind: changeCluster, id: newUUID(nil)}}, nil); err != nil {
			return fmt.Errorf("broker: record cluster ID: %w", err)
		}
	}
	b.nextPID = b.state.producerIDEnd
	expected := make(map[string]bool)
	for _, name := range b.state.topicNames() {
		t := b.state.topics[name]
		parts, err := b.openPartitions(t, 0, t.partitions)
		if err != nil {
			return err
		}
		b.parts[t.id] = parts
		for i := int32(0); i < t.partitions; i++ {
			expected[partitionLogName(name, i)] = true
		}
	}
	for _, name := range b.store.Names() {
		if isInternalTopic(name) || expected[name] {
			continue
		}
		// A leftover that cannot be removed only costs disk space: it is
		// no topic's partition, and a recreated topic of the same name
		// tells it apart by its partition.meta.
		b.logger.Warn("removing the log of a deleted topic", "log", name)
		if err := b.store.Delete(name); err != nil {
			b.logger.Warn("cannot remove the log of a deleted topic", "log", name, "err", err)
		}
	}
	return nil
}

// maintain snapshots producer state periodically.
func (b *Broker) maintain() {
	defer b.wg.Done()
	tick := time.NewTicker(producerSnapshotInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			b.snapshotProducers()
		}
	}
}

func (b *Broker) allPartitions() []*Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*Partition
	for _, ps := range b.parts {
		out = append(out, ps...)
	}
	return out
}

func (b *Broker) snapshotProducers() error {
	var first error
	for _, p := range b.allPartitions() {
		if err := p.writeProducerSnapshot(b.store.FS()); err != nil {
			b.logger.Warn("producer state snapshot failed", "topic", p.topic, "partition", p.index, "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// Close makes everything durable (appended records, producer state and a
// metadata snapshot) and closes the store.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		b.wg.Wait()
		b.adminMu.Lock()
		b.closed.Store(true)
		b.adminMu.Unlock()
		errs := []error{b.store.Sync()}
		errs = append(errs, b.snapshotProducers())
		b.adminMu.Lock()
		if b.changesSinceSnap > 0 {
			errs = append(errs, b.snapshotMetaLocked())
		}
		b.adminMu.Unlock()
		errs = append(errs, b.store.Close())
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// Store is the partition-log store the broker writes through. GROUP opens
// its internal logs ("__consumer_offsets-0") here.
func (b *Broker) Store() *log.Store { return b.store }

// Partition returns a topic partition, or a Kafka error code:
// UNKNOWN_TOPIC_OR_PARTITION (3) for an unknown, internal or deleted topic
// or a partition out of range.
func (b *Broker) Partition(topic string, partition int32) (*Partition, int16) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.state.topics[topic]
	if !ok {
		return nil, codeUnknownTopicOrPartition
	}
	return b.partitionLocked(t.id, partition)
}

// PartitionByID is Partition for a topic ID (Fetch v13+). An unknown ID is
// UNKNOWN_TOPIC_ID (100).
func (b *Broker) PartitionByID(topicID [16]byte, partition int32) (*Partition, int16) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.state.byID[topicID]; !ok {
		return nil, codeUnknownTopicID
	}
	return b.partitionLocked(topicID, partition)
}

func (b *Broker) partitionLocked(id [16]byte, partition int32) (*Partition, int16) {
	ps := b.parts[id]
	if partition < 0 || int(partition) >= len(ps) {
		return nil, codeUnknownTopicOrPartition
	}
	return ps[partition], 0
}

// TopicPartitions returns a topic's partition count and ID.
func (b *Broker) TopicPartitions(topic string) (n int32, id [16]byte, ok bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.state.topics[topic]
	if !ok {
		return 0, id, false
	}
	return int32(len(b.parts[t.id])), t.id, true
}

// TopicName returns the name of the topic with the given ID.
func (b *Broker) TopicName(id [16]byte) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.state.byID[id]
	if !ok {
		return "", false
	}
	return t.name, true
}

// TopicNames lists the topics, sorted (for regex subscriptions).
func (b *Broker) TopicNames() []string {
	b.mu.RLock()
	names := make([]string, 0, len(b.state.topics))
	for name := range b.state.topics {
		names = append(names, name)
	}
	b.mu.RUnlock()
	sort.Strings(names)
	return names
}

// clusterID is the cluster ID as Kafka prints it.
func (b *Broker) clusterID() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return base64.RawURLEncoding.EncodeToString(b.state.clusterID[:])
}

// newUUID returns a random UUID as Kafka makes them: never zero, never
// printed with a leading '-', and not in taken.
func newUUID(taken map[[16]byte]*topicMeta) [16]byte {
	for {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		if id == ([16]byte{}) || id[0]>>2 == 62 {
			continue
		}
		if _, dup := taken[id]; !dup {
			return id
		}
	}
}

// openPartitions opens partitions [from, to) of t. A partition log left over
// from an earlier topic of the same name (its partition.meta names another
// topic ID) is removed first.
func (b *Broker) openPartitions(t *topicMeta, from, to int32) ([]*Partition, error) {
	cfg := b.defaults.logConfig(t.configs)
	var out []*Partition
	for i := from; i < to; i++ {
		p, err := b.openPartition(t, i, cfg)
		if err != nil {
			return nil, fmt.Errorf("broker: open partition %d of %s: %w", i, t.name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (b *Broker) openPartition(t *topicMeta, index int32, cfg log.Config) (*Partition, error) {
	fs := b.store.FS()
	name := partitionLogName(t.name, index)
	l, err := b.store.Open(name, cfg)
	if err != nil {
		return nil, err
	}
	metaPath := path.Join(l.Dir(), partitionMetaFile)
	id, ok, err := readPartitionMeta(fs, metaPath)
	if err != nil {
		return nil, err
	}
	if ok && id != t.id {
		b.logger.Warn("removing a partition log of an earlier topic with the same name", "log", name)
		if err := b.store.Delete(name); err != nil {
			return nil, err
		}
		if l, err = b.store.Open(name, cfg); err != nil {
			return nil, err
		}
		ok = false
	}
	if !ok {
		if err := writeFile(fs, l.Dir(), partitionMetaFile, encodePartitionMeta(t.id), false); err != nil {
			return nil, err
		}
	}
	p := &Partition{topic: t.name, index: index, topicID: t.id, log: l, logger: b.logger}
	if err := p.loadProducers(fs); err != nil {
		if l.Err() == nil {
			return nil, err
		}
		// The log opened offline (damaged acknowledged data): the broker
		// serves every other partition and answers this one with
		// KAFKA_STORAGE_ERROR until an operator repairs it. Its producer
		// state stays empty; nothing can be appended anyway.
		b.logger.Error("partition offline", "log", name, "err", l.Err())
		p.producers = newProducerTable()
	}
	return p, nil
}
