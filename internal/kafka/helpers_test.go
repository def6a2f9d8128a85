package kafka

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/group"
	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a server with a real broker on a temporary data directory,
// listening on a loopback port.
type testServer struct {
	t      testing.TB
	srv    *Server
	broker *broker.Broker
	groups *group.Coordinator
	addr   string
	served chan error
	closed bool // close ran (tests may close before the cleanup does)
}

type testOptions struct {
	cfg    Config
	bcfg   broker.Config
	wrap   func(*broker.Broker) Backend
	groups bool
}

// withGroups runs a group coordinator (internal/group) beside the broker.
func withGroups() serverOpt {
	return func(o *testOptions) { o.groups = true }
}

type serverOpt func(*testOptions)

func withDurability(d log.Durability) serverOpt {
	return func(o *testOptions) { o.bcfg.DefaultDurability = d }
}

func withServerConfig(f func(*Config)) serverOpt {
	return func(o *testOptions) { f(&o.cfg) }
}

// withSegmentLog runs the broker with segment files holding a second copy
// of the records (--journal-log=false); by default, as in `sluice serve`,
// the journal is the log.
func withSegmentLog(o *testOptions) { o.bcfg.JournalLog = false }

func withFS(fs vfs.FS) serverOpt {
	return func(o *testOptions) { o.bcfg.FS = fs }
}

// withBackend wraps the broker the server talks to.
func withBackend(wrap func(*broker.Broker) Backend) serverOpt {
	return func(o *testOptions) { o.wrap = wrap }
}

func startServer(t testing.TB, opts ...serverOpt) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	o := testOptions{
		bcfg: broker.Config{
			FS: vfs.OS{}, DataDir: t.TempDir(), NodeID: 0, Host: host, Port: int32(port),
			AutoCreateTopics: true, DefaultPartitions: 1, JournalLog: true,
		},
		cfg: Config{NodeID: 0, Host: host, Port: int32(port)},
	}
	for _, opt := range opts {
		opt(&o)
	}
	b, err := broker.Open(o.bcfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	o.cfg.Broker = b
	var coord *group.Coordinator
	if o.groups {
		if coord, err = group.New(group.Config{Store: b.Store(), Topics: b, InitialRebalanceDelay: -1}); err != nil {
			b.Close()
			ln.Close()
			t.Fatal(err)
		}
		o.cfg.Groups = coord
		for _, a := range group.APIs() {
			o.cfg.GroupAPIs = append(o.cfg.GroupAPIs, APIRange{a.Key, a.MinVersion, a.MaxVersion})
		}
	}
	if o.wrap != nil {
		o.cfg.Broker = o.wrap(b)
	}
	srv, err := New(o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, srv: srv, broker: b, groups: coord, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ln) }()
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	if ts.closed {
		return
	}
	ts.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	if err := <-ts.served; err != ErrServerClosed {
		ts.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if ts.groups != nil {
		if err := ts.groups.Close(); err != nil {
			ts.t.Errorf("group close: %v", err)
		}
	}
	if err := ts.broker.Close(); err != nil {
		ts.t.Errorf("broker close: %v", err)
	}
}

// createTopic creates a topic through the protocol.
func (ts *testServer) createTopic(name string, partitions int32) {
	ts.t.Helper()
	c := ts.dial()
	defer c.close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	tp := kmsg.NewCreateTopicsRequestTopic()
	tp.Topic, tp.NumPartitions, tp.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, tp)
	resp := c.request(req).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		ts.t.Fatalf("create topic %s: error code %d", name, code)
	}
}

// client is a raw protocol client over one TCP connection.
type client struct {
	t    testing.TB
	nc   net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func (ts *testServer) dial() *client {
	ts.t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		ts.t.Fatal(err)
	}
	return &client{t: ts.t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("kafka-test"))}
}

func (c *client) close() { c.nc.Close() }

// send writes a request and returns its correlation id.
func (c *client) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	if _, err := c.nc.Write(c.f.AppendRequest(nil, req, c.corr)); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
	return c.corr
}

// readFrame reads one response frame.
func (c *client) readFrame() ([]byte, error) { return c.readFrameInto(nil) }

// readFrameInto reads one response frame into buf if it is large enough.
func (c *client) readFrameInto(buf []byte) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// receive reads the response to req (sent with correlation corr) and
// decodes it with kmsg.
func (c *client) receive(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return c.decode(req, corr, frame)
}

func (c *client) decode(req kmsg.Request, corr int32, frame []byte) kmsg.Response {
	c.t.Helper()
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		var err error
		if body, err = skipTags(body); err != nil {
			c.t.Fatalf("response header tags: %v", err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func (c *client) request(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.receive(req, c.send(req))
}

// expectClosed asserts that the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	if err == nil {
		c.t.Fatalf("connection still open: read %d bytes", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatal("connection not closed within 10s")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// makeBatch builds a record batch v2 with n records whose values are value.
func makeBatch(n int, value []byte) []byte {
	return encodeBatch(n, value, -1, -1, -1, time.Now().UnixMilli())
}

// encodeBatch encodes an uncompressed record batch v2 of n records.
func encodeBatch(n int, value []byte, pid int64, epoch int16, seq int32, ts int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		r = binary.AppendVarint(r, int64(len(value)))
		r = append(r, value...)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, 0, 61+len(recs))
	b = binary.BigEndian.AppendUint64(b, 0)             // base offset
	b = binary.BigEndian.AppendUint32(b, 0)             // length, below
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)    // leader epoch -1
	b = append(b, 2)                                    // magic
	b = binary.BigEndian.AppendUint32(b, 0)             // crc, below
	b = binary.BigEndian.AppendUint16(b, 0)             // attributes
	b = binary.BigEndian.AppendUint32(b, uint32(n-1))   // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(ts))    // first timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(ts))    // max timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(pid))   // producer id
	b = binary.BigEndian.AppendUint16(b, uint16(epoch)) // producer epoch
	b = binary.BigEndian.AppendUint32(b, uint32(seq))   // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(n))     // record count
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
