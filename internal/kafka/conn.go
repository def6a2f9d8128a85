package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var errTooManyFiles = syscall.EMFILE

// conn is one client connection: a reader goroutine (serve, then readLoop)
// and a writer goroutine (writeLoop) joined by the in-order slot queue.
type conn struct {
	s  *Server
	nc net.Conn
	ip string

	// ctx is cancelled when the connection fails or the server shuts down;
	// waiting handlers (long polls, group waits) return early. Made with
	// the first request (startWriter), like the writer: an idle
	// connection holds no context. cancel is nil until then.
	ctx    context.Context
	cancel context.CancelFunc

	// queue carries started requests, in the order read, to the writer;
	// writerDone is closed when the writer exits. Both are made with the
	// first request (see startWriter).
	queue      chan *slot
	writerDone chan struct{}
	stop       atomic.Bool // set by Server.Shutdown: read no more requests

	sf sendfileState // owned by the writer

	sizeBuf       [4]byte // owned by the reader
	writerStarted bool    // owned by the reader: the writer starts with the first request

	groupOnce sync.Once
	groupQ    chan groupJob
	handlers  sync.WaitGroup // goroutines started for requests of this connection
}

// connLogger is the server's logger with the connection's address. Built
// on demand: most connections never log, and an idle connection should
// hold as little as possible.
func (c *conn) connLogger() *slog.Logger {
	return c.s.cfg.Logger.With("remote", c.nc.RemoteAddr().String())
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	return &conn{
		s:  s,
		nc: nc,
		ip: ip,
	}
}

// slot is one request's place in the response order. Exactly one of its
// completion paths calls complete, once; the writer then writes and
// recycles it.
type slot struct {
	correlation int32
	key         int16
	version     int16
	headerV1    bool

	done chan struct{} // capacity 1; signalled by complete

	// Filled by the handler before complete:
	resp       kmsg.Response // encoded by the writer
	fetch      *fetchResponse
	produce    *produceWait
	noResponse bool // acks=0 produce: nothing is written
	closeConn  bool // close the connection after this slot
	frame      *[]byte

	started time.Time // set only when debug logging is on
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

var slotPool = sync.Pool{New: func() any { return &slot{done: make(chan struct{}, 1)} }}

func newSlot(h *header, headerV1 bool) *slot {
	sl := slotPool.Get().(*slot)
	sl.correlation, sl.key, sl.version, sl.headerV1 = h.correlation, h.key, h.version, headerV1
	return sl
}

func (sl *slot) complete() { sl.done <- struct{}{} }

// respond completes sl with resp.
func (sl *slot) respond(resp kmsg.Response) {
	sl.resp = resp
	sl.complete()
}

// releaseFrame gives the request's frame back before the slot completes,
// for a handler that is done with the request's bytes early.
func (sl *slot) releaseFrame() {
	if sl.frame != nil {
		putBuf(sl.frame)
		sl.frame = nil
	}
}

func (sl *slot) recycle() {
	if sl.frame != nil {
		putBuf(sl.frame)
	}
	done := sl.done
	*sl = slot{done: done}
	slotPool.Put(sl)
}

func (c *conn) serve() {
	defer c.s.connDone(c)
	c.readLoop()
	if c.writerStarted {
		close(c.queue)
		<-c.writerDone
	}
	c.handlers.Wait()
	c.cancelCtx()
	c.nc.Close()
}

// stopReading makes the reader stop before the next request; requests
// already started are answered.
func (c *conn) stopReading() {
	c.stop.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// abort closes the connection at once: the reader stops, the writer
// discards what is left.
func (c *conn) abort() {
	c.cancelCtx()
	c.nc.Close()
}

func (c *conn) readLoop() {
	cfg := &c.s.cfg
	for {
		if c.stop.Load() {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		if c.stop.Load() { // Shutdown raced with the deadline above
			return
		}
		if _, err := io.ReadFull(c.nc, c.sizeBuf[:]); err != nil {
			c.readFailed("read request size", err)
			return
		}
		size := int32(binary.BigEndian.Uint32(c.sizeBuf[:]))
		if !frameSizeOK(size, cfg.MaxRequestBytes) {
			c.warnClosing("closing connection: request size out of range", "size", size, "max", cfg.MaxRequestBytes)
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(cfg.FrameTimeout))
		// Read the API key before allocating: only Produce may use the
		// full request size. Other requests decode into structures up to
		// ~15 times their wire size, so their frames are held smaller.
		if _, err := io.ReadFull(c.nc, c.sizeBuf[:2]); err != nil {
			c.readFailed("read request key", err)
			return
		}
		key := int16(binary.BigEndian.Uint16(c.sizeBuf[:2]))
		if key != int16(kmsg.Produce) && size > cfg.MaxNonProduceRequestBytes {
			c.warnClosing("closing connection: request size out of range", "key", key, "size", size, "max", cfg.MaxNonProduceRequestBytes)
			return
		}
		// Produce frames beyond the pooled sizes are read outside the Go heap
		// (a Produce handler keeps no reference to its frame once the
		// response is written, so it can be unmapped then).
		frame, err := readFrame(c.nc, int(size), c.sizeBuf[:2], key == int16(kmsg.Produce))
		if err != nil {
			c.readFailed("read request", err)
			return
		}
		if !c.dispatch(frame) {
			return
		}
	}
}

// frameChunk is how much of a request frame is allocated before its bytes
// arrive. A larger frame's buffer grows (doubling) as they do, so a client
// that announces 100 MiB and sends a few bytes pins 64 KiB, not 100 MiB:
// memory follows the bytes actually received. Requests up to 64 KiB
// (nearly all but large produce requests) are read in one piece as before;
// a larger produce frame costs a few extra copies.
const frameChunk = 64 << 10

// readFrame reads the rest of a request frame of size bytes whose first
// bytes (prefix) are already read. With mapped set (Produce frames) a frame
// over frameChunk goes to a mapping of its announced size (bigframe.go),
// or, if that is refused, to one grown in place (frame_mmap.go); other
// frames to getBuf buffers grown by doubling. putBuf releases any of them.
func readFrame(r io.Reader, size int, prefix []byte, mapped bool) (*[]byte, error) {
	if mapped && size > frameChunk {
		// In one piece, at the announced size, in a reused mapping
		// (bigframe.go): resident only as far as the bytes reached.
		if frame := bigFrames.get(size); frame != nil {
			copy(*frame, prefix)
			if _, err := io.ReadFull(r, (*frame)[len(prefix):]); err != nil {
				putBuf(frame)
				return nil, err
			}
			return frame, nil
		}
		if size > maxPooledBuf {
			if frame, err, ok := readGrowingMappedFrame(r, size, prefix); ok {
				return frame, err
			}
		}
	}
	frame := getBuf(min(size, frameChunk))
	copy(*frame, prefix)
	got := len(prefix)
	for {
		if _, err := io.ReadFull(r, (*frame)[got:]); err != nil {
			putBuf(frame)
			return nil, err
		}
		got = len(*frame)
		if got == size {
			return frame, nil
		}
		next := getBuf(min(size, 2*got))
		copy(*next, *frame)
		putBuf(frame)
		frame = next
	}
}

// readGrowingMappedFrame is readFrame in anonymous memory outside the Go
// heap (frame_mmap.go), grown by doubling in place (mremap) as bytes
// arrive: the fallback where a mapping of the whole announced size is
// refused. ok is false if no memory could be mapped; the caller then uses
// the heap.
func readGrowingMappedFrame(r io.Reader, size int, prefix []byte) (frame *[]byte, err error, ok bool) {
	frame = getMappedBuf(min(size, frameChunk))
	if frame == nil {
		return nil, nil, false
	}
	copy(*frame, prefix)
	got := len(prefix)
	for {
		if _, err := io.ReadFull(r, (*frame)[got:]); err != nil {
			putBuf(frame)
			return nil, err, true
		}
		got = len(*frame)
		if got == size {
			return frame, nil, true
		}
		if !growMappedBuf(frame, min(size, 2*got)) {
			putBuf(frame)
			return nil, errNoMemory, true
		}
	}
}

// warnBurst is how many warnings about connections closed for bad input
// are logged per second; the rest are counted and the count is reported
// with the next warning logged. Each costs the client only a connection,
// so unlimited they would let anyone flood the log.
const warnBurst = 10

// warnLimiter lets warnBurst warnings a second through.
type warnLimiter struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

// allow reports whether a warning may be logged at now and, if so, how
// many were suppressed since the last one logged.
func (l *warnLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= warnBurst {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// warnClosing logs why the connection is being closed for its input,
// within the server's warning rate.
func (c *conn) warnClosing(msg string, args ...any) {
	ok, suppressed := c.s.closeWarnings.allow(time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed_warnings", suppressed)
	}
	c.connLogger().Warn(msg, args...)
}

// readFailed logs why reading stopped. Unless the server is shutting down
// (then in-flight requests finish), the client is gone or misbehaving, so
// waiting requests (long polls, group waits) are cancelled: their answers
// could not be delivered anyway.
func (c *conn) readFailed(what string, err error) {
	if c.stop.Load() {
		return
	}
	c.cancelCtx()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.connLogger().Debug("closing idle or stalled connection", "during", what)
		return
	}
	c.connLogger().Debug("connection read failed", "during", what, "err", err)
}

// dispatch decodes and starts one request. It returns false when the
// connection must be closed.
func (c *conn) dispatch(frame *[]byte) bool {
	d, err := c.s.versions.decode(*frame)
	if err != nil {
		putBuf(frame)
		c.warnClosing("closing connection: "+err.Error(), "key", d.h.key, "version", d.h.version, "client", derefOr(d.h.clientID, ""))
		return false
	}
	if d.api == nil {
		// KIP-511: an ApiVersions version above the highest served is
		// answered in v0 with the supported versions so the client can
		// retry with one of them.
		sl := newSlot(&d.h, false)
		sl.version = 0
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = errUnsupportedVersion
		resp.ApiKeys = c.s.apiKeys
		putBuf(frame)
		sl.respond(resp)
		c.startWriter()
		c.queue <- sl
		return true
	}
	sl := newSlot(&d.h, responseHeaderV1(d.h.key, d.req.IsFlexible()))
	if c.s.debug {
		sl.started = time.Now()
	}
	if d.api.keepsFrame {
		// The decoded request aliases the frame (records); the handler
		// is done with it when the slot completes.
		sl.frame = frame
	}
	// A frame that is not kept may still be aliased by []byte fields of
	// the request (group metadata, assignments) that their handlers
	// retain; it is left to the garbage collector.
	c.startWriter()
	d.api.handle(c, sl, d.req, &d.h)
	c.queue <- sl
	return true
}

// cancelCtx cancels the connection's context, if made yet. Reader, or
// after the first request.
func (c *conn) cancelCtx() {
	if c.cancel != nil {
		c.cancel()
	}
}

// startWriter starts the writer and its queue, and makes the context,
// with the connection's first request: a connection that never sends one
// costs no writer goroutine, no queue and no context. Reader only.
func (c *conn) startWriter() {
	if !c.writerStarted {
		c.writerStarted = true
		c.ctx, c.cancel = context.WithCancel(c.s.ctx)
		c.queue = make(chan *slot, maxInFlight)
		c.writerDone = make(chan struct{})
		go c.writeLoop()
	}
}

// decoded is a decoded request frame.
type decoded struct {
	h   header
	api *api         // nil for an ApiVersions version above the served range
	req kmsg.Request // nil when api is nil
}

// decode parses a request frame (without its size prefix): the header, the
// API key and version against what is served, and the body with kmsg. An
// error means the connection must be closed.
func (t versionTable) decode(frame []byte) (decoded, error) {
	var d decoded
	var err error
	if d.h, err = parseHeader(frame, flexibleRequest); err != nil {
		return d, err
	}
	if d.h.key == int16(kmsg.ApiVersions) && !t.supports(d.h.key, d.h.version) && d.h.version >= 0 {
		return d, nil
	}
	d.api = t.lookup(d.h.key)
	if d.api == nil || d.h.version < d.api.min || d.h.version > d.api.max {
		return d, errUnsupported
	}
	d.req = kmsg.RequestForKey(d.h.key)
	d.req.SetVersion(d.h.version)
	if err := d.req.ReadFrom(d.h.body); err != nil {
		return d, fmt.Errorf("%w: %s v%d: %v", errUndecodable, kmsg.NameForKey(d.h.key), d.h.version, err)
	}
	return d, nil
}

// frameSizeOK reports whether a request size prefix is acceptable.
func frameSizeOK(size, max int32) bool { return size >= minHeaderBytes && size <= max }

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// writeLoop writes responses in request order. After a write error it
// keeps draining the queue (so that every slot is completed and recycled)
// without writing.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	// The write buffer is taken from a pool while there are responses to
	// write and given back whenever the writer waits, so idle connections
	// hold none.
	var bw *bufio.Writer
	failed := false
	flush := func() {
		if bw == nil {
			return
		}
		if !failed && bw.Buffered() > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if err := bw.Flush(); err != nil {
				c.writeFailed(err)
				failed = true
			}
		}
		bw.Reset(nil)
		writerPool.Put(bw)
		bw = nil
	}
	for {
		var sl *slot
		var ok bool
		select {
		case sl, ok = <-c.queue:
		default:
			flush()
			sl, ok = <-c.queue
		}
		if !ok {
			flush()
			return
		}
		select {
		case <-sl.done:
		default:
			flush()
			<-sl.done
		}
		if bw == nil {
			bw = writerPool.Get().(*bufio.Writer)
			bw.Reset(c.nc)
		}
		if !failed && !sl.noResponse {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if err := c.writeSlot(bw, sl); err != nil {
				c.writeFailed(err)
				failed = true
			}
		}
		if c.s.debug && !sl.started.IsZero() {
			c.connLogger().Debug("request served", "key", kmsg.NameForKey(sl.key), "version", sl.version,
				"correlation", sl.correlation, "took", time.Since(sl.started), "answered", !sl.noResponse && !failed)
		}
		if sl.closeConn && !failed {
			flush()
			failed = true
			c.abort()
		}
		if sl.fetch != nil {
			sl.fetch.release()
		}
		sl.recycle()
	}
}

func (c *conn) writeFailed(err error) {
	if !errors.Is(err, net.ErrClosed) {
		c.connLogger().Debug("connection write failed", "err", err)
	}
	c.abort()
}

func (c *conn) writeSlot(bw *bufio.Writer, sl *slot) error {
	if sl.produce != nil {
		sl.produce.finish()
	}
	if sl.fetch != nil {
		return c.writeFetch(bw, sl)
	}
	buf := getBuf(0)
	b := appendResponseHeader((*buf)[:0], sl.correlation, sl.headerV1)
	sl.resp.SetVersion(sl.version)
	b = sl.resp.AppendTo(b)
	finishFrame(b, 0, 0)
	_, err := bw.Write(b)
	*buf = b
	putBuf(buf)
	return err
}

// groupJob is a group request waiting on the connection's group lane.
type groupJob struct {
	sl  *slot
	req kmsg.Request
}

// handleGroup routes a group request to the coordinator: JoinGroup and
// SyncGroup (which wait for a rebalance) on their own goroutine, the rest
// in order on the connection's group lane.
func handleGroup(c *conn, sl *slot, req kmsg.Request, _ *header) {
	switch req.Key() {
	case int16(kmsg.JoinGroup), int16(kmsg.SyncGroup):
		c.handlers.Add(1)
		go func() {
			defer c.handlers.Done()
			c.runGroup(sl, req)
		}()
		return
	}
	c.groupOnce.Do(func() {
		c.groupQ = make(chan groupJob, maxInFlight+2)
		c.handlers.Add(1)
		go c.groupLane()
	})
	c.groupQ <- groupJob{sl, req}
}

func (c *conn) groupLane() {
	defer c.handlers.Done()
	for {
		select {
		case j := <-c.groupQ:
			c.runGroup(j.sl, j.req)
		case <-c.writerDone:
			// Every slot has completed, so no job is left queued.
			return
		}
	}
}

func (c *conn) runGroup(sl *slot, req kmsg.Request) {
	resp, err := c.s.cfg.Groups.Handle(c.ctx, req)
	if err != nil || resp == nil {
		if c.ctx.Err() == nil {
			c.connLogger().Warn("closing connection: group request failed", "key", kmsg.NameForKey(req.Key()), "err", err)
		}
		sl.noResponse, sl.closeConn = true, true
		sl.complete()
		return
	}
	sl.respond(resp)
}
