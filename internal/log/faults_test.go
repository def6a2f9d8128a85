package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestDiskFull: ENOSPC on append (segment or journal) is returned, leaves the
// log consistent, and appends succeed again once space returns. Under fsync
// small appends are held in memory until a chunk gathers (tailFile), so the
// appends here are large enough to fill one.
func TestDiskFull(t *testing.T) {
	for _, policy := range []DurabilityKind{DurabilityFsync, DurabilityNone} {
		t.Run(fmt.Sprint("policy=", policy), func(t *testing.T) {
			fs := vfs.NewMem()
			s := openMem(t, fs, StoreOptions{})
			l, _ := s.Open("t-0", Config{Durability: Durability{Kind: policy}})
			var last Ticket
			for i := 0; i < 5; i++ {
				r, err := l.Append(makeBatch(2, 100, 1, byte(i)), 0)
				if err != nil {
					t.Fatal(err)
				}
				last = r.Ticket
			}
			waitDurable(t, s, last)
			before := readAll(t, l, 0)
			fs.SetCapacity(fs.Used() + 300)
			failures := 0
			for i := 0; i < 10; i++ {
				if _, err := l.Append(makeBatch(8, 1200, 1, 9), 0); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("append on a full disk: %v, want ENOSPC", err)
					}
					failures++
				}
			}
			if failures == 0 {
				t.Fatal("no append failed on a full disk")
			}
			if l.Err() != nil {
				t.Fatalf("log offline after ENOSPC: %v", l.Err())
			}
			fs.SetCapacity(0)
			r, err := l.Append(makeBatch(1, 10, 1, 1), 0)
			if err != nil {
				t.Fatalf("append after space returned: %v", err)
			}
			waitDurable(t, s, r.Ticket)
			after := readAll(t, l, 0)
			if len(after) != len(before)+10-failures+1 {
				t.Fatalf("%d batches, want %d", len(after), len(before)+10-failures+1)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openMem(t, fs, StoreOptions{})
			defer s.Close()
			l, _ = s.Lookup("t-0")
			if got := readAll(t, l, 0); len(got) != len(after) {
				t.Fatalf("after reopen %d batches, want %d", len(got), len(after))
			}
		})
	}
}

// TestFsyncFailureIsFatal: a failed journal fsync fails every waiting
// append and every later one; nothing pretends to be durable.
func TestFsyncFailureIsFatal(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, _ := s.Open("t-0", Config{})
	fs.SetSyncFault(func(name string) error {
		if strings.Contains(name, journalDir) {
			return fmt.Errorf("%w: EIO", vfs.ErrInjected)
		}
		return nil
	})
	r, err := l.Append(makeBatch(1, 10, 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chanNotifier, 1)
	s.WhenDurable(r.Ticket, ch)
	if err := <-ch; !errors.Is(err, ErrStorage) {
		t.Fatalf("waiter got %v, want ErrStorage", err)
	}
	fs.SetSyncFault(nil)
	if _, err := l.Append(makeBatch(1, 10, 1, 1), 0); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after failed fsync: %v, want ErrStorage", err)
	}
	if l.HighWatermark() != 0 {
		t.Fatalf("high watermark %d moved past a failed fsync", l.HighWatermark())
	}
}

// TestSealedSegmentCorruption: damage inside a sealed segment takes the
// partition offline with a CorruptionError and cuts nothing.
func TestSealedSegmentCorruption(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	l, _ := s.Open("t-0", Config{SegmentBytes: 2000})
	var last Ticket
	for i := 0; i < 20; i++ {
		r, _ := l.Append(makeBatch(1, 500, 1, byte(i)), 0)
		last = r.Ticket
	}
	waitDurable(t, s, last)
	first := l.segments()[0]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	size, _, _ := fs.Stat(first.path(segmentSuffix))
	f, _ := fs.OpenRW(first.path(segmentSuffix))
	// Break the last batch's length field in the first (sealed) segment.
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], 1<<30)
	var pos int64
	var hr headerReader
	for {
		h, err := hr.at(f, pos, size)
		if err != nil {
			t.Fatal(err)
		}
		if pos+h.TotalSize() == size {
			break
		}
		pos += h.TotalSize()
	}
	f.WriteAt(hdr[:4], pos+batchLengthOffset)
	f.Sync()
	f.Close()

	s = openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, _ = s.Lookup("t-0")
	var ce *CorruptionError
	if err := l.Err(); !errors.As(err, &ce) || !errors.Is(err, ErrOffline) {
		t.Fatalf("log error %v, want an offline CorruptionError", err)
	}
	if !strings.Contains(ce.Error(), "00000000000000000000.log") {
		t.Fatalf("error does not name the segment: %v", ce)
	}
	var res ReadResult
	if err := l.Read(0, 100, &res); !errors.Is(err, ErrOffline) {
		t.Fatalf("read from an offline log: %v", err)
	}
	if _, err := l.Append(makeBatch(1, 1, 1, 1), 0); !errors.Is(err, ErrOffline) {
		t.Fatalf("append to an offline log: %v", err)
	}
	if got, _, _ := fs.Stat(first.path(segmentSuffix)); got != size {
		t.Fatalf("corrupt sealed segment was cut from %d to %d bytes", size, got)
	}
}

// TestOpenManyPartitionsReadsLittle: after a clean close, opening 1,000
// partitions reads index files and headers, not segments.
func TestOpenManyPartitionsReadsLittle(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	var total int64
	var last Ticket
	for i := 0; i < n; i++ {
		l, err := s.Open(fmt.Sprintf("p-%d", i), Config{SegmentBytes: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			r, err := l.Append(makeBatch(4, 500, 1, byte(j)), 0)
			if err != nil {
				t.Fatal(err)
			}
			last = r.Ticket
		}
		total += l.Size()
	}
	waitDurable(t, s, last)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fs.BytesRead()
	s = openMem(t, fs, StoreOptions{})
	defer s.Close()
	read := fs.BytesRead() - before
	if len(s.Names()) != n {
		t.Fatalf("%d logs reopened, want %d", len(s.Names()), n)
	}
	if read*20 > total {
		t.Fatalf("opening %d partitions read %d of %d segment bytes (want < 5%%)", n, read, total)
	}
	t.Logf("opened %d partitions (%d MiB of segments) reading %d KiB", n, total>>20, read>>10)
	l, _ := s.Lookup(fmt.Sprintf("p-%d", n-1))
	if l.NextOffset() != 40 || len(readAll(t, l, 0)) != 10 {
		t.Fatalf("reopened log next %d", l.NextOffset())
	}
	_ = path.Join
}

// TestJournalEntryDamageEndsReplay: a journal record entry is covered by its
// own crc (header and each batch's first 21 bytes) and by its batches' CRCs
// (the rest). Damage to any of those parts of the newest entry must end the
// journal before it, as a torn write does: recovery keeps exactly the
// entries before it and never serves the damaged batch.
func TestJournalEntryDamageEndsReplay(t *testing.T) {
	cases := []struct {
		name string
		at   func(entry, nameLen int) int // byte to damage, from the entry's start
	}{
		{"entry crc", func(e, _ int) int { return e + 5 }},
		{"partition name", func(e, _ int) int { return e + journalEntryHeader }},
		{"batch base offset", func(e, n int) int { return e + journalEntryHeader + n + 7 }},
		{"batch length", func(e, n int) int { return e + journalEntryHeader + n + 11 }},
		{"batch crc", func(e, n int) int { return e + journalEntryHeader + n + 18 }},
		{"batch attributes", func(e, n int) int { return e + journalEntryHeader + n + batchPrefix }},
		{"record value", func(e, n int) int { return e + journalEntryHeader + n + batchHeaderSize + 20 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := openMem(t, fs, StoreOptions{})
			l, err := s.Open("t-0", Config{})
			if err != nil {
				t.Fatal(err)
			}
			var batches [][]byte
			for i := range 3 {
				b := makeBatch(2, 100, int64(i), byte(i+1))
				r, err := l.Append(b, 0)
				if err != nil {
					t.Fatal(err)
				}
				waitDurable(t, s, r.Ticket)
				batches = append(batches, b)
			}
			// Crash before any checkpoint: the segments lose everything, so
			// the journal alone brings the batches back.
			fs.CrashDropUnsynced()
			s.Abandon()
			fs = fs.Restart()

			// Find the newest record entry and damage one byte of it.
			dir := "/data/" + journalDir
			names, err := fs.ReadDir(dir)
			if err != nil || len(names) == 0 {
				t.Fatalf("journal files %v: %v", names, err)
			}
			f, err := fs.OpenRW(dir + "/" + names[len(names)-1])
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			n, _ := f.ReadAt(buf, 0)
			buf = buf[:n]
			last, lastName := -1, 0
			for pos := 0; pos+journalEntryHeader <= len(buf); {
				length := int(binary.BigEndian.Uint32(buf[pos:]))
				if length == 0 {
					break
				}
				if nl := int(binary.BigEndian.Uint16(buf[pos+jeNameLen:])); nl > 0 {
					last, lastName = pos, nl
				}
				pos += 4 + length
			}
			if last < 0 {
				t.Fatal("no record entry in the journal")
			}
			at := c.at(last, lastName)
			if _, err := f.WriteAt([]byte{buf[at] ^ 0x40}, int64(at)); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			f.Close()

			s2 := openMem(t, fs, StoreOptions{})
			defer s2.Close()
			l2, err := s2.Open("t-0", Config{})
			if err != nil {
				t.Fatal(err)
			}
			if l2.Err() != nil {
				t.Fatalf("log offline: %v", l2.Err())
			}
			if l2.NextOffset() != 4 {
				t.Fatalf("next offset %d after damaging the third entry, want 4", l2.NextOffset())
			}
			got := readAll(t, l2, 0)
			if len(got) != 2 || !bytes.Equal(got[0], batches[0]) || !bytes.Equal(got[1], batches[1]) {
				t.Fatalf("recovered %d batches, want the first two intact", len(got))
			}
			if s2.Stats().JournalTornBytes == 0 {
				t.Fatal("the damaged entry was not counted as a torn tail")
			}
		})
	}
}

// TestNearlyFullDisk: with less free space than one journal reservation
// step, fsync-policy appends still succeed while each fits (the journal
// reserves just what an entry needs), and fail with ENOSPC only when the
// disk is really full.
func TestNearlyFullDisk(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, StoreOptions{})
	defer s.Close()
	l, _ := s.Open("t-0", Config{})
	r, err := l.Append(makeBatch(2, 100, 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	waitDurable(t, s, r.Ticket)
	// Use up what the first reservation step left, so the next append
	// needs a new reservation, then leave 1 MiB: far less than a step.
	capacity := fs.Used() + journalReserveStep + 1<<20
	fs.SetCapacity(capacity)
	batch := makeBatch(16, 1000, 1, 2)
	ok := 0
	for i := 0; i < 2000; i++ {
		r, err := l.Append(batch, 0)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: %v, want ENOSPC", i, err)
			}
			break
		}
		waitDurable(t, s, r.Ticket)
		ok++
	}
	// ENOSPC must mean the disk is really full: less left than one more
	// append needs (its bytes in the segment and the journal, with a
	// journal block of padding and a seal), not a reservation step's worth.
	left := capacity - fs.Used()
	t.Logf("%d appends before ENOSPC; %d bytes left", ok, left)
	if left >= int64(2*len(batch)+3*4096) {
		t.Fatalf("ENOSPC with %d bytes free; an append needs about %d", left, 2*len(batch)+3*4096)
	}
	if l.Err() != nil {
		t.Fatalf("log offline: %v", l.Err())
	}
}
