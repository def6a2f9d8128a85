package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/group"
	"github.com/sluice-mq/sluice/internal/kafka"
	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

func init() {
	register("serve", "run the broker (Kafka protocol on 127.0.0.1:9092 by default)", runServe)
}

func runServe(args []string) int { return runServeWith(args, nil) }

// runServeWith is runServe, with onStopped called as in serveConfig.
func runServeWith(args []string, onStopped func(log.CommitTimes)) int {
	cfg, err := loadServeConfig(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice serve: %v\n", err)
		return 2
	}
	cfg.onStopped = onStopped
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger, nil); err != nil {
		logger.Error("sluice serve failed", "err", err)
		return 1
	}
	return 0
}

// serve runs the broker until ctx is done, then shuts down gracefully: stop
// accepting, finish in-flight requests, make everything durable, close.
// ready, if set, is called with the listening address once clients can
// connect.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	host, port, err := advertisedAddr(cfg, ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		ln.Close()
		return err
	}
	b, err := broker.Open(broker.Config{
		FS: vfs.OS{}, DataDir: dataDir, NodeID: cfg.NodeID, Host: host, Port: port,
		AutoCreateTopics: cfg.AutoCreateTopics, DefaultPartitions: cfg.DefaultPartitions,
		DefaultDurability: cfg.durability, JournalLog: cfg.JournalLog, Logger: logger.With("component", "broker"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	groups, groupAPIs, closeGroups, err := openGroups(cfg, b, logger)
	if err != nil {
		ln.Close()
		b.Close()
		return err
	}
	srv, err := kafka.New(kafka.Config{
		Broker: b, Groups: groups, GroupAPIs: groupAPIs,
		NodeID: cfg.NodeID, Host: host, Port: port,
		MaxRequestBytes: cfg.MaxRequestBytes, IdleTimeout: cfg.IdleTimeout, FrameTimeout: cfg.FrameTimeout, MaxConnsPerIP: cfg.MaxConnsPerIP,
		MaxInflatedBatchBytes: cfg.MaxInflatedBatch,
		Logger:                logger.With("component", "kafka"),
	})
	if err != nil {
		ln.Close()
		closeGroups()
		b.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("sluice started", "listen", ln.Addr().String(),
		"advertised", net.JoinHostPort(host, strconv.Itoa(int(port))),
		"data_dir", dataDir, "durability", cfg.Durability, "journal_log", cfg.JournalLog)
	if cfg.AdvertisedAddr == "" {
		if h, _, _ := net.SplitHostPort(cfg.Listen); h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified() {
			logger.Warn("listening on every interface but advertising 127.0.0.1; clients on other hosts need --advertised-addr")
		}
	}
	if ready != nil {
		ready(ln.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx))
	case serveErr = <-served:
		logger.Error("listener failed; shutting down", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("in-flight requests did not finish in time", "timeout", cfg.ShutdownTimeout)
	}
	if serveErr == nil {
		if err := <-served; !errors.Is(err, kafka.ErrServerClosed) {
			serveErr = err
		}
	}
	if err := closeGroups(); err != nil {
		logger.Error("closing group coordinator", "err", err)
		serveErr = errors.Join(serveErr, err)
	}
	closeErr := b.Close()
	// How long acknowledgements waited on the disk over the broker's life:
	// the first thing to look at when produce latency was high.
	ct := b.Store().CommitTimes()
	if n := ct.Cycle.Count(); n > 0 {
		logger.Info("commit cycles", "count", n,
			"cycle_p50", ct.Cycle.Quantile(0.5), "cycle_p99", ct.Cycle.Quantile(0.99), "cycle_max", ct.Cycle.Max(),
			"fdatasync_p50", ct.Sync.Quantile(0.5), "fdatasync_p99", ct.Sync.Quantile(0.99), "fdatasync_max", ct.Sync.Max())
	}
	if cfg.onStopped != nil {
		cfg.onStopped(ct)
	}
	if closeErr != nil {
		logger.Error("closing broker", "err", closeErr)
		return errors.Join(serveErr, closeErr)
	}
	logger.Info("sluice stopped")
	return serveErr
}

// advertisedAddr is the host and port clients are told to use: the
// configured advertised address, else the listen address (with the port
// actually bound, and 127.0.0.1 for an unspecified host).
func advertisedAddr(cfg serveConfig, bound net.Addr) (string, int32, error) {
	if cfg.AdvertisedAddr != "" {
		return splitAdvertised(cfg.AdvertisedAddr)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", 0, err
	}
	port := int32(0)
	if a, ok := bound.(*net.TCPAddr); ok {
		port = int32(a.Port)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// openGroups starts the consumer-group coordinator on the broker's store
// and returns it with the API keys it serves and its closer.
func openGroups(cfg serveConfig, b *broker.Broker, logger *slog.Logger) (kafka.GroupCoordinator, []kafka.APIRange, func() error, error) {
	delay := cfg.GroupInitialRebalanceDelay
	if delay == 0 {
		delay = -1 // group.Config reads 0 as "default"; the flag's 0 means none
	}
	g, err := group.New(group.Config{Store: b.Store(), Topics: b, Logger: logger.With("component", "group"),
		ConsumerSessionTimeout:    cfg.GroupConsumerSessionTimeout,
		ConsumerHeartbeatInterval: cfg.GroupConsumerHeartbeatInterval,
		InitialRebalanceDelay:     delay,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var apis []kafka.APIRange
	for _, a := range group.APIs() {
		apis = append(apis, kafka.APIRange{Key: a.Key, MinVersion: a.MinVersion, MaxVersion: a.MaxVersion})
	}
	return g, apis, g.Close, nil
}
