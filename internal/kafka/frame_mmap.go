package kafka

// Produce frames larger than the largest pooled buffer (1 MiB) live in
// anonymous memory mapped for the request and unmapped once its response
// is written, outside the Go heap. Through the heap, each such frame was
// garbage of its size: the collector's goal rose with it (twice the live
// heap, a frame in flight counting as live) and the runtime kept the freed
// pages, so twenty 2 MiB produce requests left the broker's RSS 15-20 MiB
// higher for good. Mapped, the memory is the kernel's again at munmap,
// and the frame grows in place (mremap moves page tables, not bytes)
// instead of being copied at each doubling.
//
// Only Produce frames: their handler reads the records (appended by copy
// into the segment and the journal) and keeps no reference once the slot
// completes, which is when the frame is released (slot.recycle). Other
// requests' []byte fields may be retained by their handlers (see
// dispatch), so their frames stay on the heap.

import (
	"errors"

	"golang.org/x/sys/unix"
)

var errNoMemory = errors.New("kafka: cannot map memory for a request frame")

// maxPooledBuf is the largest buffer getBuf pools.
const maxPooledBuf = 1 << maxPooledShift

// getMappedBuf maps n bytes (a multiple of the page size is best) or
// returns nil.
func getMappedBuf(n int) *[]byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return &b
}

// growMappedBuf grows a buffer of getMappedBuf to n bytes, keeping its
// contents.
func growMappedBuf(p *[]byte, n int) bool {
	b, err := unix.Mremap(*p, n, unix.MREMAP_MAYMOVE)
	if err != nil {
		return false
	}
	*p = b
	return true
}

// releaseMapped unmaps p if it is a buffer of getMappedBuf and reports
// whether it was. x/sys/unix keeps the table of live mappings: Munmap of
// any other slice is refused (EINVAL) without a system call.
func releaseMapped(p *[]byte) bool {
	b := (*p)[:cap(*p)]
	if len(b) == 0 {
		return false
	}
	if err := unix.Munmap(b); err != nil {
		return false
	}
	*p = nil
	return true
}

// growBuf returns a buffer of length n holding the first keep bytes of p,
// which it releases: from getBuf up to the pooled sizes, mapped beyond
// (grown in place if p is mapped already), from the heap if mapping fails.
func growBuf(p *[]byte, n, keep int) *[]byte {
	if n > maxPooledBuf {
		if cap(*p) > maxPooledBuf {
			*p = (*p)[:cap(*p)]
			if growMappedBuf(p, n) {
				return p
			}
		}
		if q := getMappedBuf(n); q != nil {
			copy(*q, (*p)[:keep])
			putBuf(p)
			return q
		}
	}
	q := getBuf(n)
	copy(*q, (*p)[:keep])
	putBuf(p)
	return q
}
