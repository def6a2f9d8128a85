package kafka

import (
	"bytes"
	"io"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of b in memory.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+unix.Getpagesize()-1)/unix.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestMappedFrameRead(t *testing.T) {
	for _, size := range []int{frameChunk + 1, 1 << 20, 3<<20 + 5} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i * 13)
		}
		got, err := readFrame(bytes.NewReader(want[2:]), size, want[:2], true)
		if err != nil || !bytes.Equal(*got, want) {
			t.Fatalf("size %d: err %v", size, err)
		}
		putBuf(got)
	}
	// A truncated frame announcing 96 MiB: an error, and the mapping held
	// only the pages the bytes reached while it was read.
	p := bigFrames.get(96 << 20)
	if p == nil {
		t.Skip("SKIPPING: this machine refuses a 96 MiB anonymous mapping (strict overcommit?)")
	}
	copy(*p, "only a few bytes")
	if n := resident(t, *p); n > 1 {
		t.Fatalf("96 MiB mapping with 16 bytes written: %d pages resident", n)
	}
	putBuf(p) // larger than the cache: unmapped
	if bigFrames.cached > mappedCacheBytes {
		t.Fatalf("cache holds %d bytes, limit %d", bigFrames.cached, mappedCacheBytes)
	}
	if _, err := readFrame(bytes.NewReader([]byte("only a few bytes")), 96<<20, []byte{0, 0}, true); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: err %v, want unexpected EOF", err)
	}
}

func TestMappedFrameReuse(t *testing.T) {
	a := bigFrames.get(2<<20 + 1)
	if a == nil {
		t.Skip("SKIPPING: no anonymous mapping on this machine")
	}
	base := unsafe.SliceData(*a)
	putBuf(a)
	b := bigFrames.get(3 << 20) // same 4 MiB class
	if unsafe.SliceData(*b) != base || len(*b) != 3<<20 {
		t.Fatalf("released mapping not reused for the same class")
	}
	putBuf(b)
	// A heap buffer of a mapping's size is not taken for a mapping.
	h := make([]byte, 256<<10)
	putBuf(&h)
	if bigFrames.put(&h) {
		t.Fatal("a heap buffer was taken back as a mapping")
	}
}

// TestMappedFrameClasses: a frame reuses a larger kept mapping, and a large
// mapping given back displaces smaller ones rather than being unmapped.
func TestMappedFrameClasses(t *testing.T) {
	m := &mappedFrames{live: map[*byte]struct{}{}}
	defer func() {
		for _, l := range m.free {
			for _, p := range l {
				_ = unix.Munmap(*p)
			}
		}
	}()
	big := m.get(16 << 20)
	if big == nil {
		t.Skip("SKIPPING: no anonymous mapping on this machine")
	}
	base := unsafe.SliceData(*big)
	m.put(big)
	small := m.get(1<<20 + 1) // 2 MiB class; only the 16 MiB mapping is kept
	if unsafe.SliceData(*small) != base || len(*small) != 1<<20+1 {
		t.Fatal("a kept larger mapping was not reused for a smaller frame")
	}
	m.put(small)

	// Fill the cache with 2 MiB mappings (the 16 MiB one is kept too).
	var twos []*[]byte
	for m.cached+len(twos)*(2<<20) < mappedCacheBytes {
		p := m.get(2 << 20)
		if p == nil {
			t.Fatal("mmap failed")
		}
		if unsafe.SliceData(*p) == base {
			defer m.put(p) // the 16 MiB mapping: live until the end
			continue
		}
		twos = append(twos, p)
	}
	for _, p := range twos {
		m.put(p)
	}
	if m.cached > mappedCacheBytes {
		t.Fatalf("cache holds %d bytes, limit %d", m.cached, mappedCacheBytes)
	}
	bigAgain := m.get(32 << 20)
	if bigAgain == nil {
		t.Fatal("mmap failed")
	}
	b2 := unsafe.SliceData(*bigAgain)
	m.put(bigAgain)
	if m.cached > mappedCacheBytes {
		t.Fatalf("cache holds %d bytes, limit %d", m.cached, mappedCacheBytes)
	}
	got := m.get(20 << 20)
	if unsafe.SliceData(*got) != b2 {
		t.Fatal("a 32 MiB mapping given back to a full cache was unmapped instead of displacing smaller ones")
	}
	m.put(got)
}
