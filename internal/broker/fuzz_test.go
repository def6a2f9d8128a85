package broker

import (
	"testing"
)

// FuzzDecodeMetadata feeds arbitrary bytes to the decoders of the metadata
// log, the metadata snapshot and the producer snapshot: they must return an
// error or a value that re-encodes to the same bytes, never panic.
func FuzzDecodeMetadata(f *testing.F) {
	f.Add(encodeBatch(sampleChanges(), 1))
	f.Add(encodeMetaSnapshot(3, encodeBatch(sampleChanges()[:2], 1)))
	table := newProducerTable()
	table.update(ptr(hdr(7, 2, 0, 5, 100)), 0)
	f.Add(table.encode(105))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if base, changes, err := decodeBatch(b); err == nil && len(changes) > 0 {
			again := encodeBatch(changes, 0)
			if _, back, err := decodeBatch(again); err != nil || len(back) != len(changes) {
				t.Fatalf("re-encoded batch (base %d) does not decode: %v", base, err)
			}
		}
		_, _, _ = decodeMetaSnapshot(b)
		if tbl, covered, err := decodeProducerSnapshot(b); err == nil {
			if string(tbl.encode(covered)) != string(b) {
				t.Fatal("producer snapshot does not re-encode to the same bytes")
			}
		}
		if len(b) >= 2 {
			_, _ = decodeChange(b[:2], b[2:])
		}
	})
}
