package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// peerTargets returns the peers of cfg that are installed; the others are
// recorded in rep.Skipped with the reason.
func peerTargets(cfg Config, rep *Report) []target {
	var ts []target
	for _, p := range cfg.Peers {
		switch p {
		case "nats":
			bin, err := lookPath("nats-server", cfg.PeerBinDirs...)
			if err != nil {
				rep.Skipped["nats"] = "nats-server not found (go install github.com/nats-io/nats-server/v2@v2.15.2): " + err.Error()
				fmt.Fprintf(cfg.Out, "skipping NATS JetStream: %v\n", err)
				continue
			}
			ts = append(ts, natsTarget(bin, false), natsTarget(bin, true))
		case "redis":
			bin, err := lookPath("redis-server", "/usr/bin", "/usr/sbin")
			if err != nil {
				rep.Skipped["redis"] = "redis-server not found (apt-get install redis-server)"
				fmt.Fprintf(cfg.Out, "skipping Redis Streams: %v\n", err)
				continue
			}
			ts = append(ts, redisTarget(bin, "everysec"), redisTarget(bin, "always"))
		case "rabbitmq":
			// The server script itself, not Debian's /usr/sbin wrapper
			// (which switches to the rabbitmq user and its directories).
			bin, err := lookPath("rabbitmq-server", "/usr/lib/rabbitmq/bin")
			if _, serr := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); serr == nil {
				bin, err = "/usr/lib/rabbitmq/bin/rabbitmq-server", nil
			}
			if err != nil {
				rep.Skipped["rabbitmq"] = "rabbitmq-server not found (apt-get install rabbitmq-server)"
				fmt.Fprintf(cfg.Out, "skipping RabbitMQ streams: %v\n", err)
				continue
			}
			ts = append(ts, rabbitTarget(bin))
		default:
			rep.Skipped[p] = "unknown peer"
		}
	}
	return ts
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// ---- NATS JetStream ----

func natsTarget(bin string, syncAlways bool) target {
	name, settings := "nats", "JetStream file storage, default sync (fsync every 2 min), async publish (4,096 pending), one stream with a subject per partition"
	if syncAlways {
		name, settings = "nats-sync-always", "JetStream file storage, sync_interval: always, async publish (4,096 pending), one stream with a subject per partition"
	}
	return target{name: name, settings: settings, start: func(ctx context.Context, dir, _ string) (*Process, Driver, error) {
		addr, err := FreeAddr()
		if err != nil {
			return nil, nil, err
		}
		conf := fmt.Sprintf("listen: %q\njetstream {\n  store_dir: %q\n  max_file_store: 64G\n", addr, dir)
		if syncAlways {
			conf += "  sync_interval: always\n"
		}
		conf += "}\n"
		cf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return nil, nil, err
		}
		p, err := StartCommand(name, exec.Command(bin, "-c", cf), addr, dir)
		if err != nil {
			return nil, nil, err
		}
		return p, &natsDriver{url: "nats://" + addr}, nil
	}}
}

type natsDriver struct{ url string }

func natsSubject(topic string, p int) string { return fmt.Sprintf("%s.p%d", topic, p) }

func (n *natsDriver) Setup(ctx context.Context, topic string, partitions int) error {
	nc, err := nats.Connect(n.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: topic, Subjects: []string{topic + ".>"},
		Storage: jetstream.FileStorage, Replicas: 1})
	return err
}

type natsProducer struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	pending sync.Map // *nats.Msg -> func(error)
}

func (n *natsDriver) NewProducer(ctx context.Context) (Producer, error) {
	nc, err := nats.Connect(n.url)
	if err != nil {
		return nil, err
	}
	p := &natsProducer{nc: nc}
	done := func(m *nats.Msg, err error) {
		if f, ok := p.pending.LoadAndDelete(m); ok {
			f.(func(error))(err)
		}
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { done(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { done(m, err) }))
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.js = js
	return p, nil
}

func (p *natsProducer) Send(ctx context.Context, topic string, partition int, value []byte, done func(error)) {
	m := &nats.Msg{Subject: natsSubject(topic, partition), Data: value}
	p.pending.Store(m, done)
	_, err := p.js.PublishMsgAsync(m)
	// Too many acks outstanding: wait (back-pressure, as the other
	// clients block) and try again.
	for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
		_, err = p.js.PublishMsgAsync(m)
	}
	if err != nil {
		if f, ok := p.pending.LoadAndDelete(m); ok {
			f.(func(error))(err)
		}
	}
}

func (p *natsProducer) Flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *natsProducer) Close() { p.nc.Close() }

func (n *natsDriver) Consume(ctx context.Context, topic string, partitions int, group string, handle func([]byte)) error {
	nc, err := nats.Connect(n.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var c jetstream.Consumer
	if group == "" {
		c, err = js.OrderedConsumer(ctx, topic, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	} else {
		c, err = js.CreateOrUpdateConsumer(ctx, topic, jetstream.ConsumerConfig{Durable: group,
			AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	}
	if err != nil {
		return err
	}
	cc, err := c.Consume(func(m jetstream.Msg) { handle(m.Data()) }, jetstream.PullMaxMessages(4096))
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

func (n *natsDriver) Close() {}

// ---- Redis Streams ----

func redisTarget(bin, fsync string) target {
	return target{name: "redis-" + fsync,
		settings: "appendonly yes, appendfsync " + fsync + ", one stream key per partition, XADD pipelined (≤256 per round trip)",
		start: func(ctx context.Context, dir, _ string) (*Process, Driver, error) {
			addr, err := FreeAddr()
			if err != nil {
				return nil, nil, err
			}
			cmd := exec.Command(bin, "--port", strconv.Itoa(portOf(addr)), "--bind", "127.0.0.1", "--dir", dir,
				"--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--daemonize", "no", "--protected-mode", "yes")
			p, err := StartCommand("redis-"+fsync, cmd, addr, dir)
			if err != nil {
				return nil, nil, err
			}
			return p, &redisDriver{addr: addr}, nil
		}}
}

type redisDriver struct{ addr string }

func redisKey(topic string, p int) string { return fmt.Sprintf("%s:%d", topic, p) }

func (r *redisDriver) Setup(ctx context.Context, topic string, partitions int) error { return nil }

type redisSend struct {
	key  string
	val  []byte
	done func(error)
}

type redisProducer struct {
	cl   *redis.Client
	ch   chan redisSend
	wg   sync.WaitGroup
	mu   sync.Mutex
	infl sync.WaitGroup
}

func (r *redisDriver) NewProducer(ctx context.Context) (Producer, error) {
	p := &redisProducer{cl: redis.NewClient(&redis.Options{Addr: r.addr, PoolSize: 2}), ch: make(chan redisSend, 1024)}
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

func (p *redisProducer) loop() {
	defer p.wg.Done()
	batch := make([]redisSend, 0, 256)
	for s := range p.ch {
		batch = append(batch[:0], s)
	more:
		for len(batch) < cap(batch) {
			select {
			case s, ok := <-p.ch:
				if !ok {
					break more
				}
				batch = append(batch, s)
			default:
				break more
			}
		}
		pipe := p.cl.Pipeline()
		cmds := make([]*redis.StringCmd, len(batch))
		for i, s := range batch {
			cmds[i] = pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: s.key, Values: []any{"v", s.val}})
		}
		_, err := pipe.Exec(context.Background())
		for i, s := range batch {
			e := err
			if e == nil {
				e = cmds[i].Err()
			}
			s.done(e)
			p.infl.Done()
		}
	}
}

func (p *redisProducer) Send(ctx context.Context, topic string, partition int, value []byte, done func(error)) {
	p.infl.Add(1)
	select {
	case p.ch <- redisSend{key: redisKey(topic, partition), val: value, done: done}:
	case <-ctx.Done():
		p.infl.Done()
		done(ctx.Err())
	}
}

func (p *redisProducer) Flush(ctx context.Context) error { return waitGroupCtx(ctx, &p.infl) }

func (p *redisProducer) Close() {
	close(p.ch)
	p.wg.Wait()
	p.cl.Close()
}

func (r *redisDriver) Consume(ctx context.Context, topic string, partitions int, group string, handle func([]byte)) error {
	cl := redis.NewClient(&redis.Options{Addr: r.addr, ReadTimeout: 5 * time.Second})
	defer cl.Close()
	keys := make([]string, 0, 2*partitions)
	ids := make([]string, partitions)
	for i := 0; i < partitions; i++ {
		keys = append(keys, redisKey(topic, i))
		ids[i] = "0"
		if group != "" {
			ids[i] = ">"
			if err := cl.XGroupCreateMkStream(ctx, redisKey(topic, i), group, "0").Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
				return err
			}
		}
	}
	for ctx.Err() == nil {
		var res []redis.XStream
		var err error
		if group == "" {
			res, err = cl.XRead(ctx, &redis.XReadArgs{Streams: append(keys[:partitions:partitions], ids...), Count: 1000, Block: 500 * time.Millisecond}).Result()
		} else {
			res, err = cl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: append(keys[:partitions:partitions], ids...),
				Count: 1000, Block: 500 * time.Millisecond, NoAck: true}).Result()
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, st := range res {
			idx := -1
			for i, k := range keys[:partitions] {
				if k == st.Stream {
					idx = i
					break
				}
			}
			for _, m := range st.Messages {
				if v, ok := m.Values["v"].(string); ok {
					handle([]byte(v))
				}
				if group == "" && idx >= 0 {
					ids[idx] = m.ID
				}
			}
		}
	}
	return nil
}

func (r *redisDriver) Close() {}

// procGroupStop ends a process group started with Setpgid.
func procGroupStop(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
}
