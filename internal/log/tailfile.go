package log

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// tailChunk is how many bytes of small appends a segment gathers in memory
// before it writes them to its file in one call; tailSmall is the largest
// append that is gathered (larger ones are written at once, after what is
// held).
//
// Why: a write(2) into the page cache costs about the same for 1 KiB as
// for 16 KiB (the syscall, the page-cache lookup and the inode timestamp
// update dominate small writes). Measured on the benchmark machine,
// writing 512 MiB into 16 or 1,024 files: 2.4–3.5 CPU-s/GB in 1 KiB
// writes, 1.1–1.5 in 4 KiB, 0.42–0.45 in 16 KiB, 0.23 in 64 KiB.
//
// A store lends at most tailBudget bytes of such buffers at a time (each
// tailChunk+tailSmall, kept by its segment until the next checkpoint, so
// gathering allocates nothing per append): with more partitions being
// written than that covers, the others write through as before.
//
// Buffers given back go to tailBufs rather than to the garbage collector:
// with hundreds of partitions written at once, every checkpoint (each
// 64 MiB of journal: several a second at full speed) gives back up to
// tailBudget of them, which the next appends would otherwise allocate
// and zero again.
const (
	tailChunk  = 64 << 10
	tailSmall  = 16 << 10
	tailBuf    = tailChunk + tailSmall
	tailBudget = 32 << 20
)

// tailBufs holds buffers between loans (a sync.Pool: reused while appends
// keep coming, released by the collector when they stop).
var tailBufs = sync.Pool{New: func() any { b := make([]byte, 0, tailBuf); return &b }}

// tailFile is a segment file whose newest bytes may still be in memory.
//
// Only appends that are already in the journal are held back (the caller
// says so per write): their bytes are durable there, so holding them in
// memory loses nothing a crash would not lose anyway, and replay writes
// them again. Every other write (the fsync-per-file and no-fsync
// policies, whose only copy is the segment file) first flushes what is
// held and then goes straight to the file, so a process crash never loses
// bytes those policies acknowledged.
//
// Readers see one file: ReadAt serves positions at or past start from
// memory and earlier ones from the file. Bytes below flushed are in the
// file for good (it only grows, except when recovery or a failed append
// cuts the tail, never below bytes a reader was given), which is what
// lets the fetch path send them with sendfile from the raw file.
//
// Sync writes what is held and then fsyncs, so a checkpoint covers the
// held bytes like any other. Close drops them: a store that is closed
// cleanly has synced first, and one that is abandoned (a simulated crash)
// must not write.
//
// Memory: bytes are held only until tailChunk has gathered, the segment is
// sealed or the next checkpoint; Sync gives the buffer back to the store's
// budget, so an idle partition holds none after a checkpoint, and all
// segments together hold at most tailBudget.
//
// Lock order: Log.mu before tailFile.mu; nothing is locked under mu but
// the file calls.
type tailFile struct {
	vfs.File // the segment file; Name, Allocate pass through

	budget *atomic.Int64 // the store's bytes left to lend; nil: never hold

	mu    sync.Mutex
	start int64   // file position of buf[0]: the file holds [0, start)
	buf   []byte  // held bytes, for positions [start, start+len(buf)); nil: none lent
	lent  *[]byte // the tailBufs entry buf came from

	flushed atomic.Int64 // start, readable without mu
}

func newTailFile(f vfs.File, budget *atomic.Int64) (*tailFile, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	t := &tailFile{File: f, start: size, budget: budget}
	t.flushed.Store(size)
	return t, nil
}

// appendAt writes b at off, which must be where the held bytes end. hold
// says b is durable elsewhere (the journal) and may stay in memory for a
// while. On error nothing of b is held or written past the previous end;
// bytes held before stay held.
func (t *tailFile) appendAt(b []byte, off int64, hold bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if off != t.start+int64(len(t.buf)) {
		return fmt.Errorf("%w: append at byte %d of a segment that ends at %d", ErrStorage, off, t.start+int64(len(t.buf)))
	}
	if hold && len(b) <= tailSmall && t.lendLocked() {
		t.buf = append(t.buf, b...)
		if len(t.buf) < tailChunk {
			return nil
		}
		if err := t.flushLocked(); err != nil {
			t.buf = t.buf[:len(t.buf)-len(b)]
			return err
		}
		return nil
	}
	if err := t.flushLocked(); err != nil {
		return err
	}
	if _, err := t.File.WriteAt(b, off); err != nil {
		t.cutLocked()
		return err
	}
	t.start += int64(len(b))
	t.flushed.Store(t.start)
	return nil
}

// lendLocked makes sure a buffer is lent to this file, if the budget
// allows.
func (t *tailFile) lendLocked() bool {
	if t.buf != nil {
		return true
	}
	if t.budget == nil {
		return false
	}
	if t.budget.Add(-tailBuf) < 0 {
		t.budget.Add(tailBuf)
		return false
	}
	t.lent = tailBufs.Get().(*[]byte)
	t.buf = (*t.lent)[:0]
	return true
}

// returnLocked gives an empty buffer back to the budget.
func (t *tailFile) returnLocked() {
	if t.buf != nil {
		tailBufs.Put(t.lent)
		t.buf, t.lent = nil, nil
		t.budget.Add(tailBuf)
	}
}

// flushLocked writes the held bytes to the file. On error they stay held
// and the file is cut back to start (a partial write may have extended it).
func (t *tailFile) flushLocked() error {
	if len(t.buf) == 0 {
		return nil
	}
	if _, err := t.File.WriteAt(t.buf, t.start); err != nil {
		t.cutLocked()
		return err
	}
	t.start += int64(len(t.buf))
	t.flushed.Store(t.start)
	t.buf = t.buf[:0]
	return nil
}

// cutLocked removes whatever a failed write left past start. Failing that
// is reported by the caller's own undo, which truncates again.
func (t *tailFile) cutLocked() { _ = t.File.Truncate(t.start) }

// flush writes the held bytes to the file and gives the buffer back (a
// segment being sealed).
func (t *tailFile) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.flushLocked(); err != nil {
		return err
	}
	t.returnLocked()
	return nil
}

// WriteAt is a write that is not held: for callers outside the append path.
func (t *tailFile) WriteAt(b []byte, off int64) (int, error) {
	if err := t.appendAt(b, off, false); err != nil {
		return 0, err
	}
	return len(b), nil
}

// ReadAt reads from memory at or past start and from the file before it.
func (t *tailFile) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= t.flushed.Load() {
		return t.File.ReadAt(p, off)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	if off < t.start {
		m := min(int64(len(p)), t.start-off)
		k, err := t.File.ReadAt(p[:m], off)
		n += k
		if err != nil {
			return n, err
		}
	}
	if rel := off + int64(n) - t.start; n < len(p) && rel < int64(len(t.buf)) {
		n += copy(p[n:], t.buf[rel:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size is the file's size including the held bytes.
func (t *tailFile) Size() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start + int64(len(t.buf)), nil
}

// Truncate cuts held bytes first and the file if size is below start.
func (t *tailFile) Truncate(size int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.start + int64(len(t.buf))
	if size == end && len(t.buf) > 0 {
		// Nothing held is cut (a failed append already took its bytes
		// back, and cutLocked the file's).
		return nil
	}
	if size >= end {
		if err := t.flushLocked(); err != nil {
			return err
		}
		if err := t.File.Truncate(size); err != nil {
			return err
		}
		t.start = size
		t.flushed.Store(size)
		return nil
	}
	if size >= t.start {
		t.buf = t.buf[:size-t.start]
		return nil
	}
	t.buf = t.buf[:0]
	if err := t.File.Truncate(size); err != nil {
		return err
	}
	t.start = size
	t.flushed.Store(size)
	return nil
}

// Sync writes the held bytes and fsyncs the file. A write that fails for
// lack of space is reported as errNoSpace: the bytes stay held (and in the
// journal), and the caller postpones its checkpoint rather than failing
// the store.
func (t *tailFile) Sync() error {
	t.mu.Lock()
	err := t.flushLocked()
	if err == nil {
		t.returnLocked() // idle partitions hold no buffer between checkpoints
	}
	t.mu.Unlock()
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: %w", errNoSpace, err)
		}
		return err
	}
	return t.File.Sync()
}

// Close closes the file; held bytes are dropped (see the type comment).
func (t *tailFile) Close() error {
	t.mu.Lock()
	t.returnLocked()
	t.mu.Unlock()
	return t.File.Close()
}

// raw is the file itself, for regions below flushed (sendfile).
func (t *tailFile) raw() vfs.File { return t.File }

var _ vfs.File = (*tailFile)(nil)
