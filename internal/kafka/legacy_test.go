package kafka

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyMessage encodes one legacy message (magic 0 or 1) at offset.
func legacyMessage(offset int64, magic, attrs byte, ts int64, key, value []byte) []byte {
	body := []byte{magic, attrs}
	if magic == 1 {
		body = binary.BigEndian.AppendUint64(body, uint64(ts))
	}
	for _, b := range [][]byte{key, value} {
		if b == nil {
			body = binary.BigEndian.AppendUint32(body, 0xffffffff)
			continue
		}
		body = binary.BigEndian.AppendUint32(body, uint32(len(b)))
		body = append(body, b...)
	}
	msg := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	msg = append(msg, body...)
	out := binary.BigEndian.AppendUint64(nil, uint64(offset))
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	return append(out, msg...)
}

func legacySet(magic byte, n int, prefix string, ts int64) []byte {
	var set []byte
	for i := 0; i < n; i++ {
		var key []byte
		if i%2 == 0 {
			key = []byte(fmt.Sprintf("%s-k%d", prefix, i))
		}
		set = append(set, legacyMessage(int64(i), magic, 0, ts+int64(i), key, []byte(fmt.Sprintf("%s-v%d", prefix, i)))...)
	}
	return set
}

func compress(t testing.TB, codec byte, data []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case 2: // xerial framing, as Java clients send
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(data) > 0 {
			n := min(len(data), 100)
			block := snappy.Encode(nil, data[:n])
			binary.Write(&buf, binary.BigEndian, int32(len(block)))
			buf.Write(block)
			data = data[n:]
		}
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(data)
		w.Close()
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// TestProduceLegacyMessageSets: Produce v0–v2 with magic 0 and 1 message
// sets, plain and compressed, are stored as record batches v2 that a modern
// consumer reads back with keys, values and (magic 1) timestamps intact.
func TestProduceLegacyMessageSets(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("legacy", 1)
	c := ts.dial()
	defer c.close()
	base := time.Now().Add(-time.Hour).UnixMilli()
	type sent struct {
		prefix string
		n      int
		magic  byte
	}
	var all []sent
	i := 0
	for _, magic := range []byte{0, 1} {
		for _, codec := range []byte{0, 1, 2, 3} {
			prefix := fmt.Sprintf("m%dc%d", magic, codec)
			set := legacySet(magic, 5, prefix, base)
			if codec != 0 {
				set = legacyMessage(4, magic, codec, base+4, nil, compress(t, codec, set))
			}
			v := int16(i % 3)
			i++
			resp := c.request(produceRequest(v, -1, "legacy", 0, set)).(*kmsg.ProduceResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("%s via v%d: error %d", prefix, v, code)
			}
			all = append(all, sent{prefix, 5, magic})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumeTopics("legacy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < 40 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 40", len(got))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		got = append(got, fs.Records()...)
	}
	for si, s := range all {
		for j := 0; j < s.n; j++ {
			r := got[si*5+j]
			if want := fmt.Sprintf("%s-v%d", s.prefix, j); string(r.Value) != want {
				t.Fatalf("record %d: value %q, want %q", si*5+j, r.Value, want)
			}
			wantKey := []byte(nil)
			if j%2 == 0 {
				wantKey = []byte(fmt.Sprintf("%s-k%d", s.prefix, j))
			}
			if !bytes.Equal(r.Key, wantKey) || (wantKey == nil) != (r.Key == nil) {
				t.Fatalf("record %d: key %q, want %q", si*5+j, r.Key, wantKey)
			}
			if s.magic == 1 && r.Timestamp.UnixMilli() != base+int64(j) {
				t.Fatalf("record %d: timestamp %d, want %d", si*5+j, r.Timestamp.UnixMilli(), base+int64(j))
			}
		}
	}
}

func TestProduceLegacyErrors(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("legacy-e", 1)
	c := ts.dial()
	defer c.close()
	badCRC := legacySet(1, 3, "x", 0)
	badCRC[len(badCRC)-1] ^= 1
	bomb := legacyMessage(0, 1, 1, 0, nil, compress(t, 1, legacyMessage(0, 1, 0, 0, nil, make([]byte, 4<<20))))
	nested := legacyMessage(0, 1, 1, 0, nil, compress(t, 1, legacyMessage(0, 1, 1, 0, nil, compress(t, 1, legacySet(1, 1, "n", 0)))))
	truncated := legacySet(1, 2, "t", 0)
	truncated = truncated[:len(truncated)-3]
	for _, tc := range []struct {
		name    string
		version int16
		set     []byte
		code    int16
	}{
		{"bad crc", 2, badCRC, errCorruptMessage},
		{"decompression bomb", 2, bomb, errMessageTooLarge},
		{"nested compression", 1, nested, errCorruptMessage},
		{"truncated", 0, truncated, errCorruptMessage},
		{"legacy set on v3", 3, legacySet(1, 1, "v3", 0), errUnsupportedForMessageFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.request(produceRequest(tc.version, -1, "legacy-e", 0, tc.set)).(*kmsg.ProduceResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != tc.code {
				t.Fatalf("error %d, want %d", code, tc.code)
			}
		})
	}
	part, _ := ts.broker.Partition("legacy-e", 0)
	if n := part.Log().NextOffset(); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

type legacyMsg struct {
	offset     int64
	magic      byte
	ts         int64
	key, value []byte
}

// parseLegacyMessages decodes an uncompressed legacy message set, checking
// every CRC.
func parseLegacyMessages(t *testing.T, set []byte) []legacyMsg {
	t.Helper()
	var out []legacyMsg
	for len(set) >= 12 {
		size := int(binary.BigEndian.Uint32(set[8:]))
		if size > len(set)-12 {
			break
		}
		m := legacyMsg{offset: int64(binary.BigEndian.Uint64(set))}
		msg := set[12 : 12+size]
		set = set[12+size:]
		if crc32.ChecksumIEEE(msg[4:]) != binary.BigEndian.Uint32(msg) {
			t.Fatalf("message at offset %d: bad CRC", m.offset)
		}
		m.magic = msg[4]
		body := msg[6:]
		if m.magic == 1 {
			m.ts = int64(binary.BigEndian.Uint64(body))
			body = body[8:]
		}
		var ok bool
		if m.key, body, ok = legacyBytes(body); !ok {
			t.Fatal("bad key")
		}
		if m.value, _, ok = legacyBytes(body); !ok {
			t.Fatal("bad value")
		}
		out = append(out, m)
	}
	return out
}

// TestFetchDownConversion: Fetch v0–v3 get legacy message sets (magic 0 for
// v0–v1, 1 for v2–v3) converted from batches produced under every codec,
// starting at the fetch offset, with keys, values and timestamps.
func TestFetchDownConversion(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("down", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	n := 0
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("down"))
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for i := 0; i < 20; i++ {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("v%d", n)), Timestamp: base.Add(time.Duration(n) * time.Millisecond),
				Headers: []kgo.RecordHeader{{Key: "dropped", Value: []byte("x")}}}
			if n%3 != 0 {
				r.Key = []byte(fmt.Sprintf("k%d", n))
			}
			recs = append(recs, r)
			n++
		}
		err = cl.ProduceSync(ctx, recs...).FirstErr()
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := ts.dial()
	defer c.close()
	for v := int16(0); v <= 3; v++ {
		for _, from := range []int64{0, 7, 55} {
			resp := c.request(fetchRequest(v, "down", 0, from, 0, 0)).(*kmsg.FetchResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != int64(n) {
				t.Fatalf("v%d: error %d hw %d", v, p.ErrorCode, p.HighWatermark)
			}
			msgs := parseLegacyMessages(t, p.RecordBatches)
			if len(msgs) != n-int(from) {
				t.Fatalf("v%d from %d: %d messages, want %d", v, from, len(msgs), n-int(from))
			}
			wantMagic := byte(0)
			if v >= 2 {
				wantMagic = 1
			}
			for i, m := range msgs {
				o := from + int64(i)
				if m.offset != o || m.magic != wantMagic || string(m.value) != fmt.Sprintf("v%d", o) {
					t.Fatalf("v%d: message %d: offset %d magic %d value %q", v, i, m.offset, m.magic, m.value)
				}
				if wantKey := fmt.Sprintf("k%d", o); (o%3 == 0) != (m.key == nil) || (m.key != nil && string(m.key) != wantKey) {
					t.Fatalf("v%d: offset %d: key %q", v, o, m.key)
				}
				if wantMagic == 1 && m.ts != base.UnixMilli()+o {
					t.Fatalf("v%d: offset %d: timestamp %d, want %d", v, o, m.ts, base.UnixMilli()+o)
				}
			}
		}
	}
}

// TestProduceLegacyMagic0Timestamp: magic 0 messages carry no timestamp and
// get the server clock's receive time.
func TestProduceLegacyMagic0Timestamp(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	ts := startServer(t, withServerConfig(func(c *Config) { c.Clock = func() time.Time { return at } }))
	ts.createTopic("m0", 1)
	c := ts.dial()
	defer c.close()
	resp := c.request(produceRequest(0, 1, "m0", 0, legacySet(0, 2, "z", 0))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("error %d", code)
	}
	fr := c.request(fetchRequest(11, "m0", 0, 0, 0, 0)).(*kmsg.FetchResponse)
	batches := decodeBatches(t, fr.Topics[0].Partitions[0].RecordBatches)
	if len(batches) != 1 || batches[0].FirstTimestamp != at.UnixMilli() || batches[0].NumRecords != 2 {
		t.Fatalf("batches %+v", batches)
	}
}
