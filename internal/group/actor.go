package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
)

// groupKind says which protocol a group speaks. A group that only holds
// offsets (simple commits, or every member gone) is classic and Empty.
type groupKind uint8

const (
	kindNone     groupKind = iota // deleted, or never more than a name
	kindClassic                   // JoinGroup/SyncGroup
	kindConsumer                  // KIP-848 ConsumerGroupHeartbeat
)

// offsetEntry is one committed offset.
type offsetEntry struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64
}

// group is one consumer group. Every field below quit/done is owned by the
// goroutine running run; other goroutines talk to it through submit.
type group struct {
	c  *Coordinator
	id string

	inbox chan func()
	quit  chan struct{} // closed by Coordinator.Close
	done  chan struct{} // closed when run returns

	// durable carries fsync completions from the log's committer to the
	// group goroutine without blocking the committer.
	durableMu sync.Mutex
	durableQ  []func()
	wake      chan struct{} // capacity 1

	// ---- owned by the group goroutine ----
	kind    groupKind
	offsets map[string]map[int32]offsetEntry
	classic classicState
	cons    consumerState
	// stopped: run has returned; late timers do nothing.
	stopped bool
	// inflight counts appends not yet durable; idleWaiters run when it
	// drops to zero (compaction).
	inflight    int
	idleWaiters []func()
	// appends counts successful appends; lastTicket is the latest one's
	// ticket (a request that wrote records waits for it).
	appends    uint64
	lastTicket log.Ticket
}

func newGroup(c *Coordinator, id string) *group {
	g := &group{
		c:       c,
		id:      id,
		inbox:   make(chan func(), 64),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		offsets: map[string]map[int32]offsetEntry{},
	}
	g.classic.init()
	g.cons.init()
	return g
}

// run is the group's goroutine.
func (g *group) run() {
	defer close(g.done)
	g.startTimers()
	for {
		select {
		case f := <-g.inbox:
			f()
		case <-g.wake:
			g.drainDurable()
		case <-g.quit:
			g.shutdown()
			return
		}
	}
}

// submit queues fn to run on the group goroutine; fn must call done exactly
// once, now or later. The returned channel receives that response. If the
// group has stopped the channel never receives; callers also watch g.done.
func (g *group) submit(fn func(done func(kmsg.Response))) <-chan kmsg.Response {
	ch := make(chan kmsg.Response, 1)
	g.post(func() {
		fn(func(r kmsg.Response) {
			select {
			case ch <- r:
			default: // answered twice: keep the first
			}
		})
	})
	return ch
}

// post queues f for the group goroutine; it gives up once the group stops.
func (g *group) post(f func()) bool {
	select {
	case g.inbox <- f:
		return true
	case <-g.quit:
		return false
	}
}

// barrier returns once everything queued before it has run (tests).
func (g *group) barrier() {
	ch := make(chan struct{})
	if g.post(func() { close(ch) }) {
		select {
		case <-ch:
		case <-g.done:
		}
	}
}

// durableFunc is a log.Notifier that hands the completion to the group
// goroutine.
type durableFunc struct {
	g  *group
	fn func(err error)
}

func (d *durableFunc) Durable(err error) {
	g := d.g
	g.durableMu.Lock()
	g.durableQ = append(g.durableQ, func() { d.fn(err) })
	g.durableMu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *group) drainDurable() {
	g.durableMu.Lock()
	q := g.durableQ
	g.durableQ = nil
	g.durableMu.Unlock()
	for _, f := range q {
		f()
	}
}

// persist appends recs as one batch and calls then on the group goroutine
// once they are durable (err nil) or failed. It never blocks on the fsync.
func (g *group) persist(recs []record, then func(err error)) {
	batch := encodeBatch(g.now().UnixMilli(), recs)
	t, err := g.c.journal.append(batch)
	if err != nil {
		g.c.cfg.Logger.Warn("group: append to offsets log failed", "group", g.id, "err", err)
		if then != nil {
			then(err)
		}
		return
	}
	g.inflight++
	g.appends++
	g.lastTicket = t
	g.c.noteAppended(len(recs))
	g.c.journal.whenDurable(t, &durableFunc{g: g, fn: func(err error) {
		g.inflight--
		if err != nil {
			g.c.cfg.Logger.Warn("group: offsets log not durable", "group", g.id, "err", err)
		}
		if then != nil {
			then(err)
		}
		if g.inflight == 0 && len(g.idleWaiters) > 0 {
			ws := g.idleWaiters
			g.idleWaiters = nil
			for _, w := range ws {
				w()
			}
		}
	}})
}

func (g *group) now() time.Time { return g.c.cfg.Clock.Now() }

// after schedules f on the group goroutine after d. The returned Timer
// stops it; f must still check that it is current, since a stop can race
// with a firing timer.
func (g *group) after(d time.Duration, f func()) Timer {
	return g.c.cfg.Clock.AfterFunc(d, func() {
		g.post(func() {
			if !g.stopped {
				f()
			}
		})
	})
}

// startTimers arms the timers of recovered state.
func (g *group) startTimers() {
	for _, m := range g.classic.members {
		g.scheduleSession(m)
	}
	if len(g.cons.members) > 0 {
		// Recompute the target on the next heartbeat, so that anything
		// unowned at the crash is assigned again.
		g.refreshTopicMeta()
		g.bumpGroupEpoch()
		for _, m := range g.cons.members {
			g.scheduleConsumerSession(m)
			if m.state == mUnrevoked {
				g.armRevokeTimer(m)
			}
		}
	}
}

// shutdown answers everything parked and stops timers.
func (g *group) shutdown() {
	g.stopped = true
	g.classic.shutdown()
	g.cons.shutdown()
}

// restore loads recovered state. It runs before the goroutine starts.
func (g *group) restore(r *recovered) {
	g.offsets = r.offsets
	switch {
	case r.consumer:
		g.kind = kindConsumer
		g.cons.groupEpoch = r.epoch
		g.cons.assignmentEpoch = r.epoch
		if err := g.cons.restoreMembers(r.members); err != nil {
			// A damaged member record costs that member a rejoin,
			// nothing more.
			g.c.cfg.Logger.Warn("group: dropping unreadable members", "group", g.id, "err", err)
			g.cons.init()
		}
	case r.classic != nil:
		g.kind = kindClassic
		g.classic.restore(r.classic)
	default:
		g.kind = kindClassic // offsets only: an empty classic group
	}
}

// newMemberID returns a fresh member id in Kafka's "<client id>-<uuid>" form.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	u := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if clientID == "" {
		return u
	}
	return clientID + "-" + u
}

// exists reports whether the group is visible (listable, describable).
func (g *group) exists() bool {
	switch g.kind {
	case kindClassic:
		return true
	case kindConsumer:
		return true
	}
	return false
}

// isEmpty reports whether the group has no members of either protocol.
func (g *group) isEmpty() bool {
	return len(g.classic.members) == 0 && len(g.classic.pending) == 0 && len(g.cons.members) == 0
}

// commitOffsets records offsets in memory (after they are durable).
func (g *group) setOffset(topic string, p int32, o offsetEntry) {
	parts := g.offsets[topic]
	if parts == nil {
		parts = map[int32]offsetEntry{}
		g.offsets[topic] = parts
	}
	parts[p] = o
}

// persistGroupRecord writes the group's current metadata record.
func (g *group) groupRecord() record {
	switch g.kind {
	case kindConsumer:
		return record{key: groupKey(keyConsumerGroup, g.id), value: consumerGroupValue(g.cons.groupEpoch)}
	default:
		return record{key: groupKey(keyGroupMetadata, g.id), value: g.classic.metadataValue(g.now())}
	}
}

var _ log.Notifier = (*durableFunc)(nil)

// ask runs fn on g's goroutine and returns its result; ok is false if the
// group stopped or ctx ended first.
func ask[T any](ctx context.Context, g *group, fn func() T) (v T, ok bool) {
	if g == nil {
		return v, false
	}
	ch := make(chan T, 1)
	if !g.post(func() { ch <- fn() }) {
		return v, false
	}
	select {
	case v = <-ch:
		return v, true
	case <-ctx.Done():
		return v, false
	case <-g.done:
		select {
		case v = <-ch:
			return v, true
		default:
			return v, false
		}
	}
}
