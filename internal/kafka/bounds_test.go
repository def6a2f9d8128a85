package kafka

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// allocated runs f and returns the bytes it allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// gzipZeros is gzip of mib MiB of zeros, as repeated gzip members (a
// reader continues across them).
func gzipZeros(t testing.TB, mib int) []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), mib)
}

// TestDownConvertBombIsCheap: a gzip batch whose one record inflates to
// 256 MiB of zeros fails down-conversion at its first record, having
// allocated next to nothing (it used to be inflated whole, up to 64 MiB).
func TestDownConvertBombIsCheap(t *testing.T) {
	batch := makeBatch(1, []byte("x"))[:61]
	batch[22] = 1 // gzip
	batch = append(batch, gzipZeros(t, 256)...)
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	var err error
	n := allocated(func() { _, err = downConvert(batch, 0, 1, 1<<20) })
	if err != errDownConvert {
		t.Fatalf("err %v, want errDownConvert", err)
	}
	if n > 1<<20 {
		t.Fatalf("down-converting the bomb allocated %d bytes", n)
	}
}

// TestLegacyBombIsBounded: a legacy gzip wrapper inflating to 1 GiB is
// rejected once past the 1 MiB limit, allocating about that much.
func TestLegacyBombIsBounded(t *testing.T) {
	set := legacyMessage(0, 1, 1, 0, nil, gzipZeros(t, 1024))
	var err error
	n := allocated(func() { _, err = convertLegacy(set, 1<<20, 0) })
	if err != errLegacyTooBig {
		t.Fatalf("err %v, want errLegacyTooBig", err)
	}
	if n > 4<<20 {
		t.Fatalf("converting the bomb allocated %d bytes", n)
	}
}

// TestReadFrameGrowsWithData: a frame is read whole whatever its size, and
// one that announces 96 MiB but stops after a few bytes allocates about
// one chunk of heap, not 96 MiB. Produce frames (mapped) over frameChunk
// live outside the Go heap: in a mapping of their announced size
// (bigframe.go) or, where that is refused, beyond 1 MiB in one grown in
// place (frame_mmap.go); putBuf takes either back.
func TestReadFrameGrowsWithData(t *testing.T) {
	defer func() { mappedFramesOn = true }()
	for _, mode := range []struct {
		name     string
		mapped   bool
		whole    bool // mappings of the announced size allowed
		outsideF func(size int) bool
	}{
		{"heap", false, true, func(int) bool { return false }},
		{"mapped whole", true, true, func(size int) bool { return size > frameChunk }},
		{"mapped grown", true, false, func(size int) bool { return size > maxPooledBuf }},
	} {
		mappedFramesOn = mode.whole
		for _, size := range []int{10, frameChunk - 1, frameChunk, frameChunk + 1, 5*frameChunk + 3, maxPooledBuf, maxPooledBuf + 1, 3 << 20, 5<<20 + 7} {
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i * 7)
			}
			got, err := readFrame(bytes.NewReader(want[2:]), size, want[:2], mode.mapped)
			if err != nil || !bytes.Equal(*got, want) {
				t.Fatalf("%s, size %d: err %v, frame equal %v", mode.name, size, err, err == nil && bytes.Equal(*got, want))
			}
			if outside := bigFrames.put(got) || releaseMapped(got); outside != mode.outsideF(size) {
				t.Fatalf("%s, size %d: frame outside the heap: %v", mode.name, size, outside)
			}
		}
		var err error
		n := allocated(func() {
			_, err = readFrame(bytes.NewReader([]byte("only a few bytes")), 96<<20, []byte{0, 0}, mode.mapped)
		})
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("%s: truncated frame: err %v, want unexpected EOF", mode.name, err)
		}
		if n > 4*frameChunk {
			t.Fatalf("%s: truncated 96 MiB frame allocated %d bytes", mode.name, n)
		}
	}
	mappedFramesOn = true
	// Released mapped frames are unmapped: a leak would grow VmSize by 600
	// MiB over 200 frames of 3 MiB (the runtime may map a new heap arena
	// of 64 MiB or a thread stack meanwhile: the bound is 256 MiB).
	want := make([]byte, 3<<20)
	before := vmSizeKiB(t)
	for i := 0; i < 200; i++ {
		got, err := readFrame(bytes.NewReader(want[2:]), len(want), want[:2], true)
		if err != nil {
			t.Fatal(err)
		}
		putBuf(got)
	}
	if grew := vmSizeKiB(t) - before; grew > 256<<10 {
		t.Fatalf("VmSize grew by %d KiB over 200 mapped 3 MiB frames", grew)
	}
}

func vmSizeKiB(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	t.Fatal("no VmSize")
	return 0
}

func TestWarnLimiter(t *testing.T) {
	var l warnLimiter
	t0 := time.Unix(1000, 0)
	for i := 0; i < warnBurst; i++ {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * time.Millisecond)); !ok {
			t.Fatalf("warning %d of the first second refused", i)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("warning past the burst let through")
		}
	}
	if ok, suppressed := l.allow(t0.Add(time.Second)); !ok || suppressed != 5 {
		t.Fatalf("next second: ok %v, suppressed %d, want true, 5", ok, suppressed)
	}
	if ok, suppressed := l.allow(t0.Add(time.Second)); !ok || suppressed != 0 {
		t.Fatalf("ok %v, suppressed %d, want true, 0", ok, suppressed)
	}
}
