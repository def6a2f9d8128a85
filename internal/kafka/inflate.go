package kafka

// Streaming decompression of record batch v2 payloads, shared by produce
// validation (validate.go) and Fetch v0–v3 down-conversion
// (fetch_legacy.go). An inflater holds one decoder per codec, reset for
// each batch and pooled between requests, so that inflating a batch costs
// no decoder allocation once warm, and its buffers stay the same size
// whatever the batch inflates to:
//
//	gzip    compress/gzip (flate: 32 KiB window)
//	snappy  one block at a time (raw snappy is one block; the xerial
//	        framing Java clients use is a series of blocks), each block's
//	        declared decoded length checked against the budget before its
//	        buffer is taken
//	lz4     pierrec/lz4 frames (block buffers of at most 4 MiB, pooled
//	        by that package)
//	zstd    klauspost/compress, synchronous (no goroutines), low-memory,
//	        window and frame size bounded by the budget
//
// Readers hand out decompressed bytes through a bufio.Reader of 16 KiB.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/klauspost/compress/gzip"
	"io"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var (
	errInflateCorrupt = errors.New("kafka: compressed records do not decompress")
	errInflateTooBig  = errors.New("kafka: compressed records inflate beyond the limit")
	errInflateCodec   = errors.New("kafka: unknown compression codec")
)

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to
// keep. Kafka's clients use windows of a few MiB at most.
const zstdMaxWindow = 64 << 20

type inflater struct {
	src  bytes.Reader
	gz   *gzip.Reader
	lz   *lz4.Reader
	zs   *zstd.Decoder
	sn   snappyReader
	lim  io.LimitedReader
	br   *bufio.Reader
	open bool // the zstd decoder holds a stream to reset away
}

var inflaterPool = sync.Pool{New: func() any { return &inflater{br: bufio.NewReaderSize(nil, 16<<10)} }}

// getInflater returns a pooled inflater; release it with putInflater.
func getInflater() *inflater { return inflaterPool.Get().(*inflater) }

func putInflater(z *inflater) {
	z.src.Reset(nil)
	z.br.Reset(nil)
	z.lim = io.LimitedReader{}
	z.sn.reset(nil, 0)
	if z.open {
		z.zs.Reset(nil)
		z.open = false
	}
	inflaterPool.Put(z)
}

// reader returns a buffered reader of data decompressed with codec (1 gzip,
// 2 snappy, 3 lz4, 4 zstd), which ends (io.EOF) after at most limit bytes;
// snappy blocks declaring more are refused before they are decoded. The
// reader is valid until the next call or putInflater.
func (z *inflater) reader(codec uint16, data []byte, limit int) (*bufio.Reader, error) {
	z.src.Reset(data)
	var r io.Reader
	switch codec {
	case 1:
		if z.gz == nil {
			gz, err := gzip.NewReader(&z.src)
			if err != nil {
				return nil, errInflateCorrupt
			}
			z.gz = gz
		} else if err := z.gz.Reset(&z.src); err != nil {
			return nil, errInflateCorrupt
		}
		r = z.gz
	case 2:
		z.sn.reset(data, limit)
		r = &z.sn
	case 3:
		if z.lz == nil {
			z.lz = lz4.NewReader(&z.src)
		} else {
			z.lz.Reset(&z.src)
		}
		r = z.lz
	case 4:
		if z.zs == nil {
			zs, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
			if err != nil {
				return nil, errInflateCorrupt
			}
			z.zs = zs
		}
		if err := z.zs.Reset(&z.src); err != nil {
			return nil, errInflateCorrupt
		}
		z.open = true
		r = z.zs
	default:
		return nil, errInflateCodec
	}
	z.lim = io.LimitedReader{R: r, N: int64(limit)}
	z.br.Reset(&z.lim)
	return z.br, nil
}

// snappyReader reads raw snappy (one block) or xerial-framed snappy (magic,
// two version ints, then int32-length-prefixed blocks), one decoded block
// at a time in a pooled buffer.
type snappyReader struct {
	data   []byte
	budget int // bytes the blocks still to decode may declare
	xerial bool
	first  bool
	buf    *[]byte
	out    []byte // decoded bytes not yet read
	err    error
}

func (s *snappyReader) reset(data []byte, budget int) {
	if s.buf != nil {
		putBuf(s.buf)
	}
	*s = snappyReader{data: data, budget: budget, first: true}
	if bytes.HasPrefix(data, xerialMagic) {
		s.xerial = true
		if len(data) < 16 {
			s.err = errInflateCorrupt
		}
		s.data = data[min(16, len(data)):]
	}
}

func (s *snappyReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.next()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// next decodes the next block into s.out, or returns io.EOF.
func (s *snappyReader) next() error {
	var block []byte
	switch {
	case !s.xerial && s.first:
		block, s.data = s.data, nil
	case !s.xerial || len(s.data) == 0:
		return io.EOF
	default:
		if len(s.data) < 4 {
			return errInflateCorrupt
		}
		n := int(int32(binary.BigEndian.Uint32(s.data)))
		if n < 0 || n > len(s.data)-4 {
			return errInflateCorrupt
		}
		block, s.data = s.data[4:4+n], s.data[4+n:]
	}
	s.first = false
	n, err := snappy.DecodedLen(block)
	if err != nil || n < 0 {
		return errInflateCorrupt
	}
	if n > s.budget {
		return errInflateTooBig
	}
	s.budget -= n
	if s.buf == nil || cap(*s.buf) < n {
		if s.buf != nil {
			putBuf(s.buf)
		}
		s.buf = getBuf(n)
	}
	out, err := snappy.Decode((*s.buf)[:cap(*s.buf)], block)
	if err != nil {
		return errInflateCorrupt
	}
	s.out = out
	return nil
}
