package log

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestCommitTimes: every commit cycle is timed, and a slow fdatasync shows
// in the Sync (and Cycle) times, not in Write. Per-file mode fsyncs the
// segment files and writes no journal: it has no Write times.
func TestCommitTimes(t *testing.T) {
	for _, journalLog := range []bool{false, true} {
		fs := vfs.NewMem()
		s := openMem(t, fs, StoreOptions{JournalLog: journalLog, RetentionCheckInterval: -1})
		l, err := s.Open("t-0", Config{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			appendDurable(t, s, l, i)
		}
		ct := s.CommitTimes()
		if n := ct.Cycle.Count(); n < 1 || ct.Sync.Count() != n || ct.Write.Count() != n {
			t.Fatalf("journal log %v: %d cycles timed, %d syncs, %d writes", journalLog, n, ct.Sync.Count(), ct.Write.Count())
		}
		const slow = 30 * time.Millisecond
		fs.SetSyncFault(func(name string) error {
			if strings.HasSuffix(name, journalSuffix) {
				time.Sleep(slow)
			}
			return nil
		})
		appendDurable(t, s, l, 5)
		fs.SetSyncFault(nil)
		after := s.CommitTimes()
		if after.Cycle.Count() <= ct.Cycle.Count() {
			t.Fatalf("journal log %v: the slow cycle was not timed", journalLog)
		}
		if after.Sync.Max() < slow || after.Cycle.Max() < after.Sync.Max() {
			t.Errorf("journal log %v: sync max %v, cycle max %v; want both >= %v", journalLog, after.Sync.Max(), after.Cycle.Max(), slow)
		}
		if after.Write.Max() >= after.Sync.Max() {
			t.Errorf("journal log %v: write max %v includes the slow sync (%v)", journalLog, after.Write.Max(), after.Sync.Max())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommitTimesPerFile(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{PerFileSync: true, RetentionCheckInterval: -1})
	defer s.Close()
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	const slow = 30 * time.Millisecond
	fs.SetSyncFault(func(name string) error {
		if strings.HasSuffix(name, ".log") {
			time.Sleep(slow)
		}
		return nil
	})
	appendDurable(t, s, l, 0)
	fs.SetSyncFault(nil)
	ct := s.CommitTimes()
	if ct.Cycle.Count() < 1 || ct.Sync.Count() != ct.Cycle.Count() || ct.Write.Count() != 0 {
		t.Fatalf("%d cycles, %d syncs, %d writes timed; want syncs = cycles and no writes", ct.Cycle.Count(), ct.Sync.Count(), ct.Write.Count())
	}
	if ct.Sync.Max() < slow {
		t.Errorf("sync max %v, want >= %v (the segment file's fsync)", ct.Sync.Max(), slow)
	}
}
