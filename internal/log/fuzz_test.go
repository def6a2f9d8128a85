package log

import (
	"bytes"
	"path"
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// FuzzValidateRecordSet: validation never panics, and a record set it
// accepts stays valid after offsets and the leader epoch are stamped (both
// sit outside the CRC) and after LogAppendTime stamping (which recomputes it).
func FuzzValidateRecordSet(f *testing.F) {
	f.Add(makeBatch(1, 10, 1, 0))
	f.Add(appendBatch(makeBatch(3, 5, 2, 1), 2, 0, 3, 2))
	f.Add(makeBatch(1, 10, 1, 0)[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, offsets, err := ValidateRecordSet(data, 1<<20)
		if err != nil {
			return
		}
		b := append([]byte(nil), data...)
		next, _, _ := stampRecordSet(b, 1000, 3, -1)
		if next != 1000+offsets {
			t.Fatalf("stamped %d offsets, validated %d", next-1000, offsets)
		}
		if _, _, err := ValidateRecordSet(b, 1<<20); err != nil {
			t.Fatalf("stamped set invalid: %v", err)
		}
		stampRecordSet(b, 5, 1, 12345)
		if _, _, err := ValidateRecordSet(b, 1<<20); err != nil {
			t.Fatalf("log-append-time set invalid: %v", err)
		}
	})
}

// FuzzRecovery: whatever bytes the active segment holds after a crash,
// opening the store succeeds, never panics, serves only valid batches with
// contiguous offsets, keeps every valid batch before the first damage, and
// accepts appends afterwards.
func FuzzRecovery(f *testing.F) {
	good := appendBatch(makeBatch(2, 20, 1, 0), 3, 10, 2, 1)
	stampRecordSet(good, 0, 0, -1)
	f.Add(good)
	f.Add(good[:len(good)-7])
	torn := append([]byte(nil), good...)
	torn[70] ^= 0x40
	f.Add(torn)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		s, err := OpenStore(fs, "/d", StoreOptions{RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open("f-0", Config{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Replace the segment and drop the checkpoint so recovery must scan.
		seg, err := fs.Create(path.Join("/d", "f-0", segmentName(0, segmentSuffix)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seg.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		seg.Sync()
		seg.Close()
		fs.Remove(path.Join("/d", checkpointFile))

		// The valid prefix: batches chained from offset 0.
		var prefix []byte
		next := int64(0)
		for rest := data; len(rest) > 0; {
			h, size, err := checkBatch(rest)
			if err != nil || h.BaseOffset != next {
				break
			}
			prefix = append(prefix, rest[:size]...)
			next = h.LastOffset() + 1
			rest = rest[size:]
		}

		s, err = OpenStore(fs, "/d", StoreOptions{RetentionCheckInterval: -1})
		if err != nil {
			t.Fatalf("recovery failed: %v", err)
		}
		defer s.Close()
		l, _ := s.Lookup("f-0")
		if l.NextOffset() != next {
			t.Fatalf("recovered next offset %d, valid prefix ends at %d", l.NextOffset(), next)
		}
		var got []byte
		for _, b := range readAll(t, l, 0) {
			got = append(got, b...)
		}
		if !bytes.Equal(got, prefix) {
			t.Fatalf("served %d bytes, valid prefix is %d", len(got), len(prefix))
		}
		r, err := l.Append(makeBatch(1, 1, 1, 1), 0)
		if err != nil || r.BaseOffset != next {
			t.Fatalf("append after recovery: %+v %v", r, err)
		}
	})
}
