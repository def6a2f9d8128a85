package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// fetchResponse is an encoded Fetch response whose record bytes stay in the
// log's segment files. head holds every other byte of the frame, in order;
// each cut says where one partition's records go. The encoding follows the
// Fetch response schema field by field as kmsg encodes it (tests decode it
// with kmsg and compare it with kmsg's own encoding byte for byte):
//
//	ThrottleMillis int32                                   v1+
//	ErrorCode int16, SessionID int32                       v7+
//	Topics: array of
//	  Topic string (v0–v12) | TopicID uuid (v13+)
//	  Partitions: array of
//	    Partition int32, ErrorCode int16, HighWatermark int64
//	    LastStableOffset int64                            v4+
//	    LogStartOffset int64                              v5+
//	    AbortedTransactions nullable array (always null)  v4+
//	    PreferredReadReplica int32 (always -1)            v11+
//	    RecordBatches nullable bytes (never null)
//	    tagged fields (none)                              v12+
//	  tagged fields (none)                                v12+
//	tagged fields (none)                                  v12+
//
// Arrays, strings and bytes use compact (uvarint length + 1) encodings in
// the flexible versions (v12+), int32/int16 lengths before.
type fetchResponse struct {
	head  *[]byte
	cuts  []fetchCut
	parts []fetchPart // the state's parts, for their regions
	state *fetchState
}

type fetchCut struct {
	at   int // records go after head[:at]
	part int // index into parts
}

func (r *fetchResponse) reset() {
	if r.head != nil {
		putBuf(r.head)
		r.head = nil
	}
	r.cuts = r.cuts[:0]
	r.parts = nil
	r.state = nil
}

func (r *fetchResponse) release() { r.state.release() }

// encode writes the response frame for req's partitions.
func (r *fetchResponse) encode(sl *slot, req *kmsg.FetchRequest, parts []fetchPart) {
	v := req.Version
	flexible := v >= 12
	r.parts = parts
	r.cuts = r.cuts[:0]
	if r.head == nil {
		r.head = getBuf(0)
	}
	b := appendResponseHeader((*r.head)[:0], sl.correlation, sl.headerV1)
	var records int64
	if v >= 1 {
		b = appendInt32(b, 0) // throttle
	}
	if v >= 7 {
		b = appendInt16(b, errNone)
		b = appendInt32(b, 0) // session id: sessions are not kept
	}
	b = appendArrayLen(b, len(req.Topics), flexible)
	pi := 0
	for ti := range req.Topics {
		t := &req.Topics[ti]
		if v <= 12 {
			b = appendString(b, t.Topic, flexible)
		} else {
			b = append(b, t.TopicID[:]...)
		}
		b = appendArrayLen(b, len(t.Partitions), flexible)
		for range t.Partitions {
			p := &parts[pi]
			b = appendInt32(b, p.partition)
			b = appendInt16(b, p.code)
			b = appendInt64(b, p.hw)
			b = appendInt64(b, p.hw) // last stable offset
			if v >= 5 {
				b = appendInt64(b, p.logStart)
			}
			if flexible { // aborted transactions: null
				b = append(b, 0)
			} else {
				b = appendInt32(b, -1)
			}
			if v >= 11 {
				b = appendInt32(b, -1) // preferred read replica
			}
			n := p.res.Bytes
			if flexible {
				b = binary.AppendUvarint(b, uint64(n)+1)
			} else {
				b = appendInt32(b, int32(n))
			}
			if n > 0 {
				r.cuts = append(r.cuts, fetchCut{at: len(b), part: pi})
				records += n
			}
			if flexible {
				b = append(b, 0)
			}
			pi++
		}
		if flexible {
			b = append(b, 0)
		}
	}
	if flexible {
		b = append(b, 0)
	}
	finishFrame(b, 0, records)
	*r.head = b
}

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n)+1)
	}
	return appendInt32(b, int32(n))
}

func appendString(b []byte, s string, flexible bool) []byte {
	if flexible {
		b = binary.AppendUvarint(b, uint64(len(s))+1)
	} else {
		b = appendInt16(b, int16(len(s)))
	}
	return append(b, s...)
}

// sendfileMin is the smallest region sent with sendfile; smaller ones are
// copied into the write buffer with pread, which saves a flush and a
// syscall per region.
const sendfileMin = 16 << 10

// writeFetch writes a fetch response, splicing the record regions in.
func (c *conn) writeFetch(bw *bufio.Writer, sl *slot) error {
	r := sl.fetch
	head := *r.head
	prev := 0
	for _, cut := range r.cuts {
		if _, err := bw.Write(head[prev:cut.at]); err != nil {
			return err
		}
		prev = cut.at
		for _, rg := range r.parts[cut.part].res.Regions {
			if err := c.writeRegion(bw, rg); err != nil {
				return err
			}
		}
	}
	_, err := bw.Write(head[prev:])
	return err
}

// sendfileCalls counts regions sent with sendfile (tests check the path is
// taken).
var sendfileCalls atomic.Int64

var errShortRegion = errors.New("kafka: log region shorter than promised")

// writeRegion writes one file region: with sendfile when both ends have
// descriptors and the region is large, else through the write buffer.
func (c *conn) writeRegion(bw *bufio.Writer, rg log.Region) error {
	if rg.Len >= sendfileMin {
		if fder, ok := rg.File.(vfs.Fder); ok && c.rawConn() != nil {
			if err := bw.Flush(); err != nil {
				return err
			}
			sendfileCalls.Add(1)
			return c.sendfile(int(fder.Fd()), rg.Pos, rg.Len)
		}
	}
	pos, end := rg.Pos, rg.Pos+rg.Len
	for pos < end {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), end-pos)]
		n, err := rg.File.ReadAt(buf, pos)
		if n > 0 {
			if _, werr := bw.Write(buf[:n]); werr != nil {
				return werr
			}
			pos += int64(n)
		}
		if err != nil && pos < end {
			if errors.Is(err, io.EOF) {
				return errShortRegion
			}
			return err
		}
	}
	return nil
}

// sendfileState is the writer's sendfile in progress. It lives in the conn
// with a step function bound once, so a sendfile allocates nothing.
type sendfileState struct {
	raw    syscall.RawConn
	step   func(fd uintptr) bool
	inFd   int
	offset int64
	remain int64
	err    error
}

// rawConn returns the connection's raw descriptor access, or nil if the
// connection has none (then regions are copied). Writer goroutine only.
func (c *conn) rawConn() syscall.RawConn {
	if c.sf.step == nil {
		c.sf.step = c.sendfileStep
		if sc, ok := c.nc.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				c.sf.raw = rc
			}
		}
	}
	return c.sf.raw
}

// sendfile copies n bytes at off of file descriptor fd to the connection,
// waiting for the socket to drain through the runtime poller (so the
// connection's write deadline applies).
func (c *conn) sendfile(fd int, off, n int64) error {
	sf := &c.sf
	sf.inFd, sf.offset, sf.remain, sf.err = fd, off, n, nil
	if err := sf.raw.Write(sf.step); err != nil {
		return err
	}
	return sf.err
}

// sendfileStep is called by RawConn.Write with the socket; false means
// "wait until writable and call again".
func (c *conn) sendfileStep(s uintptr) bool {
	sf := &c.sf
	for sf.remain > 0 {
		w, err := syscall.Sendfile(int(s), sf.inFd, &sf.offset, int(min(sf.remain, 1<<30)))
		if w > 0 {
			sf.remain -= int64(w)
		}
		switch {
		case err == syscall.EAGAIN:
			return false
		case err == syscall.EINTR:
			continue
		case err != nil:
			sf.err = err
			return true
		case w == 0:
			sf.err = errShortRegion
			return true
		}
	}
	return true
}
