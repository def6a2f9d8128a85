package log

import (
	"errors"
	"io"
	"sort"
	"sync/atomic"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Journal-log mode (StoreOptions.JournalLog): the journal is the log.
//
// Every append is written to the device once, as a journal entry, and the
// partition's segment does not copy it: a journal-backed segment is a list
// of chunks, each the record set of one journal entry (journal file,
// position, length), in segment-position order. The offset and time
// indexes keep logical segment positions, so lookups are unchanged; a read
// turns a segment range into one region per chunk, which the fetch path
// copies (small chunks) or sends with sendfile (large ones).
//
// Journal files are then kept while any journal-backed segment refers to
// them (jfile.refs), not only until the next checkpoint. Retention and
// DeleteRecords drop segments, and with them references; a checkpoint
// removes (or recycles) the files nothing refers to any more.
//
// Recovery rebuilds journal-backed segments by replaying every journal
// file still present: entries below a log's end (its ordinary segments, or
// its persisted log start offset) are skipped, the rest become chunks.
// Journal-backed segments have no files of their own, so the log start
// offset is persisted whenever retention drops segments.
//
// DESIGN.md ("The journal is the log") has the reasoning and the figures.

// jfile is an open journal file: the committer writes it, journal-backed
// segments read from it.
type jfile struct {
	seq uint64
	f   vfs.File
	// written is how many bytes of entries have been written to the file
	// (by the appenders, committer.writeEntryLocked): a chunk below it can
	// be read. Chunks become readable before their group's fsync, but no
	// reader looks past the high watermark, which moves only after it.
	written atomic.Int64
	// refs counts the journal-backed segments with chunks in this file,
	// plus one while the committer writes it. At zero the handle is
	// closed; the file is removed by the next checkpoint that covers it.
	refs atomic.Int32
}

func (j *jfile) release() {
	if j.refs.Add(-1) == 0 {
		j.f.Close()
	}
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

// chunkList is append-only with one writer and lock-free readers, like
// offsetIndex: the writer stores an entry, then publishes the length.
type chunkList struct {
	buf atomic.Pointer[[]chunk]
	n   atomic.Int32
}

func (x *chunkList) add(c chunk) {
	n := int(x.n.Load())
	var s []chunk
	if p := x.buf.Load(); p != nil {
		s = *p
	}
	if n == len(s) {
		grown := make([]chunk, max(16, 2*n))
		copy(grown, s[:n])
		x.buf.Store(&grown)
		s = grown
	}
	s[n] = c
	x.n.Store(int32(n + 1))
}

func (x *chunkList) entries() []chunk {
	n := x.n.Load()
	p := x.buf.Load()
	if p == nil {
		return nil
	}
	return (*p)[:n]
}

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
		k, err := c.jf.f.ReadAt(p[n:n+int(m)], c.jpos+rel)
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
		dst = append(dst, Region{File: c.jf.f, Pos: c.jpos + rel, Len: m})
		pos += m
	}
	return dst
}
