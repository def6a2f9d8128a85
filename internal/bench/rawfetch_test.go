package bench

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch is a record batch v2 of n records at base, CRC set.
func testBatch(base int64, n int) []byte {
	b := kmsg.RecordBatch{FirstOffset: base, Magic: 2, LastOffsetDelta: int32(n - 1), NumRecords: int32(n),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: make([]byte, 10*n)}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func TestWalkBatches(t *testing.T) {
	a, b := testBatch(0, 3), testBatch(3, 5)
	all := append(append([]byte{}, a...), b...)
	n, next, used, err := walkBatches(all, 0)
	if err != nil || n != 8 || next != 8 || used != len(all) {
		t.Fatalf("two batches: records %d next %d used %d err %v", n, next, used, err)
	}
	// A response cut inside the second batch: only the first counts.
	n, next, used, err = walkBatches(all[:len(a)+20], 0)
	if err != nil || n != 3 || next != 3 || used != len(a) {
		t.Fatalf("partial batch: records %d next %d used %d err %v", n, next, used, err)
	}
	// A flipped bit in the records fails the CRC.
	bad := append([]byte{}, all...)
	bad[len(a)+70] ^= 1
	if _, _, _, err := walkBatches(bad, 0); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Fatalf("damaged batch: err %v, want a CRC mismatch", err)
	}
	// A batch already read (before the fetch offset) is not counted again.
	n, next, _, err = walkBatches(all, 3)
	if err != nil || n != 5 || next != 8 {
		t.Fatalf("from offset 3: records %d next %d err %v", n, next, err)
	}
}
