package kafka

// Conversion of legacy message sets (magic 0 and 1, carried by Produce
// v0–v2) into one record batch v2, so that producers configured for
// pre-0.11 brokers can still write. Layout of one legacy message (all
// big-endian):
//
//	offset      int64
//	size        int32   bytes that follow
//	crc         uint32  CRC-32 (IEEE) of magic..end
//	magic       int8    0 or 1
//	attributes  int8    bits 0-2 codec (1 gzip, 2 snappy, 3 lz4); bit 3 LogAppendTime (v1)
//	timestamp   int64   magic 1 only
//	key         int32 length (-1 null) + bytes
//	value       int32 length (-1 null) + bytes
//
// A compressed message's value is a compressed message set of inner
// messages (not compressed again). The result is uncompressed: the broker
// decompresses here because it must re-encode, and it bounds the output by
// limit. Magic 0 messages have no timestamp; they get the time of
// conversion, as if the topic used LogAppendTime, so that time-based
// retention and ListOffsets keep working.

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

var (
	errLegacyCorrupt = errors.New("kafka: corrupt legacy message")
	errLegacyTooBig  = errors.New("kafka: legacy message set too large once decompressed")
	errLegacyCodec   = errors.New("kafka: unsupported legacy compression")
)

// legacyRecord is one message of a legacy set.
type legacyRecord struct {
	timestamp  int64
	key, value []byte // nil means null
}

// convertLegacy converts a legacy message set into one record batch v2 no
// larger than limit bytes. now is the conversion time in milliseconds.
func convertLegacy(set []byte, limit int, now int64) ([]byte, error) {
	var recs []legacyRecord
	var bufs []*[]byte // inflated wrappers, which recs alias
	defer func() {
		for _, b := range bufs {
			putBuf(b)
		}
	}()
	budget := limit
	if err := parseLegacy(set, now, &recs, &bufs, &budget, false); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errLegacyCorrupt
	}
	return encodeV2(recs, limit)
}

// parseLegacy appends the messages of set to recs. budget bounds the bytes
// decompression may produce in total.
// The buffers of inflated wrappers are appended to bufs for the caller to
// release once recs, which alias them, are no longer used.
func parseLegacy(set []byte, now int64, recs *[]legacyRecord, bufs *[]*[]byte, budget *int, inner bool) error {
	for len(set) > 0 {
		if len(set) < 12 {
			return errLegacyCorrupt
		}
		size := int(int32(binary.BigEndian.Uint32(set[8:])))
		if size < 14 || size > len(set)-12 {
			return errLegacyCorrupt
		}
		msg := set[12 : 12+size]
		set = set[12+size:]
		if crc32.ChecksumIEEE(msg[4:]) != binary.BigEndian.Uint32(msg) {
			return errLegacyCorrupt
		}
		magic, attrs := msg[4], msg[5]
		body := msg[6:]
		ts := now
		switch magic {
		case 0:
		case 1:
			if len(body) < 8 {
				return errLegacyCorrupt
			}
			ts = int64(binary.BigEndian.Uint64(body))
			if ts < 0 || attrs&0x08 != 0 {
				ts = now
			}
			body = body[8:]
		default:
			return errLegacyCorrupt
		}
		key, body, ok := legacyBytes(body)
		if !ok {
			return errLegacyCorrupt
		}
		value, body, ok := legacyBytes(body)
		if !ok || len(body) != 0 {
			return errLegacyCorrupt
		}
		codec := attrs & 0x07
		if codec == 0 {
			*recs = append(*recs, legacyRecord{timestamp: ts, key: key, value: value})
			continue
		}
		if inner || value == nil {
			return errLegacyCorrupt // compression inside compression
		}
		out, err := decompressLegacy(codec, value, *budget)
		if err != nil {
			return err
		}
		*bufs = append(*bufs, out)
		*budget -= len(*out)
		if err := parseLegacy(*out, now, recs, bufs, budget, true); err != nil {
			return err
		}
	}
	return nil
}

func legacyBytes(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	b = b[4:]
	if n == -1 {
		return nil, b, true
	}
	if n < 0 || n > len(b) {
		return nil, nil, false
	}
	return b[:n:n], b[n:], true
}

// xerialMagic starts a snappy stream in the xerial framing Java clients use.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompressLegacy inflates a compressed wrapper's value into at most budget
// bytes. The result is a getBuf buffer (the caller releases it with
// putBuf). The decoders are the pooled ones of inflate.go.
func decompressLegacy(codec byte, data []byte, budget int) (*[]byte, error) {
	if codec < 1 || codec > 3 {
		return nil, errLegacyCodec
	}
	z := getInflater()
	defer putInflater(z)
	r, err := z.reader(uint16(codec), data, budget+1)
	if err != nil {
		return nil, errLegacyCorrupt
	}
	return inflateBounded(r, budget)
}

// inflateBounded reads r to its end into a buffer that doubles from 16 KiB
// as bytes arrive, failing with errLegacyTooBig past budget bytes. The
// buffer is pooled up to 1 MiB and mapped outside the Go heap beyond
// (growBuf), so a bomb costs budget bytes of reused or unmapped memory, not
// a trail of garbage.
func inflateBounded(r io.Reader, budget int) (*[]byte, error) {
	buf := getBuf(min(budget, 16<<10))
	n := 0
	for {
		m, err := io.ReadFull(r, (*buf)[n:])
		n += m
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			*buf = (*buf)[:n]
			return buf, nil
		case errors.Is(err, errInflateTooBig):
			putBuf(buf)
			return nil, errLegacyTooBig
		case err != nil:
			putBuf(buf)
			return nil, errLegacyCorrupt
		}
		if n == budget {
			// Full: one more byte means too big.
			var one [1]byte
			if _, err := io.ReadFull(r, one[:]); err == nil {
				putBuf(buf)
				return nil, errLegacyTooBig
			} else if err != io.EOF {
				putBuf(buf)
				return nil, errLegacyCorrupt
			}
			return buf, nil
		}
		buf = growBuf(buf, min(2*n, budget), n)
	}
}

// encodeV2 encodes records as one uncompressed record batch v2 (base offset
// 0; the log assigns offsets).
func encodeV2(recs []legacyRecord, limit int) ([]byte, error) {
	first, maxTS := recs[0].timestamp, recs[0].timestamp
	for _, r := range recs {
		first, maxTS = min(first, r.timestamp), max(maxTS, r.timestamp)
	}
	b := make([]byte, 61, 61+len(recs)*16)
	var rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, r.timestamp-first)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, r.key)
		rec = appendVarBytes(rec, r.value)
		rec = binary.AppendUvarint(rec, 0) // no headers
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
		if len(b) > limit {
			return nil, errLegacyTooBig
		}
	}
	be := binary.BigEndian
	be.PutUint64(b[0:], 0)                    // base offset
	be.PutUint32(b[8:], uint32(len(b)-12))    // batch length
	be.PutUint32(b[12:], 0xffffffff)          // partition leader epoch -1
	b[16] = 2                                 // magic
	be.PutUint16(b[21:], 0)                   // attributes
	be.PutUint32(b[23:], uint32(len(recs)-1)) // last offset delta
	be.PutUint64(b[27:], uint64(first))       // base timestamp
	be.PutUint64(b[35:], uint64(maxTS))       // max timestamp
	be.PutUint64(b[43:], 0xffffffffffffffff)  // producer id -1
	be.PutUint16(b[51:], 0xffff)              // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff)          // base sequence -1
	be.PutUint32(b[57:], uint32(len(recs)))   // record count
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}
