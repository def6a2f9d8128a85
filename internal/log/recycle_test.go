package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestJournalStaleEntriesNotReplayed: a recycled journal file still holds
// the entries of its previous use after the new ones. Those carry the old
// file sequence and must end replay, never be applied. Here the whole file
// is stale: the journal of a crashed run is renamed to the next sequence,
// as a recycled file with nothing new written would be. Its entries would
// rebuild the log's lost batches if replay applied them.
func TestJournalStaleEntriesNotReplayed(t *testing.T) {
	crashed := func() *vfs.Mem {
		fs := vfs.NewMem()
		s := openMem(t, fs, StoreOptions{})
		l, err := s.Open("t-0", Config{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			r, err := l.Append(makeBatch(2, 100, int64(i), byte(i+1)), 0)
			if err != nil {
				t.Fatal(err)
			}
			waitDurable(t, s, r.Ticket)
		}
		fs.CrashDropUnsynced()
		s.Abandon()
		return fs.Restart()
	}

	// Control: replayed under its own name, the journal restores the three
	// batches (so the rename below is what the test is about).
	s2 := openMem(t, crashed(), StoreOptions{})
	l2, _ := s2.Open("t-0", Config{})
	if l2.NextOffset() != 6 {
		t.Fatalf("control: journal replay restored next offset %d, want 6", l2.NextOffset())
	}
	s2.Close()

	fs := crashed()
	dir := "/data/" + journalDir
	names, err := fs.ReadDir(dir)
	if err != nil || len(names) != 1 {
		t.Fatalf("journal files %v: %v", names, err)
	}
	seq, ok := parseJournalName(names[0])
	if !ok {
		t.Fatalf("journal file %q", names[0])
	}
	if err := fs.Rename(dir+"/"+names[0], dir+"/"+journalName(seq+1)); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	s3 := openMem(t, fs, StoreOptions{})
	defer s3.Close()
	l3, err := s3.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if l3.Err() != nil {
		t.Fatalf("log offline: %v", l3.Err())
	}
	if l3.NextOffset() != 0 {
		t.Fatalf("entries of journal file %d were replayed from file %d: next offset %d", seq, seq+1, l3.NextOffset())
	}
	if st := s3.Stats(); st.JournalTornBytes != 0 {
		t.Fatalf("a previous use's entries were counted as torn: %+v", st)
	}
}

// TestJournalRecycledAcrossCrash: with a tiny checkpoint threshold the
// journal rotates constantly and reuses retired files; after a power loss
// every acknowledged batch is back exactly once, and the recycled files of
// the crashed run are gone after the reopen.
func TestJournalRecycledAcrossCrash(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalCheckpointBytes: 8192, RetentionCheckInterval: -1}
	s := openMem(t, fs, opts)
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; i < 400 || s.Stats().JournalReused < 3; i++ {
		if i > 20000 {
			t.Fatalf("no journal reuse after %d appends: %+v", i, s.Stats())
		}
		want = append(want, appendDurable(t, s, l, i))
	}
	fs, s2, l2 := crashReopen(t, fs, s, opts)
	defer s2.Close()
	sameBatches(t, readAll(t, l2, 0), want, "the crash")
	names, err := fs.ReadDir("/data/" + journalDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, journalFreeSuffix) {
			t.Fatalf("recycled file %s of the crashed run kept: %v", n, names)
		}
	}
}

// TestJournalRecycledOnDisk: the same on the real file system (direct I/O
// where it is supported), with the process's state dropped as by SIGKILL:
// reused files are renamed, reopened without truncation and overwritten,
// and a reopen replays exactly the acknowledged batches.
func TestJournalRecycledOnDisk(t *testing.T) {
	dir := t.TempDir()
	opts := StoreOptions{JournalCheckpointBytes: 64 << 10, RetentionCheckInterval: -1}
	s, err := OpenStore(vfs.OS{}, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; i < 200 || s.Stats().JournalReused < 3; i++ {
		if i > 20000 {
			t.Fatalf("no journal reuse after %d appends: %+v", i, s.Stats())
		}
		b := makeBatch(4, 1000, int64(i), byte(i))
		r, err := l.Append(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
		want = append(want, b)
	}
	s.Abandon()

	s2, err := OpenStore(vfs.OS{}, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	l2, err := s2.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	sameBatches(t, readAll(t, l2, 0), want, "reopen")
	if st := s2.Stats(); st.JournalTornBytes != 0 || st.RecoveryTruncatedBytes != 0 {
		t.Fatalf("nothing was torn, yet: %+v", st)
	}
}

// TestJournalRecycledTailNotTorn: after a kill (no power loss) the newest
// journal file is a recycled one whose previous use's entries follow the
// new ones at unrelated boundaries (batch sizes vary). Replay must stop
// there without calling it a torn write.
func TestJournalRecycledTailNotTorn(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalCheckpointBytes: 16 << 10, RetentionCheckInterval: -1}
	s := openMem(t, fs, opts)
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; i < 300 || s.Stats().JournalReused < 4; i++ {
		if i > 20000 {
			t.Fatalf("no journal reuse after %d appends: %+v", i, s.Stats())
		}
		b := makeBatch(1+i%5, 100+(i*397)%900, int64(i), byte(i))
		r, err := l.Append(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
		n += 1 + i%5
	}
	s.Abandon()
	s2 := openMem(t, fs.Restart(), opts)
	defer s2.Close()
	l2, _ := s2.Open("t-0", Config{})
	if l2.NextOffset() != int64(n) {
		t.Fatalf("next offset %d after reopen, want %d; err %v stats %+v", l2.NextOffset(), n, l2.Err(), s2.Stats())
	}
	if st := s2.Stats(); st.JournalTornBytes != 0 {
		t.Fatalf("a recycled file's previous use was counted as torn: %+v", st)
	}
}

// TestDiskFullReleasesRecycledJournals: on a full disk the recycled journal
// files are given up before an append fails: the append that hit ENOSPC
// succeeds on the space they held.
func TestDiskFullReleasesRecycledJournals(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{JournalCheckpointBytes: 8192, RetentionCheckInterval: -1})
	defer s.Close()
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	free := func() []string {
		names, err := fs.ReadDir("/data/" + journalDir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, name := range names {
			if strings.HasSuffix(name, journalFreeSuffix) {
				out = append(out, name)
			}
		}
		return out
	}
	for i := 0; len(free()) == 0; i++ {
		if i > 5000 {
			t.Fatal("no journal file was retired for reuse")
		}
		r, err := l.Append(makeBatch(3, 500, int64(i), byte(i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
	}
	kept := free()
	fs.SetCapacity(fs.Used()) // not a byte left
	next := l.NextOffset()
	// Larger than tailChunk, so the segment is written now, not held.
	r, err := l.Append(makeBatch(80, 1000, 1, 9), 0)
	if err != nil {
		t.Fatalf("append on a full disk with recycled journal files kept: %v", err)
	}
	waitDurable(t, s, r.Ticket)
	if l.NextOffset() != next+80 || l.Err() != nil {
		t.Fatalf("next offset %d (want %d), log err %v", l.NextOffset(), next+80, l.Err())
	}
	// The files kept before the disk filled are gone. (A checkpoint still
	// running may retire newer ones meanwhile: that needs no space.)
	now := free()
	for _, k := range kept {
		if slices.Contains(now, k) {
			t.Fatalf("recycled journal file %s kept on a full disk (kept before %v, now %v)", k, kept, now)
		}
	}
}

// TestCheckpointOnFullDiskNotFatal: a checkpoint that cannot write its file
// or an index file for lack of space fails alone: the store stays up, the
// previous checkpoint and the journal stand, and once space returns
// appends and checkpoints work again and a reopen finds every batch.
func TestCheckpointOnFullDiskNotFatal(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{RetentionCheckInterval: -1})
	l, err := s.Open("t-0", Config{IndexIntervalBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	appendOne := func(i int) error {
		b := makeBatch(2, 300, int64(i), byte(i))
		r, err := l.Append(b, 0)
		if err != nil {
			return err
		}
		waitDurable(t, s, r.Ticket)
		want = append(want, b)
		return nil
	}
	for i := range 50 {
		if err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	fs.SetCapacity(fs.Used()) // not a byte left
	err = s.Checkpoint()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("checkpoint on a full disk: %v, want ENOSPC", err)
	}
	if e := s.fatalErr(); e != nil {
		t.Fatalf("store failed on a full disk: %v", e)
	}
	fs.SetCapacity(0)
	for i := 50; i < 60; i++ {
		if err := appendOne(i); err != nil {
			t.Fatalf("append after space returned: %v", err)
		}
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatalf("checkpoint after space returned: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openMem(t, fs.Restart(), StoreOptions{})
	defer s2.Close()
	l2, _ := s2.Open("t-0", Config{})
	sameBatches(t, readAll(t, l2, 0), want, "reopen")
}

// sameBatches fails unless got holds exactly the batches of want, in order.
func sameBatches(t *testing.T, got, want [][]byte, when string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d batches after %s, want %d", len(got), when, len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs after %s", i, when)
		}
	}
}

// TestOldFormatJournalRefused: a journal written before entries carried
// their file's sequence would end replay at its first entry, silently
// dropping acknowledged records; the store refuses to open instead.
func TestOldFormatJournalRefused(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	if _, err := s.Open("t-0", Config{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// One entry of the old format: length, crc, incarnation, name length,
	// name, records.
	name := "t-0"
	records := makeBatch(2, 100, 1, 1)
	const header = 18
	e := make([]byte, header+len(name)+len(records))
	binary.BigEndian.PutUint32(e[0:], uint32(len(e)-4))
	binary.BigEndian.PutUint64(e[8:], 12345)
	binary.BigEndian.PutUint16(e[16:], uint16(len(name)))
	copy(e[header:], name)
	copy(e[header+len(name):], records)
	crc, ok := journalEntryCRC(e[8:header+len(name)], records)
	if !ok {
		t.Fatal("bad test batch")
	}
	binary.BigEndian.PutUint32(e[4:], crc)
	f, err := fs.Create("/data/" + journalDir + "/" + journalName(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(e, 0); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	fs.SyncDir("/data/" + journalDir)

	if s2, err := OpenStore(fs, "/data", StoreOptions{}); err == nil {
		s2.Close()
		t.Fatal("a journal of the old format was opened (and its entries dropped)")
	} else if !strings.Contains(err.Error(), "earlier sluice") {
		t.Fatalf("open: %v, want the old-format error", err)
	}
	// Zeros (a fresh file) are not mistaken for the old format; nor is a
	// recycled file's previous use (TestJournalStaleEntriesNotReplayed
	// opens one).
	if !oldFormatJournal(e) || oldFormatJournal(make([]byte, 4096)) {
		t.Fatal("oldFormatJournal misjudges")
	}
}

// TestCheckpointAbortsWhenStoreFails: a store that fails while a
// checkpoint is running writes no checkpoint. One that did would leave out
// every log it had not reached (their Err reports the store's failure),
// and the journal files it then retires would take those logs'
// acknowledged entries with them (seen as lost records after a restart).
func TestCheckpointAbortsWhenStoreFails(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{RetentionCheckInterval: -1})
	defer s.Abandon()
	for _, name := range []string{"a-0", "b-0"} {
		l, err := s.Open(name, Config{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := l.Append(makeBatch(2, 100, 1, 'x'), 0)
		if err != nil {
			t.Fatal(err)
		}
		waitDurable(t, s, r.Ticket)
	}
	before := s.Stats().Checkpoints
	traceHook = func(format string, args ...any) {
		if strings.HasPrefix(format, "syncFiles") && len(args) > 0 && args[0] == "a-0" {
			s.setFatal(errors.New("test: store failed during the checkpoint"))
		}
	}
	err := s.Checkpoint()
	traceHook = nil
	if err == nil {
		t.Fatal("checkpoint succeeded although the store failed while it ran")
	}
	if got := s.Stats().Checkpoints; got != before {
		t.Fatalf("%d checkpoints written, want %d", got, before)
	}
}

// TestJournalPreparedAhead: after each rotation's checkpoint the
// maintenance goroutine opens the next journal file, so rotations take a
// file that is ready (JournalPrepared) instead of renaming and fsyncing the
// directory in the committer's path. A crash while a prepared file exists
// (it carries the next sequence and a previous use's entries) loses
// nothing, and a clean Close leaves no journal file behind.
func TestJournalPreparedAhead(t *testing.T) {
	fs := vfs.NewMem()
	opts := StoreOptions{JournalCheckpointBytes: 8192, RetentionCheckInterval: -1}
	s := openMem(t, fs, opts)
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	appendOne := func(i int) { want = append(want, appendDurable(t, s, l, i)) }
	i := 0
	for ; s.Stats().JournalPrepared < 3 || s.Stats().JournalReused < 3; i++ {
		if i > 20000 {
			t.Fatalf("no prepared journal files used after %d appends: %+v", i, s.Stats())
		}
		appendOne(i)
	}
	// Wait for the next file to be prepared, then crash with it there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.prepMu.Lock()
		p := s.prepared
		s.prepMu.Unlock()
		if p != nil {
			if _, isDir, err := fs.Stat("/data/" + journalDir + "/" + journalName(p.seq)); err != nil || isDir {
				t.Fatalf("prepared journal file %d not on disk: %v", p.seq, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal file prepared: %+v", s.Stats())
		}
		appendOne(i)
		i++
	}
	fs, s2, l2 := crashReopen(t, fs, s, opts)
	sameBatches(t, readAll(t, l2, 0), want, "a crash with a prepared journal file")

	// Again up to a prepared file, then a clean Close.
	l = l2
	s = s2
	for j := 0; s.Stats().JournalPrepared < 2; j++ {
		if j > 20000 {
			t.Fatalf("no prepared journal files used after the restart: %+v", s.Stats())
		}
		appendOne(i)
		i++
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.prepMu.Lock()
		p := s.prepared
		s.prepMu.Unlock()
		if p != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal file prepared after the restart: %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := fs.ReadDir("/data/" + journalDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, ok := parseJournalName(n); ok {
			t.Fatalf("journal file %s left after a clean close: %v", n, names)
		}
	}
	s3 := openMem(t, fs, opts)
	defer s3.Close()
	l3, err := s3.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	sameBatches(t, readAll(t, l3, 0), want, "a clean close with a prepared journal file")
}

// appendDurable appends batch i (three 200-byte records) to l, waits until
// it is durable and returns it.
func appendDurable(t testing.TB, s *Store, l *Log, i int) []byte {
	t.Helper()
	b := makeBatch(3, 200, int64(i), byte(i))
	r, err := l.Append(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitDurable(t, s, r.Ticket)
	return b
}

// crashReopen cuts the power under s (unsynced writes are lost), reopens
// the store on what is left and returns it with log t-0, which must be
// online.
func crashReopen(t *testing.T, fs *vfs.Mem, s *Store, opts StoreOptions) (*vfs.Mem, *Store, *Log) {
	t.Helper()
	fs.CrashDropUnsynced()
	s.Abandon()
	fs = fs.Restart()
	s2 := openMem(t, fs, opts)
	l2, err := s2.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Err() != nil {
		t.Fatalf("log offline: %v", l2.Err())
	}
	return fs, s2, l2
}
