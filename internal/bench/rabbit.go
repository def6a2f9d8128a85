package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/amqp"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/logs"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/message"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/stream"
)

// rabbitTarget runs RabbitMQ (the Debian package's server script run
// directly, as this user, with every directory under the run's temp
// directory) with the stream plugin on loopback.
func rabbitTarget(bin string) target {
	// The client logs connection churn at shutdown to stderr, which would
	// fill the progress output; failures reach the harness as errors.
	logs.SetLogger(quietLogger{})
	return target{name: "rabbitmq-stream",
		settings: "RabbitMQ streams (stream plugin), server defaults, one stream per partition, publish confirms",
		start: func(ctx context.Context, dir, _ string) (*Process, Driver, error) {
			amqpAddr, err := FreeAddr()
			if err != nil {
				return nil, nil, err
			}
			streamAddr, err := FreeAddr()
			if err != nil {
				return nil, nil, err
			}
			distAddr, err := FreeAddr()
			if err != nil {
				return nil, nil, err
			}
			conf := fmt.Sprintf("listeners.tcp.1 = %s\nstream.listeners.tcp.1 = %s\nstream.advertised_host = 127.0.0.1\nstream.advertised_port = %d\nloopback_users = none\n",
				amqpAddr, streamAddr, portOf(streamAddr))
			if err := os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644); err != nil {
				return nil, nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[rabbitmq_stream].\n"), 0o644); err != nil {
				return nil, nil, err
			}
			node := fmt.Sprintf("bench%d@localhost", portOf(streamAddr))
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(),
				"HOME="+dir,
				"RABBITMQ_NODENAME="+node,
				"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
				fmt.Sprintf("RABBITMQ_NODE_PORT=%d", portOf(amqpAddr)),
				fmt.Sprintf("RABBITMQ_DIST_PORT=%d", portOf(distAddr)),
				"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
				"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
				"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
				"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
				"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbit.pid"),
				"ERL_EPMD_ADDRESS=127.0.0.1",
			)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			// Erlang starts the epmd daemon if none runs; stop it again
			// after, if this run started it.
			epmdBefore := false
			if c, err := net.DialTimeout("tcp", "127.0.0.1:4369", time.Second); err == nil {
				c.Close()
				epmdBefore = true
			}
			p, err := StartCommand("rabbitmq-stream", cmd, streamAddr, dir)
			if err != nil {
				return nil, nil, err
			}
			pid := p.PID
			p.stop = func() {
				procGroupStop(pid)
				if !epmdBefore {
					go func() {
						// After the node has gone; epmd -kill refuses while
						// nodes are registered, so retry briefly.
						for i := 0; i < 20; i++ {
							time.Sleep(500 * time.Millisecond)
							if exec.Command(filepath.Join(filepath.Dir(bin), "..", "..", "erlang", "bin", "epmd"), "-kill").Run() == nil ||
								exec.Command("epmd", "-kill").Run() == nil {
								return
							}
						}
					}()
				}
			}
			d := &rabbitDriver{port: portOf(streamAddr)}
			// The stream port opens before the plugin accepts clients; retry.
			var env *stream.Environment
			for i := 0; i < 60; i++ {
				env, err = d.env()
				if err == nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				_ = p.Stop()
				return nil, nil, err
			}
			env.Close()
			return p, d, nil
		}}
}

type rabbitDriver struct{ port int }

func (r *rabbitDriver) env() (*stream.Environment, error) {
	return stream.NewEnvironment(stream.NewEnvironmentOptions().SetHost("127.0.0.1").SetPort(r.port).
		SetUser("guest").SetPassword("guest").SetMaxProducersPerClient(64).SetMaxConsumersPerClient(64))
}

func rabbitStream(topic string, p int) string { return fmt.Sprintf("%s-%d", topic, p) }

func (r *rabbitDriver) Setup(ctx context.Context, topic string, partitions int) error {
	env, err := r.env()
	if err != nil {
		return err
	}
	defer env.Close()
	for i := 0; i < partitions; i++ {
		if err := env.DeclareStream(rabbitStream(topic, i), &stream.StreamOptions{}); err != nil {
			return err
		}
	}
	return nil
}

type rabbitProducer struct {
	env     *stream.Environment
	mu      sync.Mutex
	prods   map[string]*stream.Producer
	pending sync.Map // message.StreamMessage -> func(error)
	infl    sync.WaitGroup
	sem     chan struct{}
}

func (r *rabbitDriver) NewProducer(ctx context.Context) (Producer, error) {
	env, err := r.env()
	if err != nil {
		return nil, err
	}
	return &rabbitProducer{env: env, prods: map[string]*stream.Producer{}, sem: make(chan struct{}, 8192)}, nil
}

func (p *rabbitProducer) producer(name string) (*stream.Producer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.prods[name]; ok {
		return pr, nil
	}
	pr, err := p.env.NewProducer(name, stream.NewProducerOptions())
	if err != nil {
		return nil, err
	}
	ch := pr.NotifyPublishConfirmation()
	go func() {
		for sts := range ch {
			for _, st := range sts {
				if f, ok := p.pending.LoadAndDelete(st.GetMessage()); ok {
					var e error
					if !st.IsConfirmed() {
						e = fmt.Errorf("rabbitmq: not confirmed: %v", st.GetError())
					}
					f.(func(error))(e)
					<-p.sem
					p.infl.Done()
				}
			}
		}
	}()
	p.prods[name] = pr
	return pr, nil
}

func (p *rabbitProducer) Send(ctx context.Context, topic string, partition int, value []byte, done func(error)) {
	pr, err := p.producer(rabbitStream(topic, partition))
	if err != nil {
		done(err)
		return
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		done(ctx.Err())
		return
	}
	p.infl.Add(1)
	var m message.StreamMessage = amqp.NewMessage(value)
	p.pending.Store(m, done)
	if err := pr.Send(m); err != nil {
		if f, ok := p.pending.LoadAndDelete(m); ok {
			f.(func(error))(err)
			<-p.sem
			p.infl.Done()
		}
	}
}

func (p *rabbitProducer) Flush(ctx context.Context) error { return waitGroupCtx(ctx, &p.infl) }

func (p *rabbitProducer) Close() {
	p.mu.Lock()
	for _, pr := range p.prods {
		_ = pr.Close()
	}
	p.mu.Unlock()
	_ = p.env.Close()
}

func (r *rabbitDriver) Consume(ctx context.Context, topic string, partitions int, group string, handle func([]byte)) error {
	// One connection per stream: the client serves all consumers of a
	// connection from one reader goroutine.
	for i := 0; i < partitions; i++ {
		env, err := r.env()
		if err != nil {
			return err
		}
		defer env.Close()
		_, err = env.NewConsumer(rabbitStream(topic, i), func(_ stream.ConsumerContext, m *amqp.Message) {
			handle(m.GetData())
		}, stream.NewConsumerOptions().SetOffset(stream.OffsetSpecification{}.First()).SetCRCCheck(false))
		if err != nil {
			return err
		}
	}
	<-ctx.Done()
	// env.Close (deferred) drops the connections; closing each consumer
	// first would wait out an unsubscribe round trip per stream.
	return nil
}

func (r *rabbitDriver) Close() {}

type quietLogger struct{}

func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Warn(string, ...any)  {}
