package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultRetentionAge       = 7 * 24 * time.Hour
	DefaultMaxBatchBytes      = 1<<20 + 12
	DefaultIndexIntervalBytes = 4096
	// maxSegmentBytes keeps positions within the uint32 index fields.
	maxSegmentBytes = 1<<31 - 1
)

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, maxSegmentBytes)
	if c.SegmentAge <= 0 {
		c.SegmentAge = DefaultSegmentAge
	}
	if c.RetentionAge == 0 {
		c.RetentionAge = DefaultRetentionAge
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	return c
}

// Per-partition files besides segments. Part of the on-disk format.
const (
	metaFile     = "meta"             // incarnation uint64 + CRC-32C
	logStartFile = "log-start-offset" // log start offset uint64 + CRC-32C
)

// Log is one partition's log: an ordered list of segments, the newest of
// which (the active segment) takes appends.
//
// Lock order: Log.mu → committer.mu. Log.syncMu is taken without Log.mu held
// and takes Log.mu only briefly. Readers take no lock: they load the
// published segment list, the high watermark and each segment's written
// size atomically.
type Log struct {
	store       *Store
	name        string
	dir         string
	incarnation uint64

	mu     sync.Mutex // appender lock; guards the fields below it
	cfg    Config
	active *segment
	closed bool
	// dirDirty: a segment file was created or removed since the directory
	// was last fsynced.
	dirDirty bool

	segs       atomic.Pointer[[]*segment] // copy-on-write
	nextOffset atomic.Int64               // log end offset
	hw         atomic.Int64               // high watermark: offset after the last durable batch
	logStart   atomic.Int64
	maxBatch   atomic.Int32 // cfg.MaxBatchBytes, for validation outside mu
	fsyncMode  atomic.Bool  // cfg.Durability.Kind == DurabilityFsync
	failed     atomic.Pointer[error]

	// Guarded by committer.mu.
	inCycle   bool
	pendingHW int64

	// syncMu serialises fsyncs of this log's files and owns the recovery
	// point and each segment's persisted-index counters.
	syncMu   sync.Mutex
	recovery recoveryPoint
	lastSync time.Time

	waitMu     sync.Mutex
	changed    chan struct{}
	hasWaiters atomic.Bool
}

// recoveryPoint says how far a log is known to be durable and valid: every
// byte of segment base before pos, and every segment before it.
type recoveryPoint struct {
	base int64 // base offset of the segment holding pos
	pos  int64
	next int64 // offset of the batch at pos
}

func (l *Log) segments() []*segment { return *l.segs.Load() }

func (l *Log) publishSegmentsLocked(s []*segment) { l.segs.Store(&s) }

// Dir is the log's directory; other components may keep small files of
// their own there (the broker's producer-state snapshots).
func (l *Log) Dir() string { return l.dir }

// Name is the log's directory name.
func (l *Log) Name() string { return l.name }

// HighWatermark is the offset after the last durable record. Never blocks.
func (l *Log) HighWatermark() int64 { return l.hw.Load() }

// LogStartOffset is the first offset that can be read.
func (l *Log) LogStartOffset() int64 { return l.logStart.Load() }

// NextOffset is the log end offset, including appends not yet durable.
func (l *Log) NextOffset() int64 { return l.nextOffset.Load() }

// Err reports why the log is offline, or nil.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return l.store.fatalErr()
}

func (l *Log) fail(err error) {
	l.failed.CompareAndSwap(nil, &err)
	l.store.logger.Warn("partition log offline", "log", l.name, "err", err)
}

// Changed returns a channel that is closed the next time the high watermark
// moves. Callers must read the high watermark after calling Changed, then
// wait, so that no advance is missed.
func (l *Log) Changed() <-chan struct{} {
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
		l.hasWaiters.Store(true)
	}
	return l.changed
}

// publishHW raises the high watermark to v (never lowers it) and wakes
// waiting readers.
func (l *Log) publishHW(v int64) {
	for {
		cur := l.hw.Load()
		if v <= cur {
			return
		}
		if l.hw.CompareAndSwap(cur, v) {
			break
		}
	}
	if l.hasWaiters.Load() {
		l.waitMu.Lock()
		if l.changed != nil {
			close(l.changed)
			l.changed = nil
		}
		l.hasWaiters.Store(false)
		l.waitMu.Unlock()
	}
}

// SetConfig replaces the log's configuration. It takes effect with the next
// append, roll or retention pass.
func (l *Log) SetConfig(cfg Config) {
	cfg = cfg.withDefaults()
	l.mu.Lock()
	l.cfg = cfg
	l.maxBatch.Store(cfg.MaxBatchBytes)
	l.fsyncMode.Store(cfg.Durability.Kind == DurabilityFsync)
	l.mu.Unlock()
	if cfg.Durability.Kind != DurabilityFsync && !l.store.journalLog {
		// Appends are durable at once under the other policies (in
		// journal-log mode they become readable with the group's fsync).
		l.publishHW(l.nextOffset.Load())
	}
}

// Config returns the log's configuration.
func (l *Log) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Append validates records (one or more v2 batches, as a producer sends
// them), assigns offsets and the leader epoch in place, writes them and
// returns their offsets and durability ticket. It never waits for an fsync:
// pass the ticket to Store.WhenDurable.
func (l *Log) Append(records []byte, leaderEpoch int32) (AppendResult, error) {
	if err := l.Err(); err != nil {
		return AppendResult{}, err
	}
	if _, _, err := ValidateRecordSet(records, l.maxBatch.Load()); err != nil {
		return AppendResult{}, err
	}
	return l.appendValidated(records, leaderEpoch, false, jloc{})
}

// appendValidated appends a validated record set. With replay, the set
// comes from the journal at recovery: offsets are already assigned and it is
// durable already; in journal-log mode from is where the journal holds it.
func (l *Log) appendValidated(records []byte, leaderEpoch int32, replay bool, from jloc) (AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if err := l.Err(); err != nil {
		return AppendResult{}, err
	}
	now := l.store.now()
	if err := l.maybeRollLocked(now, int64(len(records))); err != nil {
		return AppendResult{}, err
	}
	seg := l.active
	base := l.nextOffset.Load()
	appendTime := int64(-1)
	if l.cfg.LogAppendTime && !replay {
		appendTime = now.UnixMilli()
	}
	var next int64
	if !replay {
		next, _, _ = stampRecordSet(records, base, leaderEpoch, appendTime)
	} else {
		h, _ := ParseHeader(records)
		if h.BaseOffset != base {
			return AppendResult{}, fmt.Errorf("%w: replayed batch at offset %d, log end %d", ErrStorage, h.BaseOffset, base)
		}
		next = base
		for rest := records; len(rest) > 0; {
			h, _ := ParseHeader(rest)
			next = h.LastOffset() + 1
			rest = rest[h.TotalSize():]
		}
	}

	pos := seg.written.Load()
	if seg.jb == nil {
		// Bytes the journal will hold may wait in memory to be written
		// with others (tailFile); the other policies write through.
		hold := l.cfg.Durability.Kind == DurabilityFsync && !l.store.commit.perFile
		err := seg.file.appendAt(records, pos, hold)
		if err != nil && l.store.releaseSpare(err) {
			l.undoWriteLocked(seg, pos)
			err = seg.file.appendAt(records, pos, hold)
		}
		if err != nil {
			l.undoWriteLocked(seg, pos)
			return AppendResult{}, fmt.Errorf("append to %s: %w", l.name, err)
		}
		seg.unsynced = true
	}
	indexCount, timeCount, sinceIndex := seg.offsets.n.Load(), seg.times.n.Load(), seg.bytesSinceIndex
	prevMaxTS, prevMaxTSOffset := seg.maxTS.Load(), seg.maxTSOffset.Load()
	at := pos
	maxTS := int64(-1)
	for rest := records; len(rest) > 0; {
		h, _ := ParseHeader(rest)
		size := h.TotalSize()
		seg.indexBatchLocked(&h, at, size, l.cfg.IndexIntervalBytes)
		maxTS = max(maxTS, h.MaxTimestamp)
		at += size
		rest = rest[size:]
	}
	seg.written.Store(at)
	seg.next.Store(next)
	l.nextOffset.Store(next)

	res := AppendResult{BaseOffset: base, LastOffset: next - 1, LogAppendTime: appendTime}
	switch {
	case replay:
		if seg.jb != nil {
			seg.jb.add(chunk{pos: pos, jf: from.jf, jpos: from.pos, n: int64(len(records))})
			// For the file's index, written by the next checkpoint.
			from.jf.entries = append(from.jf.entries, jentry{inc: l.incarnation, name: l.name,
				base: base, last: next - 1, maxTS: maxTS, jpos: from.pos, n: int64(len(records))})
		}
		l.publishHW(next)
	case seg.jb != nil || l.cfg.Durability.Kind == DurabilityFsync:
		// Through the journal. In journal-log mode every policy is, and
		// the high watermark moves with the group's fsync; only the
		// fsync policy makes its caller wait for it.
		t, err := l.store.commit.add(l, records, next, maxTS, seg.jb, pos)
		if err != nil {
			// Roll back: the bytes never reached the journal.
			seg.written.Store(pos)
			seg.next.Store(base)
			seg.offsets.n.Store(indexCount)
			seg.times.n.Store(timeCount)
			seg.bytesSinceIndex = sinceIndex
			seg.maxTS.Store(prevMaxTS)
			seg.maxTSOffset.Store(prevMaxTSOffset)
			l.nextOffset.Store(base)
			if seg.jb == nil {
				l.undoWriteLocked(seg, pos)
			}
			return AppendResult{}, fmt.Errorf("append to %s: %w", l.name, err)
		}
		if l.cfg.Durability.Kind == DurabilityFsync {
			res.Ticket = t
		}
	default:
		l.publishHW(next)
	}
	return res, nil
}

// jloc is where the journal holds a record set (journal-log mode replay).
type jloc struct {
	jf  *jfile
	pos int64
}

// undoWriteLocked cuts a failed write off the active segment. If even that
// fails the log cannot know its own tail and goes offline.
func (l *Log) undoWriteLocked(seg *segment, pos int64) {
	if err := seg.file.Truncate(pos); err != nil {
		l.fail(fmt.Errorf("%w: cannot truncate failed write in %s: %v", ErrStorage, l.name, err))
	}
}

// maybeRollLocked starts a new segment when the active one is full or old.
func (l *Log) maybeRollLocked(now time.Time, incoming int64) error {
	seg := l.active
	size := seg.written.Load()
	if l.store.journalLog && seg.jb == nil {
		// A segment from before journal-log mode: appends go to a
		// journal-backed one from now on.
		if size == 0 {
			return l.replaceEmptyActiveLocked(now)
		}
		return l.rollLocked(now)
	}
	if size == 0 {
		return nil
	}
	if size+incoming <= l.cfg.SegmentBytes && now.Sub(seg.created) < l.cfg.SegmentAge {
		return nil
	}
	return l.rollLocked(now)
}

func (l *Log) rollLocked(now time.Time) error {
	old := l.active
	// A sealed segment gets no more appends: write out what it holds. If
	// that fails the bytes stay held (and readable) and the next
	// checkpoint's Sync writes them or reports why not.
	if old.file != nil {
		_ = old.file.flush()
	}
	// The time index's last entry records the segment's largest timestamp,
	// so retention and timestamp lookups survive a restart.
	if ts := old.maxTS.Load(); ts >= 0 {
		if last, ok := old.times.last(); !ok || ts > last.ts {
			old.times.add(timeEntry{ts: ts, rel: uint32(old.maxTSOffset.Load() - old.base)})
		}
	}
	if l.store.journalLog {
		seg := createJournalSegment(l.store.fs, l.dir, l.nextOffset.Load(), now)
		l.active = seg
		l.publishSegmentsLocked(append(append([]*segment(nil), l.segments()...), seg))
		return nil
	}
	seg, err := createSegment(l.store.fs, l.dir, l.nextOffset.Load(), now, &l.store.tailBudget)
	if err != nil {
		return fmt.Errorf("%w: roll %s: %v", ErrStorage, l.name, err)
	}
	segs := append(append([]*segment(nil), l.segments()...), seg)
	l.active = seg
	l.dirDirty = true
	l.publishSegmentsLocked(segs)
	return nil
}

// replaceEmptyActiveLocked swaps an empty ordinary active segment for an
// empty journal-backed one at the same base, removing its files.
func (l *Log) replaceEmptyActiveLocked(now time.Time) error {
	old := l.active
	seg := createJournalSegment(l.store.fs, l.dir, old.base, now)
	segs := append([]*segment(nil), l.segments()...)
	segs[len(segs)-1] = seg
	l.active = seg
	l.publishSegmentsLocked(segs)
	old.removed.Store(true)
	for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
		if err := l.store.fs.Remove(old.path(suffix)); err != nil && !errors.Is(err, errNotExist) {
			l.store.logger.Warn("remove segment file", "log", l.name, "segment", old.base, "err", err)
		}
	}
	old.release()
	l.dirDirty = true
	return nil
}

// Read fills res with whole batches starting with the one containing offset,
// at most maxBytes in total but always at least one batch, never past the
// high watermark. Reading at the high watermark returns no regions. res is
// reused: its slices are truncated, so a caller that keeps one ReadResult per
// fetch allocates nothing. Call res.Release when the regions are sent.
func (l *Log) Read(offset, maxBytes int64, res *ReadResult) error {
	res.Regions = res.Regions[:0]
	res.segments = res.segments[:0]
	res.Bytes = 0
	if err := l.Err(); err != nil {
		return err
	}
	hw := l.hw.Load()
	start := l.logStart.Load()
	res.HighWatermark, res.LogStartOffset = hw, start
	if offset < start || offset > hw {
		return ErrOffsetOutOfRange
	}
	hr := &res.hr
	segs := l.segments()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	if i < 0 {
		i = 0
	}
	for ; i < len(segs) && offset < hw; i++ {
		seg := l.acquireLive(segs[i])
		if seg == nil {
			// Deleted by retention under us; the offset is gone.
			if offset < l.logStart.Load() {
				res.Release()
				return ErrOffsetOutOfRange
			}
			continue
		}
		limit := seg.written.Load()
		pos, h, found, err := seg.findPosition(hr, offset, limit)
		if err != nil {
			seg.release()
			res.Release()
			l.fail(err)
			return err
		}
		if !found {
			seg.release()
			continue
		}
		first := pos
		full := false
		for {
			size := h.TotalSize()
			if res.Bytes+(pos-first)+size > maxBytes && (res.Bytes > 0 || pos > first) {
				full = true
				seg.hint(h.BaseOffset, pos)
				break
			}
			pos += size
			offset = h.LastOffset() + 1
			// Every indexed position starts a batch: jump along the index
			// as far as the budget allows instead of reading each header.
			if b, off, ok := seg.boundaryBefore(first+maxBytes-res.Bytes, hw, limit); ok && b > pos {
				pos, offset = b, off
			}
			if pos >= limit || offset >= hw {
				seg.hint(offset, pos)
				break
			}
			if h, err = hr.at(seg.reader(), pos, limit); err != nil {
				err = &CorruptionError{Segment: seg.path(segmentSuffix), Offset: pos, Err: err}
				seg.release()
				res.Release()
				l.fail(err)
				return err
			}
			if h.BaseOffset >= hw {
				seg.hint(h.BaseOffset, pos)
				break
			}
		}
		if pos == first {
			seg.release()
		} else {
			// Bytes already in the file are read from it directly (sendfile);
			// only the tail still held in memory goes through the tailFile.
			// A journal-backed segment's are in its journal files.
			if seg.jb != nil {
				res.Regions = seg.jb.appendRegions(res.Regions, first, pos)
			} else if fl := seg.file.flushed.Load(); fl > first {
				end := min(pos, fl)
				res.Regions = append(res.Regions, Region{File: seg.file.raw(), Pos: first, Len: end - first})
				if end < pos {
					res.Regions = append(res.Regions, Region{File: seg.file, Pos: end, Len: pos - end})
				}
			} else {
				res.Regions = append(res.Regions, Region{File: seg.file, Pos: first, Len: pos - first})
			}
			res.segments = append(res.segments, seg)
			res.Bytes += pos - first
		}
		if full {
			break
		}
	}
	return nil
}

// acquireLive acquires seg, or the segment that took its place: the
// journal cleaner swaps a journal-backed segment for an ordinary copy with
// the same base and bytes, and a reader may still hold the list from
// before. It returns nil if the segment was deleted (retention,
// DeleteRecords) or the log closed.
func (l *Log) acquireLive(seg *segment) *segment {
	for {
		if seg.acquire() {
			return seg
		}
		if seg.removed.Load() {
			return nil
		}
		var next *segment
		for _, s := range l.segments() {
			if s.base == seg.base {
				next = s
				break
			}
		}
		if next == nil || next == seg {
			return nil
		}
		seg = next
	}
}

// Release drops the segment references a ReadResult holds. Safe to call
// more than once.
func (r *ReadResult) Release() {
	for _, s := range r.segments {
		s.release()
	}
	r.segments = r.segments[:0]
	r.Regions = r.Regions[:0]
}

// ScanHeaders calls fn with each batch header from the batch containing
// offset from up to the high watermark, until fn returns false.
func (l *Log) ScanHeaders(from int64, fn func(h BatchHeader) bool) error {
	if err := l.Err(); err != nil {
		return err
	}
	hw := l.hw.Load()
	var hr headerReader
	for _, listed := range l.segments() {
		if listed.next.Load() <= from {
			continue
		}
		seg := l.acquireLive(listed)
		if seg == nil {
			continue
		}
		limit := seg.written.Load()
		pos, h, found, err := seg.findPosition(&hr, max(from, seg.base), limit)
		for found && err == nil && h.BaseOffset < hw {
			if !fn(h) {
				seg.release()
				return nil
			}
			pos += h.TotalSize()
			if pos >= limit {
				break
			}
			h, err = hr.at(seg.reader(), pos, limit)
		}
		seg.release()
		if errors.Is(err, errNotWritten) {
			return nil // the batch after the high watermark
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// OffsetForTimestamp returns the base offset of the first batch whose max
// timestamp is at least ts, with that timestamp, or (-1, -1) if there is
// none below the high watermark. (Kafka answers with the exact record; a
// batch is the unit sluice indexes, so a consumer may see a few earlier
// records of that batch.)
func (l *Log) OffsetForTimestamp(ts int64) (int64, int64, error) {
	if err := l.Err(); err != nil {
		return -1, -1, err
	}
	hw := l.hw.Load()
	start := l.logStart.Load()
	var hr headerReader
	for _, listed := range l.segments() {
		if listed.maxTS.Load() < ts {
			continue
		}
		seg := l.acquireLive(listed)
		if seg == nil {
			continue
		}
		limit := seg.written.Load()
		pos := seg.offsets.lookup(seg.times.lookup(ts))
		for pos < limit {
			h, err := hr.at(seg.reader(), pos, limit)
			if errors.Is(err, errNotWritten) {
				break // the batch after the high watermark
			}
			if err != nil {
				seg.release()
				return -1, -1, &CorruptionError{Segment: seg.path(segmentSuffix), Offset: pos, Err: err}
			}
			if h.BaseOffset >= hw {
				break
			}
			if h.MaxTimestamp >= ts && h.LastOffset() >= start {
				seg.release()
				return max(h.BaseOffset, start), h.MaxTimestamp, nil
			}
			pos += h.TotalSize()
		}
		seg.release()
	}
	return -1, -1, nil
}

// MaxTimestamp returns the largest batch timestamp in the log and the last
// offset of its batch, or (-1, -1) for an empty log.
func (l *Log) MaxTimestamp() (int64, int64) {
	ts, off := int64(-1), int64(-1)
	for _, seg := range l.segments() {
		if t := seg.maxTS.Load(); t > ts {
			ts, off = t, seg.maxTSOffset.Load()
		}
	}
	return ts, off
}

// Size is the total bytes of the log's segments.
func (l *Log) Size() int64 {
	var n int64
	for _, seg := range l.segments() {
		n += seg.written.Load()
	}
	return n
}

// DeleteRecords advances the log start offset to offset (-1 means the high
// watermark) and deletes the segments wholly below it. It returns the new
// log start offset.
func (l *Log) DeleteRecords(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.Err(); err != nil {
		return 0, err
	}
	hw := l.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, ErrOffsetOutOfRange
	}
	if offset <= l.logStart.Load() {
		return l.logStart.Load(), nil
	}
	if err := writeUint64File(l.store.fs, l.dir, logStartFile, uint64(offset)); err != nil {
		return 0, fmt.Errorf("%w: persist log start offset of %s: %v", ErrStorage, l.name, err)
	}
	l.logStart.Store(offset)
	l.deleteSegmentsLocked(func(s *segment) bool { return s.next.Load() <= offset })
	return offset, nil
}

// enforceRetention deletes the segments that retention.ms or retention.bytes
// expire. The active segment is rolled first if time retention has expired
// everything in it.
func (l *Log) enforceRetention(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.Err() != nil {
		return nil
	}
	cfg := l.cfg
	segs := l.segments()
	cutoff := int64(-1)
	if cfg.RetentionAge > 0 {
		cutoff = now.Add(-cfg.RetentionAge).UnixMilli()
	}
	if cutoff >= 0 && len(segs) > 0 {
		act := l.active
		if act.written.Load() > 0 && act.maxTS.Load() >= 0 && act.maxTS.Load() < cutoff && l.hw.Load() == l.nextOffset.Load() {
			allExpired := true
			for _, s := range segs[:len(segs)-1] {
				if s.maxTS.Load() >= cutoff {
					allExpired = false
				}
			}
			if allExpired {
				if err := l.rollLocked(now); err != nil {
					return err
				}
				segs = l.segments()
			}
		}
	}
	total := int64(0)
	for _, s := range segs {
		total += s.written.Load()
	}
	remaining := total
	expired := func(s *segment) bool {
		if s == l.active {
			return false
		}
		if s.next.Load() > l.hw.Load() {
			return false // holds data not yet durable
		}
		if cutoff >= 0 && s.maxTS.Load() >= 0 && s.maxTS.Load() < cutoff {
			remaining -= s.written.Load()
			return true
		}
		if cfg.RetentionBytes > 0 && remaining-s.written.Load() >= cfg.RetentionBytes {
			remaining -= s.written.Load()
			return true
		}
		return false
	}
	l.deleteSegmentsLocked(expired)
	return nil
}

// deleteSegmentsLocked removes the oldest segments while pred holds (never
// the active one) and advances the log start offset past them.
func (l *Log) deleteSegmentsLocked(pred func(*segment) bool) {
	segs := l.segments()
	n := 0
	for n < len(segs)-1 && pred(segs[n]) {
		n++
	}
	if n == 0 {
		return
	}
	gone := segs[:n]
	if b := segs[n].base; l.store.journalLog && b > l.logStart.Load() {
		// Journal-backed segments have no files to remove: recovery would
		// rebuild them from the journal files they leave behind, so the
		// new start goes to disk before the references go.
		if err := writeUint64File(l.store.fs, l.dir, logStartFile, uint64(b)); err != nil {
			l.store.logger.Warn("retention postponed: cannot persist the log start offset", "log", l.name, "err", err)
			return
		}
	}
	l.publishSegmentsLocked(append([]*segment(nil), segs[n:]...))
	if b := segs[n].base; b > l.logStart.Load() {
		l.logStart.Store(b)
	}
	for _, s := range gone {
		s.removed.Store(true)
		// The start that drops it is durable (above, or by DeleteRecords).
		s.dead.Store(s.jb != nil)
		if s.jb == nil {
			for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
				if err := l.store.fs.Remove(s.path(suffix)); err != nil && !errors.Is(err, errNotExist) {
					l.store.logger.Warn("remove segment file", "log", l.name, "segment", s.base, "err", err)
				}
			}
			l.dirDirty = true
		}
		s.release()
	}
}

// errNoSpace marks a segment or index file write at a checkpoint that
// failed for lack of space: the checkpoint is postponed, the store goes on.
var errNoSpace = errors.New("no space to write a segment or index file")

// indexSpaceErr marks ENOSPC from persisting index files.
func indexSpaceErr(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", errNoSpace, err)
	}
	return err
}

// syncFiles fsyncs every segment written since its last sync (and the
// directory if entries changed), then records the recovery point captured
// before the syncs. With indexes, it also persists and fsyncs changed index
// files (checkpoints). A failed fsync is fatal for the store.
func (l *Log) syncFiles(indexes bool) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var todo [8]*segment
	dirty := todo[:0]
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	for _, s := range l.segments() {
		if s.unsynced && s.acquire() {
			s.unsynced = false
			dirty = append(dirty, s)
		}
	}
	rp := recoveryPoint{base: l.active.base, pos: l.active.written.Load(), next: l.nextOffset.Load()}
	if traceHook != nil {
		trace("syncFiles %s rp %+v segs %d", l.name, rp, len(dirty))
	}
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()

	var err error
	var resync []*segment
	for _, s := range dirty {
		if err == nil && !s.removed.Load() {
			if e := s.file.Sync(); e != nil {
				err = fmt.Errorf("fsync %s: %w", s.path(segmentSuffix), e)
			}
		}
		if err != nil && errors.Is(err, errNoSpace) {
			// Not written (or not reached): the next checkpoint must.
			resync = append(resync, s)
		}
		if err == nil && indexes && !s.removed.Load() {
			err = indexSpaceErr(s.persistIndexes(true))
		}
		s.release()
	}
	if err == nil && indexes {
		// Sealed segments whose indexes were never persisted (rolled with
		// no unsynced data left) are handled above; the active segment's
		// index is persisted even when its data was already synced.
		for _, s := range l.segments() {
			if s.jb != nil || s.removed.Load() || !s.acquire() {
				continue // journal-backed segments keep no index files
			}
			if len(s.offsets.entries()) != s.persistedOffset || len(s.times.entries()) != s.persistedTime {
				err = indexSpaceErr(s.persistIndexes(true))
			}
			s.release()
			if err != nil {
				break
			}
		}
	}
	if err == nil && dirDirty {
		if e := l.store.fs.SyncDir(l.dir); e != nil {
			err = fmt.Errorf("fsync directory %s: %w", l.dir, e)
		}
	}
	if err != nil {
		// Held segment bytes are in the journal, and index files are
		// rebuilt from the segments when needed: failing to write either
		// for lack of space only postpones this checkpoint (the recovery
		// point stays where it was, the journal is kept). Everything else
		// here is an fsync or directory failure, and fatal.
		if errors.Is(err, errNoSpace) {
			l.mu.Lock()
			if dirDirty {
				// Not synced yet: the next checkpoint must do it.
				l.dirDirty = true
			}
			for _, s := range resync {
				s.unsynced = true
			}
			l.mu.Unlock()
			return err
		}
		l.store.setFatal(err)
		return err
	}
	l.recovery = rp
	l.lastSync = l.store.now()
	return nil
}

// close closes the log's files. The store has synced it.
func (l *Log) close() { l.closeAs(false) }

// closeDead closes a log whose deletion is durable: its journal-backed
// segments are dead (segment.dead).
func (l *Log) closeDead() { l.closeAs(true) }

func (l *Log) closeAs(dead bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	segs := l.segments()
	l.mu.Unlock()
	for _, s := range segs {
		s.dead.Store(dead && s.jb != nil)
		s.release()
	}
}

func (l *Log) path(name string) string { return path.Join(l.dir, name) }

func encodeMeta(incarnation uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], incarnation)
	return b[:]
}
