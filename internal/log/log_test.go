package log

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

func openMem(t testing.TB, fs vfs.FS, opts StoreOptions) *Store {
	t.Helper()
	s, err := OpenStore(fs, "/data", opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func TestAppendReadFsyncPolicy(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, err := s.Open("t-0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	var last Ticket
	for i := 0; i < 50; i++ {
		b := makeBatch(1+i%5, 100, int64(1000+i), byte(i))
		res, err := l.Append(b, 7)
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != l.NextOffset()-int64(1+i%5) {
			t.Fatalf("base offset %d, next %d", res.BaseOffset, l.NextOffset())
		}
		want = append(want, append([]byte(nil), b...))
		last = res.Ticket
	}
	waitDurable(t, s, last)
	if hw := l.HighWatermark(); hw != l.NextOffset() {
		t.Fatalf("hw %d after durable, next %d", hw, l.NextOffset())
	}
	got := readAll(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("read %d batches, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
		h, _ := ParseHeader(got[i])
		if h.PartitionLeaderEpoch != 7 {
			t.Fatalf("leader epoch %d", h.PartitionLeaderEpoch)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	good := makeBatch(3, 10, 1, 0)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	badMagic := append([]byte(nil), good...)
	badMagic[magicOffset] = 1
	big := makeBatch(1, 2000, 1, 0)
	tests := []struct {
		name string
		in   []byte
		max  int32
		want error
	}{
		{"empty", nil, 0, ErrInvalidBatch},
		{"short", good[:30], 0, ErrInvalidBatch},
		{"truncated", good[:len(good)-1], 0, ErrInvalidBatch},
		{"trailing", append(append([]byte(nil), good...), 1, 2, 3), 0, ErrInvalidBatch},
		{"crc", corrupt, 0, ErrCorruptBatch},
		{"magic", badMagic, 0, ErrInvalidBatch},
		{"too large", big, 1000, ErrBatchTooLarge},
		{"ok", good, 0, nil},
		{"two", append(append([]byte(nil), good...), good...), 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ValidateRecordSet(tc.in, tc.max)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newFakeClock(time.UnixMilli(5_000_000))
	s := openMem(t, vfs.NewMem(), StoreOptions{Clock: clk.now})
	defer s.Close()
	l, _ := s.Open("t-0", Config{LogAppendTime: true, Durability: Durability{Kind: DurabilityNone}})
	res, err := l.Append(makeBatch(2, 10, 1, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime != 5_000_000 {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	got := readAll(t, l, 0)
	h, _, err := checkBatch(got[0])
	if err != nil {
		t.Fatalf("stamped batch invalid: %v", err)
	}
	if h.MaxTimestamp != 5_000_000 || h.Attributes&attrTimestampLogAppend == 0 {
		t.Fatalf("header %+v", h)
	}
}

func TestReadBounds(t *testing.T) {
	s := openMem(t, vfs.NewMem(), StoreOptions{})
	defer s.Close()
	l, _ := s.Open("t-0", Config{SegmentBytes: 4096, Durability: Durability{Kind: DurabilityNone}})
	for i := 0; i < 40; i++ {
		if _, err := l.Append(makeBatch(2, 500, int64(i), byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.segments()); n < 5 {
		t.Fatalf("expected rolls, have %d segments", n)
	}
	var res ReadResult
	// A max smaller than one batch still returns exactly one batch.
	if err := l.Read(5, 1, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Regions) != 1 {
		t.Fatalf("regions %d", len(res.Regions))
	}
	buf := make([]byte, res.Regions[0].Len)
	res.Regions[0].File.ReadAt(buf, res.Regions[0].Pos)
	h, size, err := checkBatch(buf)
	if err != nil || size != len(buf) || h.BaseOffset != 4 {
		t.Fatalf("first batch %+v size %d/%d err %v", h, size, len(buf), err)
	}
	res.Release()
	// Reads span segments up to max bytes.
	if err := l.Read(0, 1<<20, &res); err != nil {
		t.Fatal(err)
	}
	if res.Bytes != l.Size() {
		t.Fatalf("read %d of %d bytes", res.Bytes, l.Size())
	}
	res.Release()
	if err := l.Read(l.HighWatermark(), 100, &res); err != nil || len(res.Regions) != 0 {
		t.Fatalf("read at hw: %v %d", err, len(res.Regions))
	}
	if err := l.Read(l.HighWatermark()+1, 100, &res); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past hw: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	l, _ := s.Open("t-0", Config{SegmentBytes: 8192})
	l2, _ := s.Open("u-3", Config{})
	var last Ticket
	for i := 0; i < 100; i++ {
		r, err := l.Append(makeBatch(3, 200, int64(i), byte(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := l2.Append(makeBatch(1, 50, int64(i), byte(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		last = max(r.Ticket, r2.Ticket)
	}
	waitDurable(t, s, last)
	want := readAll(t, l, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs, StoreOptions{})
	defer s.Close()
	if got := s.Names(); len(got) != 2 {
		t.Fatalf("names %v", got)
	}
	l, _ = s.Open("t-0", Config{SegmentBytes: 8192})
	if l.NextOffset() != 300 || l.HighWatermark() != 300 {
		t.Fatalf("next %d hw %d", l.NextOffset(), l.HighWatermark())
	}
	got := readAll(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("%d batches after reopen, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs after reopen", i)
		}
	}
	if st := s.Stats(); st.RecoveryTruncatedBytes != 0 || st.JournalTornBytes != 0 {
		t.Fatalf("clean reopen cut bytes: %+v", st)
	}
	// Appends continue after the recovered tail.
	r, err := l.Append(makeBatch(1, 10, 1, 0), 1)
	if err != nil || r.BaseOffset != 300 {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
}

func TestRetentionAndDeleteRecords(t *testing.T) {
	clk := newFakeClock(time.UnixMilli(1_000_000_000))
	s := openMem(t, vfs.NewMem(), StoreOptions{Clock: clk.now})
	defer s.Close()
	l, _ := s.Open("t-0", Config{SegmentBytes: 2048, RetentionBytes: 6000, Durability: Durability{Kind: DurabilityNone}})
	for i := 0; i < 30; i++ {
		if _, err := l.Append(makeBatch(1, 400, clk.now().UnixMilli(), byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Size()
	if err := s.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.Size() >= before || l.Size() < 6000-2048 {
		t.Fatalf("size %d -> %d with retention.bytes 6000", before, l.Size())
	}
	start := l.LogStartOffset()
	if start == 0 || start != l.segments()[0].base {
		t.Fatalf("log start %d, first segment %d", start, l.segments()[0].base)
	}
	var res ReadResult
	if err := l.Read(0, 100, &res); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// DeleteRecords moves the start inside a segment.
	newStart, err := l.DeleteRecords(start + 3)
	if err != nil || newStart != start+3 || l.LogStartOffset() != start+3 {
		t.Fatalf("delete records: %d %v", newStart, err)
	}
	if _, err := l.DeleteRecords(l.HighWatermark() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past hw: %v", err)
	}
	// Time retention: everything is older than 7 days after the clock moves.
	clk.advance(8 * 24 * time.Hour)
	if err := s.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != l.HighWatermark() {
		t.Fatalf("after time retention start %d hw %d", l.LogStartOffset(), l.HighWatermark())
	}
}

func TestChangedWakesReaders(t *testing.T) {
	s := openMem(t, vfs.NewMem(), StoreOptions{})
	defer s.Close()
	l, _ := s.Open("t-0", Config{})
	ch := l.Changed()
	hw := l.HighWatermark()
	if _, err := l.Append(makeBatch(1, 1, 1, 0), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken")
	}
	if l.HighWatermark() <= hw {
		t.Fatal("hw did not move")
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	s := openMem(t, vfs.NewMem(), StoreOptions{})
	defer s.Close()
	l, _ := s.Open("t-0", Config{SegmentBytes: 1500, IndexIntervalBytes: 200, Durability: Durability{Kind: DurabilityNone}})
	for i := 0; i < 20; i++ {
		if _, err := l.Append(makeBatch(2, 100, int64(100*i), byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ ts, off, got int64 }{
		{0, 0, 0}, {50, 2, 100}, {100, 2, 100}, {1850, 38, 1900}, {1900, 38, 1900}, {1901, -1, -1},
	} {
		off, ts, err := l.OffsetForTimestamp(tc.ts)
		if err != nil || off != tc.off || ts != tc.got {
			t.Errorf("ts %d: offset %d ts %d err %v, want %d %d", tc.ts, off, ts, err, tc.off, tc.got)
		}
	}
	if ts, off := l.MaxTimestamp(); ts != 1900 || off != 39 {
		t.Fatalf("max timestamp %d at %d", ts, off)
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	l, _ := s.Open("t-0", Config{})
	r, _ := l.Append(makeBatch(1, 10, 1, 1), 0)
	waitDurable(t, s, r.Ticket)
	if err := s.Delete("t-0"); err != nil {
		t.Fatal(err)
	}
	l, _ = s.Open("t-0", Config{})
	if l.NextOffset() != 0 {
		t.Fatalf("recreated log starts at %d", l.NextOffset())
	}
	r, _ = l.Append(makeBatch(2, 10, 1, 2), 0)
	waitDurable(t, s, r.Ticket)
	// Crash without a checkpoint: the journal holds entries of both
	// incarnations; only the new one's may be replayed.
	fs.CrashDropUnsynced()
	s.Abandon()
	fs = fs.Restart()
	s2 := openMem(t, fs, StoreOptions{})
	defer s2.Close()
	l, _ = s2.Open("t-0", Config{})
	if l.NextOffset() != 2 {
		t.Fatalf("after crash next %d, want 2", l.NextOffset())
	}
}

// TestDeleteLongName: a log whose name is as long as a directory name may
// be (a 249-character topic plus "-N") can be deleted and recreated on the
// real file system.
func TestDeleteLongName(t *testing.T) {
	dir := tempDir(t)
	s, err := OpenStore(vfs.OS{}, dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := strings.Repeat("x", 249) + "-12"
	for i := 0; i < 2; i++ {
		l, err := s.Open(name, Config{Durability: Durability{Kind: DurabilityNone}})
		if err != nil {
			t.Fatal(err)
		}
		if l.NextOffset() != 0 {
			t.Fatalf("recreated log starts at %d", l.NextOffset())
		}
		if _, err := l.Append(makeBatch(1, 10, 1, 1), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(name); err != nil {
			t.Fatalf("delete %d-byte name: %v", len(name), err)
		}
	}
}
