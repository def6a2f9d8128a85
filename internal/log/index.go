package log

import (
	"encoding/binary"
	"sort"
	"sync/atomic"
)

// On-disk index formats (part of the on-disk format):
//
//	<base>.index      sparse offset index, 8 bytes an entry:
//	                  relativeOffset uint32 (batch base offset - segment base)
//	                  position       uint32 (byte position of that batch)
//	<base>.timeindex  time index, 12 bytes an entry:
//	                  timestamp      int64  (largest max timestamp so far)
//	                  relativeOffset uint32 (base offset of the batch that
//	                                         raised it, minus segment base)
//
// Both are big-endian and strictly increasing in every field. An entry is
// added every IndexIntervalBytes of log. Damaged index files (a size that is
// not a whole number of entries, entries out of order or past the segment)
// are rebuilt from the segment.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

// appendList is an append-only array with one writer and lock-free
// readers: the writer stores an entry and then publishes the new length; a
// reader loads the length first and then the buffer, which is at least
// that long. Growth copies into a new buffer, so a reader's view stays
// valid.
type appendList[T any] struct {
	buf atomic.Pointer[[]T]
	n   atomic.Int32
}

func (x *appendList[T]) add(e T) {
	n := int(x.n.Load())
	var s []T
	if p := x.buf.Load(); p != nil {
		s = *p
	}
	if n == len(s) {
		grown := make([]T, max(16, 2*n))
		copy(grown, s[:n])
		x.buf.Store(&grown)
		s = grown
	}
	s[n] = e
	x.n.Store(int32(n + 1))
}

func (x *appendList[T]) entries() []T {
	n := x.n.Load()
	p := x.buf.Load()
	if p == nil {
		return nil
	}
	return (*p)[:n]
}

// offsetIndex is the sparse offset index of a segment (appender writes,
// readers look up without locks).
type offsetIndex struct{ appendList[offsetEntry] }

// truncate drops entries at or past pos (recovery only).
func (x *offsetIndex) truncate(pos int64) {
	e := x.entries()
	i := sort.Search(len(e), func(i int) bool { return int64(e[i].pos) >= pos })
	x.n.Store(int32(i))
}

// lookup returns the position of the last indexed batch whose base offset is
// at most rel, or 0.
func (x *offsetIndex) lookup(rel uint32) int64 {
	e := x.entries()
	i := sort.Search(len(e), func(i int) bool { return e[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(e[i-1].pos)
}

// timeIndex is the time index of a segment, like offsetIndex.
type timeIndex struct{ appendList[timeEntry] }

func (x *timeIndex) last() (timeEntry, bool) {
	e := x.entries()
	if len(e) == 0 {
		return timeEntry{}, false
	}
	return e[len(e)-1], true
}

// truncateOffsets drops entries whose relative offset is at or past rel.
func (x *timeIndex) truncateOffsets(rel uint32) {
	e := x.entries()
	i := sort.Search(len(e), func(i int) bool { return e[i].rel >= rel })
	x.n.Store(int32(i))
}

// lookup returns the relative offset to start scanning from for the first
// batch with a timestamp >= ts: the entry before the first entry reaching ts.
func (x *timeIndex) lookup(ts int64) uint32 {
	e := x.entries()
	i := sort.Search(len(e), func(i int) bool { return e[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return e[i-1].rel
}

func encodeOffsetEntries(dst []byte, e []offsetEntry) []byte {
	for _, x := range e {
		dst = binary.BigEndian.AppendUint32(dst, x.rel)
		dst = binary.BigEndian.AppendUint32(dst, x.pos)
	}
	return dst
}

func encodeTimeEntries(dst []byte, e []timeEntry) []byte {
	for _, x := range e {
		dst = binary.BigEndian.AppendUint64(dst, uint64(x.ts))
		dst = binary.BigEndian.AppendUint32(dst, x.rel)
	}
	return dst
}

// decodeOffsetIndex parses an offset index file's bytes, returning false if
// they are damaged for a segment of size bytes.
func decodeOffsetIndex(b []byte, size int64, x *offsetIndex) bool {
	if len(b)%offsetEntrySize != 0 {
		return false
	}
	var prev offsetEntry
	for i := 0; i < len(b); i += offsetEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if int64(e.pos) >= size || (i > 0 && (e.rel <= prev.rel || e.pos <= prev.pos)) {
			return false
		}
		x.add(e)
		prev = e
	}
	return true
}

func decodeTimeIndex(b []byte, maxRel uint32, x *timeIndex) bool {
	if len(b)%timeEntrySize != 0 {
		return false
	}
	var prev timeEntry
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if e.rel > maxRel || (i > 0 && (e.ts <= prev.ts || e.rel < prev.rel)) {
			return false
		}
		x.add(e)
		prev = e
	}
	return true
}
