package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata change kinds. These values are part of the on-disk format.
const (
	changeCluster           uint8 = 1 // the cluster's ID, written once
	changeTopicCreated      uint8 = 2
	changeTopicDeleted      uint8 = 3
	changePartitionsCreated uint8 = 4
	changeTopicConfigs      uint8 = 5 // replaces a topic's dynamic configs
	changeProducerIDs       uint8 = 6 // reserves a block of producer IDs

	changeFormatVersion uint8 = 0
)

var (
	errBadChange = errors.New("broker: malformed metadata record")
	errBadBatch  = errors.New("broker: malformed metadata batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// change is one self-contained metadata change: everything apply needs is in
// the record, so any replica applying the same sequence reaches the same
// state.
type change struct {
	kind       uint8
	id         [16]byte          // cluster ID (changeCluster) or topic ID
	name       string            // changeTopicCreated
	partitions int32             // changeTopicCreated; new total for changePartitionsCreated
	configs    map[string]string // changeTopicCreated, changeTopicConfigs
	firstID    int64             // changeProducerIDs
	count      int32             // changeProducerIDs
}

// encodeChange returns the record key and value of c.
func encodeChange(c *change) (key, value []byte) {
	key = []byte{changeFormatVersion, c.kind}
	switch c.kind {
	case changeCluster, changeTopicDeleted:
		value = append(value, c.id[:]...)
	case changeTopicCreated:
		value = append(value, c.id[:]...)
		value = appendString(value, c.name)
		value = binary.BigEndian.AppendUint32(value, uint32(c.partitions))
		value = appendConfigs(value, c.configs)
	case changePartitionsCreated:
		value = append(value, c.id[:]...)
		value = binary.BigEndian.AppendUint32(value, uint32(c.partitions))
	case changeTopicConfigs:
		value = append(value, c.id[:]...)
		value = appendConfigs(value, c.configs)
	case changeProducerIDs:
		value = binary.BigEndian.AppendUint64(value, uint64(c.firstID))
		value = binary.BigEndian.AppendUint32(value, uint32(c.count))
	default:
		panic(fmt.Sprintf("broker: encode of unknown change kind %d", c.kind))
	}
	return key, value
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendConfigs(b []byte, m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	b = binary.BigEndian.AppendUint16(b, uint16(len(names)))
	for _, n := range names {
		b = appendString(b, n)
		b = appendString(b, m[n])
	}
	return b
}

// reader decodes big-endian fields; after the first short read every read
// returns zero and ok reports false.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) take(n int) []byte {
	if !r.ok || len(r.b) < n {
		r.ok = false
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str() string { return string(r.take(int(r.u16()))) }

func (r *reader) id() (id [16]byte) {
	copy(id[:], r.take(16))
	return id
}

func (r *reader) configs() map[string]string {
	n := int(r.u16())
	m := make(map[string]string, min(n, 64))
	for i := 0; i < n && r.ok; i++ {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

// decodeChange parses a record key and value written by encodeChange.
func decodeChange(key, value []byte) (change, error) {
	if len(key) != 2 || key[0] != changeFormatVersion {
		return change{}, fmt.Errorf("%w: key %x", errBadChange, key)
	}
	c := change{kind: key[1]}
	r := reader{b: value, ok: true}
	switch c.kind {
	case changeCluster, changeTopicDeleted:
		c.id = r.id()
	case changeTopicCreated:
		c.id = r.id()
		c.name = r.str()
		c.partitions = int32(r.u32())
		c.configs = r.configs()
	case changePartitionsCreated:
		c.id = r.id()
		c.partitions = int32(r.u32())
	case changeTopicConfigs:
		c.id = r.id()
		c.configs = r.configs()
	case changeProducerIDs:
		c.firstID = int64(r.u64())
		c.count = int32(r.u32())
	default:
		return change{}, fmt.Errorf("%w: unknown kind %d", errBadChange, c.kind)
	}
	if !r.ok || len(r.b) != 0 {
		return change{}, fmt.Errorf("%w: kind %d value of %d bytes", errBadChange, c.kind, len(value))
	}
	return c, nil
}

// encodeBatch builds one record batch v2 (uncompressed, base offset 0, no
// producer) holding changes as records, each stamped with timestamp (ms).
func encodeBatch(changes []change, timestamp int64) []byte {
	var records []byte
	for i := range changes {
		key, value := encodeChange(&changes[i])
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(key)))
		body = append(body, key...)
		body = binary.AppendVarint(body, int64(len(value)))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0) // headers
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:     0,
		Length:          int32(49 + len(records)),
		Magic:           2,
		LastOffsetDelta: int32(len(changes) - 1),
		FirstTimestamp:  timestamp,
		MaxTimestamp:    timestamp,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(changes)),
		Records:         records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// decodeBatch parses one whole batch written by encodeBatch, checking its
// CRC, and returns its base offset and changes.
func decodeBatch(b []byte) (int64, []change, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errBadBatch, err)
	}
	if rb.Magic != 2 || int(rb.Length)+12 != len(b) {
		return 0, nil, fmt.Errorf("%w: magic %d, length %d of %d bytes", errBadBatch, rb.Magic, rb.Length, len(b))
	}
	if got := crc32.Checksum(b[21:], castagnoli); got != uint32(rb.CRC) {
		return 0, nil, fmt.Errorf("%w: crc %08x, computed %08x", errBadBatch, uint32(rb.CRC), got)
	}
	if rb.Attributes&0x7 != 0 || rb.NumRecords < 0 || rb.NumRecords > 1<<20 {
		return 0, nil, fmt.Errorf("%w: attributes %x, %d records", errBadBatch, rb.Attributes, rb.NumRecords)
	}
	changes := make([]change, 0, rb.NumRecords)
	rest := rb.Records
	for i := int32(0); i < rb.NumRecords; i++ {
		n, w := binary.Varint(rest)
		if w <= 0 || n < 0 || int64(len(rest)-w) < n {
			return 0, nil, fmt.Errorf("%w: record %d framing", errBadBatch, i)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(rest[:w+int(n)]); err != nil {
			return 0, nil, fmt.Errorf("%w: record %d: %v", errBadBatch, i, err)
		}
		rest = rest[w+int(n):]
		c, err := decodeChange(rec.Key, rec.Value)
		if err != nil {
			return 0, nil, err
		}
		changes = append(changes, c)
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errBadBatch, len(rest))
	}
	return rb.FirstOffset, changes, nil
}
