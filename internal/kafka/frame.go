package kafka

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Wire layout of a request (all integers big-endian):
//
//	size          int32   bytes that follow; checked against MaxRequestBytes
//	api_key       int16   \
//	api_version   int16    | request header v1 (v0 has no client_id;
//	correlation   int32    | no supported key still uses v0)
//	client_id     int16 length + bytes, -1 = null
//	tagged fields uvarint count, then (uvarint tag, uvarint size, bytes)
//	              ... only in header v2, used by flexible versions
//	body          the request, decoded by kmsg
//
// A response is size int32, correlation int32, then (header v1, flexible
// versions except ApiVersions) an empty tagged-field section, then the body.

// Errors that close a connection. They are logged, never sent.
var (
	errShortHeader = errors.New("kafka: truncated request header")
	errBadTags     = errors.New("kafka: malformed tagged fields in request header")
	errUnsupported = errors.New("kafka: unsupported API key or version")
	errUndecodable = errors.New("kafka: request does not decode")
)

// minHeaderBytes is api_key + api_version + correlation + client_id length.
const minHeaderBytes = 10

// header is a decoded request header.
type header struct {
	key         int16
	version     int16
	correlation int32
	clientID    *string
	// body is the request body: the frame after the header.
	body []byte
}

// parseHeader decodes the request header of frame. flexible reports
// whether the key and version use header v2 (with tagged fields); it is
// called with the key and version once they are read. The client id is
// copied out of the frame; body aliases it.
func parseHeader(frame []byte, flexible func(key, version int16) bool) (header, error) {
	var h header
	if len(frame) < minHeaderBytes {
		return h, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.correlation = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	switch {
	case n == -1:
	case n < -1 || int(n) > len(rest):
		return h, errShortHeader
	default:
		id := string(rest[:n])
		h.clientID = &id
		rest = rest[n:]
	}
	if flexible(h.key, h.version) {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return h, err
		}
	}
	h.body = rest
	return h, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	count, b, ok := uvarint(b)
	if !ok {
		return nil, errBadTags
	}
	for ; count > 0; count-- {
		if _, b, ok = uvarint(b); !ok { // tag
			return nil, errBadTags
		}
		var size uint32
		if size, b, ok = uvarint(b); !ok || uint64(size) > uint64(len(b)) {
			return nil, errBadTags
		}
		b = b[size:]
	}
	return b, nil
}

// uvarint decodes an unsigned varint of at most 5 bytes (a uint32).
func uvarint(b []byte) (uint32, []byte, bool) {
	var v uint32
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, nil, false
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, b[i+1:], true
		}
	}
	return 0, nil, false
}

// flexibleRequest reports whether key at version uses request header v2.
// Unknown keys are treated as non-flexible: the caller rejects them anyway.
func flexibleRequest(key, version int16) bool {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return false
	}
	req.SetVersion(version)
	return req.IsFlexible()
}

// appendResponseHeader starts a response frame: a size placeholder, the
// correlation id and, for header v1, an empty tag section. finishFrame
// fills in the size.
func appendResponseHeader(dst []byte, correlation int32, headerV1 bool) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlation))
	if headerV1 {
		dst = append(dst, 0)
	}
	return dst
}

// finishFrame writes the size of the frame starting at dst[start:].
func finishFrame(dst []byte, start int, extra int64) {
	binary.BigEndian.PutUint32(dst[start:], uint32(int64(len(dst)-start-4)+extra))
}

// responseHeaderV1 reports whether a response to key at version carries
// response header v1. ApiVersions responses always use v0 so that a client
// that does not yet know the broker's versions can read them.
func responseHeaderV1(key int16, flexible bool) bool {
	return flexible && key != int16(kmsg.ApiVersions)
}

// Frame buffers are pooled in power-of-two classes from 1 KiB to 1 MiB;
// larger frames are allocated and left to the garbage collector.
const (
	minPooledShift = 10
	maxPooledShift = 20
)

var bufPools [maxPooledShift - minPooledShift + 1]sync.Pool

// getBuf returns a buffer of length n.
func getBuf(n int) *[]byte {
	shift := minPooledShift
	for shift <= maxPooledShift && 1<<shift < n {
		shift++
	}
	if shift > maxPooledShift {
		b := make([]byte, n)
		return &b
	}
	if p, _ := bufPools[shift-minPooledShift].Get().(*[]byte); p != nil {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// putBuf returns a buffer from getBuf (or any buffer that grew) to its
// pool, or unmaps one of getMappedBuf.
func putBuf(p *[]byte) {
	c := cap(*p)
	if c >= 1<<mappedMinShift && bigFrames.put(p) {
		return
	}
	if c > 1<<maxPooledShift {
		releaseMapped(p)
		return
	}
	if c < 1<<minPooledShift {
		return
	}
	shift := minPooledShift
	for 1<<(shift+1) <= c {
		shift++
	}
	*p = (*p)[:0]
	bufPools[shift-minPooledShift].Put(p)
}
