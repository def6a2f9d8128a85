package kafka

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

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
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader([]byte("only a few bytes")), 96<<20, []byte{0, 0})
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: err %v, want unexpected EOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*frameChunk {
		t.Fatalf("truncated 96 MiB frame allocated %d bytes", n)
	}
}
