package log

import (
	"bytes"
	"testing"
)

// TestGroupCopy: the recent-cache copy of a commit group is made by the
// copier goroutine or, when the copier has not started it by the time the
// committer needs it, by the committer; either way finish returns with
// g.buf an exact copy, and a late copier never touches a group the
// committer took back (run with -race).
func TestGroupCopy(t *testing.T) {
	newCopy := func() *groupCopy {
		return &groupCopy{wake: make(chan struct{}, 1), done: make(chan struct{}, 1)}
	}
	src := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i%4096) }

	// No copier running: the committer takes every copy back.
	gc := newCopy()
	for i := range 3 {
		g := &recentGroup{}
		s := src(i)
		gc.start(g, s)
		gc.finish()
		if !bytes.Equal(g.buf, s) {
			t.Fatalf("copy %d made by the committer differs", i)
		}
	}

	// With a copier: whichever gets there first, every copy is whole.
	gc = newCopy()
	done := make(chan struct{})
	go func() { defer close(done); gc.copier() }()
	for i := range 2000 {
		g := &recentGroup{}
		s := src(i)
		gc.start(g, s)
		if i%3 == 0 {
			for range i % 50 { // sometimes give the copier time to start
				_ = bytes.Count(s, []byte{1})
			}
		}
		gc.finish()
		if !bytes.Equal(g.buf, s) {
			t.Fatalf("copy %d differs", i)
		}
	}
	close(gc.wake)
	<-done
}
