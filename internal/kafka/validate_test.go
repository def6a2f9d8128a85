package kafka

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// record encodes one record v2 (length prefix included).
func record(offsetDelta int64, key, value []byte, headers ...[2][]byte) []byte {
	var r []byte
	r = append(r, 0)                        // attributes
	r = binary.AppendVarint(r, offsetDelta) // timestamp delta
	r = binary.AppendVarint(r, offsetDelta)
	r = appendVarBytes(r, key)
	r = appendVarBytes(r, value)
	r = binary.AppendVarint(r, int64(len(headers)))
	for _, h := range headers {
		r = appendVarBytes(r, h[0])
		r = appendVarBytes(r, h[1])
	}
	return append(binary.AppendVarint(nil, int64(len(r))), r...)
}

// records encodes n records with offset deltas 0..n-1.
func records(n int, value []byte) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		out = append(out, record(int64(i), []byte("k"), value, [2][]byte{[]byte("h"), []byte("v")})...)
	}
	return out
}

// framed encodes a record from fields, each written as a varint except the
// attributes (the first), with its length prefix. Byte values ('a') are
// written as varints too, which is fine for the malformed records built
// with it: only lengths matter.
func framed(fields ...int64) []byte {
	body := []byte{byte(fields[0])}
	for _, f := range fields[1:] {
		body = binary.AppendVarint(body, f)
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// codecName names the codecs of compressedBatch; codec 5 is raw snappy
// (codec 2 without the xerial framing).
var codecName = map[int]string{1: "gzip", 2: "snappy-xerial", 3: "lz4", 4: "zstd", 5: "snappy-raw"}

// compressedBatch wraps already compressed records in a batch v2 header
// claiming count records, with a valid CRC.
func compressedBatch(codec uint16, count int, payload []byte) []byte {
	b := makeBatch(1, nil)[:61]
	binary.BigEndian.PutUint16(b[21:], codec)
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// compressWith compresses recs with one of codecName's codecs and returns
// the batch codec to set.
func compressWith(t testing.TB, codec int, recs []byte) (uint16, []byte) {
	switch codec {
	case 1:
		return 1, gzipBytes(recs)
	case 2, 3:
		return uint16(codec), compress(t, byte(codec), recs)
	case 4:
		return 4, zstdBytes(recs)
	case 5:
		return 2, snappy.Encode(nil, recs)
	}
	t.Fatalf("codec %d", codec)
	return 0, nil
}

func TestValidateCompressedAcceptsGoodBatches(t *testing.T) {
	for codec := 1; codec <= 5; codec++ {
		for _, n := range []int{1, 7, 500} {
			c, payload := compressWith(t, codec, records(n, bytes.Repeat([]byte("v"), 300)))
			set := compressedBatch(c, n, payload)
			// Two batches in one set, and an uncompressed one between.
			set = append(append(set, makeBatch(2, []byte("plain"))...), set...)
			if err := validateCompressed(set, 1<<20); err != nil {
				t.Fatalf("%s, %d records: %v", codecName[codec], n, err)
			}
		}
	}
	// Null key and value, a header with a null value, no headers at all.
	recs := append(record(0, nil, nil, [2][]byte{[]byte("h"), nil}), record(1, nil, []byte("x"))...)
	if err := validateCompressed(compressedBatch(1, 2, gzipBytes(recs)), 1<<20); err != nil {
		t.Fatal(err)
	}
	// Exactly at the limit passes, one byte below it fails.
	recs = records(3, []byte("abc"))
	if err := validateCompressed(compressedBatch(1, 3, gzipBytes(recs)), len(recs)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if err := validateCompressed(compressedBatch(1, 3, gzipBytes(recs)), len(recs)-1); err != errInflateTooBig {
		t.Fatalf("one byte over the limit: %v, want errInflateTooBig", err)
	}
}

func TestValidateCompressedRejectsMalformed(t *testing.T) {
	good := records(3, []byte("value"))
	rec := func(i int64) []byte { return record(i, nil, []byte("value")) }
	// A record whose length says one byte more than its fields, then the
	// next record's first byte is read as its last.
	long := rec(0)
	long[0] += 2 // zig-zag: +1
	short := rec(0)
	short[0] -= 2
	cases := []struct {
		name  string
		count int
		recs  []byte
		want  error
	}{
		{"fewer records than counted", 4, good, errInvalidInner},
		{"more records than counted", 2, good, errInvalidInner},
		{"offset deltas not 0..n-1", 3, append(append(rec(0), rec(2)...), rec(1)...), errInvalidInner},
		{"offset deltas from 1", 2, append(rec(1), rec(2)...), errInvalidInner},
		{"length past the fields", 2, append(long, rec(1)...), errInvalidInner},
		{"length short of the fields", 2, append(short, rec(1)...), errInvalidInner},
		{"negative record length", 1, binary.AppendVarint(nil, -5), errInvalidInner},
		{"value past the record", 1, framed(0, 0, 0, -1, 20, 'a', 'b'), errInvalidInner},
		{"negative header count", 1, framed(0, 0, 0, -1, 1, 'a', -1), errInvalidInner},
		{"null header key", 1, framed(0, 0, 0, -1, 1, 'a', 1, -1, -1), errInvalidInner},
		{"header count past the record", 1, framed(0, 0, 0, -1, 1, 'a', 5), errInvalidInner},
		{"truncated varint", 1, []byte{0x80}, errInvalidInner},
		{"empty", 1, nil, errInvalidInner},
		{"record declaring more than the limit", 1, binary.AppendVarint(nil, 2<<20), errInflateTooBig},
	}
	for _, tc := range cases {
		for codec := 1; codec <= 5; codec++ {
			c, payload := compressWith(t, codec, tc.recs)
			err := validateCompressed(compressedBatch(c, tc.count, payload), 1<<20)
			if err != tc.want {
				t.Errorf("%s, %s: %v, want %v", tc.name, codecName[codec], err, tc.want)
			}
		}
	}
	// Damaged compressed data (with a valid batch CRC), unknown codecs, a
	// bad CRC, record counts the header gets wrong.
	gz := gzipBytes(good)
	gz[len(gz)-6] ^= 0xff // the gzip trailer's CRC-32
	other := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"gzip checksum", compressedBatch(1, 3, gz), errInflateCorrupt},
		{"not gzip", compressedBatch(1, 3, good), errInflateCorrupt},
		{"not zstd", compressedBatch(4, 3, good), errInflateCorrupt},
		{"not lz4", compressedBatch(3, 3, good), errInflateCorrupt},
		{"not snappy", compressedBatch(2, 3, []byte{5, 0xff, 0xff, 0xff}), errInflateCorrupt},
		{"codec 5", compressedBatch(5, 3, gzipBytes(good)), errInflateCodec},
		{"codec 7", compressedBatch(7, 3, gzipBytes(good)), errInflateCodec},
		{"zero records", compressedBatch(1, 0, gzipBytes(nil)), errInvalidInner},
	}
	badCRC := compressedBatch(1, 3, gzipBytes(good))
	badCRC[len(badCRC)-1] ^= 1
	other = append(other, struct {
		name  string
		batch []byte
		want  error
	}{"crc", badCRC, errCRC})
	for _, tc := range other {
		if err := validateCompressed(tc.batch, 1<<20); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// bombRecord is one record whose value is mib MiB of zeros, compressed
// with codec, with valid record framing throughout.
func bombRecord(t testing.TB, codec int, mib int) []byte {
	value := make([]byte, mib<<20)
	_, payload := compressWith(t, codec, record(0, nil, value))
	return payload
}

// TestValidateCompressedBomb: a batch whose one record declares a value of
// hundreds of MiB is refused before anything is inflated past its length
// varint; one made of many small records is refused at the limit. Either
// costs a bounded, small allocation.
func TestValidateCompressedBomb(t *testing.T) {
	// 256 MiB of zeros: one gzip member holding the record's head, then
	// 1 MiB members of zeros, then the (empty) header count.
	const size = 256 << 20
	body := binary.AppendVarint([]byte{0, 0, 0}, -1) // attributes, deltas, null key
	body = binary.AppendVarint(body, size)
	head := binary.AppendVarint(nil, int64(len(body)+size+1))
	head = append(head, body...)
	payload := append(gzipBytes(head), gzipZeros(t, 256)...)
	payload = append(payload, gzipBytes([]byte{0})...)
	bombs := map[string][]byte{"gzip 256 MiB": compressedBatch(1, 1, payload)}
	for codec := 2; codec <= 5; codec++ {
		c, p := compressWith(t, codec, record(0, nil, make([]byte, 4<<20)))
		bombs[codecName[codec]+" 4 MiB"] = compressedBatch(c, 1, p)
	}
	// Many small records: refused once their total passes the limit.
	var many []byte
	for i := 0; i < 40_000; i++ {
		many = append(many, record(int64(i), nil, make([]byte, 100))...)
	}
	bombs["gzip 40000 records"] = compressedBatch(1, 40_000, gzipBytes(many))
	for name, bomb := range bombs {
		validateCompressed(bomb, 1<<20) // warm the pools
		var err error
		// The least of three runs: a GC between the warm-up and the
		// measured run empties sync.Pools, and the decoder state they
		// held is allocated again once (seen once for zstd: 4.6 MB).
		n := ^uint64(0)
		for range 3 {
			n = min(n, allocated(func() { err = validateCompressed(bomb, 1<<20) }))
		}
		t.Logf("%s (%d bytes): %v, %d bytes allocated", name, len(bomb), err, n)
		if err != errInflateTooBig {
			t.Errorf("%s: %v, want errInflateTooBig", name, err)
		}
		// lz4 frames of 4 MiB blocks need two block buffers of 4 MiB
		// (pooled by the lz4 package, so allocated again after a GC
		// empties the pool); the other decoders' state is ours, kept.
		limit := uint64(1 << 20)
		if strings.HasPrefix(name, "lz4") {
			limit = 9 << 20
		}
		if !raceEnabled && n > limit {
			t.Errorf("%s: %d bytes allocated", name, n)
		}
	}
}

// TestProduceCompressedValidation: over the wire, a compressed bomb gets
// MESSAGE_TOO_LARGE with a message, malformed compressed records
// INVALID_RECORD (CORRUPT_MESSAGE before v8), and nothing is written;
// good compressed batches of every codec are appended and fetched back
// unchanged.
func TestProduceCompressedValidation(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.MaxInflatedBatchBytes = 4 << 20 }))
	ts.createTopic("z", 1)
	c := ts.dial()
	defer c.close()
	part, _ := ts.broker.Partition("z", 0)

	produce := func(version int16, batch []byte) *kmsg.ProduceResponseTopicPartition {
		t.Helper()
		resp := c.request(produceRequest(version, -1, "z", 0, batch)).(*kmsg.ProduceResponse)
		return &resp.Topics[0].Partitions[0]
	}
	bomb := compressedBatch(1, 1, bombRecord(t, 1, 64))
	malformed := compressedBatch(1, 4, gzipBytes(records(3, []byte("x"))))
	cases := []struct {
		name    string
		version int16
		batch   []byte
		code    int16
		message bool
	}{
		{"bomb v9", 9, bomb, errMessageTooLarge, true},
		{"bomb v7", 7, bomb, errMessageTooLarge, false},
		{"malformed v9", 9, malformed, errInvalidRecord, true},
		{"malformed v7", 7, malformed, errCorruptMessage, false},
	}
	for _, tc := range cases {
		p := produce(tc.version, tc.batch)
		if p.ErrorCode != tc.code {
			t.Fatalf("%s: error %d, want %d", tc.name, p.ErrorCode, tc.code)
		}
		if got := p.ErrorMessage != nil; got != tc.message {
			t.Fatalf("%s: error message %v, want one: %v", tc.name, p.ErrorMessage, tc.message)
		}
		if p.ErrorMessage != nil {
			t.Logf("%s: %s", tc.name, *p.ErrorMessage)
		}
	}
	if n := part.Log().NextOffset(); n != 0 {
		t.Fatalf("%d records written by rejected produces", n)
	}
	var want [][]byte
	for codec := 1; codec <= 5; codec++ {
		cd, payload := compressWith(t, codec, records(10, []byte(codecName[codec])))
		batch := compressedBatch(cd, 10, payload)
		if p := produce(9, batch); p.ErrorCode != errNone {
			t.Fatalf("%s: error %d", codecName[codec], p.ErrorCode)
		}
		want = append(want, batch)
	}
	fr := c.request(fetchRequest(11, "z", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	got := decodeBatches(t, fr.Topics[0].Partitions[0].RecordBatches)
	if len(got) != len(want) {
		t.Fatalf("fetched %d batches, want %d", len(got), len(want))
	}
	for i, b := range got {
		if b.NumRecords != 10 || !bytes.Equal(b.Records, want[i][61:]) {
			t.Fatalf("batch %d (%s) fetched changed", i, codecName[i+1])
		}
	}
}
