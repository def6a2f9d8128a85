package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Journal-log mode (StoreOptions.JournalLog): the journal is the log.
//
// Every append is written to the device once, as a journal entry (the
// committer writes each group with O_DIRECT, as in the other mode), and
// the partition's segment does not copy it: a journal-backed segment is a list
// of chunks, each the record set of one journal entry (journal file,
// position, length), in segment-position order. The offset and time
// indexes keep logical segment positions, so lookups are unchanged; a read
// turns a segment range into one region per chunk, which the fetch path
// copies (small chunks) or sends with sendfile (large ones). Direct writes
// leave the page cache cold, so small groups are also kept in memory
// (recentCache) for readers at the tail; older data is read from the
// journal files through the page cache.
//
// Journal files are then kept while any journal-backed segment refers to
// them (jfile.refs), not only until the next checkpoint. Retention and
// DeleteRecords drop segments, and with them references; a checkpoint
// removes (or recycles) the files nothing refers to any more.
//
// Recovery rebuilds journal-backed segments by replaying every journal
// file still present, from its index file where it has one: entries below
// a log's end (its ordinary segments, or its persisted log start offset)
// are skipped, the rest become chunks.
// Journal-backed segments have no files of their own, so the log start
// offset is persisted whenever retention drops segments.
//
// DESIGN.md ("The journal is the log") has the reasoning and the figures.

// jfile is an open journal file: the committer writes it, journal-backed
// segments read from it.
type jfile struct {
	seq uint64
	f   vfs.File
	rf  vfs.File // for reads, through the page cache (f may be O_DIRECT); nil: f
	// recent is the store's cache of the newest groups (nil for files
	// found at recovery, which it never holds).
	recent *recentCache
	// written is how many bytes of the file the committer has written: a
	// chunk below it can be read. Chunks become readable before their
	// group's fsync, but no reader looks past the high watermark, which
	// moves only after it.
	written atomic.Int64
	// refs counts the journal-backed segments with chunks in this file,
	// plus one while the committer writes it. At zero the handle is
	// closed; the file is removed by the next checkpoint that covers it.
	refs atomic.Int32
	// entries describes the file's record entries, for its index file:
	// appended under committer.mu while the file is written (or by
	// recovery), read by the checkpoint that writes the index once the
	// file is sealed, then dropped.
	entries []jentry
	indexed bool // its index file is written (checkpoint only)
	// punches is the store's queue of dead segments to punch.
	punches *punchQueue
}

// punchQueue holds dead journal-backed segments whose records are to be
// punched out of the journal files, off the path that dropped them (which
// may hold Log.mu): the maintenance goroutine drains it every tick, and
// Close drains what is left.
type punchQueue struct {
	mu      sync.Mutex
	pending []*jbFile
	bytes   atomic.Int64 // punched so far (Stats)
}

func (q *punchQueue) add(j *jbFile) {
	q.mu.Lock()
	q.pending = append(q.pending, j)
	q.mu.Unlock()
}

// drain punches every queued segment, then drops its journal references.
func (q *punchQueue) drain() {
	q.mu.Lock()
	todo := q.pending
	q.pending = nil
	q.mu.Unlock()
	for _, j := range todo {
		q.bytes.Add(j.punch())
		j.close()
	}
}

// jentry is one record entry of a journal file, as its index file holds
// it: enough for recovery to make the chunk and index it without reading
// the records.
type jentry struct {
	inc   uint64
	name  string
	base  int64 // first offset
	last  int64 // last offset
	maxTS int64 // largest batch max timestamp
	jpos  int64 // position of the record set in the journal file
	n     int64 // its length
}

func (j *jfile) release() {
	if j.refs.Add(-1) == 0 {
		j.f.Close()
		if j.rf != nil {
			j.rf.Close()
		}
	}
}

func (j *jfile) reader() vfs.File {
	if j.rf != nil {
		return j.rf
	}
	return j.f
}

// errNotWritten: a read reached journal bytes the committer has not
// written yet. Only a read past the high watermark can.
var errNotWritten = errors.New("log: journal bytes not yet written")

// chunk is one journal entry's record set as part of a segment.
type chunk struct {
	pos  int64 // segment position of the first byte
	jf   *jfile
	jpos int64 // position in the journal file
	n    int64
}

// chunkList is a segment's chunks, in segment-position order.
type chunkList = appendList[chunk]

// jbFile is the data of a journal-backed segment.
//
// Ownership: add is called by the log's appender with Log.mu held (under
// committer.mu for live appends, by recovery before the segment is
// published); readers use entries without locks. files, the distinct
// journal files referenced, in order, is touched by add and by close,
// which runs once the segment's last reference is gone.
type jbFile struct {
	chunks chunkList
	files  []*jfile
}

func (j *jbFile) add(c chunk) {
	if len(j.files) == 0 || j.files[len(j.files)-1] != c.jf {
		c.jf.refs.Add(1)
		j.files = append(j.files, c.jf)
	}
	j.chunks.add(c)
}

// close drops the segment's references to its journal files.
func (j *jbFile) close() {
	for _, f := range j.files {
		f.release()
	}
	j.files = nil
}

// punch gives back the disk space of the segment's records in the journal
// files that still hold them: the whole blocks inside each batch, past its
// first punchKeep bytes. Each batch keeps its prefix (base offset, length,
// leader epoch, magic, CRC), which is all the journal entry's crc covers,
// so recovery can still trust an entry's header and offsets, and see that
// it is dead (recover.go, deadEntry). Runs once, after the last release of
// a dead segment, from the store's punchQueue: nothing reads these bytes
// again. Best effort: the space comes back with the file otherwise.
func (j *jbFile) punch() (punched int64) {
	var hdr [batchLengthOffset + 4]byte
	for _, c := range j.chunks.entries() {
		r := c.jf.reader()
		for pos, end := c.jpos, c.jpos+c.n; end-pos >= batchHeaderSize; {
			if _, err := r.ReadAt(hdr[:], pos); err != nil {
				break
			}
			size := batchOverhead + int64(int32(binary.BigEndian.Uint32(hdr[batchLengthOffset:])))
			if size < batchHeaderSize || size > end-pos {
				break // not what was appended: leave it
			}
			from := (pos + punchKeep + vfs.DirectAlign - 1) &^ (vfs.DirectAlign - 1)
			if to := (pos + size) &^ (vfs.DirectAlign - 1); to > from && c.jf.f.PunchHole(from, to-from) == nil {
				punched += to - from
			}
			pos += size
		}
	}
	return punched
}

// queuePunch hands a dead segment's data to its store's punch queue, which
// then owns its journal references; false if it has no chunks.
func (j *jbFile) queuePunch() bool {
	cs := j.chunks.entries()
	if len(cs) == 0 || cs[0].jf.punches == nil {
		return false
	}
	cs[0].jf.punches.add(j)
	return true
}

// punchKeep is how much of each batch punch keeps: more than the prefix
// the journal entry's crc covers (batchPrefix).
const punchKeep = 64

// find returns the index of the chunk holding segment position pos, or -1.
func (j *jbFile) find(cs []chunk, pos int64) int {
	i := sort.Search(len(cs), func(i int) bool { return cs[i].pos > pos }) - 1
	if i < 0 || pos >= cs[i].pos+cs[i].n {
		return -1
	}
	return i
}

// ReadAt reads segment bytes from the journal files that hold them.
func (j *jbFile) ReadAt(p []byte, off int64) (int, error) {
	cs := j.chunks.entries()
	i := j.find(cs, off)
	n := 0
	for n < len(p) {
		if i < 0 || i >= len(cs) {
			return n, io.EOF
		}
		c := cs[i]
		rel := off + int64(n) - c.pos
		m := min(int64(len(p)-n), c.n-rel)
		if c.jpos+rel+m > c.jf.written.Load() {
			return n, errNotWritten
		}
		var f vfs.File = c.jf.reader()
		if g := c.jf.recent.find(c.jf.seq, c.jpos+rel, m); g != nil {
			f = g
		}
		k, err := f.ReadAt(p[n:n+int(m)], c.jpos+rel)
		n += k
		if err != nil {
			return n, err
		}
		i++
	}
	return n, nil
}

// appendRegions appends the regions holding segment bytes [first, end).
func (j *jbFile) appendRegions(dst []Region, first, end int64) []Region {
	cs := j.chunks.entries()
	i := j.find(cs, first)
	for pos := first; pos < end && i >= 0 && i < len(cs); i++ {
		c := cs[i]
		rel := pos - c.pos
		m := min(end-pos, c.n-rel)
		var f vfs.File = c.jf.reader()
		if g := c.jf.recent.find(c.jf.seq, c.jpos+rel, m); g != nil {
			f = g // copied, not sent with sendfile: it is in memory
		}
		dst = append(dst, Region{File: f, Pos: c.jpos + rel, Len: m})
		pos += m
	}
	return dst
}

// Journal index files (part of the on-disk format, journal-log mode).
// <store>/journal/<seq, 20 digits>.idx describes the record entries of the
// sealed journal file with that sequence, so recovery builds its chunks
// without reading the records:
//
//	"SLJX" version:uint32 fileSeq:uint64 count:uint32
//	count × { incarnation:uint64 nameLength:uint16 name
//	          baseOffset:int64 lastOffset:int64 maxTimestamp:int64
//	          position:int64 length:uint32 }
//	crc:uint32 (CRC-32C of everything before it)
//
// A checkpoint writes it (atomically) for each sealed file still in use;
// the file was fsynced, seal included, before that. One that is missing,
// damaged or for another sequence is ignored: the journal file is read
// instead. It is removed before its journal file is removed or recycled.
const (
	journalIndexSuffix  = ".idx"
	journalIndexMagic   = "SLJX"
	journalIndexVersion = 1
)

func journalIndexName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, journalIndexSuffix) }

func encodeJournalIndex(seq uint64, es []jentry) []byte {
	b := append([]byte(journalIndexMagic), 0, 0, 0, journalIndexVersion)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, e.inc)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.name)))
		b = append(b, e.name...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.base))
		b = binary.BigEndian.AppendUint64(b, uint64(e.last))
		b = binary.BigEndian.AppendUint64(b, uint64(e.maxTS))
		b = binary.BigEndian.AppendUint64(b, uint64(e.jpos))
		b = binary.BigEndian.AppendUint32(b, uint32(e.n))
	}
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

// decodeJournalIndex parses an index file of journal file seq; ok is false
// if it is damaged or describes another file.
func decodeJournalIndex(b []byte, seq uint64) (es []jentry, ok bool) {
	if len(b) < 24 || string(b[:4]) != journalIndexMagic || binary.BigEndian.Uint32(b[4:]) != journalIndexVersion ||
		binary.BigEndian.Uint64(b[8:]) != seq || crc32c(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b[16:]))
	p, end := 20, len(b)-4
	es = make([]jentry, 0, n)
	for range n {
		if p+10 > end {
			return nil, false
		}
		var e jentry
		e.inc = binary.BigEndian.Uint64(b[p:])
		nl := int(binary.BigEndian.Uint16(b[p+8:]))
		p += 10
		if p+nl+36 > end {
			return nil, false
		}
		e.name = string(b[p : p+nl])
		p += nl
		e.base = int64(binary.BigEndian.Uint64(b[p:]))
		e.last = int64(binary.BigEndian.Uint64(b[p+8:]))
		e.maxTS = int64(binary.BigEndian.Uint64(b[p+16:]))
		e.jpos = int64(binary.BigEndian.Uint64(b[p+24:]))
		e.n = int64(binary.BigEndian.Uint32(b[p+32:]))
		p += 36
		if e.n <= 0 || e.last < e.base || e.jpos < 0 {
			return nil, false
		}
		es = append(es, e)
	}
	return es, p == end
}

// recentGroup is a commit group's bytes, kept in memory after the
// committer wrote them to the journal with O_DIRECT (which leaves the page
// cache cold): readers of recent data, consumers at the tail above all,
// copy from here instead of reading the device back. A group is immutable
// once published and is never reused: an evicted one goes to the garbage
// collector, and a reader still copying from it keeps it alive.
//
// It serves fetch regions as a vfs.File that can only be read.
type recentGroup struct {
	seq        uint64
	start, end int64 // journal file positions
	buf        []byte
}

var errRecentReadOnly = errors.New("log: recent journal bytes are read-only")

func (g *recentGroup) ReadAt(p []byte, off int64) (int, error) {
	if off < g.start || off >= g.end {
		return 0, io.EOF
	}
	n := copy(p, g.buf[off-g.start:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (g *recentGroup) WriteAt([]byte, int64) (int, error) { return 0, errRecentReadOnly }
func (g *recentGroup) Close() error                       { return nil }
func (g *recentGroup) Name() string                       { return journalName(g.seq) + " (in memory)" }
func (g *recentGroup) Size() (int64, error)               { return g.end, nil }
func (g *recentGroup) Truncate(int64) error               { return errRecentReadOnly }
func (g *recentGroup) Sync() error                        { return nil }
func (g *recentGroup) Allocate(int64, int64) error        { return errRecentReadOnly }
func (g *recentGroup) PunchHole(int64, int64) error       { return errRecentReadOnly }

var _ vfs.File = (*recentGroup)(nil)

// recentCache holds the newest commit groups, at most recentCacheBytes,
// in journal order. The committer adds (copy-on-write); readers search the
// published list without locks.
type recentCache struct {
	groups atomic.Pointer[[]*recentGroup]
	bytes  int64 // committer only
}

// recentCacheBytes is how much of the newest journal data stays in memory
// in journal-log mode: over a second of data at 50 MB/s, and a few groups
// at full speed.
const recentCacheBytes = 64 << 20

// recentGroupMax is the largest group kept: copying every group costs as
// much as the page-cache copy the direct write saved, and large groups
// come only at rates where readers keep up from the disk.
const recentGroupMax = 1 << 20

func (r *recentCache) add(g *recentGroup) {
	var old []*recentGroup
	if p := r.groups.Load(); p != nil {
		old = *p
	}
	r.bytes += g.end - g.start
	drop := 0
	for drop < len(old) && r.bytes > recentCacheBytes {
		r.bytes -= old[drop].end - old[drop].start
		drop++
	}
	next := make([]*recentGroup, 0, len(old)-drop+1)
	next = append(append(next, old[drop:]...), g)
	r.groups.Store(&next)
}

// find returns the cached group holding journal file seq's bytes
// [pos, pos+n), or nil.
func (r *recentCache) find(seq uint64, pos, n int64) *recentGroup {
	if r == nil {
		return nil
	}
	p := r.groups.Load()
	if p == nil {
		return nil
	}
	gs := *p
	i := sort.Search(len(gs), func(i int) bool {
		return gs[i].seq > seq || (gs[i].seq == seq && gs[i].end > pos)
	})
	if i < len(gs) && gs[i].seq == seq && gs[i].start <= pos && pos+n <= gs[i].end {
		return gs[i]
	}
	return nil
}
