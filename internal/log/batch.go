package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record batch v2 layout (Kafka's on-disk and on-wire format; sluice stores
// batches exactly as produced). These offsets are part of the on-disk format.
//
//	 0  baseOffset            int64   ─┐ outside the CRC: the broker
//	 8  batchLength           int32    │ rewrites baseOffset and
//	12  partitionLeaderEpoch  int32    │ partitionLeaderEpoch in place
//	16  magic                 int8    ─┘ (= 2)
//	17  crc                   uint32  CRC-32C of bytes [21, 12+batchLength)
//	21  attributes            int16   bits 0-2 codec, 3 timestamp type,
//	                                  4 transactional, 5 control
//	23  lastOffsetDelta       int32
//	27  baseTimestamp         int64
//	35  maxTimestamp          int64
//	43  producerId            int64
//	51  producerEpoch         int16
//	53  baseSequence          int32
//	57  recordCount           int32
//	61  records...
const (
	batchHeaderSize    = 61
	batchLengthOffset  = 8
	leaderEpochOffset  = 12
	magicOffset        = 16
	crcOffset          = 17
	attributesOffset   = 21
	lastDeltaOffset    = 23
	maxTimestampOffset = 35
	// batchOverhead is the bytes of a batch counted by batchLength's own
	// position: baseOffset and batchLength themselves.
	batchOverhead = 12
	// minBatchLength is batchLength for a batch with no records.
	minBatchLength = batchHeaderSize - batchOverhead

	attrTimestampLogAppend = 1 << 3
	attrTransactional      = 1 << 4
	attrControl            = 1 << 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseHeader decodes a batch header from b, which must hold at least the 61
// header bytes. It checks only what is needed to trust the framing: the magic
// byte and a batch length that can hold a header.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrInvalidBatch, len(b))
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[0:])),
		Length:               int32(binary.BigEndian.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  binary.BigEndian.Uint32(b[17:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[21:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[23:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[27:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[35:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[53:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[57:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrInvalidBatch, h.Magic)
	}
	if h.Length < minBatchLength {
		return h, fmt.Errorf("%w: batch length %d below header size", ErrInvalidBatch, h.Length)
	}
	return h, nil
}

// TotalSize is the number of bytes the batch occupies, header included.
func (h *BatchHeader) TotalSize() int64 { return int64(h.Length) + batchOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *BatchHeader) Codec() int8 { return int8(h.Attributes & 7) }

// IsTransactional reports the transactional attribute bit.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports the control-batch attribute bit.
func (h *BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// batchCRC computes the CRC-32C a batch must carry.
func batchCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[attributesOffset:], castagnoli)
}

// checkBatch validates one batch at the start of b: framing, magic, CRC and
// the offset-delta/record-count relation. It returns the batch header and
// the batch's total size. It does not decompress records.
func checkBatch(b []byte) (BatchHeader, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, 0, err
	}
	size := h.TotalSize()
	if size > int64(len(b)) {
		return h, 0, fmt.Errorf("%w: batch length %d exceeds the %d bytes present", ErrInvalidBatch, h.Length, len(b)-batchOverhead)
	}
	if got := batchCRC(b[:size]); got != h.CRC {
		return h, 0, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptBatch, h.CRC, got)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 {
		return h, 0, fmt.Errorf("%w: negative last offset delta %d or record count %d", ErrInvalidBatch, h.LastOffsetDelta, h.NumRecords)
	}
	return h, int(size), nil
}

// ValidateRecordSet checks that records is a well-formed sequence of v2
// batches as a producer sends them (at least one batch, each with at least one
// record and lastOffsetDelta = recordCount-1, no trailing bytes) and that no
// batch is larger than maxBatch bytes (0: no limit). It returns the number of
// batches and the total offsets the set will take.
func ValidateRecordSet(records []byte, maxBatch int32) (batches int, offsets int64, err error) {
	if len(records) == 0 {
		return 0, 0, fmt.Errorf("%w: empty record set", ErrInvalidBatch)
	}
	for rest := records; len(rest) > 0; {
		h, size, err := checkBatch(rest)
		if err != nil {
			return 0, 0, err
		}
		if maxBatch > 0 && size > int(maxBatch) {
			return 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrBatchTooLarge, size, maxBatch)
		}
		if h.NumRecords == 0 || h.LastOffsetDelta != h.NumRecords-1 {
			return 0, 0, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalidBatch, h.NumRecords, h.LastOffsetDelta)
		}
		batches++
		offsets += int64(h.LastOffsetDelta) + 1
		rest = rest[size:]
	}
	return batches, offsets, nil
}

// stampRecordSet assigns offsets from base and the leader epoch to every
// batch of a validated record set, and for LogAppendTime topics sets the
// timestamp type and max timestamp (recomputing the CRC, which covers them).
// It returns the next offset and the largest max timestamp in the set with
// the offset of that batch's last record.
func stampRecordSet(records []byte, base int64, epoch int32, appendTime int64) (next, maxTS, maxTSOffset int64) {
	next = base
	maxTS = -1
	maxTSOffset = -1
	for rest := records; len(rest) > 0; {
		size := int(binary.BigEndian.Uint32(rest[batchLengthOffset:])) + batchOverhead
		batch := rest[:size]
		binary.BigEndian.PutUint64(batch[0:], uint64(next))
		binary.BigEndian.PutUint32(batch[leaderEpochOffset:], uint32(epoch))
		if appendTime >= 0 {
			attrs := binary.BigEndian.Uint16(batch[attributesOffset:]) | attrTimestampLogAppend
			binary.BigEndian.PutUint16(batch[attributesOffset:], attrs)
			binary.BigEndian.PutUint64(batch[maxTimestampOffset:], uint64(appendTime))
			binary.BigEndian.PutUint32(batch[crcOffset:], batchCRC(batch))
		}
		last := next + int64(binary.BigEndian.Uint32(batch[lastDeltaOffset:]))
		if ts := int64(binary.BigEndian.Uint64(batch[maxTimestampOffset:])); ts > maxTS {
			maxTS, maxTSOffset = ts, last
		}
		next = last + 1
		rest = rest[size:]
	}
	return next, maxTS, maxTSOffset
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
