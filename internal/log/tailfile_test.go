package log

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

func newTestTail(t *testing.T, budget int64) (*tailFile, vfs.File, *atomic.Int64) {
	t.Helper()
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create("/d/seg")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fs.Open("/d/seg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	b := &atomic.Int64{}
	b.Store(budget)
	tf, err := newTailFile(f, b)
	if err != nil {
		t.Fatal(err)
	}
	return tf, raw, b
}

func rawSize(t *testing.T, f vfs.File) int64 {
	t.Helper()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + i) * 7)
	}
	return b
}

// TestTailFileHoldsSmallAppends: small held appends stay in memory until a
// chunk gathers, reads see file and memory as one, and a large or
// write-through append goes out after what is held.
func TestTailFileHoldsSmallAppends(t *testing.T) {
	tf, raw, _ := newTestTail(t, tailBudget)
	off := 0
	for off+1000 < tailChunk-1000 {
		if err := tf.appendAt(pattern(off, 1000), int64(off), true); err != nil {
			t.Fatal(err)
		}
		off += 1000
	}
	if n := rawSize(t, raw); n != 0 {
		t.Fatalf("file has %d bytes before a chunk gathered, want 0", n)
	}
	if n, _ := tf.Size(); n != int64(off) {
		t.Fatalf("size %d, want %d", n, off)
	}
	got := make([]byte, off)
	if _, err := tf.ReadAt(got, 0); err != nil || !bytes.Equal(got, pattern(0, off)) {
		t.Fatalf("read of held bytes: %v", err)
	}
	// Filling the chunk writes it.
	for rawSize(t, raw) == 0 {
		if err := tf.appendAt(pattern(off, 1000), int64(off), true); err != nil {
			t.Fatal(err)
		}
		off += 1000
	}
	if n := rawSize(t, raw); n != int64(off) || tf.flushed.Load() != int64(off) {
		t.Fatalf("file %d bytes, flushed %d, want %d", n, tf.flushed.Load(), off)
	}
	// Hold some, then a write-through append: both land in order.
	if err := tf.appendAt(pattern(off, 500), int64(off), true); err != nil {
		t.Fatal(err)
	}
	off += 500
	if err := tf.appendAt(pattern(off, 700), int64(off), false); err != nil {
		t.Fatal(err)
	}
	off += 700
	// And a large held one is written at once.
	if err := tf.appendAt(pattern(off, tailSmall+1), int64(off), true); err != nil {
		t.Fatal(err)
	}
	off += tailSmall + 1
	if n := rawSize(t, raw); n != int64(off) {
		t.Fatalf("file %d bytes, want %d (nothing held)", n, off)
	}
	all := make([]byte, off)
	if _, err := raw.ReadAt(all, 0); err != nil || !bytes.Equal(all, pattern(0, off)) {
		t.Fatalf("file content differs: %v", err)
	}
	if err := tf.appendAt([]byte{1}, int64(off)+1, true); err == nil {
		t.Fatal("append off the end accepted")
	}
}

// newSplitTail returns a tailFile whose first 3,000 bytes are in the file
// and the next 2,000 held in memory (pattern bytes).
func newSplitTail(t *testing.T) (*tailFile, vfs.File) {
	t.Helper()
	tf, raw, _ := newTestTail(t, tailBudget)
	if err := tf.appendAt(pattern(0, 3000), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := tf.appendAt(pattern(3000, 2000), 3000, true); err != nil {
		t.Fatal(err)
	}
	return tf, raw
}

// TestTailFileReadAcrossBoundary reads every range that straddles the
// point where the file ends and memory begins.
func TestTailFileReadAcrossBoundary(t *testing.T) {
	tf, _ := newSplitTail(t)
	for from := 2990; from < 3010; from++ {
		for n := 1; n < 30; n++ {
			p := make([]byte, n)
			k, err := tf.ReadAt(p, int64(from))
			if err != nil || k != n || !bytes.Equal(p, pattern(from, n)) {
				t.Fatalf("read %d at %d: %d, %v", n, from, k, err)
			}
		}
	}
	p := make([]byte, 10)
	if k, err := tf.ReadAt(p, 4995); k != 5 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the end: %d, %v; want 5, EOF", k, err)
	}
}

// TestTailFileTruncate cuts held bytes, and file bytes below start.
func TestTailFileTruncate(t *testing.T) {
	tf, raw := newSplitTail(t)
	if err := tf.Truncate(4000); err != nil {
		t.Fatal(err)
	}
	if n, _ := tf.Size(); n != 4000 || rawSize(t, raw) != 3000 {
		t.Fatalf("size %d, file %d; want 4000, 3000", n, rawSize(t, raw))
	}
	if err := tf.Truncate(2500); err != nil {
		t.Fatal(err)
	}
	if n, _ := tf.Size(); n != 2500 || rawSize(t, raw) != 2500 || tf.flushed.Load() != 2500 {
		t.Fatalf("size %d, file %d, flushed %d; want 2500", n, rawSize(t, raw), tf.flushed.Load())
	}
	if err := tf.appendAt(pattern(2500, 100), 2500, true); err != nil {
		t.Fatal(err)
	}
	if err := tf.Sync(); err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 2600)
	if _, err := raw.ReadAt(all, 0); err != nil || !bytes.Equal(all, pattern(0, 2600)) {
		t.Fatalf("file content after truncate and sync: %v", err)
	}
}

// TestTailFileBudget: buffers are lent within the budget; a file that
// gets none writes through; Sync and Close give buffers back.
func TestTailFileBudget(t *testing.T) {
	tf, raw, budget := newTestTail(t, tailBuf) // room for one buffer
	fs2, _, _ := newTestTail(t, 0)
	fs2.budget = budget // shares the budget
	if err := tf.appendAt(pattern(0, 100), 0, true); err != nil {
		t.Fatal(err)
	}
	if budget.Load() != 0 || rawSize(t, raw) != 0 {
		t.Fatalf("budget %d, file %d: want the buffer lent and the bytes held", budget.Load(), rawSize(t, raw))
	}
	if err := fs2.appendAt(pattern(0, 100), 0, true); err != nil {
		t.Fatal(err)
	}
	if n := rawSize(t, fs2.File); n != 100 {
		t.Fatalf("second file has %d bytes; with no budget left it must write through", n)
	}
	if err := tf.Sync(); err != nil {
		t.Fatal(err)
	}
	if budget.Load() != tailBuf || rawSize(t, raw) != 100 {
		t.Fatalf("after Sync: budget %d, file %d", budget.Load(), rawSize(t, raw))
	}
	if err := tf.appendAt(pattern(100, 100), 100, true); err != nil {
		t.Fatal(err)
	}
	if err := tf.Close(); err != nil {
		t.Fatal(err)
	}
	if budget.Load() != tailBuf || rawSize(t, raw) != 100 {
		t.Fatalf("after Close: budget %d, file %d (held bytes are dropped, not written)", budget.Load(), rawSize(t, raw))
	}
}

// TestTailFileConcurrentReads: readers see exactly the appended bytes while
// the appender holds, flushes and writes through (run under -race).
func TestTailFileConcurrentReads(t *testing.T) {
	tf, _, _ := newTestTail(t, tailBudget)
	const total = 1 << 20
	var end atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	stop := make(chan struct{})
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			buf := make([]byte, 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := end.Load()
				if e == 0 {
					continue
				}
				off := rng.Int64N(e)
				n := min(int64(len(buf)), e-off)
				if _, err := tf.ReadAt(buf[:n], off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], pattern(int(off), int(n))) {
					errs <- errors.New("read returned other bytes")
					return
				}
			}
		}(uint64(r))
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for off := 0; off < total; {
		n := 1 + rng.IntN(6000)
		if err := tf.appendAt(pattern(off, n), int64(off), rng.IntN(10) != 0); err != nil {
			t.Fatal(err)
		}
		off += n
		end.Store(int64(off))
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestHeldBytesReplayedAfterCrash: under the fsync policy small appends
// are acknowledged while still held in memory; a process crash loses them
// from the segment, and the journal restores every one at the next open.
func TestHeldBytesReplayedAfterCrash(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	l, err := s.Open("h-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var last Ticket
	for i := 0; i < 20; i++ {
		r, err := l.Append(makeBatch(1+i%3, 100, int64(i), byte(i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Ticket
	}
	waitDurable(t, s, last)
	before := readAll(t, l, 0)
	path := l.active.path(segmentSuffix)
	written := l.active.written.Load()
	s.Abandon()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := rawSize(t, f)
	f.Close()
	if onDisk >= written {
		t.Fatalf("segment file has %d of %d bytes: nothing was held, the test tests nothing", onDisk, written)
	}
	s = openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, err = s.Open("h-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	sameBatches(t, readAll(t, l, 0), before, "the crash")
}

// TestCheckpointCannotWriteHeldBytes: a checkpoint that cannot write a
// segment's held bytes for lack of space fails alone and leaves the
// segment to the next checkpoint, which writes them once space returns; a
// crash after that finds every batch (the recovery point never runs ahead
// of the segment file).
func TestCheckpointCannotWriteHeldBytes(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{RetentionCheckInterval: -1})
	l, err := s.Open("n-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var last Ticket
	for i := 0; i < 10; i++ {
		r, err := l.Append(makeBatch(2, 200, int64(i), byte(i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Ticket
	}
	waitDurable(t, s, last)
	before := readAll(t, l, 0)
	if l.active.file.flushed.Load() >= l.active.written.Load() {
		t.Fatal("nothing held: the test tests nothing")
	}
	fs.SetCapacity(fs.Used())
	if err := s.Checkpoint(); err == nil {
		t.Fatal("checkpoint on a full disk with held bytes succeeded")
	}
	if err := s.fatalErr(); err != nil {
		t.Fatalf("store failed: %v", err)
	}
	fs.SetCapacity(0)
	if err := s.Checkpoint(); err != nil {
		t.Fatalf("checkpoint after space returned: %v", err)
	}
	s.Abandon()
	s = openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, err = s.Open("n-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("log offline after reopen: %v", err)
	}
	after := readAll(t, l, 0)
	if len(after) != len(before) {
		t.Fatalf("%d batches after the crash, %d before", len(after), len(before))
	}
}
