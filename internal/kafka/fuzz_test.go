package kafka

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRequestDecode feeds a byte stream through the connection's decoding
// path: size prefixes checked against the limit, request headers v0–v2,
// the served key/version check and kmsg's body decoders. Nothing may panic,
// and a request that decodes must survive a kmsg encode/decode round trip.
// Seeds: testdata/fuzz/FuzzRequestDecode and one well-formed request per
// served key and version (requestSeeds; TestFuzzSeedsCoverServedAPIs
// checks that they cover everything the server advertises).
func FuzzRequestDecode(f *testing.F) {
	vt := servedAPIs()
	for _, frame := range requestSeeds() {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		const max = 1 << 20
		for len(stream) >= 4 {
			size := int32(binary.BigEndian.Uint32(stream))
			if !frameSizeOK(size, max) {
				return // the connection would be closed
			}
			stream = stream[4:]
			if int(size) > len(stream) {
				return // a truncated frame: the read would time out
			}
			frame := stream[:size]
			stream = stream[size:]
			d, err := vt.decode(frame)
			if err != nil || d.req == nil {
				continue
			}
			again := kmsg.RequestForKey(d.h.key)
			again.SetVersion(d.h.version)
			if err := again.ReadFrom(d.req.AppendTo(nil)); err != nil {
				t.Fatalf("%s v%d: re-encoded request does not decode: %v", kmsg.NameForKey(d.h.key), d.h.version, err)
			}
		}
	})
}

// FuzzConvertLegacy: legacy message sets (Produce v0–v2) from the wire,
// compressed ones included, convert without panicking, within the size
// bound, into a record batch whose CRC-32C and record count check out.
func FuzzConvertLegacy(f *testing.F) {
	f.Add(legacySet(0, 3, "a", 0))
	f.Add(legacySet(1, 3, "b", 1000))
	f.Add(legacyMessage(2, 1, 1, 5, nil, compress(f, 1, legacySet(1, 3, "g", 5))))
	f.Add(legacyMessage(2, 1, 2, 5, nil, compress(f, 2, legacySet(1, 3, "s", 5))))
	f.Add(legacyMessage(2, 1, 3, 5, nil, compress(f, 3, legacySet(1, 3, "l", 5))))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, set []byte) {
		b, err := convertLegacy(set, limit, 1)
		if err != nil {
			return
		}
		if len(b) > limit {
			t.Fatalf("%d bytes out, limit %d", len(b), limit)
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			t.Fatalf("converted batch does not decode: %v", err)
		}
		if int(batch.Length) != len(b)-12 || batch.CRC != int32(crc32.Checksum(b[21:], castagnoli)) {
			t.Fatal("bad length or CRC")
		}
		if batch.NumRecords < 1 || batch.LastOffsetDelta != batch.NumRecords-1 {
			t.Fatalf("%d records, last delta %d", batch.NumRecords, batch.LastOffsetDelta)
		}
	})
}

// FuzzDownConvert: whatever bytes sit where record batches should be,
// down-conversion for Fetch v0–v3 neither panics nor exceeds its bounds,
// and what it returns is a well-formed legacy message set.
func FuzzDownConvert(f *testing.F) {
	f.Add(makeBatch(3, []byte("abc")), int64(0), true)
	f.Add(append(makeBatch(2, []byte("x")), makeBatch(5, []byte("yz"))...), int64(1), false)
	f.Fuzz(func(t *testing.T, batches []byte, offset int64, magic1 bool) {
		magic := byte(0)
		if magic1 {
			magic = 1
		}
		out, err := downConvert(batches, offset, magic, 1<<20)
		if err != nil {
			return
		}
		var recs []legacyRecord
		budget := 1 << 20
		if len(out) > 0 {
			if err := parseLegacy(out, 0, &recs, new([]*[]byte), &budget, false); err != nil {
				t.Fatalf("down-converted set does not parse: %v", err)
			}
		}
	})
}

// FuzzValidateCompressed: the produce path's validation of compressed
// batches (validate.go) never panics on any record set, and a set it
// accepts has records that Fetch down-conversion can read, each of its
// compressed batches within the inflation limit.
func FuzzValidateCompressed(f *testing.F) {
	for codec := 1; codec <= 5; codec++ {
		cd, payload := compressWith(f, codec, records(3, []byte("fuzz")))
		f.Add(compressedBatch(cd, 3, payload))
	}
	f.Add(append(makeBatch(2, []byte("plain")), compressedBatch(1, 1, gzipBytes(record(0, nil, make([]byte, 5000))))...))
	const limit = 4096
	f.Fuzz(func(t *testing.T, set []byte) {
		// Give every batch a valid CRC, or the fuzzer would rarely get
		// past it to the decompressors.
		for rest := set; len(rest) >= 61; {
			length := int(int32(binary.BigEndian.Uint32(rest[8:])))
			if length < 49 || length > len(rest)-12 {
				break
			}
			binary.BigEndian.PutUint32(rest[17:], crc32.Checksum(rest[21:12+length], castagnoli))
			rest = rest[12+length:]
		}
		if err := validateCompressed(set, limit); err != nil {
			return
		}
		// Uncompressed batches are the log's to check: down-convert only
		// the compressed ones.
		for len(set) >= 61 {
			length := int(int32(binary.BigEndian.Uint32(set[8:])))
			if length < 49 || length > len(set)-12 || set[16] != 2 {
				return
			}
			b := set[:12+length]
			set = set[12+length:]
			if b[22]&7 == 0 {
				continue
			}
			if _, err := downConvert(b, 0, 1, 1<<30); err != nil {
				t.Fatalf("validated batch does not down-convert: %v", err)
			}
		}
	})
}
