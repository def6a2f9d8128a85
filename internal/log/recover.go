package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// openLog opens an existing partition directory and recovers it.
//
// Segments wholly before the checkpointed recovery point are trusted: only
// their index files are read, and the last few batch headers are checked to
// find where the segment ends. The segment holding the recovery point is
// trusted up to it and validated batch by batch (lengths, CRC, contiguous
// offsets) after it; later segments are validated whole. The log ends at the
// first invalid batch after the recovery point: that tail is cut, reported
// and counted, and any later segment is removed. Damage before the recovery
// point is acknowledged data and is never cut: the log opens offline with a
// CorruptionError instead.
func (s *Store) openLog(name string, cp *checkpointEntry) (*Log, error) {
	dir := path.Join(s.dir, name)
	l := &Log{store: s, name: name, dir: dir}
	l.cfg = Config{}.withDefaults()
	l.maxBatch.Store(l.cfg.MaxBatchBytes)
	l.fsyncMode.Store(true)

	inc, ok, err := readUint64File(s.fs, path.Join(dir, metaFile))
	if err != nil {
		// Torn at creation: nothing was acknowledged under it.
		s.logger.Warn("damaged log meta file; new incarnation", "log", name, "err", err)
		ok = false
	}
	if !ok {
		// Created but its meta file never became durable: nothing in it was
		// acknowledged through the journal under any incarnation we know.
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(s.now().UnixNano())|1)
		inc = binary.BigEndian.Uint64(b[:])
		if err := writeUint64File(s.fs, dir, metaFile, inc); err != nil {
			return nil, fmt.Errorf("open log %s: %w", name, err)
		}
	}
	l.incarnation = inc
	start, _, err := readUint64File(s.fs, path.Join(dir, logStartFile))
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", name, err)
	}
	if cp != nil && cp.incarnation != inc {
		cp = nil
	}
	if cp != nil {
		if traceHook != nil {
			trace("open %s rp %+v", name, cp.point)
		}
	}

	names, err := s.fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", name, err)
	}
	var bases []int64
	for _, n := range names {
		if b, ok := parseSegmentName(n); ok {
			bases = append(bases, b)
		}
		if strings.HasSuffix(n, segmentSuffix+tmpSuffix) {
			// The journal cleaner stopped while copying a segment: the
			// journal still holds it.
			if err := s.fs.Remove(path.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("open log %s: %w", name, err)
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if s.journalLog {
		// Retention persists the log start before it removes segment
		// files, and a crash can undo some of the removals: a file
		// followed by one that starts at or below the log start holds
		// only deleted records. It goes, or it would look like a gap.
		keep := 0
		for keep+1 < len(bases) && bases[keep+1] <= int64(start) {
			for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
				if err := s.fs.Remove(path.Join(dir, segmentName(bases[keep], suffix))); err != nil && !errors.Is(err, errNotExist) {
					return nil, fmt.Errorf("open log %s: %w", name, err)
				}
			}
			keep++
		}
		bases = bases[keep:]
		l.dirDirty = l.dirDirty || keep > 0
	}

	var segs []*segment
	fail := func(err error) (*Log, error) {
		for _, sg := range segs {
			sg.release()
		}
		return nil, err
	}
	var offline error
	interval := l.cfg.IndexIntervalBytes
	for i, base := range bases {
		seg := &segment{dir: dir, base: base, fs: s.fs, created: s.now()}
		f, err := s.fs.OpenRW(seg.path(segmentSuffix))
		if err != nil {
			return fail(fmt.Errorf("open segment %d of %s: %w", base, name, err))
		}
		tf, err := newTailFile(f, &s.tailBudget)
		if err != nil {
			f.Close()
			return fail(fmt.Errorf("open segment %d of %s: %w", base, name, err))
		}
		seg.file = tf
		seg.refs.Store(1)
		seg.maxTS.Store(-1)
		seg.maxTSOffset.Store(-1)
		seg.next.Store(base)
		segs = append(segs, seg)
		if offline != nil {
			continue
		}
		if i > 0 && segs[i-1].next.Load() != base {
			err := &CorruptionError{Segment: seg.path(segmentSuffix), Offset: 0,
				Err: fmt.Errorf("segment starts at offset %d, previous segment ends at %d", base, segs[i-1].next.Load())}
			if cp == nil || base > cp.point.base {
				// Past the recovery point: a tear in the previous segment;
				// this segment and later ones were never acknowledged.
				s.logger.Warn("removing segments after a torn segment", "log", name, "from", base)
				for _, later := range segs[i:] {
					later.release()
				}
				segs = segs[:i]
				for _, b := range bases[i:] {
					for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
						_ = s.fs.Remove(path.Join(dir, segmentName(b, suffix)))
					}
				}
				l.dirDirty = true
				break
			}
			offline = err
			continue
		}
		size, err := f.Size()
		if err != nil {
			return fail(fmt.Errorf("open segment %d of %s: %w", base, name, err))
		}
		var cut int64
		switch {
		case cp != nil && base < cp.point.base:
			err = seg.openTrusted(size, interval)
		case cp != nil && base == cp.point.base:
			if size < cp.point.pos {
				err = &CorruptionError{Segment: seg.path(segmentSuffix), Offset: size,
					Err: fmt.Errorf("segment is %d bytes, %d were durable", size, cp.point.pos)}
				break
			}
			if err = seg.openTrusted(cp.point.pos, interval); err == nil {
				if seg.next.Load() != cp.point.next && cp.point.pos > 0 {
					err = &CorruptionError{Segment: seg.path(segmentSuffix), Offset: cp.point.pos,
						Err: fmt.Errorf("batches end at offset %d, checkpoint says %d", seg.next.Load(), cp.point.next)}
					break
				}
				cut, err = seg.recover(cp.point.pos, cp.point.next, interval, true)
			}
		default:
			cut, err = seg.recover(0, base, interval, true)
		}
		if err != nil {
			var ce *CorruptionError
			if errors.As(err, &ce) {
				offline = err
				continue
			}
			return fail(fmt.Errorf("recover %s: %w", name, err))
		}
		if cut > 0 {
			s.recoveredTruncatedBytes.Add(cut)
			s.logger.Warn("recovery cut a torn or corrupt log tail",
				"log", name, "segment", base, "position", seg.written.Load(), "bytes", cut)
		}
	}
	if n := len(segs); s.journalLog && n > 0 && offline == nil && segs[n-1].next.Load() <= int64(start) {
		// The same for the last file: wholly below the log start.
		for _, sg := range segs {
			sg.removed.Store(true)
			for _, suffix := range []string{segmentSuffix, indexSuffix, timeIndexSuffix} {
				if err := s.fs.Remove(sg.path(suffix)); err != nil && !errors.Is(err, errNotExist) {
					return fail(fmt.Errorf("open log %s: %w", name, err))
				}
			}
		}
		for _, sg := range segs {
			sg.release()
		}
		segs = nil
		l.dirDirty = true
	}
	if len(segs) == 0 && s.journalLog {
		// Its journal-backed segments, if any, come back with the replay.
		segs = append(segs, createJournalSegment(s.fs, dir, int64(start), s.now()))
	}
	if len(segs) == 0 {
		seg, err := createSegment(s.fs, dir, int64(start), s.now(), &s.tailBudget)
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg)
		l.dirDirty = true
	}
	last := segs[len(segs)-1]
	l.active = last
	l.publishSegmentsLocked(segs)
	l.nextOffset.Store(last.next.Load())
	l.hw.Store(last.next.Load())
	l.logStart.Store(max(int64(start), segs[0].base))
	if offline != nil {
		l.fail(offline)
	}
	return l, nil
}

// openTrusted opens a segment whose first limit bytes are known durable and
// valid: it loads the index files (rebuilding them by a header scan if they
// are damaged), then walks the last batch headers to find where the batches
// end, which must be exactly at limit.
func (seg *segment) openTrusted(limit int64, interval int32) error {
	size, err := seg.file.Size()
	if err != nil {
		return err
	}
	from := int64(0)
	loaded, loadedOffsets, loadedTimes := seg.loadIndexes(size, limit)
	if loaded {
		if e := seg.offsets.entries(); len(e) > 0 {
			from = int64(e[len(e)-1].pos)
			seg.offsets.n.Store(int32(len(e) - 1)) // re-added by the scan
			seg.bytesSinceIndex = int64(interval)
		}
	}
	var hr headerReader
	pos := from
	next := seg.base
	if from > 0 {
		h, err := hr.at(seg.file, from, limit)
		if err != nil {
			return &CorruptionError{Segment: seg.path(segmentSuffix), Offset: from, Err: err}
		}
		next = h.BaseOffset
	}
	for pos < limit {
		h, err := hr.at(seg.file, pos, limit)
		if err == nil && h.BaseOffset != next {
			err = fmt.Errorf("%w: batch base offset %d, expected %d", ErrInvalidBatch, h.BaseOffset, next)
		}
		if err != nil {
			return &CorruptionError{Segment: seg.path(segmentSuffix), Offset: pos, Err: err}
		}
		seg.indexBatchLocked(&h, pos, h.TotalSize(), interval)
		pos += h.TotalSize()
		next = h.LastOffset() + 1
	}
	// Time entries past the trusted bytes describe batches that recovery
	// will revalidate or cut.
	seg.times.truncateOffsets(uint32(next - seg.base))
	if last, ok := seg.times.last(); ok && last.ts > seg.maxTS.Load() {
		seg.maxTS.Store(last.ts)
		seg.maxTSOffset.Store(seg.base + int64(last.rel))
	}
	switch {
	case loaded && int(seg.offsets.n.Load()) == loadedOffsets && int(seg.times.n.Load()) == loadedTimes:
		// The files on disk say exactly what memory holds.
		seg.persistedOffset, seg.persistedTime = loadedOffsets, loadedTimes
	case seg.offsets.n.Load() == 0 && seg.times.n.Load() == 0:
		// Nothing to index (an empty segment): nothing to write.
		seg.persistedOffset, seg.persistedTime = 0, 0
	}
	seg.written.Store(limit)
	seg.next.Store(next)
	return nil
}

// replayJournal applies the journal to the recovered logs and returns the
// sequence of the last journal file. The journal ends at the first short or
// corrupt entry; later bytes and files were never acknowledged and are
// removed.
func (s *Store) replayJournal() (uint64, error) {
	jdir := path.Join(s.dir, journalDir)
	names, err := s.fs.ReadDir(jdir)
	if err != nil {
		return 0, fmt.Errorf("list journal: %w", err)
	}
	var lastSeq uint64
	ended := false
	for _, n := range names {
		seq, ok := parseJournalName(n)
		if !ok {
			continue
		}
		lastSeq = max(lastSeq, seq)
		file := path.Join(jdir, n)
		if !ended && s.journalLog {
			if done, err := s.replayIndexed(file, seq); err != nil {
				return 0, err
			} else if done {
				continue
			}
		}
		if ended {
			if err := s.fs.Remove(file); err != nil {
				return 0, fmt.Errorf("remove journal file: %w", err)
			}
			continue
		}
		b, ok := readWhole(s.fs, file)
		if !ok {
			return 0, fmt.Errorf("%w: cannot read journal file %s", ErrStorage, n)
		}
		if traceHook != nil {
			trace("replay file %s size %d", n, len(b))
		}
		var jf *jfile
		if s.journalLog {
			// Journal-backed segments read their chunks from it.
			f, err := s.fs.OpenRW(file)
			if err != nil {
				return 0, fmt.Errorf("open journal file %s: %w", n, err)
			}
			jf = &jfile{seq: seq, f: f, punches: &s.punches}
			jf.written.Store(int64(len(b)))
		}
		pos, sealed, err := s.replayJournalFile(b, seq, jf)
		if err == nil && jf != nil && !sealed {
			// The last file ends without a seal. It outlives this run if
			// segments refer to it, and the next replay must read past
			// it into the files this run writes: seal it where its valid
			// entries end, durably, before any new file is written.
			err = sealJournalAt(jf.f, seq, int64(pos))
		}
		if jf != nil {
			if jf.refs.Load() > 0 {
				s.jmu.Lock()
				s.jfiles[seq] = jf
				s.jmu.Unlock()
			} else {
				jf.f.Close()
			}
		}
		if err != nil {
			return 0, err
		}
		if pos == 0 && oldFormatJournal(b) {
			// Its entries would be skipped as another file's: refuse
			// rather than drop acknowledged records.
			return 0, fmt.Errorf("%w: journal file %s was written by an earlier sluice (journal entries without a file sequence): "+
				"start that version once on this data directory (a clean shutdown leaves no journal), then upgrade", ErrStorage, n)
		}
		if !sealed {
			// Only the newest file may lack a seal; if a later file
			// exists, it holds nothing that was acknowledged.
			ended = true
			if torn := tornExtent(b, pos, seq); torn > 0 {
				s.journalTornBytes.Add(int64(torn))
				s.logger.Warn("journal ends in a torn entry", "file", n, "position", pos, "bytes", torn)
			}
		}
	}
	// Index files whose journal file is gone (a crash between removing
	// the two) go too.
	left, err := s.fs.ReadDir(jdir)
	if err != nil {
		return 0, fmt.Errorf("list journal: %w", err)
	}
	have := make(map[uint64]bool)
	for _, n := range left {
		if seq, ok := parseJournalName(n); ok {
			have[seq] = true
		}
	}
	for _, n := range left {
		if seq, ok := parseSeqName(n, journalIndexSuffix); ok && !have[seq] {
			if err := s.fs.Remove(path.Join(jdir, n)); err != nil {
				return 0, fmt.Errorf("remove journal index: %w", err)
			}
		}
	}
	return lastSeq, nil
}

// replayIndexed replays journal file seq from its index file, without
// reading its records (journal-log mode). done is false if it has no valid
// index: the file is then read.
func (s *Store) replayIndexed(file string, seq uint64) (done bool, err error) {
	b, ok := readWhole(s.fs, path.Join(path.Dir(file), journalIndexName(seq)))
	if !ok {
		return false, nil
	}
	es, ok := decodeJournalIndex(b, seq)
	if !ok {
		s.logger.Warn("journal index damaged; reading the journal file", "file", file)
		return false, nil
	}
	f, err := s.fs.OpenRW(file)
	if err != nil {
		return false, fmt.Errorf("open journal file %s: %w", file, err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("open journal file %s: %w", file, err)
	}
	jf := &jfile{seq: seq, f: f, indexed: true, punches: &s.punches}
	jf.written.Store(size)
	if traceHook != nil {
		trace("replay file %d from its index, %d entries", seq, len(es))
	}
	for _, e := range es {
		if e.jpos+e.n > size {
			f.Close()
			return false, fmt.Errorf("%w: journal index %d names bytes past the end of its file", ErrStorage, seq)
		}
		if l, ok := s.logs[e.name]; ok && l.incarnation == e.inc && l.Err() == nil {
			if err := l.replayEntry(e, jf); err != nil {
				l.fail(err)
			}
		}
	}
	if jf.refs.Load() > 0 {
		s.jmu.Lock()
		s.jfiles[seq] = jf
		s.jmu.Unlock()
	} else {
		f.Close()
	}
	s.indexedReplays.Add(1)
	return true, nil
}

// replayEntry applies one indexed journal entry: the same decisions as
// replay, without the records.
func (l *Log) replayEntry(e jentry, jf *jfile) error {
	if apply, err := l.replayPlace(e.base, e.last, true); !apply || err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.maybeRollLocked(l.store.now(), e.n); err != nil {
		return err
	}
	seg := l.active
	pos := seg.written.Load()
	// One index entry per journal entry: its first batch's offset and the
	// largest timestamp in it. Lookups scan the batches inside.
	h := BatchHeader{BaseOffset: e.base, LastOffsetDelta: int32(e.last - e.base), MaxTimestamp: e.maxTS}
	seg.indexBatchLocked(&h, pos, e.n, l.cfg.IndexIntervalBytes)
	seg.written.Store(pos + e.n)
	seg.next.Store(e.last + 1)
	l.nextOffset.Store(e.last + 1)
	seg.jb.add(chunk{pos: pos, jf: jf, jpos: e.jpos, n: e.n})
	l.publishHW(e.last + 1)
	return nil
}

// tornExtent is how many bytes after pos, where replay of file seq stopped,
// were written by this use of the file: up to the end of the last entry
// that carries seq and starts at pos or at a block boundary after it (a
// commit group starts at a block boundary, and a torn one may have lost
// its first blocks but not later ones). What follows in a recycled file is
// its previous use, not damage. An upper bound: a length field there may
// itself be torn.
func tornExtent(b []byte, pos int, seq uint64) int {
	end := pos
	at := func(p int) {
		if p+journalEntryHeader <= len(b) && binary.BigEndian.Uint64(b[p+jeSeq:]) == seq {
			end = max(end, min(len(b), p+4+int(binary.BigEndian.Uint32(b[p:]))))
		}
	}
	at(pos)
	for p := (pos + vfs.DirectAlign) &^ (vfs.DirectAlign - 1); p < len(b); p += vfs.DirectAlign {
		at(p)
	}
	return end - pos
}

// oldFormatJournal reports whether b starts with a whole, checksummed
// record entry of the journal format before file sequences (an 18-byte
// header: length, crc, incarnation, name length, name).
func oldFormatJournal(b []byte) bool {
	const header = 18
	if len(b) < header {
		return false
	}
	length := int(binary.BigEndian.Uint32(b))
	if length < header-4 || length > len(b)-4 {
		return false
	}
	entry := b[4 : 4+length]
	nameLen := int(binary.BigEndian.Uint16(entry[12:]))
	if nameLen == 0 || header-4+nameLen > len(entry) {
		return false
	}
	crc, ok := journalEntryCRC(entry[4:header-4+nameLen], entry[header-4+nameLen:])
	return ok && crc == binary.BigEndian.Uint32(entry)
}

// replayJournalFile replays the valid prefix of journal file seq (contents
// b) and returns its length and whether it ends in a seal.
func (s *Store) replayJournalFile(b []byte, seq uint64, jf *jfile) (pos int, sealed bool, err error) {
	// Offsets below are relative to entry, which starts after the length.
	const (
		crcAt  = 0
		seqAt  = jeSeq - 4
		incAt  = jeInc - 4
		nlAt   = jeNameLen - 4
		nameAt = journalEntryHeader - 4
	)
	for len(b)-pos >= 8 {
		length := int(binary.BigEndian.Uint32(b[pos:]))

		if length < journalEntryHeader-4 || length > len(b)-pos-4 {
			break
		}
		entry := b[pos+4 : pos+4+length]
		if binary.BigEndian.Uint64(entry[seqAt:]) != seq {
			// Another file's entry: the previous use of a recycled file
			// (or damage; the crc would not hold for this file either).
			break
		}
		inc := binary.BigEndian.Uint64(entry[incAt:])
		nameLen := int(binary.BigEndian.Uint16(entry[nlAt:]))
		if nameAt+nameLen > len(entry) {
			break
		}
		// The entry's crc and every batch CRC in it must hold; anything
		// else is the torn tail of an unacknowledged group.
		want := binary.BigEndian.Uint32(entry[crcAt:])
		if nameLen == 0 {
			if crc32c(entry[4:]) != want {
				break
			}
		} else {
			// The entry crc covers the header and the batches' own CRCs;
			// ValidateRecordSet checks those against the records.
			crc, ok := journalEntryCRC(entry[4:nameAt+nameLen], entry[nameAt+nameLen:])
			if !ok || crc != want {
				break
			}
			if _, _, err := ValidateRecordSet(entry[nameAt+nameLen:], 0); errors.Is(err, ErrCorruptBatch) {
				if s.deadEntry(string(entry[nameAt:nameAt+nameLen]), inc, entry[nameAt+nameLen:]) {
					// Punched out (jbFile.punch): the entries after it
					// still count.
					s.journalPunchedSkipped.Add(1)
					pos += 4 + length
					continue
				}
				break
			} else if err != nil {
				// Framed and checksummed, yet not a valid record set:
				// not a torn write. The partition goes offline below.
				if l, ok := s.logs[string(entry[nameAt:nameAt+nameLen])]; ok && l.incarnation == inc {
					l.fail(fmt.Errorf("%w: journal entry for %s: %v", ErrOffline, l.name, err))
				}
				pos += 4 + length
				continue
			}
		}
		if inc == 0 && nameLen == 0 {
			return pos + 4 + length, true, nil // the seal
		}
		if inc == journalPadIncarnation && nameLen == 0 {
			pos += 4 + length // padding to a block boundary
			continue
		}
		name := string(entry[nameAt : nameAt+nameLen])
		records := entry[nameAt+nameLen:]
		if traceHook != nil {
			trace("replay entry %s len %d", name, length)
		}
		if l, ok := s.logs[name]; ok && l.incarnation == inc && l.Err() == nil {
			at := jloc{jf: jf, pos: int64(pos + 4 + nameAt + nameLen)}
			if err := l.replay(records, at); err != nil {
				l.fail(err)
			}
		}
		pos += 4 + length
	}
	return pos, false, nil
}

// deadEntry reports whether a journal entry whose header and batch
// prefixes check out (the entry crc holds) but whose records do not (a
// batch CRC fails) holds only records no log needs, so that recovery may
// step over it: its log is gone (deleted, or another incarnation), or its
// first offset is below where the log's replay has got to (retention,
// DeleteRecords or the cleaner's copy moved the log's start or end past
// it). Those are the entries jbFile.punch zeroes. Any other entry whose
// records fail ends the journal, as a torn write does. Stepping over a dead
// entry that is torn instead loses nothing: its offsets, which the crc
// vouches for, are not needed, and a live log's entry after it continues
// that log or, if torn too, ends the journal there.
func (s *Store) deadEntry(name string, inc uint64, records []byte) bool {
	l, ok := s.logs[name]
	if !ok || l.incarnation != inc {
		return true
	}
	return len(records) >= 8 && l.Err() == nil && int64(binary.BigEndian.Uint64(records)) < l.nextOffset.Load()
}

// replay applies one journal entry (a validated record set): skipped if the
// segments already hold it, appended if it continues the log, and a
// corruption if it leaves a gap (acknowledged data missing from the
// segments).
func (l *Log) replay(records []byte, at jloc) error {
	h, _ := ParseHeader(records)
	if apply, err := l.replayPlace(h.BaseOffset, lastOffset(records), at.jf != nil); !apply || err != nil {
		return err
	}
	_, err := l.appendValidated(records, h.PartitionLeaderEpoch, true, at)
	return err
}

// replayPlace decides where a journal entry with offsets [base, last]
// goes at recovery: apply is false if the log holds it already, err
// non-nil if it leaves a gap. A journal-backed log (journalLog) whose
// start DeleteRecords moved into that entry begins with it.
func (l *Log) replayPlace(base, last int64, journalLog bool) (apply bool, err error) {
	next := l.nextOffset.Load()
	switch {
	case base < next && journalLog && l.emptyJournalLogLocked() && last >= next:
		l.active = createJournalSegment(l.store.fs, l.dir, base, l.store.now())
		l.publishSegmentsLocked([]*segment{l.active})
		l.nextOffset.Store(base)
	case base < next:
		return false, nil
	case base > next:
		return false, fmt.Errorf("%w: journal continues %s at offset %d but its segments end at %d",
			ErrOffline, l.name, base, next)
	}
	return true, nil
}

// emptyJournalLogLocked reports whether the log is one empty journal-backed
// segment (recovery only).
func (l *Log) emptyJournalLogLocked() bool {
	segs := l.segments()
	return len(segs) == 1 && segs[0].jb != nil && segs[0].written.Load() == 0
}

// lastOffset is the last offset of a validated record set.
func lastOffset(records []byte) int64 {
	var last int64
	for len(records) > 0 {
		h, _ := ParseHeader(records)
		last = h.LastOffset()
		records = records[h.TotalSize():]
	}
	return last
}

// sealJournalAt writes a seal for journal file seq at pos and fsyncs it.
func sealJournalAt(f vfs.File, seq uint64, pos int64) error {
	var b [journalEntryHeader]byte
	encodeSeal(b[:], seq)
	if _, err := f.WriteAt(b[:], pos); err != nil {
		return fmt.Errorf("seal journal file %d: %w", seq, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("seal journal file %d: %w", seq, err)
	}
	return nil
}

var _ vfs.FS = vfs.FS(nil)
