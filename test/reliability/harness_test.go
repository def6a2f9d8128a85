package reliability

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sluiceBin builds ./cmd/sluice once per run (only for tests that need a
// broker, so a run that selects none of them builds nothing).
func sluiceBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sluice-reliability-")
		if buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "sluice"), "./cmd/sluice")
		build.Dir = repoRoot()
		var out bytes.Buffer
		build.Stdout, build.Stderr = &out, &out
		if err := build.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "sluice")
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// broker is a `sluice serve` child process.
type broker struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	args []string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBroker starts a broker on a free loopback port with data directory
// dir (a fresh temporary one if empty) and the extra serve flags; it is
// stopped when the test ends.
func startBroker(t testing.TB, dir string, extra ...string) *broker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	b := &broker{t: t, bin: sluiceBin(t), dir: dir, addr: freeAddr(t), args: extra, log: &syncBuffer{}}
	b.start()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("broker log:\n%s", tail(b.log.String(), 4000))
		}
	})
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (b *broker) start() {
	b.t.Helper()
	args := append([]string{"serve", "--listen", b.addr, "--data-dir", b.dir, "--log-level", "warn"}, b.args...)
	b.cmd = exec.Command(b.bin, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("sluice serve exited at start:\n%s", b.log.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("sluice serve not listening after 30s:\n%s", b.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exited reports whether the broker process has exited.
func (b *broker) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
		b.t.Errorf("sluice serve did not stop within 30s of SIGTERM")
	}
	b.cmd = nil
}

// kill sends SIGKILL: no shutdown, no final sync.
func (b *broker) kill() {
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// rssKiB is the broker's resident set size (VmRSS) in KiB.
func (b *broker) rssKiB() int64 { return b.statusKiB("VmRSS") }

// statusKiB is a field of the broker's /proc/PID/status in KiB (VmRSS,
// VmData…).
func (b *broker) statusKiB(field string) int64 {
	b.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	if err != nil {
		b.t.Fatalf("read broker status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return n
				}
			}
		}
	}
	b.t.Fatalf("no %s in /proc/%d/status", field, b.cmd.Process.Pid)
	return 0
}

// envInt reads a positive integer from the environment, def if unset.
func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func isCI() bool { return os.Getenv("CI") == "true" }
