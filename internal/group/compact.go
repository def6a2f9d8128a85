package group

import (
	"github.com/sluice-mq/sluice/internal/log"
)

// Runtime compaction of the offsets log.
//
// The log is append-only, so without compaction it grows with every
// commit. Once compactAt records have been appended since the last
// compaction, a background goroutine:
//
//  1. takes a mark (the next append position), then lists the groups;
//  2. asks every group to append a snapshot of its state (metadata record
//     and all offsets). A group does so only when none of its own appends
//     is still waiting for durability, so every record it wrote before the
//     mark is already applied to the state it snapshots;
//  3. waits until every snapshot is durable and drops the log before the
//     mark.
//
// Records after the mark are kept, so appends racing with the compaction
// are never lost; a group created after step 1 writes only after the mark.
// A crash at any point replays to the same state.

// noteAppended counts n appended records and starts a compaction when due.
// Called from group goroutines.
func (c *Coordinator) noteAppended(n int) {
	if c.appended.Add(int64(n)) < c.compactAt.Load() || !c.compacting.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		c.compacting.Store(false)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.compacting.Store(false)
		if err := c.compactNow(); err != nil {
			c.cfg.Logger.Warn("group: compacting the offsets log failed", "err", err)
		}
	}()
}

// compactNow runs one compaction (see the file comment).
func (c *Coordinator) compactNow() error {
	m := c.journal.mark()
	c.appended.Store(0)
	type snap struct {
		ticket  log.Ticket
		records int
		err     error
	}
	var last log.Ticket
	live := 0
	for _, g := range c.all() {
		ch := make(chan snap, 1)
		if !g.post(func() {
			g.whenIdle(func() {
				t, n, err := g.appendSnapshot()
				ch <- snap{t, n, err}
			})
		}) {
			return nil // closing
		}
		select {
		case s := <-ch:
			if s.err != nil {
				return s.err
			}
			last = max(last, s.ticket)
			live += s.records
		case <-g.done:
			return nil // closing
		}
	}
	if last > 0 {
		done := make(chanNotifier, 1)
		c.journal.whenDurable(last, done)
		if err := <-done; err != nil {
			return err
		}
	}
	if err := c.journal.dropBefore(m); err != nil {
		return err
	}
	c.compactAt.Store(int64(2*live + c.cfg.compactAbove))
	c.cfg.Logger.Info("group offsets log compacted", "live", live)
	return nil
}

// whenIdle runs f on the group goroutine once none of the group's appends
// is waiting for durability (at once if none is).
func (g *group) whenIdle(f func()) {
	if g.inflight == 0 {
		f()
		return
	}
	g.idleWaiters = append(g.idleWaiters, f)
}

// appendSnapshot appends the group's state. It returns the ticket and
// record count (0, 0 for a group with nothing to keep).
func (g *group) appendSnapshot() (log.Ticket, int, error) {
	var recs []record
	if g.kind == kindConsumer || g.kind == kindClassic && (g.classic.generation > 0 || g.classic.protocolType != "") {
		recs = append(recs, g.groupRecord())
	}
	if g.kind == kindConsumer {
		for _, m := range g.cons.members {
			if m.written != nil {
				recs = append(recs, record{key: memberKey(g.id, m.id), value: m.written})
			}
		}
	}
	if g.kind != kindNone {
		for t, parts := range g.offsets {
			for p, o := range parts {
				recs = append(recs, record{key: offsetKey(g.id, t, p), value: offsetValue(o)})
			}
		}
	}
	if len(recs) == 0 {
		return 0, 0, nil
	}
	t, err := g.c.journal.append(encodeBatch(g.now().UnixMilli(), recs))
	return t, len(recs), err
}
