package kafka

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"runtime"
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
// one chunk, not 96 MiB.
func TestReadFrameGrowsWithData(t *testing.T) {
	for _, size := range []int{10, frameChunk - 1, frameChunk, frameChunk + 1, 5*frameChunk + 3, 3 << 20} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i * 7)
		}
		got, err := readFrame(bytes.NewReader(want[2:]), size, want[:2])
		if err != nil || !bytes.Equal(*got, want) {
			t.Fatalf("size %d: err %v, frame equal %v", size, err, err == nil && bytes.Equal(*got, want))
		}
	}
	var err error
	n := allocated(func() {
		_, err = readFrame(bytes.NewReader([]byte("only a few bytes")), 96<<20, []byte{0, 0})
	})
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: err %v, want unexpected EOF", err)
	}
	if n > 4*frameChunk {
		t.Fatalf("truncated 96 MiB frame allocated %d bytes", n)
	}
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
