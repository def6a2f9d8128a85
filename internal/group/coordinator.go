package group

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
)

// TopicLookup answers what the coordinator needs to know about topics:
// partition counts and IDs for the KIP-848 assignors and OffsetCommit
// validation, names for the topic-ID versions of OffsetCommit/OffsetFetch.
// *broker.Broker implements it.
type TopicLookup interface {
	TopicPartitions(topic string) (n int32, id [16]byte, ok bool)
	TopicName(id [16]byte) (string, bool)
}

// Config configures a Coordinator. Zero durations mean the defaults named
// on each field (Kafka's broker defaults).
type Config struct {
	// Store holds the internal offsets log. Required unless a test
	// journal is set.
	Store *log.Store
	// Topics resolves topics; nil means every topic is accepted and
	// KIP-848 groups get no assignment.
	Topics TopicLookup
	// Clock is the source of time and timers; nil means the wall clock.
	Clock Clock
	// Logger receives lifecycle and error reports; nil discards them.
	Logger *slog.Logger

	// MinSessionTimeout and MaxSessionTimeout bound classic members'
	// session timeouts (group.min/max.session.timeout.ms: 6s, 30m).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// classic group waits for more members (group.initial.rebalance.delay.ms,
	// 3s). Negative disables the delay.
	InitialRebalanceDelay time.Duration
	// MaxGroupSize caps members per group (group.max.size); 0 = unlimited.
	MaxGroupSize int
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval apply to KIP-848
	// members (group.consumer.session.timeout.ms 45s,
	// group.consumer.heartbeat.interval.ms 5s).
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
	// MaxMetadataBytes bounds an offset commit's metadata
	// (offset.metadata.max.bytes, 4096).
	MaxMetadataBytes int

	// journal replaces the offsets log in state-machine tests.
	journal journal
	// compactAbove: the offsets log is compacted when it holds more than
	// this many records beyond twice the live ones (default 100,000): at
	// startup, and while running once that many have been appended.
	compactAbove int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MinSessionTimeout, 6*time.Second)
	def(&c.MaxSessionTimeout, 30*time.Minute)
	def(&c.InitialRebalanceDelay, 3*time.Second)
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	def(&c.ConsumerSessionTimeout, 45*time.Second)
	def(&c.ConsumerHeartbeatInterval, 5*time.Second)
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.compactAbove == 0 {
		c.compactAbove = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// APIRange is one API key and the versions served for it.
type APIRange struct{ Key, MinVersion, MaxVersion int16 }

// APIs returns the keys Handle serves and their version ranges.
func APIs() []APIRange {
	return []APIRange{
		{int16(kmsg.OffsetCommit), 0, 10},
		{int16(kmsg.OffsetFetch), 0, 10},
		{int16(kmsg.JoinGroup), 0, 9},
		{int16(kmsg.Heartbeat), 0, 4},
		{int16(kmsg.LeaveGroup), 0, 5},
		{int16(kmsg.SyncGroup), 0, 5},
		{int16(kmsg.DescribeGroups), 0, 6},
		{int16(kmsg.ListGroups), 0, 5},
		{int16(kmsg.DeleteGroups), 0, 3},
		{int16(kmsg.OffsetDelete), 0, 0},
		{int16(kmsg.ConsumerGroupHeartbeat), 0, 1},
		{int16(kmsg.ConsumerGroupDescribe), 0, 1},
	}
}

// Coordinator serves the group API keys for every group on this node.
type Coordinator struct {
	cfg     Config
	journal journal
	closed  atomic.Bool

	mu     sync.Mutex // guards groups
	groups map[string]*group
	wg     sync.WaitGroup // one per group goroutine, and the compactor

	// appended counts records written since the last compaction; when it
	// passes compactAt a background compaction runs (compacting is set
	// while it does).
	appended   atomic.Int64
	compactAt  atomic.Int64
	compacting atomic.Bool
}

// New opens the internal offsets log, replays it and starts an actor for
// every recovered group. It returns once recovery is complete.
func New(cfg Config) (*Coordinator, error) {
	cfg = cfg.withDefaults()
	j := cfg.journal
	if j == nil {
		if cfg.Store == nil {
			return nil, errors.New("group: Config.Store is required")
		}
		lj, err := openLogJournal(cfg.Store)
		if err != nil {
			return nil, err
		}
		j = lj
	}
	c := &Coordinator{cfg: cfg, journal: j, groups: map[string]*group{}}
	state := map[string]*recovered{}
	records := 0
	err := j.replay(func(batch []byte) error {
		return decodeBatches(batch, func(r record) error {
			records++
			return applyRecord(state, r)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("group: recover: %w", err)
	}
	if live := liveRecords(state); records > 2*live+cfg.compactAbove {
		// Rewrite the live state and drop the log before it, so that
		// recovery time and disk use follow the live state, not the
		// history. A crash in between leaves both copies, which replay
		// to the same state.
		if err := compactJournal(j, snapshotBatches(state, cfg.Clock.Now().UnixMilli(), 1000)); err != nil {
			return nil, fmt.Errorf("group: compact %s: %w", OffsetsLogName, err)
		}
		cfg.Logger.Info("group offsets log compacted", "records", records, "live", live)
	}
	c.compactAt.Store(int64(2*liveRecords(state) + cfg.compactAbove))
	ids := make([]string, 0, len(state))
	for id := range state {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c.mu.Lock()
	for _, id := range ids {
		g := newGroup(c, id)
		g.restore(state[id])
		c.groups[id] = g
		c.start(g)
	}
	c.mu.Unlock()
	cfg.Logger.Info("group coordinator recovered", "groups", len(ids), "records", records)
	return c, nil
}

// start runs g's goroutine. Caller holds c.mu.
func (c *Coordinator) start(g *group) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		g.run()
	}()
}

// Close stops every group actor and waits for them. Requests still waiting
// are answered with COORDINATOR_NOT_AVAILABLE. It does not close the
// Store, which belongs to the broker.
func (c *Coordinator) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.mu.Lock()
	for _, g := range c.groups {
		close(g.quit)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// lookup returns the group's actor, creating it when create is set.
// It returns nil after Close.
func (c *Coordinator) lookup(id string, create bool) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	g := c.groups[id]
	if g == nil && create {
		g = newGroup(c, id)
		c.groups[id] = g
		c.start(g)
	}
	return g
}

// all returns every group's actor.
func (c *Coordinator) all() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// Handle serves one group request. It may block until the request can be
// answered (JoinGroup during a rebalance, OffsetCommit until durable) or
// ctx is done. The response has the request's version; every failure is a
// Kafka error code in it. The error return is only for a request type
// this package does not serve.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if !versionServed(req) {
		return nil, fmt.Errorf("group: api key %d version %d not served", req.Key(), req.GetVersion())
	}
	if c.closed.Load() {
		return errorResponse(req, kerr.CoordinatorNotAvailable.Code), nil
	}
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		resp = c.joinGroup(ctx, r)
	case *kmsg.SyncGroupRequest:
		resp = c.syncGroup(ctx, r)
	case *kmsg.HeartbeatRequest:
		resp = c.heartbeat(ctx, r)
	case *kmsg.LeaveGroupRequest:
		resp = c.leaveGroup(ctx, r)
	case *kmsg.OffsetCommitRequest:
		resp = c.offsetCommit(ctx, r)
	case *kmsg.OffsetFetchRequest:
		resp = c.offsetFetch(ctx, r)
	case *kmsg.OffsetDeleteRequest:
		resp = c.offsetDelete(ctx, r)
	case *kmsg.DescribeGroupsRequest:
		resp = c.describeGroups(ctx, r)
	case *kmsg.ListGroupsRequest:
		resp = c.listGroups(ctx, r)
	case *kmsg.DeleteGroupsRequest:
		resp = c.deleteGroups(ctx, r)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp = c.consumerHeartbeat(ctx, r)
	case *kmsg.ConsumerGroupDescribeRequest:
		resp = c.consumerDescribe(ctx, r)
	default:
		return nil, fmt.Errorf("group: api key %d not served", req.Key())
	}
	if resp == nil { // the group stopped or ctx ended while waiting
		resp = errorResponse(req, kerr.CoordinatorNotAvailable.Code)
	}
	resp.SetVersion(req.GetVersion())
	return resp, nil
}

func versionServed(req kmsg.Request) bool {
	for _, a := range APIs() {
		if a.Key == req.Key() {
			v := req.GetVersion()
			return v >= a.MinVersion && v <= a.MaxVersion
		}
	}
	return false
}

// call runs fn on the group's goroutine and waits for the reply it passes
// to done. It returns nil if the group stopped or ctx ended first.
func (c *Coordinator) call(ctx context.Context, g *group, fn func(done func(kmsg.Response))) kmsg.Response {
	if g == nil {
		return nil
	}
	ch := g.submit(fn)
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return nil
	case <-g.done:
		select {
		case r := <-ch:
			return r
		default:
			return nil
		}
	}
}
