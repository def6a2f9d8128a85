package log

import (
	"errors"
	"fmt"
	"sort"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// The journal cleaner (journal-log mode). A journal file lives as long as
// its longest-lived chunk, so a partition written rarely would keep every
// journal file after its oldest chunk on disk. After a checkpoint, when
// the journal files on disk hold more than twice the bytes the segments
// still use (plus two files), or more than StoreOptions.JournalHotBytes if
// that is set, the cleaner frees the oldest file: it copies the segments
// that use it into ordinary segment files (written with O_DIRECT where the
// file system allows: no page-cache copy), each log's oldest first. So a
// log's ordinary segments always precede its journal-backed ones, the
// order recovery needs (it opens the files, then replays the journal
// after them), and only data that outlives its neighbours is written a
// second time.

// cleanJournal frees journal files while the journal is too large for
// what it holds. Maintenance goroutine only.
func (s *Store) cleanJournal() {
	if s.opts.noCleaner {
		return
	}
	s.cleanMu.Lock()
	defer s.cleanMu.Unlock()
	for range 64 { // bounded: a checkpoint comes again soon
		oldest, ok := s.cleanTarget()
		if !ok {
			return
		}
		n, err := s.unpin(oldest)
		if err != nil {
			s.logger.Warn("journal cleaner postponed", "file", oldest, "err", err)
			return
		}
		if n == 0 {
			return // only readers still hold it: it goes when they finish
		}
	}
}

// cleanTarget returns the journal file to free, if the journal is over
// its bounds.
func (s *Store) cleanTarget() (uint64, bool) {
	s.jmu.Lock()
	var seqs []uint64
	var onDisk int64
	for seq, j := range s.jfiles {
		if j.refs.Load() > 0 {
			seqs = append(seqs, seq)
			onDisk += j.written.Load()
		}
	}
	s.jmu.Unlock()
	if len(seqs) <= 2 {
		return 0, false
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var used int64
	for _, l := range s.snapshotLogs() {
		for _, seg := range l.segments() {
			if seg.jb != nil {
				used += seg.written.Load()
			}
		}
	}
	file := s.opts.JournalCheckpointBytes
	hot := s.opts.JournalHotBytes
	if onDisk <= 2*used+2*file && (hot <= 0 || onDisk <= hot) {
		return 0, false
	}
	if seqs[0] == s.commit.currentSeq() {
		return 0, false
	}
	return seqs[0], true
}

// unpin copies every journal-backed segment with chunks in journal file
// seq or older into ordinary segment files, and returns how many.
func (s *Store) unpin(seq uint64) (int, error) {
	n := 0
	for _, l := range s.snapshotLogs() {
		for {
			seg, err := l.oldestPinning(seq)
			if err != nil {
				return n, err
			}
			if seg == nil {
				break
			}
			err = l.materialize(seg)
			seg.release()
			if err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// oldestPinning returns (acquired) the log's oldest journal-backed segment
// if it has chunks in journal file seq or older, rolling the active segment
// first if it is that one.
func (l *Log) oldestPinning(seq uint64) (*segment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.Err() != nil {
		return nil, nil
	}
	for _, seg := range l.segments() {
		if seg.jb == nil {
			continue
		}
		if len(seg.jb.files) == 0 || seg.jb.files[0].seq > seq {
			return nil, nil
		}
		if seg == l.active {
			if err := l.rollLocked(l.store.now()); err != nil {
				return nil, err
			}
		}
		if !seg.acquire() {
			return nil, nil
		}
		return seg, nil
	}
	return nil, nil
}

// materialize writes a sealed journal-backed segment to an ordinary
// segment file and puts that in its place. The file is written under a
// temporary name, fsynced with its index files, then renamed, so recovery
// sees it whole or not at all; the journal keeps the data until the swap.
func (l *Log) materialize(seg *segment) error {
	s := l.store
	final := seg.path(segmentSuffix)
	tmp := final + tmpSuffix
	size := seg.written.Load()
	if traceHook != nil {
		trace("materialize %s segment %d size %d start", l.name, seg.base, size)
	}
	f, err := createJournal(s.fs, tmp)
	if err != nil {
		return fmt.Errorf("materialize %s segment %d: %w", l.name, seg.base, err)
	}
	fail := func(err error) error {
		f.Close()
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("materialize %s segment %d: %w", l.name, seg.base, err)
	}
	const step = 1 << 20
	buf := alignedBytes(step)[:step]
	for pos := int64(0); pos < size; pos += step {
		n := min(step, size-pos)
		if _, err := seg.jb.ReadAt(buf[:n], pos); err != nil {
			return fail(err)
		}
		// Direct I/O writes whole blocks: the last one is padded, and the
		// file cut back to size below.
		w := (n + vfs.DirectAlign - 1) &^ (vfs.DirectAlign - 1)
		clear(buf[n:w])
		if _, err := f.WriteAt(buf[:w], pos); err != nil {
			return fail(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("materialize %s segment %d: %w", l.name, seg.base, err)
	}
	ns := &segment{dir: seg.dir, base: seg.base, fs: s.fs, created: seg.created}
	for _, e := range seg.offsets.entries() {
		ns.offsets.add(e)
	}
	for _, e := range seg.times.entries() {
		ns.times.add(e)
	}
	ns.written.Store(size)
	ns.next.Store(seg.next.Load())
	ns.maxTS.Store(seg.maxTS.Load())
	ns.maxTSOffset.Store(seg.maxTSOffset.Load())
	ns.persistedOffset, ns.persistedTime = -1, -1
	cleanup := func(err error) error {
		_ = s.fs.Remove(tmp)
		for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
			_ = s.fs.Remove(ns.path(suffix))
		}
		return fmt.Errorf("materialize %s segment %d: %w", l.name, seg.base, err)
	}
	if err := ns.persistIndexes(true); err != nil {
		return cleanup(err)
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return cleanup(err)
	}
	if err := s.fs.SyncDir(l.dir); err != nil {
		// The rename may or may not be durable: the journal still holds
		// the data either way, and a failed directory fsync is fatal.
		s.setFatal(fmt.Errorf("fsync directory %s: %w", l.dir, err))
		return s.fatalErr()
	}
	rf, err := s.fs.OpenRW(final)
	if err != nil {
		return cleanup(err)
	}
	tf, err := newTailFile(rf, nil)
	if err != nil {
		rf.Close()
		return cleanup(err)
	}
	ns.file = tf
	ns.refs.Store(1)

	l.mu.Lock()
	segs := l.segments()
	i := 0
	for i < len(segs) && segs[i] != seg {
		i++
	}
	if i == len(segs) || l.closed {
		// Dropped by retention meanwhile.
		l.mu.Unlock()
		ns.release()
		for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
			if err := s.fs.Remove(ns.path(suffix)); err != nil && !errors.Is(err, errNotExist) {
				s.logger.Warn("remove segment file", "log", l.name, "segment", ns.base, "err", err)
			}
		}
		return nil
	}
	if traceHook != nil {
		trace("materialized %s segment %d size %d", l.name, seg.base, size)
	}
	next := append([]*segment(nil), segs...)
	next[i] = ns
	l.publishSegmentsLocked(next)
	l.mu.Unlock()
	seg.dead.Store(true) // its copy is durable
	seg.release()        // the log's reference: the journal files go with the last reader
	s.materialized.Add(1)
	return nil
}

// tmpSuffix marks a segment file being written by the cleaner; recovery
// removes it.
const tmpSuffix = ".tmp"
