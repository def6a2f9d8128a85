package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluice-mq/sluice/internal/hist"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// Journal entry format (part of the on-disk format). Journal files live in
// <store>/journal/<seq, 20 digits>.wal and hold entries back to back:
//
//	 0  length       uint32  bytes after this field
//	 4  crc          uint32  CRC-32C, see below
//	 8  fileSeq      uint64  sequence of the journal file it was written to
//	16  incarnation  uint64  of the partition log the records belong to
//	24  nameLength   uint16
//	26  name         [nameLength]byte  partition directory, e.g. "orders-3"
//	..  records      the record set exactly as written to the segment
//	                 (offsets and leader epoch already assigned)
//
// The crc of a record entry covers bytes [8, 26+nameLength) and then the
// first 21 bytes of each batch (base offset, length, leader epoch, magic and
// the batch's own CRC); the rest of each batch is covered by that batch
// CRC. So every byte of an entry is checksummed, yet the append path
// checksums each record byte once (validating the batch), not twice. An
// entry whose crc or any batch CRC fails ends the journal. Special entries
// (empty name) have their crc over all of [8, 4+length).
//
// Each commit group is written as a whole number of 4096-byte blocks, with
// direct I/O where the file system allows it (the journal is never read
// back except at recovery, so it skips the page cache): a padding entry
// (incarnation 2, empty name) fills the last block. A block holding
// acknowledged entries is never written again.
//
// A file that is not the last one ends with a seal: an entry with
// incarnation 0 and an empty name, written when the next file takes over
// and fsynced before any entry of the next file is acknowledged.
//
// The journal ends at the first entry that is short, fails its CRC or
// carries another file's sequence, or at the end of a file that has no seal:
// the entries after that point (in that file and any later file) were never
// acknowledged, because an fsync acknowledges a prefix of the journal.
//
// Journal files are recycled: a file whose entries a checkpoint has made
// redundant is renamed to <old seq, 20 digits>.free and later renamed to
// the next sequence and overwritten from the start, instead of a new file
// being created and allocated. Overwriting blocks that are already written
// changes no file system metadata, so each fdatasync is one device flush
// and no file system journal commit. The previous use's entries left after
// the new ones carry the old sequence, which is why each entry records the
// sequence of its file: replay stops at the first one that does not match.
const (
	journalDir         = "journal"
	journalSuffix      = ".wal"
	journalFreeSuffix  = ".free"
	journalEntryHeader = 26

	// Field offsets in an entry.
	jeSeq     = 8
	jeInc     = 16
	jeNameLen = 24
)

// committer is the group-commit engine. Appends under the fsync policy hand
// it their bytes (journal mode: copied into an in-memory buffer; per-file
// mode: nothing, the segment file itself is fsynced) and get a ticket; the
// commit goroutine writes the whole buffer with one pwrite and makes it
// durable with one fdatasync, then raises each touched log's high watermark
// and completes the waiting tickets. Appenders never touch the journal file,
// so they never wait behind its fsync.
//
// The journal write cannot fail for lack of space: add reserves the bytes
// in the current file first (fallocate, in 16 MiB steps), and a reservation
// that fails returns ENOSPC to that append, which is rolled back. A failed
// journal write after that is an I/O error and fatal, like a failed fsync.
//
// Tickets count appends. Ticket 0 is always durable.
type committer struct {
	store   *Store
	perFile bool

	mu sync.Mutex // guards the fields below; after Log.mu in the lock order
	// Journal mode.
	file    vfs.File
	fileSeq uint64
	// jf is the current file as journal-backed segments see it (journal-log
	// mode only; nil otherwise).
	jf *jfile
	// filePos is the journal position after the last entry added (written
	// or still in buf); bufStart is the file position of buf[0]; fileCap is
	// how far the file's space is reserved.
	filePos  int64
	bufStart int64
	fileCap  int64
	buf      []byte
	// appended is the ticket of the last add.
	appended uint64
	// cycle lists the logs with appends since the last cycle started; each
	// has inCycle set and pendingHW holding its high watermark once the
	// cycle's fsync completes.
	cycle   []*Log
	waiters []waiter
	closed  bool

	durable atomic.Uint64
	wake    chan struct{} // capacity 1
	stop    chan struct{}
	done    chan struct{}

	// Commit goroutine only.
	spareBuf  []byte
	spareLogs []*Log
	hws       []int64
	ready     []Notifier
	// cp is the group the copier goroutine copies for the recent cache.
	cp groupCopy
	// rotated is told the sequence of a journal file that has been fully
	// fsynced and may be checkpointed away.
	rotated chan uint64

	// times: how long the commit cycles took (see CommitTimes).
	timesMu sync.Mutex
	times   CommitTimes
}

// CommitTimes is how long the store's commit cycles took since it opened:
// what an fsync-policy append waits for once its cycle starts. Write and
// Sync are the device's share (the journal's one write of the group, and
// its fdatasync; per-file mode: the fsyncs of the dirty segment files), so
// a slow disk shows there and not in the rest of Cycle.
type CommitTimes struct {
	// Cycle: from taking the group to its waiters being told.
	Cycle hist.Histogram
	Write hist.Histogram
	Sync  hist.Histogram
}

// CommitTimes returns how long the commit cycles took so far.
func (s *Store) CommitTimes() CommitTimes {
	c := s.commit
	c.timesMu.Lock()
	defer c.timesMu.Unlock()
	return c.times
}

// groupCopy is one commit group's copy for the recent cache (g.buf, a
// copy of src). The committer fills g and src and marks it copyPending,
// then wakes the copier; whichever of the two moves it out of copyPending
// first makes the copy. So the copy is made while the committer waits for
// the device, yet a copier kept off the CPU (two cores shared with the
// clients) never holds up a commit: the committer takes it back.
type groupCopy struct {
	state atomic.Int32
	g     *recentGroup
	src   []byte
	wake  chan struct{} // capacity 1: a copy may be pending
	done  chan struct{} // capacity 1: the copier finished one
}

const (
	copyIdle    = iota // nothing to copy, or the copy is made
	copyPending        // g and src are set; nobody has started
	copyRunning        // the copier is copying
)

// copier is the copier goroutine's loop; it returns when wake is closed.
func (gc *groupCopy) copier() {
	for range gc.wake {
		if gc.state.CompareAndSwap(copyPending, copyRunning) {
			gc.g.buf = append([]byte(nil), gc.src...)
			gc.state.Store(copyIdle)
			select {
			case gc.done <- struct{}{}:
			default:
			}
		}
	}
}

// start hands g (a copy of src) to the copier.
func (gc *groupCopy) start(g *recentGroup, src []byte) {
	gc.g, gc.src = g, src
	gc.state.Store(copyPending)
	select {
	case gc.wake <- struct{}{}:
	default:
	}
}

// finish returns once the copy is made: by the committer itself if the
// copier has not started it.
func (gc *groupCopy) finish() {
	if gc.state.CompareAndSwap(copyPending, copyIdle) {
		gc.g.buf = append([]byte(nil), gc.src...)
	}
	for gc.state.Load() != copyIdle {
		<-gc.done // a token left from an earlier copy only loops once more
	}
	gc.g, gc.src = nil, nil
}

type waiter struct {
	ticket Ticket
	n      Notifier
}

func journalName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, journalSuffix) }

// journalReserveStep is how much journal space add reserves at a time.
const journalReserveStep = 16 << 20

// journalPadIncarnation marks padding entries. Real incarnations are odd.
const journalPadIncarnation = 2

// alignedBytes returns a zero-length slice with capacity n whose first byte
// is aligned for direct I/O.
func alignedBytes(n int) []byte {
	b := make([]byte, n+vfs.DirectAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (vfs.DirectAlign - 1))
	if off != 0 {
		off = vfs.DirectAlign - off
	}
	return b[off : off : off+n]
}

// growLocked makes room for n more bytes in c.buf, keeping it aligned.
func (c *committer) growLocked(n int) {
	if cap(c.buf)-len(c.buf) >= n {
		return
	}
	nb := alignedBytes(max(2*cap(c.buf), len(c.buf)+n+2*vfs.DirectAlign, 1<<20))
	c.buf = append(nb, c.buf...)
}

// padLocked fills c.buf to a whole number of blocks with a padding entry.
func (c *committer) padLocked() {
	rem := int(c.filePos % vfs.DirectAlign) // bufStart is aligned, or buf is empty
	if rem == 0 {
		return
	}
	pad := vfs.DirectAlign - rem
	if pad < journalEntryHeader {
		pad += vfs.DirectAlign
	}
	c.growLocked(pad)
	start := len(c.buf)
	c.buf = c.buf[:start+pad]
	b := c.buf[start:]
	clear(b)
	binary.BigEndian.PutUint32(b[0:], uint32(pad-4))
	binary.BigEndian.PutUint64(b[jeSeq:], c.fileSeq)
	binary.BigEndian.PutUint64(b[jeInc:], journalPadIncarnation)
	binary.BigEndian.PutUint32(b[4:], crc32c(b[8:]))
	c.filePos += int64(pad)
}

// createJournal creates a journal file (or a segment file the journal
// cleaner writes), for direct I/O where possible.
func createJournal(fsys vfs.FS, name string) (vfs.File, error) {
	if d, ok := fsys.(vfs.DirectCreator); ok {
		return d.CreateDirect(name)
	}
	return fsys.Create(name)
}

// openJournal opens an existing journal file for overwriting, for direct
// I/O where possible.
func openJournal(fsys vfs.FS, name string) (vfs.File, error) {
	if d, ok := fsys.(vfs.DirectCreator); ok {
		return d.OpenDirect(name)
	}
	return fsys.OpenRW(name)
}

// add records an fsync-policy append of records to l, whose high watermark
// becomes next once durable. Called with l.mu held. In journal-log mode jb
// is the active segment's data and segPos where records start in it: the
// entry becomes its chunk here, under c.mu, so no cycle can publish the
// high watermark before the chunk exists.
func (c *committer) add(l *Log, records []byte, next, maxTS int64, jb *jbFile, segPos int64) (Ticket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	if err := c.store.fatalErr(); err != nil {
		return 0, err
	}
	if !c.perFile {
		n := journalEntryHeader + len(l.name) + len(records)
		if err := c.reserveLocked(int64(n)); err != nil {
			return 0, err
		}
		c.growLocked(n)
		start := len(c.buf)
		c.buf = c.buf[:start+n]
		b := c.buf[start:]
		binary.BigEndian.PutUint32(b[0:], uint32(n-4))
		binary.BigEndian.PutUint64(b[jeSeq:], c.fileSeq)
		binary.BigEndian.PutUint64(b[jeInc:], l.incarnation)
		binary.BigEndian.PutUint16(b[jeNameLen:], uint16(len(l.name)))
		copy(b[journalEntryHeader:], l.name)
		copy(b[journalEntryHeader+len(l.name):], records)
		crc, _ := journalEntryCRC(b[8:journalEntryHeader+len(l.name)], records) // validated: frames
		binary.BigEndian.PutUint32(b[4:], crc)
		if jb != nil {
			head := int64(journalEntryHeader + len(l.name))
			jb.add(chunk{pos: segPos, jf: c.jf, jpos: c.filePos + head, n: int64(len(records))})
			c.jf.entries = append(c.jf.entries, jentry{
				inc: l.incarnation, name: l.name,
				base: int64(binary.BigEndian.Uint64(records)), last: next - 1, maxTS: maxTS,
				jpos: c.filePos + head, n: int64(len(records)),
			})
		}
		c.filePos += int64(n)
	}
	c.appended++
	l.pendingHW = next
	if !l.inCycle {
		l.inCycle = true
		c.cycle = append(c.cycle, l)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return Ticket(c.appended), nil
}

// batchPrefix is the part of a v2 batch before its attributes (base offset,
// length, partition leader epoch, magic, CRC): the bytes the batch CRC does
// not cover.
const batchPrefix = 21

// journalEntryCRC is a record entry's crc: CRC-32C over fixed (incarnation,
// name length and name) and the batchPrefix bytes of each batch in records.
// ok is false if records is not a sequence of whole batches by their length
// fields.
func journalEntryCRC(fixed, records []byte) (crc uint32, ok bool) {
	crc = crc32.Update(0, castagnoli, fixed)
	for len(records) > 0 {
		if len(records) < batchHeaderSize {
			return 0, false
		}
		size := batchOverhead + int64(int32(binary.BigEndian.Uint32(records[batchLengthOffset:])))
		if size < batchHeaderSize || size > int64(len(records)) {
			return 0, false
		}
		crc = crc32.Update(crc, castagnoli, records[:batchPrefix])
		records = records[size:]
	}
	return crc, true
}

// reserveLocked makes sure the current journal file has space reserved for
// n more bytes (plus a seal). On a full disk it first gives up the recycled
// journal files.
func (c *committer) reserveLocked(n int64) error {
	err := c.tryReserveLocked(n)
	if err != nil && c.store.releaseSpare(err) {
		err = c.tryReserveLocked(n)
	}
	return err
}

func (c *committer) tryReserveLocked(n int64) error {
	// Room for the entry, a seal and the padding after each.
	need := c.filePos + n + 2*journalEntryHeader + 2*vfs.DirectAlign
	if need <= c.fileCap {
		return nil
	}
	grow := max(need-c.fileCap, journalReserveStep)
	if err := c.file.Allocate(c.fileCap, grow); err != nil {
		// Short of a whole step (a nearly full disk): reserve just what
		// this entry needs, so produce works until the disk is really
		// full, not until it has less than a step free.
		if grow == need-c.fileCap || c.file.Allocate(c.fileCap, need-c.fileCap) != nil {
			return fmt.Errorf("journal space: %w", err)
		}
		grow = need - c.fileCap
	}
	c.fileCap += grow
	return nil
}

// WhenDurable calls n.Durable once ticket t is durable: at once (on this
// goroutine) if it already is, otherwise from the commit goroutine. If the
// store fails, n.Durable receives the failure.
func (s *Store) WhenDurable(t Ticket, n Notifier) {
	c := s.commit
	if uint64(t) <= c.durable.Load() {
		n.Durable(nil)
		return
	}
	c.mu.Lock()
	if uint64(t) <= c.durable.Load() {
		c.mu.Unlock()
		n.Durable(nil)
		return
	}
	if err := s.fatalErr(); err != nil {
		c.mu.Unlock()
		n.Durable(err)
		return
	}
	if c.closed {
		c.mu.Unlock()
		n.Durable(ErrClosed)
		return
	}
	c.waiters = append(c.waiters, waiter{ticket: t, n: n})
	c.mu.Unlock()
}

// IsDurable reports whether ticket t is durable.
func (s *Store) IsDurable(t Ticket) bool { return uint64(t) <= s.commit.durable.Load() }

func (c *committer) run() {
	copierDone := make(chan struct{})
	go func() {
		defer close(copierDone)
		c.cp.copier()
	}()
	defer func() {
		close(c.cp.wake)
		<-copierDone
		close(c.done)
	}()
	for {
		select {
		case <-c.wake:
			c.runCycle()
		case <-c.stop:
			c.runCycle()
			return
		}
	}
}

// runCycle makes everything added so far durable with one fsync (or one per
// dirty segment file in per-file mode) and publishes the results.
func (c *committer) runCycle() {
	var next vfs.File
	var nextJF *jfile
	var nextSeq uint64
	var nextCap int64
	if !c.perFile && c.rotationDue() {
		// Open the next journal file before taking the lock; a failure
		// only postpones rotation.
		nextSeq = c.currentSeq() + 1
		f, size, err := c.store.takeJournalFile(nextSeq)
		if err != nil {
			c.store.logger.Warn("journal rotation postponed", "err", err)
		} else {
			next, nextCap = f, size
			if c.store.journalLog {
				nextJF = c.store.addJFile(nextSeq, f, 1)
			}
		}
	}

	start := time.Now()
	c.mu.Lock()
	target := c.appended
	logs := c.cycle
	c.cycle = c.spareLogs[:0]
	hws := c.hws[:0]
	for _, l := range logs {
		hws = append(hws, l.pendingHW)
		l.inCycle = false
	}
	file, jf := c.file, c.jf
	var rotatedSeq uint64
	if next != nil {
		c.sealLocked()
		rotatedSeq = c.fileSeq
	}
	c.padLocked()
	buf, bufStart := c.buf, c.bufStart
	c.buf, c.bufStart = c.spareBuf[:0], c.filePos
	if next != nil {
		// A recycled file's blocks up to its size are written already: no
		// reservation needed there.
		c.file, c.fileSeq, c.filePos, c.bufStart, c.fileCap = next, nextSeq, 0, 0, nextCap
		c.jf = nextJF
	}
	c.mu.Unlock()

	// Journal-log mode keeps a copy of the group in memory for readers at
	// the tail (the write skips the page cache). The copy is made on another
	// goroutine while this one waits for the device (groupCopy): allocating
	// and filling up to 1 MiB took 1.2 ms at the p99 of a 50 MB/s run (page
	// faults, GC assists), all of it added to the commit latency when done
	// in line.
	var g *recentGroup
	if jf != nil && len(buf) > 0 && len(buf) <= recentGroupMax {
		g = &recentGroup{seq: jf.seq, start: bufStart, end: bufStart + int64(len(buf))}
		c.cp.start(g, buf)
	}
	var err error
	wrote, synced := time.Duration(-1), time.Duration(-1) // -1: not done
	// A rotation must fsync the old file even with nothing new in it: its
	// seal must be durable before anything in the next file is
	// acknowledged.
	if target > c.durable.Load() || rotatedSeq != 0 {
		if c.perFile {
			t := time.Now()
			for _, l := range logs {
				if err = l.syncFiles(false); err != nil {
					break
				}
			}
			synced = time.Since(t)
		} else {
			if len(buf) > 0 {
				t := time.Now()
				if _, e := file.WriteAt(buf, bufStart); e != nil {
					err = fmt.Errorf("journal write: %w", e)
				} else if jf != nil {
					jf.written.Store(bufStart + int64(len(buf)))
				}
				wrote = time.Since(t)
			}
			if err == nil {
				t := time.Now()
				if e := file.Sync(); e != nil {
					err = fmt.Errorf("fsync journal: %w", e)
				}
				synced = time.Since(t)
			}
		}
	}
	if g != nil {
		// buf is reused once this cycle ends: the copy must be done.
		c.cp.finish()
		if err == nil {
			c.store.recent.add(g)
		}
	}
	if traceHook != nil {
		trace("cycle target %d rotated %d err %v", target, rotatedSeq, err)
	}
	if err != nil {
		c.store.setFatal(err)
		err = c.store.fatalErr()
	} else {
		// High watermarks first: a caller that sees its ticket durable (even
		// through WhenDurable's fast path) must also see its data readable.
		for i, l := range logs {
			l.publishHW(hws[i])
		}
		c.durable.Store(target)
	}
	if next != nil {
		if jf != nil {
			jf.release() // the segments holding chunks in it keep it open
		} else {
			file.Close()
		}
		if err == nil {
			select {
			case c.rotated <- rotatedSeq:
			default: // a checkpoint is pending; a later one covers this file
			}
		}
	}
	c.spareLogs, c.hws, c.spareBuf = logs[:0], hws[:0], buf[:0]
	c.notify(target, err)
	if synced >= 0 {
		c.timesMu.Lock()
		c.times.Cycle.Record(time.Since(start))
		if wrote >= 0 {
			c.times.Write.Record(wrote)
		}
		c.times.Sync.Record(synced)
		c.timesMu.Unlock()
	}
}

// sealLocked appends the seal entry to the current journal file's buffer
// (reserveLocked always keeps room for it).
func (c *committer) sealLocked() {
	var b [journalEntryHeader]byte
	encodeSeal(b[:], c.fileSeq)
	c.growLocked(journalEntryHeader)
	c.buf = append(c.buf, b[:]...)
	c.filePos += journalEntryHeader
}

// encodeSeal writes the seal entry of journal file seq into b
// (journalEntryHeader bytes).
func encodeSeal(b []byte, seq uint64) {
	clear(b)
	binary.BigEndian.PutUint32(b[0:], journalEntryHeader-4)
	binary.BigEndian.PutUint64(b[jeSeq:], seq)
	binary.BigEndian.PutUint32(b[4:], crc32c(b[8:]))
}

// notify completes the waiters whose tickets are durable (or all of them,
// with the error, if the store failed).
func (c *committer) notify(target uint64, err error) {
	c.mu.Lock()
	ready := c.ready[:0]
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if err != nil || uint64(w.ticket) <= target {
			ready = append(ready, w.n)
		} else {
			kept = append(kept, w)
		}
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
	c.mu.Unlock()
	for _, n := range ready {
		n.Durable(err)
	}
	clear(ready)
	c.ready = ready[:0]
}

func (c *committer) rotationDue() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filePos >= c.store.opts.JournalCheckpointBytes && len(c.rotated) == 0
}

func (c *committer) currentSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fileSeq
}

// close stops the commit goroutine after a final cycle and fails any waiter
// left (there are none unless the store failed).
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.notify(c.durable.Load(), ErrClosed)
	if c.jf != nil {
		c.jf.release()
	} else if c.file != nil {
		c.file.Close()
	}
}
