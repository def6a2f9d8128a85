package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxRequestBytes = 100 << 20
	// DefaultMaxNonProduceRequestBytes: see Config.MaxNonProduceRequestBytes.
	DefaultMaxNonProduceRequestBytes = 8 << 20
	DefaultIdleTimeout               = 10 * time.Minute
	DefaultFrameTimeout              = 30 * time.Second
	DefaultWriteTimeout              = 2 * time.Minute
	// maxInFlight bounds the requests one connection may have started but
	// not yet answered. The reader stops reading when it is reached, which
	// is the back-pressure a slow client or a slow disk gets.
	maxInFlight = 32
	// maxFetchWait caps a fetch's max wait whatever the client asks.
	maxFetchWait = 5 * time.Minute
)

// GroupCoordinator serves the consumer-group API keys. internal/group's
// *Coordinator implements it; the interface keeps this package free of a
// compile-time dependency on it.
type GroupCoordinator interface {
	// Handle serves one request; it may block until ctx is done. The
	// response has the request's version.
	Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// APIRange is one API key and the versions served for it.
type APIRange struct{ Key, MinVersion, MaxVersion int16 }

// Config configures a Server.
type Config struct {
	// Broker serves topics and partitions (a *broker.Broker). Required.
	Broker Backend
	// Groups serves the keys in GroupAPIs; nil means no group keys are
	// advertised or served.
	Groups    GroupCoordinator
	GroupAPIs []APIRange

	// NodeID, Host and Port are this node as clients must reach it
	// (FindCoordinator answers with them).
	NodeID int32
	Host   string
	Port   int32

	// MaxRequestBytes is the largest request frame accepted (default 100
	// MiB). Larger frames close the connection before anything is
	// allocated for them.
	MaxRequestBytes int32
	// MaxNonProduceRequestBytes is the largest frame accepted for any key
	// but Produce (default 8 MiB): kmsg decodes arrays into structures
	// several times larger than their wire form, so this bounds the memory
	// one hostile request can make the broker allocate.
	MaxNonProduceRequestBytes int32
	// IdleTimeout closes a connection with no request started for this
	// long (default 10 minutes).
	IdleTimeout time.Duration
	// FrameTimeout closes a connection whose request frame has not fully
	// arrived this long after its size did (default 30 seconds).
	FrameTimeout time.Duration
	// WriteTimeout bounds writing one response (default 2 minutes).
	WriteTimeout time.Duration
	// MaxConnsPerIP limits concurrent connections from one IP address
	// (0 = unlimited).
	MaxConnsPerIP int
	// MaxInflatedBatchBytes bounds what one compressed record batch may
	// inflate to on produce (default 64 MiB): every compressed batch is
	// decompressed (streamed) to validate its records, and one inflating
	// past this gets MESSAGE_TOO_LARGE (validate.go).
	MaxInflatedBatchBytes int

	Logger *slog.Logger
	// Clock stamps data the server creates (legacy magic 0 messages get
	// the receive time); nil means time.Now. Network deadlines and fetch
	// waits use real time.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxNonProduceRequestBytes <= 0 {
		c.MaxNonProduceRequestBytes = DefaultMaxNonProduceRequestBytes
	}
	c.MaxNonProduceRequestBytes = min(c.MaxNonProduceRequestBytes, c.MaxRequestBytes)
	if c.MaxInflatedBatchBytes <= 0 {
		c.MaxInflatedBatchBytes = DefaultMaxInflatedBatchBytes
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = DefaultFrameTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("kafka: server closed")

// Server is a Kafka protocol server. Create it with New, run it with Serve,
// stop it with Shutdown.
type Server struct {
	cfg      Config
	debug    bool // the logger takes debug records: log every request
	versions versionTable
	// apiVersionsBody is the ApiVersions response's key list, built once.
	apiKeys []kmsg.ApiVersionsResponseApiKey

	ctx    context.Context // cancelled by Shutdown: wakes long polls and group waits
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[string]int
	closing   bool
	// Connections refused by MaxConnsPerIP since the last warning, and
	// when that was.
	refused       int
	refusedLogged time.Time

	closeWarnings warnLimiter // warnings about connections closed for bad input
	// msgInflateTooBig is the error message of MESSAGE_TOO_LARGE for a
	// compressed batch inflating past MaxInflatedBatchBytes.
	msgInflateTooBig string

	wg sync.WaitGroup // one per live connection
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, errors.New("kafka: Config.Broker is nil")
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		perIP:     map[string]int{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.debug = cfg.Logger.Enabled(s.ctx, slog.LevelDebug)
	groups := cfg.GroupAPIs
	if cfg.Groups == nil {
		groups = nil
	}
	s.versions = buildVersions(groups)
	s.apiKeys = s.versions.apiKeys()
	s.msgInflateTooBig = inflateTooBigMessage(cfg.MaxInflatedBatchBytes)
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It always returns a
// non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of descriptors or a transient failure: back off
				// rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
				}
				continue
			}
			return err
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) startConn(nc net.Conn) {
	ip := remoteIP(nc)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		s.refused++
		// At most one warning a second: a host hammering the limit must
		// not flood the log.
		var refused int
		if now := time.Now(); now.Sub(s.refusedLogged) >= time.Second {
			refused, s.refused, s.refusedLogged = s.refused, 0, now
		}
		s.mu.Unlock()
		if refused > 0 {
			s.cfg.Logger.Warn("connection limit per IP reached; closing", "remote", nc.RemoteAddr().String(),
				"limit", s.cfg.MaxConnsPerIP, "refused_since_last_warning", refused)
		}
		nc.Close()
		return
	}
	s.perIP[ip]++
	c := newConn(s, nc, ip)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
}

func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
	}
	s.mu.Unlock()
	s.wg.Done()
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}

// Shutdown stops accepting, stops reading new requests, lets in-flight
// requests finish (long polls answer at once with what they have) and
// closes every connection. It returns when all connections are closed or
// ctx is done (then the remaining connections are closed hard).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
