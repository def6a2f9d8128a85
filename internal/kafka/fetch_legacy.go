package kafka

// Fetch v0–v3 down-conversion. Clients that fetch with v0–v3 predate record
// batches v2: v0 and v1 read messages of magic 0, v2 and v3 magic 1. The
// log stores batches v2, so these responses are built in memory: each
// batch is decoded (compressed records streamed one at a time, within a
// bound, never inflated whole), control
// batches skipped, records below the fetch offset dropped, and every record
// re-encoded as an uncompressed legacy message (headers, which legacy
// messages cannot carry, are dropped; magic 0 drops timestamps too). No
// sendfile on this path: it is for old clients, not for throughput.

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDownConvertBytes bounds one partition's decompressed records while
// down-converting.
const maxDownConvertBytes = 64 << 20

var errDownConvert = errors.New("kafka: record batch cannot be down-converted")

// encodeLegacy builds a Fetch v0–v3 response in memory.
func (r *fetchResponse) encodeLegacy(sl *slot, req *kmsg.FetchRequest, parts []fetchPart) {
	magic := byte(0)
	if req.Version >= 2 {
		magic = 1
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	pi := 0
	var raw []byte
	for ti := range req.Topics {
		t := &req.Topics[ti]
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for range t.Partitions {
			p := &parts[pi]
			pi++
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.HighWatermark = p.partition, p.code, p.hw
			rp.RecordBatches = []byte{}
			if p.res.Bytes > 0 {
				raw = readRegions(raw[:0], p)
				converted, err := downConvert(raw, p.offset, magic, p.maxBytes)
				if err != nil {
					rp.ErrorCode = errCorruptMessage
				} else {
					rp.RecordBatches = converted
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if r.head == nil {
		r.head = getBuf(0)
	}
	b := appendResponseHeader((*r.head)[:0], sl.correlation, sl.headerV1)
	b = resp.AppendTo(b)
	finishFrame(b, 0, 0)
	*r.head = b
	r.parts = parts
	r.cuts = r.cuts[:0]
}

// readRegions appends the bytes of p's read regions to dst.
func readRegions(dst []byte, p *fetchPart) []byte {
	for _, rg := range p.res.Regions {
		n := len(dst)
		dst = append(dst, make([]byte, rg.Len)...)
		if _, err := rg.File.ReadAt(dst[n:], rg.Pos); err != nil && !errors.Is(err, io.EOF) {
			return dst[:n]
		}
	}
	return dst
}

// downConvert turns record batches v2 into a legacy message set of the given
// magic, starting at offset, stopping once maxBytes is reached (after at
// least one message).
func downConvert(batches []byte, offset int64, magic byte, maxBytes int64) ([]byte, error) {
	var out []byte
	budget := maxDownConvertBytes
	for len(batches) >= 61 {
		length := int(int32(binary.BigEndian.Uint32(batches[8:])))
		if length < 49 || length > len(batches)-12 {
			break // a partial batch at the end
		}
		b := batches[:12+length]
		batches = batches[12+length:]
		base := int64(binary.BigEndian.Uint64(b))
		attrs := binary.BigEndian.Uint16(b[21:])
		if attrs&0x20 != 0 { // control batch
			continue
		}
		baseTS := int64(binary.BigEndian.Uint64(b[27:]))
		maxTS := int64(binary.BigEndian.Uint64(b[35:]))
		count := int(int32(binary.BigEndian.Uint32(b[57:])))
		recs := b[61:]
		logAppend := attrs&0x08 != 0
		// emit appends one record; it reports whether maxBytes is reached.
		emit := func(rec v2Record) bool {
			off := base + rec.offsetDelta
			if off < offset {
				return false
			}
			ts := baseTS + rec.timestampDelta
			if logAppend {
				ts = maxTS
			}
			out = appendLegacyMessage(out, off, magic, logAppend, ts, rec.key, rec.value)
			return int64(len(out)) >= maxBytes
		}
		if codec := attrs & 0x07; codec != 0 {
			// Compressed records are decompressed as a stream, one record
			// at a time: memory follows the records actually there, and a
			// batch that inflates to garbage (a decompression bomb) fails
			// at its first bad record instead of being inflated whole.
			full, err := streamRecords(codec, recs, count, &budget, emit)
			if err != nil {
				return nil, err
			}
			if full {
				return out, nil
			}
			continue
		}
		for i := 0; i < count; i++ {
			rec, rest, ok := parseRecord(recs)
			if !ok {
				return nil, errDownConvert
			}
			recs = rest
			if emit(rec) {
				return out, nil
			}
		}
	}
	return out, nil
}

// streamRecords decompresses the count records of a compressed batch one at
// a time, passing each to emit until it returns true (then full is true).
// budget bounds the bytes decompressed and is decreased by them.
func streamRecords(codec uint16, data []byte, count int, budget *int, emit func(v2Record) bool) (full bool, err error) {
	z := getInflater()
	defer putInflater(z)
	br, err := z.reader(codec, data, *budget)
	if err != nil {
		return false, errDownConvert
	}
	defer func() { *budget = int(z.lim.N) + br.Buffered() }()
	for i := 0; i < count; i++ {
		length, err := binary.ReadVarint(br)
		if err != nil || length < 0 || length > z.lim.N+int64(br.Buffered()) {
			return false, errDownConvert
		}
		body, err := readFrame(br, int(length), nil, false)
		if err != nil {
			return false, errDownConvert
		}
		rec, ok := parseRecordBody(*body)
		if !ok {
			putBuf(body)
			return false, errDownConvert
		}
		full = emit(rec) // copies key and value
		putBuf(body)
		if full {
			return true, nil
		}
	}
	return false, nil
}

type v2Record struct {
	timestampDelta int64
	offsetDelta    int64
	key, value     []byte
}

// parseRecord decodes one record of a batch v2.
func parseRecord(b []byte) (r v2Record, rest []byte, ok bool) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || int64(len(b)-n) < length {
		return r, nil, false
	}
	r, ok = parseRecordBody(b[n : n+int(length)])
	return r, b[n+int(length):], ok
}

// parseRecordBody decodes a record v2 after its length.
func parseRecordBody(body []byte) (r v2Record, ok bool) {
	var n int
	if len(body) < 1 {
		return r, false
	}
	body = body[1:] // attributes
	if r.timestampDelta, n = binary.Varint(body); n <= 0 {
		return r, false
	}
	body = body[n:]
	if r.offsetDelta, n = binary.Varint(body); n <= 0 {
		return r, false
	}
	body = body[n:]
	if r.key, body, ok = varBytes(body); !ok {
		return r, false
	}
	if r.value, _, ok = varBytes(body); !ok {
		return r, false
	}
	return r, true
}

func varBytes(b []byte) ([]byte, []byte, bool) {
	l, n := binary.Varint(b)
	if n <= 0 {
		return nil, nil, false
	}
	b = b[n:]
	if l < 0 {
		return nil, b, true
	}
	if l > int64(len(b)) {
		return nil, nil, false
	}
	return b[:l:l], b[l:], true
}

func appendLegacyMessage(dst []byte, offset int64, magic byte, logAppend bool, ts int64, key, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	sizeAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // size, crc
	crcFrom := len(dst)
	attrs := byte(0)
	if magic == 1 && logAppend {
		attrs = 0x08
	}
	dst = append(dst, magic, attrs)
	if magic == 1 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	}
	for _, v := range [][]byte{key, value} {
		if v == nil {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			continue
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint32(dst[sizeAt:], uint32(len(dst)-sizeAt-4))
	binary.BigEndian.PutUint32(dst[sizeAt+4:], crc32.ChecksumIEEE(dst[crcFrom:]))
	return dst
}
