package log

import (
	"bytes"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// journalFiles lists the journal files of the store in /data.
func journalFiles(t *testing.T, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.ReadDir("/data/" + journalDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := parseJournalName(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// TestJournalLogWritesOnce checks journal-log mode end to end: appends
// write no segment file, reads come back from the journal, a reopened
// store serves the same bytes, retention frees journal files once no
// segment refers to them, the dropped data does not come back, and
// opening it without the journal log converts it to segment files.
func TestJournalLogWritesOnce(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalLog: true, JournalCheckpointBytes: 16 << 10, RetentionCheckInterval: -1, noCleaner: true}
	s := openMem(t, fs, opts)
	cfg := Config{SegmentBytes: 8 << 10, RetentionBytes: 24 << 10}
	l, _ := s.Open("t-0", cfg)
	other, _ := s.Open("t-1", Config{})
	var last Ticket
	now := time.Now().UnixMilli() // recent: only retention.bytes applies
	for i := 0; i < 200; i++ {
		r, err := l.Append(makeBatch(2, 200, now, byte(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Ticket
		waitDurable(t, s, last) // small groups: many journal files
		// A file rotates only once the maintenance goroutine has taken
		// the previous rotation's checkpoint: let it, or a busy machine
		// leaves too few files for the test.
		for deadline := time.Now().Add(time.Second); len(s.commit.rotated) > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if i == 0 {
			// A slow partition whose first chunk pins the oldest files.
			if r, err = other.Append(makeBatch(1, 10, now, byte(i)), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitDurable(t, s, last)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.segments()); n < 5 {
		t.Fatalf("%d segments, want several", n)
	}
	names, _ := fs.ReadDir("/data/t-0")
	for _, n := range names {
		if strings.HasSuffix(n, segmentSuffix) || strings.HasSuffix(n, indexSuffix) {
			t.Fatalf("journal-log mode wrote segment file %s", n)
		}
	}
	want := readAll(t, l, 0)
	if len(want) != 200 {
		t.Fatalf("read %d batches, want 200", len(want))
	}

	// Retention drops the oldest segments; a checkpoint then removes the
	// journal files only they referred to, except those the slow
	// partition still needs.
	before := len(journalFiles(t, fs))
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := s.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	start := l.LogStartOffset()
	if start == 0 {
		t.Fatal("retention dropped nothing")
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	after := journalFiles(t, fs)
	if len(after) >= before {
		t.Fatalf("journal files %d -> %d after retention", before, len(after))
	}
	if first, _ := parseJournalName(after[0]); first != 1 {
		t.Fatalf("oldest journal file left is %s; the slow partition's first chunk is in file 1", after[0])
	}
	otherWant := readAll(t, other, 0)
	if len(otherWant) != 1 {
		t.Fatalf("slow partition has %d batches, want 1", len(otherWant))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openMem(t, fs, opts)
	l, _ = s.Open("t-0", cfg)
	other, _ = s.Open("t-1", Config{})
	if got := l.LogStartOffset(); got != start {
		t.Fatalf("log start %d after reopen, want %d (dropped data came back?)", got, start)
	}
	got := readAll(t, l, start)
	kept := want[len(want)-len(got):]
	for i := range got {
		if !bytes.Equal(got[i], kept[i]) {
			t.Fatalf("batch %d differs after reopen", i)
		}
	}
	if h, _ := ParseHeader(got[0]); h.BaseOffset != start {
		t.Fatalf("first batch after reopen at %d, log start %d", h.BaseOffset, start)
	}
	for i, b := range readAll(t, other, 0) {
		if !bytes.Equal(b, otherWant[i]) {
			t.Fatalf("slow partition batch %d differs after reopen", i)
		}
	}
	r, err := l.Append(makeBatch(1, 10, now, 0), 1)
	if err != nil || r.BaseOffset != 400 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
	waitDurable(t, s, r.Ticket)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if _, _, err := fs.Stat(path.Join("/data", journalLogMarker)); err != nil {
		t.Fatalf("marker: %v", err)
	}
	wantAll := readAllAfterReopen(t, fs, opts, "t-0", start)
	checkConverted(t, fs, map[string][][]byte{"t-0": wantAll, "t-1": otherWant}, map[string]int64{"t-0": start})
}

// readAllAfterReopen opens the store, reads log name from offset from and
// closes it again.
func readAllAfterReopen(t *testing.T, fs vfs.FS, opts StoreOptions, name string, from int64) [][]byte {
	t.Helper()
	s := openMem(t, fs, opts)
	l, _ := s.Open(name, Config{})
	out := readAll(t, l, from)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkConverted opens the journal-log store in /data without the journal
// log, which converts it, and checks that every log reads back want (from
// its start in starts), that no segment is journal-backed and no journal
// file is left, that the marker is gone, and that an append works after.
func checkConverted(t *testing.T, fs vfs.FS, want map[string][][]byte, starts map[string]int64) {
	t.Helper()
	s := openMem(t, fs, StoreOptions{RetentionCheckInterval: -1})
	if _, _, err := fs.Stat(path.Join("/data", journalLogMarker)); err == nil {
		t.Fatal("marker left after the conversion")
	}
	for name, batches := range want {
		l, _ := s.Open(name, Config{})
		if got := l.LogStartOffset(); got != starts[name] {
			t.Fatalf("%s: log start %d after the conversion, want %d", name, got, starts[name])
		}
		sameBatches(t, readAll(t, l, starts[name]), batches, "the conversion of "+name)
		for _, seg := range l.segments() {
			if seg.jb != nil {
				t.Fatalf("%s: segment %d is journal-backed after the conversion", name, seg.base)
			}
		}
		r, err := l.Append(makeBatch(1, 10, time.Now().UnixMilli(), 0), 1)
		if err != nil || r.BaseOffset != l.NextOffset()-1 {
			t.Fatalf("%s: append after the conversion: %+v %v", name, r, err)
		}
		waitDurable(t, s, r.Ticket)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Only this last run's journal: nothing from the journal-log run.
	if files := journalFiles(t, fs); len(files) > 1 {
		t.Fatalf("journal files left after the conversion: %v", files)
	}
}

// TestJournalLogGroupsStartOnBlocks checks the rule that keeps acknowledged
// entries safe from a torn rewrite, in journal-log mode too (where chunks
// point into the journal, so entry positions are visible): an entry after a
// durable group starts on a new block, never in the block that holds the
// group's last entry.
func TestJournalLogGroupsStartOnBlocks(t *testing.T) {
	s := openMem(t, vfs.NewMem(), StoreOptions{JournalLog: true})
	defer s.Close()
	l, _ := s.Open("t-0", Config{})
	for i := 0; i < 20; i++ {
		r, err := l.Append(makeBatch(1, 10+i*37, time.Now().UnixMilli(), byte(i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
	}
	cs := l.active.jb.chunks.entries()
	if len(cs) != 20 {
		t.Fatalf("%d chunks, want 20", len(cs))
	}
	for i, c := range cs {
		entry := c.jpos - int64(journalEntryHeader+len("t-0"))
		if entry%vfs.DirectAlign != 0 {
			t.Fatalf("entry %d (after a durable group) starts at %d, inside a block", i, entry)
		}
	}
}

// TestJournalCleaner checks the cleaner: with a journal over its bounds,
// the segments that pin the oldest files are copied into ordinary segment
// files (the log's oldest first), the journal shrinks, and every byte
// reads back the same, before and after a reopen.
func TestJournalCleaner(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalLog: true, JournalCheckpointBytes: 16 << 10, JournalHotBytes: 64 << 10, RetentionCheckInterval: -1}
	s := openMem(t, fs, opts)
	fast, _ := s.Open("fast-0", Config{SegmentBytes: 8 << 10})
	slow, _ := s.Open("slow-0", Config{})
	now := time.Now().UnixMilli()
	for i := 0; i < 300; i++ {
		r, err := fast.Append(makeBatch(2, 200, now, byte(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if _, err := slow.Append(makeBatch(1, 10, now, byte(i)), 1); err != nil {
				t.Fatal(err)
			}
		}
		waitDurable(t, s, r.Ticket)
	}
	wantFast, wantSlow := readAll(t, fast, 0), readAll(t, slow, 0)
	// The cleaner also runs after each journal rotation; run it once more
	// and let a checkpoint remove what it freed.
	s.cleanJournal()
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// 64 KiB of hot journal is four 16 KiB files, plus the one being
	// written and one a reader or the slow log may still hold.
	files := len(journalFiles(t, fs))
	if st := s.Stats(); st.Materialized == 0 || files > 6 {
		t.Fatalf("cleaner: %d segments copied, %d journal files left", st.Materialized, files)
	}
	// Ordinary segments come first in each log, then journal-backed ones.
	for _, l := range []*Log{fast, slow} {
		seenJB := false
		for _, seg := range l.segments() {
			if seg.jb != nil {
				seenJB = true
			} else if seenJB {
				t.Fatalf("%s: ordinary segment %d after a journal-backed one", l.name, seg.base)
			}
		}
	}
	check := func(when string, l *Log, want [][]byte) {
		got := readAll(t, l, 0)
		if len(got) != len(want) {
			t.Fatalf("%s: %s has %d batches, want %d", when, l.name, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: %s batch %d differs", when, l.name, i)
			}
		}
	}
	check("after cleaning", fast, wantFast)
	check("after cleaning", slow, wantSlow)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs, opts)
	defer s.Close()
	fast, _ = s.Open("fast-0", Config{SegmentBytes: 8 << 10})
	slow, _ = s.Open("slow-0", Config{})
	check("after reopen", fast, wantFast)
	check("after reopen", slow, wantSlow)
	r, err := slow.Append(makeBatch(1, 10, now, 9), 1)
	if err != nil || r.BaseOffset != 3 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
}

// TestJournalIndexReplay checks that sealed journal files get index files
// and that recovery replays them from those, serving the same bytes, and
// that a damaged index falls back to reading the journal file.
func TestJournalIndexReplay(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalLog: true, JournalCheckpointBytes: 16 << 10, RetentionCheckInterval: -1, noCleaner: true}
	s := openMem(t, fs, opts)
	a, _ := s.Open("a-0", Config{SegmentBytes: 8 << 10})
	b, _ := s.Open("b-0", Config{})
	now := time.Now().UnixMilli()
	for i := 0; i < 200; i++ {
		r, err := a.Append(makeBatch(1+i%3, 150, now+int64(i), byte(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(makeBatch(1, 40, now, byte(i)), 1); err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
	}
	wantA, wantB := readAll(t, a, 0), readAll(t, b, 0)
	tsOff, _, _ := a.OffsetForTimestamp(now + 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.ReadDir("/data/" + journalDir)
	var idx []string
	for _, n := range names {
		if strings.HasSuffix(n, journalIndexSuffix) {
			idx = append(idx, n)
		}
	}
	if len(idx) < 3 {
		t.Fatalf("%d index files for %d journal files", len(idx), len(journalFiles(t, fs)))
	}
	check := func(when string, s *Store) {
		a, _ := s.Open("a-0", Config{SegmentBytes: 8 << 10})
		b, _ := s.Open("b-0", Config{})
		for _, c := range []struct {
			l    *Log
			want [][]byte
		}{{a, wantA}, {b, wantB}} {
			got := readAll(t, c.l, 0)
			if len(got) != len(c.want) {
				t.Fatalf("%s: %s has %d batches, want %d", when, c.l.name, len(got), len(c.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], c.want[i]) {
					t.Fatalf("%s: %s batch %d differs", when, c.l.name, i)
				}
			}
		}
		if off, _, _ := a.OffsetForTimestamp(now + 100); off != tsOff {
			t.Fatalf("%s: offset for timestamp %d, was %d", when, off, tsOff)
		}
	}
	s = openMem(t, fs, opts)
	if st := s.Stats(); st.IndexedReplays < 3 {
		t.Fatalf("%d journal files replayed from their index", st.IndexedReplays)
	}
	check("after reopen", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage every index: recovery reads the journal files instead.
	names, _ = fs.ReadDir("/data/" + journalDir)
	for _, n := range names {
		if strings.HasSuffix(n, journalIndexSuffix) {
			f, err := fs.OpenRW("/data/" + journalDir + "/" + n)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("XXXX"), 0)
			f.Sync()
			f.Close()
		}
	}
	s = openMem(t, fs, opts)
	defer s.Close()
	if st := s.Stats(); st.IndexedReplays != 0 {
		t.Fatalf("%d journal files replayed from damaged index files", st.IndexedReplays)
	}
	check("with damaged indexes", s)
}

// TestJournalLogConversionInterrupted fails the conversion to segment
// files at every sync in turn, then cuts the power and opens the directory
// again, half the time converting, half the time back in journal-log
// mode: nothing acknowledged is lost either way, and a finished conversion
// leaves no journal-backed segment. Logs: one with segments copied out by
// the cleaner before and journal-backed ones after, one whose start
// DeleteRecords moved into a batch, and an empty one.
func TestJournalLogConversionInterrupted(t *testing.T) {
	opts := StoreOptions{JournalLog: true, JournalCheckpointBytes: 16 << 10, RetentionCheckInterval: -1}
	build := func() (*vfs.Mem, map[string][][]byte, map[string]int64) {
		fs := vfs.NewMem()
		s := openMem(t, fs, opts)
		a, _ := s.Open("a-0", Config{SegmentBytes: 4 << 10})
		b, _ := s.Open("b-0", Config{SegmentBytes: 4 << 10})
		_, _ = s.Open("c-0", Config{})
		now := time.Now().UnixMilli()
		var last Ticket
		for i := 0; i < 60; i++ {
			r, err := a.Append(makeBatch(2, 100, now, byte(i)), 1)
			if err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if r, err = b.Append(makeBatch(2, 50, now, byte(i)), 1); err != nil {
					t.Fatal(err)
				}
			}
			last = r.Ticket
			if i == 30 {
				waitDurable(t, s, last)
				// Half of a goes to segment files as the cleaner copies it.
				s.cleanMu.Lock()
				if _, err := s.unpin(^uint64(0)); err != nil {
					t.Fatal(err)
				}
				s.cleanMu.Unlock()
			}
		}
		waitDurable(t, s, last)
		// Into a journal-backed segment, between a batch's two records.
		if _, err := b.DeleteRecords(31); err != nil {
			t.Fatal(err)
		}
		want := map[string][][]byte{"a-0": readAll(t, a, 0), "b-0": readAll(t, b, 31), "c-0": nil}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return fs, want, map[string]int64{"a-0": 0, "b-0": 31, "c-0": 0}
	}

	syncs := 0
	fs, _, _ := build()
	fs.SetSyncFault(func(string) error { syncs++; return nil })
	s := openMem(t, fs, StoreOptions{RetentionCheckInterval: -1})
	s.Close()
	if syncs < 10 {
		t.Fatalf("the conversion made %d syncs, want many", syncs)
	}
	t.Logf("a whole conversion makes %d syncs", syncs)
	failed := 0
	for k := 1; k <= syncs; k++ {
		fs, want, starts := build()
		n := 0
		fs.SetSyncFault(func(name string) error {
			if n++; n == k {
				return vfs.ErrInjected
			}
			return nil
		})
		if s, err := OpenStore(fs, "/data", StoreOptions{RetentionCheckInterval: -1}); err == nil {
			s.Close() // the failed sync was one the conversion could retry or skip
		} else {
			failed++
		}
		fs.Crash(rand.New(rand.NewPCG(uint64(k), 3)))
		fs = fs.Restart()
		if k%2 == 0 {
			// Back to the journal log: everything is still there.
			for name, batches := range want {
				got := readAllAfterReopen(t, fs, opts, name, starts[name])
				if len(got) != len(batches) {
					t.Fatalf("sync %d failed, journal-log reopen: %s has %d batches, want %d", k, name, len(got), len(batches))
				}
			}
		}
		checkConverted(t, fs, want, starts)
	}
	if failed == 0 {
		t.Fatal("no injected failure stopped a conversion")
	}
	t.Logf("%d of %d injected sync failures stopped the conversion; none lost data", failed, syncs)
}

// TestJournalPunchDeadChunks: records that stop being needed (a deleted
// log, DeleteRecords, the cleaner's copy) give their journal space back
// at once by hole punching, while journal files shared with live records
// stay; recovery, reading those files without an index after a crash,
// steps over the punched entries and keeps every live record after them.
func TestJournalPunchDeadChunks(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalLog: true, RetentionCheckInterval: -1, noCleaner: true}
	s := openMem(t, fs, opts)
	keep, _ := s.Open("keep-0", Config{SegmentBytes: 64 << 10})
	drop, _ := s.Open("drop-0", Config{})
	now := time.Now().UnixMilli()
	var want [][]byte
	for i := 0; i < 40; i++ {
		b := makeBatch(2, 8<<10, now, byte(i+1)) // several whole blocks each
		r, err := keep.Append(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drop.Append(makeBatch(2, 8<<10, now, 0xee), 1); err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
		want = append(want, b)
	}
	// Entries of both logs share one journal file.
	if files := journalFiles(t, fs); len(files) != 1 {
		t.Fatalf("journal files %v, want one", files)
	}
	if err := s.Delete("drop-0"); err != nil {
		t.Fatal(err)
	}
	// Punching happens off the dropping path, by the next checkpoint (or
	// maintenance tick).
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	afterDelete := s.Stats().JournalPunchedBytes
	if afterDelete < 40*12<<10 {
		t.Fatalf("deleting a log punched %d bytes, want most of its %d", afterDelete, 40*(16<<10))
	}
	start, err := keep.DeleteRecords(20)
	if err != nil || start != 20 {
		t.Fatalf("DeleteRecords: %d %v", start, err)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if s.Stats().JournalPunchedBytes == afterDelete {
		t.Fatal("DeleteRecords punched nothing")
	}
	// More live records after the punched ones, in the same file.
	for i := 40; i < 50; i++ {
		b := makeBatch(2, 8<<10, now, byte(i+1))
		r, err := keep.Append(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
		want = append(want, b)
	}
	want = want[10:] // offsets from 20
	fs.CrashDropUnsynced()
	s.Abandon()
	fs = fs.Restart()
	if names, _ := fs.ReadDir("/data/" + journalDir); slicesContainsSuffix(names, journalIndexSuffix) {
		t.Fatalf("journal %v has an index file: recovery must read the punched file", names)
	}

	s = openMem(t, fs, opts)
	defer s.Close()
	keep, _ = s.Open("keep-0", Config{})
	if err := keep.Err(); err != nil {
		t.Fatalf("log offline after recovery: %v", err)
	}
	if keep.LogStartOffset() != 20 || keep.NextOffset() != 100 {
		t.Fatalf("recovered [%d, %d), want [20, 100)", keep.LogStartOffset(), keep.NextOffset())
	}
	sameBatches(t, readAll(t, keep, 20), want, "recovery")
	if n := s.Stats().JournalTornBytes; n != 0 {
		t.Fatalf("recovery counted %d torn bytes: punched entries taken for a torn tail", n)
	}
	if n := s.Stats().JournalPunchedEntries; n < 40 {
		t.Fatalf("recovery stepped over %d punched entries, want at least the deleted log's 40", n)
	}
}

func slicesContainsSuffix(names []string, suffix string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}
