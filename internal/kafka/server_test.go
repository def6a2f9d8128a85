package kafka

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestAPIVersionsAllVersions(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "sluice-test", "1.0.0"
		resp := c.request(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for key, want := range map[kmsg.Key][2]int16{
			kmsg.Produce: {0, 13}, kmsg.Fetch: {0, 16}, kmsg.Metadata: {0, 13},
			kmsg.ApiVersions: {0, 4}, kmsg.ListOffsets: {0, 10}, kmsg.FindCoordinator: {0, 6},
		} {
			if got[int16(key)] != want {
				t.Errorf("v%d: %s advertised %v, want %v", v, kmsg.NameForKey(int16(key)), got[int16(key)], want)
			}
		}
		if _, ok := got[int16(kmsg.JoinGroup)]; ok {
			t.Errorf("v%d: JoinGroup advertised without a group coordinator", v)
		}
	}
}

// TestAPIVersionsUnsupported: KIP-511 — a version above the highest served
// gets a v0 response with UNSUPPORTED_VERSION and the key list.
func TestAPIVersionsUnsupported(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 5 // above the served 4; header v2 like v3+
	corr := c.send(req)
	frame, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		t.Fatalf("correlation %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(frame[4:]); err != nil {
		t.Fatalf("decode as v0: %v", err)
	}
	if resp.ErrorCode != errUnsupportedVersion || len(resp.ApiKeys) == 0 {
		t.Fatalf("got error %d with %d keys, want 35 with the key list", resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection stays usable.
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "x", "1"
	if r := c.request(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("retry at v3: error %d", r.ErrorCode)
	}
}

func TestAPIVersionsInvalidSoftwareName(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "-bad name", "1.0"
	if r := c.request(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != errInvalidRequest {
		t.Fatalf("error %d, want INVALID_REQUEST", r.ErrorCode)
	}
}

func TestClosesConnection(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.MaxRequestBytes, c.MaxNonProduceRequestBytes = 1<<20, 64<<10 }))
	frameOf := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
	}
	unsupported := kmsg.NewPtrMetadataRequest()
	unsupported.Version = 14
	fetchV17 := kmsg.NewPtrFetchRequest()
	fetchV17.Version = 17
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"2 GiB size", []byte{0x7f, 0xff, 0xff, 0xff}},
		{"request too large", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"non-produce request too large", append(binary.BigEndian.AppendUint32(nil, 64<<10+1), 0, 3)},
		{"size below header", []byte{0, 0, 0, 4, 0, 0, 0, 0}},
		{"unsupported version", frameOf(unsupported)},
		{"above max version (Fetch v17)", frameOf(fetchV17)},
		{"unknown api key", func() []byte {
			b := binary.BigEndian.AppendUint32(nil, 10)
			return append(b, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff)
		}()},
		{"not in kmsg or served (LeaderAndIsr)", func() []byte {
			r := kmsg.NewPtrLeaderAndISRRequest()
			return frameOf(r)
		}()},
		{"truncated body", func() []byte {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 1
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("abc")}}
			b := frameOf(req)
			b = b[:len(b)-2]
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}()},
		{"TLS ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
		{"HTTP GET", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial()
			defer c.close()
			if _, err := c.nc.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			c.expectClosed()
		})
	}
}

func TestPartialFrameTimesOut(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.FrameTimeout = 100 * time.Millisecond }))
	c := ts.dial()
	defer c.close()
	// A size promising 100 bytes, then only 3 of them.
	if _, err := c.nc.Write([]byte{0, 0, 0, 100, 0, 3, 0}); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

func TestIdleConnectionTimesOut(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.IdleTimeout = 100 * time.Millisecond }))
	c := ts.dial()
	defer c.close()
	c.expectClosed()
}

func TestMaxConnsPerIP(t *testing.T) {
	ts := startServer(t, withServerConfig(func(c *Config) { c.MaxConnsPerIP = 2 }))
	a, b := ts.dial(), ts.dial()
	defer a.close()
	defer b.close()
	// Make sure both are registered before the third arrives.
	for _, c := range []*client{a, b} {
		req := kmsg.NewPtrApiVersionsRequest()
		c.request(req)
	}
	third := ts.dial()
	defer third.close()
	third.expectClosed()
	a.close()
	waitFor(t, "a slot to free", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.conns) < 2
	})
	d := ts.dial()
	defer d.close()
	d.request(kmsg.NewPtrApiVersionsRequest())
}

// TestResponseHeaders: flexible versions get response header v1 (a tag
// byte after the correlation id), except ApiVersions.
func TestResponseHeaders(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	for _, v := range []int16{0, 8, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		req.Topics = []kmsg.MetadataRequestTopic{}
		corr := c.send(req)
		frame, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		resp := c.decode(req, corr, frame).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 {
			t.Fatalf("v%d: %d brokers, want 1", v, len(resp.Brokers))
		}
	}
}

// TestPipelining: a produce waiting for its fsync does not stop the
// requests behind it from being read and started, and responses still come
// back in request order.
func TestPipelining(t *testing.T) {
	gfs := &gatedFS{FS: vfs.OS{}}
	metaStarted := make(chan struct{}, 4)
	ts := startServer(t, withFS(gfs), withBackend(func(b *broker.Broker) Backend {
		return &metadataSpy{Broker: b, started: metaStarted}
	}))
	ts.createTopic("pipe", 1)

	c := ts.dial()
	defer c.close()
	release := gfs.hold()
	prod := produceRequest(7, -1, "pipe", 0, makeBatch(3, []byte("hello")))
	prodCorr := c.send(prod)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 7
	metaCorr := c.send(meta)

	select {
	case <-metaStarted:
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("metadata request not started while the produce waits for fsync")
	}
	// Nothing may be answered yet: the produce is first and still waits.
	c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	if n, _ := c.nc.Read(b[:]); n != 0 {
		release()
		t.Fatal("a response overtook the produce waiting for fsync")
	}
	release()
	pr := c.receive(prod, prodCorr).(*kmsg.ProduceResponse)
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	c.receive(meta, metaCorr)
}

// gatedFS holds every File.Sync while a gate is set, so tests can keep
// produces waiting for durability.
type gatedFS struct {
	vfs.FS
	gate atomic.Pointer[chan struct{}]
}

// hold makes syncs wait until the returned release is called.
func (g *gatedFS) hold() (release func()) {
	ch := make(chan struct{})
	g.gate.Store(&ch)
	var once sync.Once
	return func() { once.Do(func() { g.gate.Store(nil); close(ch) }) }
}

func (g *gatedFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &gatedFile{File: f, fs: g}, nil
}

func (g *gatedFS) Open(name string) (vfs.File, error)   { return g.wrap(g.FS.Open(name)) }
func (g *gatedFS) OpenRW(name string) (vfs.File, error) { return g.wrap(g.FS.OpenRW(name)) }
func (g *gatedFS) Create(name string) (vfs.File, error) { return g.wrap(g.FS.Create(name)) }

type gatedFile struct {
	vfs.File
	fs *gatedFS
}

func (f *gatedFile) Sync() error {
	if ch := f.fs.gate.Load(); ch != nil {
		<-*ch
	}
	return f.File.Sync()
}

// metadataSpy reports each Metadata call as it starts.
type metadataSpy struct {
	*broker.Broker
	started chan struct{}
}

func (m *metadataSpy) Metadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	select {
	case m.started <- struct{}{}:
	default:
	}
	return m.Broker.Metadata(ctx, req)
}

func produceRequest(version, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestIdleConnectionsAreCheap: a connection that sends nothing costs one
// goroutine (its reader) and no write buffer; the server stays responsive
// with many of them open.
func TestIdleConnectionsAreCheap(t *testing.T) {
	ts := startServer(t)
	const n = 500
	base := runtime.NumGoroutine()
	var idle []*client
	defer func() {
		for _, c := range idle {
			c.close()
		}
	}()
	for i := 0; i < n; i++ {
		idle = append(idle, ts.dial())
	}
	waitFor(t, "connections registered", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.conns) == n
	})
	if grew := runtime.NumGoroutine() - base; grew > n+n/10 {
		t.Fatalf("%d idle connections started %d goroutines, want about one each", n, grew)
	}
	c := ts.dial()
	defer c.close()
	c.request(kmsg.NewPtrApiVersionsRequest())
}

// TestShutdownFinishesInFlight: Shutdown answers a long-polling fetch at
// once, waits for a produce that waits for its fsync, then closes the
// connection; new connections are refused.
func TestShutdownFinishesInFlight(t *testing.T) {
	gfs := &gatedFS{FS: vfs.OS{}}
	ts := startServer(t, withFS(gfs))
	ts.createTopic("s", 2)
	c := ts.dial()
	defer c.close()
	fetch := fetchRequest(11, "s", 1, 0, 60_000, 1)
	fetchCorr := c.send(fetch)
	release := gfs.hold()
	prod := produceRequest(9, -1, "s", 0, makeBatch(1, []byte("in flight")))
	prodCorr := c.send(prod)
	waitFor(t, "produce appended", func() bool {
		p, _ := ts.broker.Partition("s", 0)
		return p.Log().NextOffset() == 1
	})

	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	fr := c.receive(fetch, fetchCorr).(*kmsg.FetchResponse) // answered without waiting 60s
	if code := fr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("fetch error %d", code)
	}
	select {
	case err := <-shut:
		release()
		t.Fatalf("Shutdown returned (%v) while a produce waited for its fsync", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if code := c.receive(prod, prodCorr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce error %d", code)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if nc, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("new connection accepted after Shutdown")
	}
}

// TestDebugLogsRequests: with debug logging on, every served request is
// logged with its key, version and latency.
func TestDebugLogsRequests(t *testing.T) {
	var mu sync.Mutex
	var buf strings.Builder
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startServer(t, withServerConfig(func(c *Config) { c.Logger = logger }))
	c := ts.dial()
	defer c.close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 2
	c.request(req)
	waitFor(t, "the request log line", func() bool {
		mu.Lock()
		defer mu.Unlock()
		out := buf.String()
		return strings.Contains(out, `msg="request served"`) && strings.Contains(out, "key=ApiVersions version=2 correlation=1")
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
