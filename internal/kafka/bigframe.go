package kafka

import (
	"math/bits"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Produce frames larger than frameChunk are read into anonymous memory
// mappings instead of the Go heap. A mapping is made at the frame's
// announced size (rounded up to a power of two), but costs memory only for
// the pages its bytes have reached, so a client announcing 96 MiB and
// sending 16 bytes pins one page, as with the doubling path, and a real
// 4 MiB produce request is read in one piece: no doubling copies, no
// zeroing of a fresh heap object, and no heap growth (Go sizes its heap
// goal from the live heap: MiB-sized frames churned through it kept the
// broker's RSS ~15 MiB up, measured by test/reliability).
//
// Released mappings are kept for reuse up to mappedCacheBytes (address
// space; resident only where earlier frames wrote); the rest are unmapped
// at once, which returns their memory to the kernel. A frame takes the
// smallest kept mapping that holds it, of its own class or larger, and a
// mapping that does not fit in the cache displaces smaller ones: frame
// sizes spread over many classes (at 1,024 partitions in `sluice bench`
// (e), 128 KiB to 16 MiB over eight classes), and with each class kept
// apart the small ones crowded out the big ones: with frames also held
// until their response (handle_produce.go), one frame in five to eight
// was read into a fresh mapping and the broker took ~11,000 page faults
// a second (perf), each costly on a virtual machine. Only Produce frames
// take this path: the produce handler copies what it keeps (into the
// segment and the journal), so nothing refers to the frame once its
// appends are done — a mapping may be unmapped then. Where mmap fails
// (vm.overcommit_memory=2, map count), readFrame falls back to the heap.
const (
	mappedMinShift   = 17       // 128 KiB: the smallest mapping class
	mappedMaxShift   = 30       // 1 GiB: above any request size allowed
	mappedCacheBytes = 64 << 20 // address space of released mappings kept
)

type mappedFrames struct {
	mu     sync.Mutex
	free   [mappedMaxShift + 1][]*[]byte // released mappings by class
	cached int                           // bytes of address space in free
	live   map[*byte]struct{}            // mappings handed out, by base
}

var bigFrames = mappedFrames{live: map[*byte]struct{}{}}

// mappedFramesOn can be turned off by tests of the heap path.
var mappedFramesOn = true

// get returns a buffer of length n backed by a mapping, or nil if none
// could be made.
func (m *mappedFrames) get(n int) *[]byte {
	if !mappedFramesOn || n <= 0 {
		return nil
	}
	shift := max(mappedMinShift, bits.Len(uint(n-1)))
	if shift > mappedMaxShift {
		return nil
	}
	m.mu.Lock()
	for s := shift; s <= mappedMaxShift; s++ {
		if len(m.free[s]) > 0 {
			p := m.popLocked(s)
			m.live[unsafe.SliceData(*p)] = struct{}{}
			m.mu.Unlock()
			*p = (*p)[:n]
			return p
		}
	}
	m.mu.Unlock()
	b, err := unix.Mmap(-1, 0, 1<<shift, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	p := &b
	m.mu.Lock()
	m.live[unsafe.SliceData(b)] = struct{}{}
	m.mu.Unlock()
	*p = (*p)[:n]
	return p
}

// popLocked takes the last kept mapping of class s (not empty) out of the
// cache.
func (m *mappedFrames) popLocked(s int) *[]byte {
	l := len(m.free[s])
	p := m.free[s][l-1]
	m.free[s][l-1] = nil
	m.free[s] = m.free[s][:l-1]
	m.cached -= cap(*p)
	return p
}

// put takes back a buffer from get and reports true, or reports false if
// p is not one of its mappings.
func (m *mappedFrames) put(p *[]byte) bool {
	base := unsafe.SliceData(*p)
	m.mu.Lock()
	if _, ok := m.live[base]; !ok {
		m.mu.Unlock()
		return false
	}
	delete(m.live, base)
	*p = (*p)[:cap(*p)]
	c := cap(*p)
	shift := bits.Len(uint(c - 1))
	// Make room by displacing smaller mappings, smallest first: a larger
	// one serves their frames too.
	var drop []*[]byte
	for s := mappedMinShift; s < shift && m.cached+c > mappedCacheBytes; s++ {
		for len(m.free[s]) > 0 && m.cached+c > mappedCacheBytes {
			drop = append(drop, m.popLocked(s))
		}
	}
	kept := m.cached+c <= mappedCacheBytes
	if kept {
		m.free[shift] = append(m.free[shift], p)
		m.cached += c
	}
	m.mu.Unlock()
	for _, q := range drop {
		_ = unix.Munmap(*q)
	}
	if !kept {
		_ = unix.Munmap(*p)
	}
	return true
}
