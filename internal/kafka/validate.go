package kafka

// Validation of compressed record batches v2 on the produce path. The log
// stores batches as produced and checks only their framing and CRC, which
// covers the compressed bytes, not what they inflate to; so, as Kafka's
// broker does, every compressed batch is decompressed here before it is
// appended, and rejected if its records are malformed or inflate past
// Config.MaxInflatedBatchBytes. Decompression is streamed (inflate.go):
// records are parsed from a 16 KiB buffer, their keys, values and headers
// skipped, never held, so a batch costs the same memory whatever it
// inflates to, and a bomb stops at the limit (or at once, when its first
// record declares a length beyond it).
//
// Checked for each compressed batch, after its CRC:
//   - at least one record and lastOffsetDelta = recordCount-1;
//   - exactly recordCount records, then the end of the stream (which makes
//     gzip check its trailer CRC);
//   - each record's length covers exactly its fields (attributes,
//     timestamp delta, offset delta, key, value, headers), no field
//     running past it;
//   - offset deltas 0, 1, ..., recordCount-1 (Kafka requires consecutive
//     inner offsets in compressed batches);
//   - the inflated bytes (record lengths and their varints) stay within
//     the limit.
//
// Uncompressed batches are not looked at here (their records are readable
// in place by any consumer; the log checks their framing and CRC).

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

var (
	errInvalidInner = errors.New("kafka: malformed records in a compressed batch")
	errCRC          = errors.New("kafka: record batch CRC mismatch")
)

// DefaultMaxInflatedBatchBytes: see Config.MaxInflatedBatchBytes.
const DefaultMaxInflatedBatchBytes = 64 << 20

// validateCompressed checks every compressed batch of a record set v2 (see
// above) against a limit of max inflated bytes per batch. It returns nil,
// errInflateTooBig, errCRC, errInflateCorrupt, errInflateCodec or
// errInvalidInner. Batches whose framing is broken are left to the log,
// which rejects them.
func validateCompressed(records []byte, max int) error {
	var z *inflater
	defer func() {
		if z != nil {
			putInflater(z)
		}
	}()
	for len(records) >= 61 {
		length := int(int32(binary.BigEndian.Uint32(records[8:])))
		if length < 49 || length > len(records)-12 || records[16] != 2 {
			return nil // the log rejects it
		}
		b := records[:12+length]
		records = records[12+length:]
		codec := binary.BigEndian.Uint16(b[21:]) & 0x07
		if codec == 0 {
			continue
		}
		if crc32.Checksum(b[21:], castagnoli) != binary.BigEndian.Uint32(b[17:]) {
			return errCRC
		}
		count := int32(binary.BigEndian.Uint32(b[57:]))
		if count <= 0 || int32(binary.BigEndian.Uint32(b[23:])) != count-1 {
			return errInvalidInner
		}
		if z == nil {
			z = getInflater()
		}
		br, err := z.reader(codec, b[61:], max+1)
		if err != nil {
			return err
		}
		if err := checkRecords(br, int(count), max); err != nil {
			return err
		}
	}
	return nil
}

// checkRecords reads count records v2 from br, then expects the end of the
// stream. At most max bytes are read.
func checkRecords(br *bufio.Reader, count, max int) error {
	left := max // inflated bytes still allowed
	for i := 0; i < count; i++ {
		length, err := readVarint(br, &left)
		if err != nil {
			return err
		}
		if length < 0 {
			return errInvalidInner
		}
		if length > int64(left) {
			return errInflateTooBig
		}
		left -= int(length)
		rec := int(length)                            // bytes of this record still unread
		if _, err := readN(br, 1, &rec); err != nil { // attributes
			return err
		}
		if _, err := readVarint(br, &rec); err != nil { // timestamp delta
			return err
		}
		delta, err := readVarint(br, &rec)
		if err != nil {
			return err
		}
		if delta != int64(i) {
			return errInvalidInner
		}
		if err := skipVarBytes(br, &rec, true); err != nil { // key
			return err
		}
		if err := skipVarBytes(br, &rec, true); err != nil { // value
			return err
		}
		headers, err := readVarint(br, &rec)
		if err != nil {
			return err
		}
		if headers < 0 || headers > int64(rec) { // a header takes 2 bytes at least
			return errInvalidInner
		}
		for h := int64(0); h < headers; h++ {
			if err := skipVarBytes(br, &rec, false); err != nil { // header key
				return err
			}
			if err := skipVarBytes(br, &rec, true); err != nil { // header value
				return err
			}
		}
		if rec != 0 {
			return errInvalidInner
		}
	}
	switch _, err := br.ReadByte(); err {
	case io.EOF:
		return nil
	case nil:
		return errInvalidInner // more than count records
	default:
		return inflateErr(err)
	}
}

// readVarint reads a zig-zag varint of at most 10 bytes, all of them within
// *left, which it decreases.
func readVarint(br *bufio.Reader, left *int) (int64, error) {
	var u uint64
	for shift := 0; shift < 70; shift += 7 {
		if *left <= 0 {
			return 0, errInvalidInner
		}
		c, err := br.ReadByte()
		if err != nil {
			return 0, inflateErr(err)
		}
		*left--
		if shift == 63 && c > 1 {
			return 0, errInvalidInner
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errInvalidInner
}

// readN skips n bytes within *left.
func readN(br *bufio.Reader, n int, left *int) (int, error) {
	if n > *left {
		return 0, errInvalidInner
	}
	m, err := br.Discard(n)
	*left -= m
	if err != nil {
		return m, inflateErr(err)
	}
	return m, nil
}

// skipVarBytes skips a varint length and that many bytes (-1, null, only
// if nullable).
func skipVarBytes(br *bufio.Reader, left *int, nullable bool) error {
	l, err := readVarint(br, left)
	switch {
	case err != nil:
		return err
	case l == -1 && nullable:
		return nil
	case l < 0 || l > int64(*left):
		return errInvalidInner
	}
	_, err = readN(br, int(l), left)
	return err
}

// inflateErr maps an error from the decompressing reader: the end of the
// stream inside a record means the batch is malformed, the rest come from
// the codec.
func inflateErr(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errInvalidInner
	case errors.Is(err, errInflateTooBig):
		return errInflateTooBig
	}
	return errInflateCorrupt
}
