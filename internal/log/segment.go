package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Segment file names are the segment's base offset, zero-padded to 20 digits
// (so lexical order is offset order), with these suffixes. Part of the
// on-disk format.
const (
	segmentSuffix   = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

func parseSegmentName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// CorruptionError reports damaged bytes in a segment. It wraps ErrOffline
// when the damage is in acknowledged data (a sealed segment, or before the
// recovery point), which takes the partition offline.
type CorruptionError struct {
	Segment string // file path
	Offset  int64  // byte position of the damage
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("log: corruption in %s at byte %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() []error { return []error{ErrOffline, e.Err} }

// segment is one file of a partition log plus its in-memory indexes.
//
// Ownership: base, file and the index files are fixed at creation. written,
// next, the indexes and maxTS are written only by the log's appender (under
// Log.mu) or by recovery before the segment is published; readers load
// them atomically. refs counts the log's own reference plus in-flight reads;
// the files close when the segment is removed and the last read is released.
type segment struct {
	dir  string
	base int64
	file *tailFile // nil for a journal-backed segment
	jb   *jbFile   // non-nil for a journal-backed segment (journalseg.go)
	fs   vfs.FS

	written atomic.Int64 // bytes of whole batches in the file
	next    atomic.Int64 // offset after the last batch
	maxTS   atomic.Int64 // largest batch max timestamp, -1 if none
	// maxTSOffset is the last offset of the batch holding maxTS.
	maxTSOffset atomic.Int64

	offsets offsetIndex
	times   timeIndex

	// Appender state (Log.mu).
	created         time.Time // first append (roll by age)
	bytesSinceIndex int64
	persistedOffset int // index entries already in the .index file
	persistedTime   int
	unsynced        bool // appended since the last fsync of this segment

	refs    atomic.Int32
	removed atomic.Bool
	// dead marks a journal-backed segment whose removal is durable
	// (retention, DeleteRecords, a deleted log, or the cleaner's copy in
	// its place): its last release punches its records out of the journal
	// files (jbFile.punch), giving their space back before the files go.
	dead atomic.Bool

	// readHint is the batch boundary where the last Read of this segment
	// stopped, as relative offset<<32 | position. A consumer following
	// the log comes back for exactly that offset; starting the scan there
	// instead of at the index entry before it saves a header read per
	// batch in between (tail fetches of small batches read several). Any
	// boundary at or before the wanted batch is a correct start, and a
	// boundary stays one: segments only grow while they are read.
	readHint atomic.Uint64
}

// hint records that the batch at pos starts at offset.
func (s *segment) hint(offset, pos int64) {
	s.readHint.Store(uint64(offset-s.base)<<32 | uint64(uint32(pos)))
}

func (s *segment) path(suffix string) string { return path.Join(s.dir, segmentName(s.base, suffix)) }

func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		if s.jb != nil {
			if s.dead.Load() && s.jb.queuePunch() {
				return // the queue closes it once punched
			}
			s.jb.close()
		} else {
			s.file.Close()
		}
	}
}

// reader reads the segment's bytes, wherever they are.
func (s *segment) reader() io.ReaderAt {
	if s.jb != nil {
		return s.jb
	}
	return s.file
}

// createJournalSegment creates an empty journal-backed segment: no file.
func createJournalSegment(fs vfs.FS, dir string, base int64, now time.Time) *segment {
	s := &segment{dir: dir, base: base, fs: fs, created: now, jb: &jbFile{}}
	s.next.Store(base)
	s.maxTS.Store(-1)
	s.maxTSOffset.Store(-1)
	s.refs.Store(1)
	return s
}

// createSegment creates an empty segment file.
func createSegment(fs vfs.FS, dir string, base int64, now time.Time, budget *atomic.Int64) (*segment, error) {
	s := &segment{dir: dir, base: base, fs: fs, created: now}
	f, err := fs.Create(s.path(segmentSuffix))
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	// Stale index files from a segment that was truncated away must go.
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		if err := fs.Remove(s.path(suffix)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
			f.Close()
			return nil, fmt.Errorf("create segment %d: %w", base, err)
		}
	}
	tf, err := newTailFile(f, budget)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	s.file = tf
	s.next.Store(base)
	s.maxTS.Store(-1)
	s.maxTSOffset.Store(-1)
	s.refs.Store(1)
	return s, nil
}

// headerReader reads batch headers from a segment file.
type headerReader struct {
	buf [batchHeaderSize]byte
}

// at reads the header of the batch at pos, bounded by limit (the bytes of
// the file that may be trusted to exist). It returns io.EOF exactly at limit.
func (r *headerReader) at(f io.ReaderAt, pos, limit int64) (BatchHeader, error) {
	if pos == limit {
		return BatchHeader{}, io.EOF
	}
	if limit-pos < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes left, less than a header", ErrInvalidBatch, limit-pos)
	}
	if _, err := f.ReadAt(r.buf[:], pos); err != nil {
		return BatchHeader{}, err
	}
	h, err := ParseHeader(r.buf[:])
	if err != nil {
		return h, err
	}
	if pos+h.TotalSize() > limit {
		return h, fmt.Errorf("%w: batch of %d bytes runs past byte %d", ErrInvalidBatch, h.TotalSize(), limit)
	}
	return h, nil
}

// indexBatchLocked records a batch written at pos in the in-memory indexes.
// Called by the appender (Log.mu held) or by recovery.
func (s *segment) indexBatchLocked(h *BatchHeader, pos, size int64, interval int32) {
	rel := uint32(h.BaseOffset - s.base)
	if s.bytesSinceIndex >= int64(interval) || s.offsets.n.Load() == 0 {
		if e := s.offsets.entries(); len(e) == 0 || pos > int64(e[len(e)-1].pos) {
			s.offsets.add(offsetEntry{rel: rel, pos: uint32(pos)})
		}
		if last, ok := s.times.last(); !ok || h.MaxTimestamp > last.ts {
			s.times.add(timeEntry{ts: h.MaxTimestamp, rel: rel})
		}
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += size
	if h.MaxTimestamp > s.maxTS.Load() {
		s.maxTS.Store(h.MaxTimestamp)
		s.maxTSOffset.Store(h.LastOffset())
	}
}

// recover validates batches from pos to the end of the file, rebuilding the
// in-memory indexes, and truncates a torn or corrupt tail. expectNext is the
// base offset the batch at pos must have. It returns the bytes cut.
func (s *segment) recover(pos, expectNext int64, interval int32, verifyCRC bool) (cut int64, err error) {
	size, err := s.file.Size()
	if err != nil {
		return 0, err
	}
	var (
		hr   headerReader
		buf  []byte
		next = expectNext
	)
	for pos < size {
		h, herr := hr.at(s.file, pos, size)
		if herr == nil && h.BaseOffset != next {
			herr = fmt.Errorf("%w: batch base offset %d, expected %d", ErrInvalidBatch, h.BaseOffset, next)
		}
		if herr == nil && verifyCRC {
			n := int(h.TotalSize())
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, rerr := s.file.ReadAt(buf, pos); rerr != nil {
				return 0, rerr
			}
			_, _, herr = checkBatch(buf)
		}
		if herr != nil {
			if !errors.Is(herr, ErrInvalidBatch) && !errors.Is(herr, ErrCorruptBatch) {
				return 0, herr // an I/O error, not damage
			}
			break
		}
		s.indexBatchLocked(&h, pos, h.TotalSize(), interval)
		pos += h.TotalSize()
		next = h.LastOffset() + 1
	}
	if pos < size {
		if err := s.file.Truncate(pos); err != nil {
			return 0, fmt.Errorf("truncate segment %d: %w", s.base, err)
		}
		cut = size - pos
		s.unsynced = true
	}
	s.written.Store(pos)
	s.next.Store(next)
	return cut, nil
}

// loadIndexes reads the segment's index files (validated against the file
// size) and keeps the offset entries below limitPos. It reports false if
// either file is missing or damaged, leaving the indexes empty for a rebuild.
func (s *segment) loadIndexes(fileSize, limitPos int64) (ok bool, offsets, times int) {
	s.persistedOffset, s.persistedTime = -1, -1 // rewrite on the next checkpoint
	ob, ok1 := readWhole(s.fs, s.path(indexSuffix))
	tb, ok2 := readWhole(s.fs, s.path(timeIndexSuffix))
	if !ok1 || !ok2 {
		return false, 0, 0
	}
	if !decodeOffsetIndex(ob, fileSize, &s.offsets) || !decodeTimeIndex(tb, ^uint32(0), &s.times) {
		s.offsets, s.times = offsetIndex{}, timeIndex{}
		return false, 0, 0
	}
	offsets, times = int(s.offsets.n.Load()), int(s.times.n.Load())
	s.offsets.truncate(limitPos)
	return true, offsets, times
}

func readWhole(fs vfs.FS, name string) ([]byte, bool) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, false
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	return b, true
}

// persistIndexes rewrites the index files from memory if they changed since
// the last call, optionally fsyncing them. Called with the log's sync lock.
func (s *segment) persistIndexes(sync bool) error {
	oe, te := s.offsets.entries(), s.times.entries()
	if len(oe) == s.persistedOffset && len(te) == s.persistedTime && !sync {
		return nil
	}
	write := func(suffix string, b []byte) error {
		f, err := s.fs.Create(s.path(suffix))
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(b, 0); err != nil {
			f.Close()
			return err
		}
		if sync {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}
	if err := write(indexSuffix, encodeOffsetEntries(make([]byte, 0, len(oe)*offsetEntrySize), oe)); err != nil {
		return fmt.Errorf("write offset index of segment %d: %w", s.base, err)
	}
	if err := write(timeIndexSuffix, encodeTimeEntries(make([]byte, 0, len(te)*timeEntrySize), te)); err != nil {
		return fmt.Errorf("write time index of segment %d: %w", s.base, err)
	}
	s.persistedOffset, s.persistedTime = len(oe), len(te)
	return nil
}

// findPosition returns the position of the batch containing offset (or the
// first batch after it), scanning forward from the index. limit bounds the
// scan. found is false if no such batch exists below limit.
func (s *segment) findPosition(hr *headerReader, offset, limit int64) (pos int64, h BatchHeader, found bool, err error) {
	pos = s.offsets.lookup(uint32(offset - s.base))
	if h := s.readHint.Load(); int64(h>>32) <= offset-s.base {
		if hp := int64(uint32(h)); hp > pos && hp <= limit {
			pos = hp
		}
	}
	for pos < limit {
		h, err = hr.at(s.reader(), pos, limit)
		if err != nil {
			if errors.Is(err, errNotWritten) {
				return pos, h, false, nil // past the high watermark
			}
			return 0, h, false, &CorruptionError{Segment: s.path(segmentSuffix), Offset: pos, Err: err}
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += h.TotalSize()
	}
	return pos, h, false, nil
}

// boundaryBefore returns the last indexed batch start at or below maxPos
// and limit whose base offset is at most hw: every batch before it is whole,
// written and durable.
func (s *segment) boundaryBefore(maxPos, hw, limit int64) (pos, offset int64, ok bool) {
	e := s.offsets.entries()
	i := sort.Search(len(e), func(i int) bool {
		p := int64(e[i].pos)
		return p > maxPos || p > limit || s.base+int64(e[i].rel) > hw
	}) - 1
	if i < 0 {
		return 0, 0, false
	}
	return int64(e[i].pos), s.base + int64(e[i].rel), true
}

// writeUint64File atomically replaces name with an 8-byte value and a CRC.
func writeUint64File(fs vfs.FS, dir, name string, v uint64) error {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:], v)
	binary.BigEndian.PutUint32(b[8:], crc32c(b[:8]))
	return writeFileAtomic(fs, dir, name, b[:])
}

func readUint64File(fs vfs.FS, name string) (uint64, bool, error) {
	b, ok := readWhole(fs, name)
	if !ok {
		return 0, false, nil
	}
	if len(b) != 12 || crc32c(b[:8]) != binary.BigEndian.Uint32(b[8:]) {
		return 0, false, fmt.Errorf("%w: damaged %s", ErrStorage, name)
	}
	return binary.BigEndian.Uint64(b), true, nil
}

// writeFileAtomic writes a small file durably: temp file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(fs vfs.FS, dir, name string, b []byte) error {
	tmp := path.Join(dir, name+".tmp")
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path.Join(dir, name)); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}
