package reliability

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// wire is a raw Kafka connection: requests are encoded by kmsg, bytes go
// over the socket as the test writes them.
type wire struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

// dialWire connects to addr from 127.0.0.1, or from local if given (any
// 127.0.0.0/8 address works on Linux loopback).
func dialWire(t testing.TB, addr, local string) *wire {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return &wire{t: t, nc: nc}
}

func (w *wire) close() { w.nc.Close() }

func (w *wire) write(b []byte) {
	w.t.Helper()
	w.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.nc.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *wire) frame(req kmsg.Request) []byte {
	w.corr++
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("hostile")).AppendRequest(nil, req, w.corr)
}

// request sends req and decodes its response.
func (w *wire) request(req kmsg.Request) kmsg.Response {
	w.t.Helper()
	w.write(w.frame(req))
	w.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(w.nc, size[:]); err != nil {
		w.t.Fatalf("%s: read response: %v", kmsg.NameForKey(req.Key()), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(w.nc, body); err != nil {
		w.t.Fatalf("%s: read response: %v", kmsg.NameForKey(req.Key()), err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != w.corr {
		w.t.Fatalf("correlation %d, want %d", corr, w.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // empty tagged fields of response header v1
	}
	if req.Key() == int16(kmsg.ApiVersions) && len(body) >= 2 && binary.BigEndian.Uint16(body) != 0 {
		resp.SetVersion(0) // an error answer to ApiVersions is in v0
	}
	if err := resp.ReadFrom(body); err != nil {
		w.t.Fatalf("%s: decode response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed waits up to within for the broker to close the connection
// without sending anything.
func (w *wire) expectClosed(within time.Duration) {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(within))
	var b [1]byte
	n, err := w.nc.Read(b[:])
	switch {
	case n > 0:
		w.t.Fatalf("broker answered (%x...) instead of closing", b[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.t.Fatalf("connection still open after %v", within)
	default:
		w.t.Fatalf("read: %v", err)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordBatch encodes a record batch v2 with one record per value. With
// codec 1 the records are gzip-compressed (rawRecords, if set, replaces
// the encoded records, compressed or not, and count says how many records
// the header claims).
func recordBatch(values [][]byte, codec int16, rawRecords []byte, count int32) []byte {
	recs := rawRecords
	if recs == nil {
		count = int32(len(values))
		for i, v := range values {
			var r []byte
			r = append(r, 0)                     // attributes
			r = binary.AppendVarint(r, 0)        // timestamp delta
			r = binary.AppendVarint(r, int64(i)) // offset delta
			r = binary.AppendVarint(r, -1)       // null key
			r = binary.AppendVarint(r, int64(len(v)))
			r = append(r, v...)
			r = binary.AppendVarint(r, 0) // no headers
			recs = binary.AppendVarint(recs, int64(len(r)))
			recs = append(recs, r...)
		}
		if codec == 1 {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(recs)
			zw.Close()
			recs = buf.Bytes()
		}
	}
	now := time.Now().UnixMilli()
	b := make([]byte, 0, 61+len(recs))
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(49+len(recs)))    // batch length
	b = binary.BigEndian.AppendUint32(b, 0)                       // partition leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, 0)                       // crc, below
	b = binary.BigEndian.AppendUint16(b, uint16(codec))           // attributes
	b = binary.BigEndian.AppendUint32(b, uint32(max(count-1, 0))) // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(now))             // base timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(now))             // max timestamp
	b = binary.BigEndian.AppendUint64(b, ^uint64(0))              // producer id -1
	b = binary.BigEndian.AppendUint16(b, ^uint16(0))              // producer epoch -1
	b = binary.BigEndian.AppendUint32(b, ^uint32(0))              // base sequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(count))           // record count
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceReq(version int16, topic string, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceCode(t testing.TB, w *wire, req *kmsg.ProduceRequest) int16 {
	t.Helper()
	resp := w.request(req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// endOffset is partition 0's end offset of topic.
func endOffset(t testing.TB, w *wire, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := w.request(req).(*kmsg.ListOffsetsResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets %s: error %d", topic, p.ErrorCode)
	}
	return p.Offset
}

// legacyGzipBomb is a Produce v0–v2 message set (magic 1) holding one
// gzip-compressed wrapper message whose value inflates to inflatedMiB MiB
// of zeros: the same small gzip member repeated (gzip readers continue
// across concatenated members).
func legacyGzipBomb(inflatedMiB int) []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	value := bytes.Repeat(member.Bytes(), inflatedMiB)
	var msg []byte
	msg = binary.BigEndian.AppendUint32(msg, 0) // crc, below
	msg = append(msg, 1, 1)                     // magic 1, gzip
	msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixMilli()))
	msg = binary.BigEndian.AppendUint32(msg, ^uint32(0)) // null key
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(value)))
	msg = append(msg, value...)
	binary.BigEndian.PutUint32(msg, crc32.ChecksumIEEE(msg[4:]))
	var set []byte
	set = binary.BigEndian.AppendUint64(set, 0)
	set = binary.BigEndian.AppendUint32(set, uint32(len(msg)))
	return append(set, msg...)
}

// gzipZeros is gzip of mib MiB of zeros, as repeated members.
func gzipZeros(mib int) []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), mib)
}

// v2GzipBomb is the gzip payload of one record v2 whose value is mib MiB of
// zeros, its framing valid throughout: a member holding the record's
// length and fields up to the value's length, mib members of 1 MiB of
// zeros, and a member holding the header count (0).
func v2GzipBomb(mib int) []byte {
	size := int64(mib) << 20
	body := []byte{0, 0, 0}              // attributes, timestamp delta, offset delta
	body = binary.AppendVarint(body, -1) // null key
	body = binary.AppendVarint(body, size)
	head := binary.AppendVarint(nil, int64(len(body))+size+1)
	head = append(head, body...)
	out := gzipMember(head)
	out = append(out, gzipZeros(mib)...)
	return append(out, gzipMember([]byte{0})...)
}

func gzipMember(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
