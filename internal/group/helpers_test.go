package group

import (
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-mq/sluice/internal/log"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manualClock is a Clock whose time moves only when Advance is called;
// timers fire from Advance, in deadline order.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Time
	seq     int
	f       func()
	stopped bool
	fired   bool
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves time forward by d, firing due timers one at a time.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		live := c.timers[:0]
		for _, t := range c.timers {
			if !t.stopped && !t.fired {
				live = append(live, t)
			}
		}
		c.timers = live
		sort.Slice(live, func(i, j int) bool {
			if !live[i].at.Equal(live[j].at) {
				return live[i].at.Before(live[j].at)
			}
			return live[i].seq < live[j].seq
		})
		if len(live) == 0 || live[0].at.After(target) {
			c.now = target
			c.mu.Unlock()
			return
		}
		t := live[0]
		t.fired = true
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// memJournal is an in-memory journal. With hold set, durability
// notifications wait for release.
type memJournal struct {
	mu      sync.Mutex
	batches [][]byte
	ticket  log.Ticket
	hold    bool
	held    []log.Notifier
	dropped int64 // batches dropped from the front
}

func (j *memJournal) append(batch []byte) (log.Ticket, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.batches = append(j.batches, append([]byte(nil), batch...))
	j.ticket++
	return j.ticket, nil
}

func (j *memJournal) whenDurable(_ log.Ticket, n log.Notifier) {
	j.mu.Lock()
	if j.hold {
		j.held = append(j.held, n)
		j.mu.Unlock()
		return
	}
	j.mu.Unlock()
	n.Durable(nil)
}

func (j *memJournal) release() {
	j.mu.Lock()
	held := j.held
	j.held, j.hold = nil, false
	j.mu.Unlock()
	for _, n := range held {
		n.Durable(nil)
	}
}

func (j *memJournal) mark() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.dropped + int64(len(j.batches))
}

func (j *memJournal) dropBefore(mark int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := mark - j.dropped
	j.batches = append([][]byte(nil), j.batches[n:]...)
	j.dropped = mark
	return nil
}

func (j *memJournal) replay(fn func([]byte) error) error {
	j.mu.Lock()
	bs := append([][]byte(nil), j.batches...)
	j.mu.Unlock()
	for _, b := range bs {
		if err := fn(append([]byte(nil), b...)); err != nil {
			return err
		}
	}
	return nil
}

// fakeTopics is a TopicLookup over a fixed set of topics.
type fakeTopics struct {
	mu     sync.Mutex
	topics map[string]topicInfo
}

func newFakeTopics() *fakeTopics { return &fakeTopics{topics: map[string]topicInfo{}} }

func (f *fakeTopics) set(name string, n int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.topics[name]
	if !ok {
		info.id[0] = byte(len(f.topics) + 1)
		copy(info.id[1:], name)
	}
	info.n = n
	f.topics[name] = info
}

func (f *fakeTopics) id(name string) [16]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.topics[name].id
}

func (f *fakeTopics) TopicPartitions(name string) (int32, [16]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.topics[name]
	return info.n, info.id, ok
}

func (f *fakeTopics) TopicNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.topics {
		out = append(out, name)
	}
	return out
}

func (f *fakeTopics) TopicName(id [16]byte) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, info := range f.topics {
		if info.id == id {
			return name, true
		}
	}
	return "", false
}

// waitFor polls cond until it holds or a bounded time passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
