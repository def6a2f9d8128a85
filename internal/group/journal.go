package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
)

// The internal log holds Kafka record batches (magic 2, uncompressed) whose
// records use Kafka's __consumer_offsets key and value layouts. The key
// starts with an int16 version that says what the record is:
//
//	key v1  OffsetCommitKey{group, topic, partition}   value OffsetCommitValue v3
//	key v2  GroupMetadataKey{group}                     value GroupMetadataValue v3 (classic group)
//	key v3  ConsumerGroupMetadataKey{group}             value {int16 version 0, int32 epoch, tags} (KIP-848 group)
//	key v5  {group, member id}                          value: a KIP-848 member (memberlog.go)
//
// A record with a null value is a tombstone for its key. Records are applied
// in log order; the last one for a key wins. These layouts are part of the
// on-disk format.
const (
	keyOffsetCommit  int16 = 1
	keyGroupMetadata int16 = 2
	keyConsumerGroup int16 = 3

	offsetValueVersion        int16 = 3
	groupMetadataValueVersion int16 = 3
	consumerGroupValueVersion int16 = 0

	// OffsetsLogName is the internal log the coordinator writes.
	OffsetsLogName = "__consumer_offsets-0"

	batchHeaderSize = 61
)

var (
	errCorruptRecord = errors.New("group: corrupt record in offsets log")
	castagnoli       = crc32.MakeTable(crc32.Castagnoli)
)

// journal is where the coordinator persists its records: the internal log
// in production, a memory fake in state-machine tests.
type journal interface {
	// append writes one record batch and returns its durability ticket.
	append(batch []byte) (log.Ticket, error)
	// whenDurable tells n once the ticket is durable (or never can be).
	whenDurable(t log.Ticket, n log.Notifier)
	// replay calls fn with every record batch in log order.
	replay(fn func(batch []byte) error) error
	// mark is the position the next append will take.
	mark() int64
	// dropBefore discards everything before a mark.
	dropBefore(mark int64) error
}

// record is one key/value pair; a nil value is a tombstone.
type record struct{ key, value []byte }

// batchBuilder encodes records into one uncompressed v2 record batch.
type batchBuilder struct {
	buf []byte
	n   int32
}

func (b *batchBuilder) reset() {
	b.buf = append(b.buf[:0], make([]byte, batchHeaderSize)...)
	b.n = 0
}

func (b *batchBuilder) add(r record) {
	var body []byte
	body = append(body, 0)                              // attributes
	body = binary.AppendVarint(body, 0)                 // timestamp delta
	body = binary.AppendVarint(body, int64(b.n))        // offset delta
	body = binary.AppendVarint(body, int64(len(r.key))) // key
	body = append(body, r.key...)
	if r.value == nil {
		body = binary.AppendVarint(body, -1)
	} else {
		body = binary.AppendVarint(body, int64(len(r.value)))
		body = append(body, r.value...)
	}
	body = binary.AppendVarint(body, 0) // headers
	b.buf = binary.AppendVarint(b.buf, int64(len(body)))
	b.buf = append(b.buf, body...)
	b.n++
}

// finish fills in the header and returns the batch.
func (b *batchBuilder) finish(nowMillis int64) []byte {
	h := b.buf[:batchHeaderSize]
	be := binary.BigEndian
	be.PutUint64(h[0:], 0)                      // base offset (assigned by the log)
	be.PutUint32(h[8:], uint32(len(b.buf)-12))  // batch length
	be.PutUint32(h[12:], 0xFFFFFFFF)            // partition leader epoch -1
	h[16] = 2                                   // magic
	be.PutUint16(h[21:], 0)                     // attributes: no compression, CreateTime
	be.PutUint32(h[23:], uint32(max(b.n-1, 0))) // last offset delta
	be.PutUint64(h[27:], uint64(nowMillis))     // base timestamp
	be.PutUint64(h[35:], uint64(nowMillis))     // max timestamp
	be.PutUint64(h[43:], 0xFFFFFFFFFFFFFFFF)    // producer id -1
	be.PutUint16(h[51:], 0xFFFF)                // producer epoch -1
	be.PutUint32(h[53:], 0xFFFFFFFF)            // base sequence -1
	be.PutUint32(h[57:], uint32(b.n))           // records
	be.PutUint32(h[17:], crc32.Checksum(b.buf[21:], castagnoli))
	return b.buf
}

// encodeBatch builds one batch from records.
func encodeBatch(nowMillis int64, recs []record) []byte {
	var b batchBuilder
	b.reset()
	for _, r := range recs {
		b.add(r)
	}
	return b.finish(nowMillis)
}

// decodeBatches calls fn for every record in buf, which holds whole batches.
func decodeBatches(buf []byte, fn func(r record) error) error {
	for len(buf) > 0 {
		if len(buf) < batchHeaderSize {
			return fmt.Errorf("%w: short batch header", errCorruptRecord)
		}
		h, err := log.ParseHeader(buf)
		if err != nil {
			return fmt.Errorf("%w: %v", errCorruptRecord, err)
		}
		size := h.TotalSize()
		if size > int64(len(buf)) || size < batchHeaderSize {
			return fmt.Errorf("%w: batch of %d bytes in %d", errCorruptRecord, size, len(buf))
		}
		if h.Codec() != 0 {
			return fmt.Errorf("%w: compressed batch", errCorruptRecord)
		}
		if h.IsControl() {
			buf = buf[size:]
			continue
		}
		body := buf[batchHeaderSize:size]
		for i := int32(0); i < h.NumRecords; i++ {
			var r record
			if body, r, err = decodeRecord(body); err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		buf = buf[size:]
	}
	return nil
}

func decodeRecord(b []byte) ([]byte, record, error) {
	bad := func(what string) ([]byte, record, error) {
		return nil, record{}, fmt.Errorf("%w: %s", errCorruptRecord, what)
	}
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || int64(len(b)-n) < length {
		return bad("record length")
	}
	rest := b[n+int(length):]
	r := b[n : n+int(length)]
	if len(r) < 1 {
		return bad("record attributes")
	}
	r = r[1:]
	for range 2 { // timestamp delta, offset delta
		if _, n = binary.Varint(r); n <= 0 {
			return bad("record deltas")
		}
		r = r[n:]
	}
	field := func() ([]byte, bool, bool) {
		l, n := binary.Varint(r)
		if n <= 0 || l < -1 || int64(len(r)-n) < l {
			return nil, false, false
		}
		r = r[n:]
		if l < 0 {
			return nil, true, true
		}
		v := r[:l:l]
		r = r[l:]
		return v, false, true
	}
	key, _, ok := field()
	if !ok {
		return bad("record key")
	}
	value, null, ok := field()
	if !ok {
		return bad("record value")
	}
	if !null && value == nil {
		value = []byte{}
	}
	return rest, record{key: key, value: value}, nil
}

// Record constructors.

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetValue(o offsetEntry) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime
	return v.AppendTo(nil)
}

func groupKey(version int16, group string) []byte {
	k := kmsg.GroupMetadataKey{Version: version, Group: group}
	return k.AppendTo(nil)
}

func consumerGroupValue(epoch int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(consumerGroupValueVersion))
	b = binary.BigEndian.AppendUint32(b, uint32(epoch))
	return append(b, 0) // no tagged fields
}

// recovered is what replaying the log produces for one group.
type recovered struct {
	offsets  map[string]map[int32]offsetEntry
	classic  *kmsg.GroupMetadataValue
	consumer bool
	epoch    int32
	members  map[string][]byte // KIP-848 member records by member id
}

// applyRecord folds one record into state.
func applyRecord(state map[string]*recovered, r record) error {
	if len(r.key) < 2 {
		return fmt.Errorf("%w: short key", errCorruptRecord)
	}
	get := func(g string) *recovered {
		s := state[g]
		if s == nil {
			s = &recovered{offsets: map[string]map[int32]offsetEntry{}, members: map[string][]byte{}}
			state[g] = s
		}
		return s
	}
	switch version := int16(binary.BigEndian.Uint16(r.key)); version {
	case 0, keyOffsetCommit:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("%w: offset key: %v", errCorruptRecord, err)
		}
		s := get(k.Group)
		if r.value == nil {
			if parts := s.offsets[k.Topic]; parts != nil {
				delete(parts, k.Partition)
				if len(parts) == 0 {
					delete(s.offsets, k.Topic)
				}
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("%w: offset value: %v", errCorruptRecord, err)
		}
		parts := s.offsets[k.Topic]
		if parts == nil {
			parts = map[int32]offsetEntry{}
			s.offsets[k.Topic] = parts
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		parts[k.Partition] = offsetEntry{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, commitTime: v.CommitTimestamp}
	case keyConsumerMember:
		group, member, err := decodeMemberKey(r.key)
		if err != nil {
			return err
		}
		s := get(group)
		if r.value == nil {
			delete(s.members, member)
		} else {
			s.members[member] = bytes.Clone(r.value)
		}
	case keyGroupMetadata, keyConsumerGroup:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.key); err != nil {
			return fmt.Errorf("%w: group key: %v", errCorruptRecord, err)
		}
		if r.value == nil {
			// A group tombstone deletes the group and everything in it.
			delete(state, k.Group)
			return nil
		}
		s := get(k.Group)
		if version == keyConsumerGroup {
			if len(r.value) < 6 {
				return fmt.Errorf("%w: consumer group value", errCorruptRecord)
			}
			s.consumer, s.classic = true, nil
			s.epoch = int32(binary.BigEndian.Uint32(r.value[2:]))
			return nil
		}
		v := kmsg.NewGroupMetadataValue()
		if err := v.ReadFrom(r.value); err != nil {
			return fmt.Errorf("%w: group value: %v", errCorruptRecord, err)
		}
		s.classic, s.consumer = &v, false
		clear(s.members) // a classic group has no KIP-848 members
	default:
		// A record type from a newer version: skip it rather than refuse
		// to start.
	}
	return nil
}

// logJournal persists to the internal log of a log.Store.
type logJournal struct {
	store *log.Store
	log   *log.Log
}

func openLogJournal(s *log.Store) (*logJournal, error) {
	l, err := s.Open(OffsetsLogName, log.Config{
		RetentionAge: -1, // offsets live until deleted, never by age
		// Small segments, so that compaction (which drops a prefix)
		// frees disk space.
		SegmentBytes: 16 << 20,
		Durability:   log.Durability{Kind: log.DurabilityFsync},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", OffsetsLogName, err)
	}
	return &logJournal{store: s, log: l}, nil
}

func (j *logJournal) append(batch []byte) (log.Ticket, error) {
	res, err := j.log.Append(batch, -1)
	return res.Ticket, err
}

func (j *logJournal) whenDurable(t log.Ticket, n log.Notifier) { j.store.WhenDurable(t, n) }

func (j *logJournal) replay(fn func(batch []byte) error) error {
	var res log.ReadResult
	defer res.Release()
	next := j.log.LogStartOffset()
	for next < j.log.HighWatermark() {
		if err := j.log.Read(next, 1<<20, &res); err != nil {
			return fmt.Errorf("read %s at %d: %w", OffsetsLogName, next, err)
		}
		if len(res.Regions) == 0 {
			break
		}
		// A fresh buffer per chunk: decoded values may alias it.
		buf := make([]byte, 0, res.Bytes)
		for _, r := range res.Regions {
			start := len(buf)
			buf = append(buf, make([]byte, r.Len)...)
			if _, err := r.File.ReadAt(buf[start:], r.Pos); err != nil {
				res.Release()
				return fmt.Errorf("read %s: %w", OffsetsLogName, err)
			}
		}
		res.Release()
		last := next
		for rest := buf; len(rest) >= batchHeaderSize; {
			h, err := log.ParseHeader(rest)
			if err != nil || h.TotalSize() > int64(len(rest)) {
				return fmt.Errorf("%w: at offset %d", errCorruptRecord, last)
			}
			last = h.LastOffset() + 1
			rest = rest[h.TotalSize():]
		}
		if err := fn(buf); err != nil {
			return err
		}
		if last <= next {
			return fmt.Errorf("%w: no progress at offset %d", errCorruptRecord, next)
		}
		next = last
	}
	return nil
}

type chanNotifier chan error

func (c chanNotifier) Durable(err error) { c <- err }

func (j *logJournal) mark() int64 { return j.log.NextOffset() }

func (j *logJournal) dropBefore(mark int64) error {
	_, err := j.log.DeleteRecords(mark)
	return err
}

// compactJournal writes snapshot (the live state), waits until it is
// durable, then drops everything before it. A crash in between leaves both
// the history and the snapshot, which replay to the same state.
func compactJournal(j journal, snapshot [][]byte) error {
	m := j.mark()
	var last log.Ticket
	for _, b := range snapshot {
		t, err := j.append(b)
		if err != nil {
			return err
		}
		last = t
	}
	done := make(chanNotifier, 1)
	j.whenDurable(last, done)
	if err := <-done; err != nil {
		return err
	}
	return j.dropBefore(m)
}

// snapshotBatches encodes the live state as batches of at most perBatch
// records: each group's metadata record, then its offsets.
func snapshotBatches(state map[string]*recovered, nowMillis int64, perBatch int) [][]byte {
	ids := make([]string, 0, len(state))
	for id := range state {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out [][]byte
	var recs []record
	flush := func() {
		if len(recs) > 0 {
			out = append(out, encodeBatch(nowMillis, recs))
			recs = recs[:0]
		}
	}
	add := func(r record) {
		recs = append(recs, r)
		if len(recs) >= perBatch {
			flush()
		}
	}
	for _, id := range ids {
		s := state[id]
		switch {
		case s.consumer:
			add(record{key: groupKey(keyConsumerGroup, id), value: consumerGroupValue(s.epoch)})
			members := make([]string, 0, len(s.members))
			for m := range s.members {
				members = append(members, m)
			}
			sort.Strings(members)
			for _, m := range members {
				add(record{key: memberKey(id, m), value: s.members[m]})
			}
		case s.classic != nil:
			v := *s.classic
			v.Version = groupMetadataValueVersion
			add(record{key: groupKey(keyGroupMetadata, id), value: v.AppendTo(nil)})
		}
		topics := make([]string, 0, len(s.offsets))
		for t := range s.offsets {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			parts := make([]int32, 0, len(s.offsets[t]))
			for p := range s.offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				add(record{key: offsetKey(id, t, p), value: offsetValue(s.offsets[t][p])})
			}
		}
	}
	flush()
	return out
}

// liveRecords counts the records a snapshot of state holds.
func liveRecords(state map[string]*recovered) int {
	n := 0
	for _, s := range state {
		if s.consumer || s.classic != nil {
			n++
		}
		if s.consumer {
			n += len(s.members)
		}
		for _, parts := range s.offsets {
			n += len(parts)
		}
	}
	return n
}
