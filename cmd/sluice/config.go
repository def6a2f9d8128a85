package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-mq/sluice/internal/log"
)

// serveConfig is the configuration of `sluice serve`. It is layered:
// built-in defaults, then the YAML file (--config or SLUICE_CONFIG), then
// SLUICE_* environment variables, then flags. Each layer overrides only the
// settings it names.
type serveConfig struct {
	Listen            string        `yaml:"listen"`
	AdvertisedAddr    string        `yaml:"advertised_addr"`
	DataDir           string        `yaml:"data_dir"`
	Durability        string        `yaml:"durability"`
	JournalLog        bool          `yaml:"journal_log"`
	AutoCreateTopics  bool          `yaml:"auto_create_topics"`
	DefaultPartitions int32         `yaml:"default_partitions"`
	LogLevel          string        `yaml:"log_level"`
	NodeID            int32         `yaml:"node_id"`
	MaxRequestBytes   int32         `yaml:"max_request_bytes"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	FrameTimeout      time.Duration `yaml:"frame_timeout"`
	MaxConnsPerIP     int           `yaml:"max_connections_per_ip"`
	MaxInflatedBatch  int           `yaml:"max_inflated_batch_bytes"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// KIP-848 groups: the broker, not the client, sets these
	// (group.consumer.session.timeout.ms and heartbeat.interval.ms in Kafka).
	GroupConsumerSessionTimeout    time.Duration `yaml:"group_consumer_session_timeout"`
	GroupConsumerHeartbeatInterval time.Duration `yaml:"group_consumer_heartbeat_interval"`
	// Classic groups: delay of an empty group's first rebalance.
	GroupInitialRebalanceDelay time.Duration `yaml:"group_initial_rebalance_delay"`

	// Derived by validate.
	durability log.Durability
	logLevel   slog.Level

	// onStopped, if set, is called with the commit cycles' times once the
	// broker has closed (`sluice bench-broker --stats-file`).
	onStopped func(log.CommitTimes)
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:     "127.0.0.1:9092",
		DataDir:    "./sluice-data",
		Durability: "fsync",
		// One write per byte; measured faster and at a fraction of the
		// CPU of segment files (BENCHMARKS.md "The journal as the log").
		JournalLog:        true,
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		LogLevel:          "info",
		MaxRequestBytes:   100 << 20,
		IdleTimeout:       10 * time.Minute,
		FrameTimeout:      30 * time.Second,
		// Kafka has no per-IP limit by default. 1000 is far above what one
		// client host needs (a connection per broker per client, pools of
		// a few dozen) yet bounds what one host can pin: idle connections
		// cost about 4 KiB each, so about 4 MiB per IP.
		MaxConnsPerIP: 1000,
		// Compressed batches are inflated (streamed) on produce to check
		// their records; 64 MiB is 64 times the default max.message.bytes.
		MaxInflatedBatch: 64 << 20,
		ShutdownTimeout:  30 * time.Second,

		GroupConsumerSessionTimeout:    45 * time.Second,
		GroupConsumerHeartbeatInterval: 5 * time.Second,
		GroupInitialRebalanceDelay:     3 * time.Second,
	}
}

// setting is one configuration knob as a flag and an environment variable.
type setting struct {
	flag, env, usage string
	isBool           bool
	set              func(c *serveConfig, v string) error
}

func settings() []setting {
	str := func(field func(*serveConfig) *string) func(*serveConfig, string) error {
		return func(c *serveConfig, v string) error { *field(c) = v; return nil }
	}
	return []setting{
		{"listen", "SLUICE_LISTEN", "address to listen on (host:port)", false,
			str(func(c *serveConfig) *string { return &c.Listen })},
		{"advertised-addr", "SLUICE_ADVERTISED_ADDR", "host:port clients are told to connect to (default: the listen address)", false,
			str(func(c *serveConfig) *string { return &c.AdvertisedAddr })},
		{"data-dir", "SLUICE_DATA_DIR", "data directory", false,
			str(func(c *serveConfig) *string { return &c.DataDir })},
		{"durability", "SLUICE_DURABILITY", "default durability: fsync | interval=<ms> | none", false,
			str(func(c *serveConfig) *string { return &c.Durability })},
		{"journal-log", "SLUICE_JOURNAL_LOG", "the journal is the log: partition data is written once, to the journal, instead of a second copy in segment files (BENCHMARKS.md); false keeps segment files (a data directory written with the journal log is converted at start)", true,
			func(c *serveConfig, v string) error {
				b, err := strconv.ParseBool(v)
				c.JournalLog = b
				return err
			}},
		{"auto-create-topics", "SLUICE_AUTO_CREATE_TOPICS", "create unknown topics on metadata requests", true,
			func(c *serveConfig, v string) error {
				b, err := strconv.ParseBool(v)
				c.AutoCreateTopics = b
				return err
			}},
		{"default-partitions", "SLUICE_DEFAULT_PARTITIONS", "partitions of auto-created topics", false,
			func(c *serveConfig, v string) error { return parseInt32(v, &c.DefaultPartitions) }},
		{"log-level", "SLUICE_LOG_LEVEL", "debug | info | warn | error", false,
			str(func(c *serveConfig) *string { return &c.LogLevel })},
		{"node-id", "SLUICE_NODE_ID", "this node's broker id", false,
			func(c *serveConfig, v string) error { return parseInt32(v, &c.NodeID) }},
		{"max-request-bytes", "SLUICE_MAX_REQUEST_BYTES", "largest request frame accepted", false,
			func(c *serveConfig, v string) error { return parseInt32(v, &c.MaxRequestBytes) }},
		{"idle-timeout", "SLUICE_IDLE_TIMEOUT", "close connections idle this long", false,
			func(c *serveConfig, v string) (err error) { c.IdleTimeout, err = time.ParseDuration(v); return err }},
		{"frame-timeout", "SLUICE_FRAME_TIMEOUT", "close connections whose request has not fully arrived this long after its size", false,
			func(c *serveConfig, v string) (err error) { c.FrameTimeout, err = time.ParseDuration(v); return err }},
		{"max-connections-per-ip", "SLUICE_MAX_CONNECTIONS_PER_IP", "connection limit per client IP (0 = none; default 1000)", false,
			func(c *serveConfig, v string) (err error) { c.MaxConnsPerIP, err = strconv.Atoi(v); return err }},
		{"max-inflated-batch-bytes", "SLUICE_MAX_INFLATED_BATCH_BYTES", "largest size a produced compressed record batch may inflate to (MESSAGE_TOO_LARGE beyond)", false,
			func(c *serveConfig, v string) (err error) { c.MaxInflatedBatch, err = strconv.Atoi(v); return err }},
		{"shutdown-timeout", "SLUICE_SHUTDOWN_TIMEOUT", "how long shutdown waits for in-flight requests", false,
			func(c *serveConfig, v string) (err error) { c.ShutdownTimeout, err = time.ParseDuration(v); return err }},
		{"group-consumer-session-timeout", "SLUICE_GROUP_CONSUMER_SESSION_TIMEOUT", "KIP-848 member session timeout", false,
			func(c *serveConfig, v string) (err error) {
				c.GroupConsumerSessionTimeout, err = time.ParseDuration(v)
				return err
			}},
		{"group-consumer-heartbeat-interval", "SLUICE_GROUP_CONSUMER_HEARTBEAT_INTERVAL", "KIP-848 member heartbeat interval", false,
			func(c *serveConfig, v string) (err error) {
				c.GroupConsumerHeartbeatInterval, err = time.ParseDuration(v)
				return err
			}},
		{"group-initial-rebalance-delay", "SLUICE_GROUP_INITIAL_REBALANCE_DELAY", "delay of an empty classic group's first rebalance", false,
			func(c *serveConfig, v string) (err error) {
				c.GroupInitialRebalanceDelay, err = time.ParseDuration(v)
				return err
			}},
	}
}

func parseInt32(v string, dst *int32) error {
	n, err := strconv.ParseInt(v, 10, 32)
	*dst = int32(n)
	return err
}

// settingValue is a flag that only records its value; loadServeConfig
// applies it after the file and the environment.
type settingValue struct {
	value  string
	isBool bool
}

func (s *settingValue) String() string     { return s.value }
func (s *settingValue) Set(v string) error { s.value = v; return nil }
func (s *settingValue) IsBoolFlag() bool   { return s.isBool }

// loadServeConfig builds the configuration from defaults, the config file,
// the environment and args, in that order of precedence (last wins).
func loadServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice serve [flags]\n\nRuns the broker. Each flag also reads the environment variable shown;\nflags win over the environment, which wins over the --config file.\n\nflags:")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stderr, "  --%s\n    \t%s\n", f.Name, f.Usage)
		})
	}
	all := settings()
	values := make([]*settingValue, len(all))
	for i, s := range all {
		values[i] = &settingValue{isBool: s.isBool}
		fs.Var(values[i], s.flag, fmt.Sprintf("%s (%s)", s.usage, s.env))
	}
	configPath := fs.String("config", getenv("SLUICE_CONFIG"), "YAML configuration file (SLUICE_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := defaultServeConfig()
	if *configPath != "" {
		if err := readConfigFile(*configPath, &cfg); err != nil {
			return serveConfig{}, err
		}
	}
	for _, s := range all {
		if v := getenv(s.env); v != "" {
			if err := s.set(&cfg, v); err != nil {
				return serveConfig{}, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
	}
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		for i, s := range all {
			if s.flag == f.Name && ferr == nil {
				if err := s.set(&cfg, values[i].value); err != nil {
					ferr = fmt.Errorf("--%s=%q: %w", s.flag, values[i].value, err)
				}
			}
		}
	})
	if ferr != nil {
		return serveConfig{}, ferr
	}
	return cfg, cfg.validate()
}

func readConfigFile(path string, cfg *serveConfig) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// validate checks the settings and fills the derived fields.
func (c *serveConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.AdvertisedAddr != "" {
		if _, _, err := splitAdvertised(c.AdvertisedAddr); err != nil {
			return err
		}
	}
	if c.DataDir == "" {
		return errors.New("data directory is empty")
	}
	d, err := parseDurability(c.Durability)
	if err != nil {
		return err
	}
	c.durability = d
	if c.DefaultPartitions < 1 {
		return fmt.Errorf("default partitions %d: must be at least 1", c.DefaultPartitions)
	}
	if c.MaxRequestBytes < 1<<10 {
		return fmt.Errorf("max request bytes %d: must be at least 1024", c.MaxRequestBytes)
	}
	if c.NodeID < 0 {
		return fmt.Errorf("node id %d: must not be negative", c.NodeID)
	}
	if c.MaxInflatedBatch <= 0 {
		return fmt.Errorf("max inflated batch bytes %d: must be positive", c.MaxInflatedBatch)
	}
	if c.MaxConnsPerIP < 0 {
		return fmt.Errorf("max connections per ip %d: must not be negative (0 means no limit)", c.MaxConnsPerIP)
	}
	if c.FrameTimeout <= 0 || c.IdleTimeout <= 0 {
		return fmt.Errorf("idle timeout %v and frame timeout %v: must be positive", c.IdleTimeout, c.FrameTimeout)
	}
	if err := c.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// parseDurability parses "fsync", "interval=<ms>" (a plain number of
// milliseconds, or a Go duration such as 200ms) or "none".
func parseDurability(s string) (log.Durability, error) {
	switch {
	case s == "fsync":
		return log.Durability{Kind: log.DurabilityFsync}, nil
	case s == "none":
		return log.Durability{Kind: log.DurabilityNone}, nil
	case strings.HasPrefix(s, "interval="):
		v := strings.TrimPrefix(s, "interval=")
		var d time.Duration
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(ms) * time.Millisecond
		} else if d, err = time.ParseDuration(v); err != nil {
			return log.Durability{}, fmt.Errorf("durability %q: interval is not a number of milliseconds", s)
		}
		if d <= 0 {
			return log.Durability{}, fmt.Errorf("durability %q: interval must be positive", s)
		}
		return log.Durability{Kind: log.DurabilityInterval, Interval: d}, nil
	}
	return log.Durability{}, fmt.Errorf("durability %q: want fsync, interval=<ms> or none", s)
}

// splitAdvertised splits an advertised host:port.
func splitAdvertised(addr string) (string, int32, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("advertised address %q: want host:port", addr)
	}
	return host, int32(port), nil
}
