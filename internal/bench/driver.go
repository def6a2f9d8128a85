package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Driver is one broker under test as the workloads see it: topics of
// partitions (or the broker's nearest equivalent), producers that send
// asynchronously and report each record's acknowledgement, and consumers.
type Driver interface {
	// Setup creates topic with the given number of partitions.
	Setup(ctx context.Context, topic string, partitions int) error
	// NewProducer opens one producer connection.
	NewProducer(ctx context.Context) (Producer, error)
	// Consume reads topic from its start (group "" = no group, every
	// partition; otherwise as a member of that consumer group) and calls
	// handle for each record's value until ctx is done. handle may be
	// called from several goroutines at once.
	Consume(ctx context.Context, topic string, partitions int, group string, handle func(value []byte)) error
	Close()
}

// Producer sends records. Send may block while too many records are in
// flight (back-pressure); done is called once the broker acknowledged the
// record by its durability settings (or failed to). value must not be
// changed until done is called.
type Producer interface {
	Send(ctx context.Context, topic string, partition int, value []byte, done func(error))
	Flush(ctx context.Context) error
	Close()
}

// Process is a broker process the harness started.
type Process struct {
	Name    string
	Addr    string
	PID     int
	DataDir string
	// StatsFile, if set, is where the broker writes its BrokerStats when
	// it stops (sluice); the harness adds them to the run's result.
	StatsFile string
	cmd       *exec.Cmd
	done      chan struct{}
	log       *tailBuffer
	stop      func() // optional custom stop (e.g. rabbitmqctl)
}

// Stopper is what the harness calls to end a broker it started.
func (p *Process) Stop() error {
	if p.stop != nil {
		p.stop()
	}
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", p.Name)
	}
}

// Log returns the tail of the process's output.
func (p *Process) Log() string {
	if p.log == nil {
		return ""
	}
	return p.log.String()
}

// startProcess runs cmd and waits until addr accepts TCP connections.
func startProcess(name string, cmd *exec.Cmd, addr string, wait time.Duration) (*Process, error) {
	p := &Process{Name: name, Addr: addr, cmd: cmd, done: make(chan struct{}), log: &tailBuffer{max: 8192}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.PID = cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start: %s", name, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return nil, fmt.Errorf("%s not listening on %s after %v: %s", name, addr, wait, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a free loopback TCP address.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var errNotInstalled = errors.New("not installed")

// lookPath finds a program on PATH or in extra directories.
func lookPath(name string, extra ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range extra {
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w (not on PATH)", name, errNotInstalled)
}

// waitGroupCtx waits for wg (a producer's sends in flight) or for ctx to
// end, whichever comes first.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) error {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
