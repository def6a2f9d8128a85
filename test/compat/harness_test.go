package compat

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

var (
	sluiceBin      string // built from ./cmd/sluice unless externalBrokers is set
	groupMemberBin string // built from ./test/compat/cmd/groupmember
	// externalBrokers (SLUICE_COMPAT_BROKERS) points the suite at a broker
	// that is already running, such as test/compat/cmd/fakekafka while
	// developing the harness. Restart and SIGKILL checks need a broker the
	// suite owns and are skipped against it, saying so.
	externalBrokers = os.Getenv("SLUICE_COMPAT_BROKERS")
	// runID makes topic and group names unique per run, so a long-lived
	// external broker can serve several runs.
	runID = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builds := [][2]string{{"groupmember", "./test/compat/cmd/groupmember"}}
	if externalBrokers == "" {
		builds = append(builds, [2]string{"sluice", "./cmd/sluice"})
	} else {
		fmt.Fprintf(os.Stderr, "compat: using the external broker %s (SLUICE_COMPAT_BROKERS); restart and kill checks are skipped\n", externalBrokers)
	}
	for _, bin := range builds {
		out := filepath.Join(dir, bin[0])
		build := exec.Command("go", "build", "-o", out, bin[1])
		build.Dir = repoRoot()
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", bin[1], err)
			os.Exit(1)
		}
	}
	sluiceBin, groupMemberBin = filepath.Join(dir, "sluice"), filepath.Join(dir, "groupmember")
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"),
			goleak.IgnoreAnyFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// topicName returns base made unique for this run.
func topicName(base string) string { return base + "-" + runID }

// broker is a `sluice serve` child process with its own data directory, or
// the external broker of SLUICE_COMPAT_BROKERS.
type broker struct {
	t        testing.TB
	external bool
	dir      string
	addr     string
	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
	extra    []string // serve flags, kept across restarts
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

// startBroker starts a broker on a free loopback port with a fresh data
// directory; it is stopped when the test ends.
func startBroker(t testing.TB, extra ...string) *broker {
	if externalBrokers != "" {
		return &broker{t: t, external: true, addr: externalBrokers}
	}
	b := &broker{t: t, dir: t.TempDir(), addr: freeAddr(t), log: &syncBuffer{}, extra: extra}
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
	args := append([]string{"serve", "--listen", b.addr, "--data-dir", b.dir, "--log-level", "warn"}, b.extra...)
	b.cmd = exec.Command(sluiceBin, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(20 * time.Second)
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
			b.t.Fatalf("sluice serve not listening after 20s:\n%s", b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (b *broker) stop() {
	if b.external {
		return
	}
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
	if b.external {
		b.t.Fatal("kill needs a broker the suite started")
	}
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// restart stops the broker gracefully and starts it again on the same data
// directory. Against an external broker it only logs that it cannot.
func (b *broker) restart() {
	if b.external {
		b.t.Log("external broker: restart skipped (run without SLUICE_COMPAT_BROKERS to check restarts)")
		return
	}
	b.stop()
	b.start()
}

// needTool returns the path of an external client tool, failing the test
// in CI (where .ci/run installs it) and skipping loudly elsewhere.
func needTool(t *testing.T, name string, check ...string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(p, check...).Run()
	}
	if err != nil {
		msg := fmt.Sprintf("client tool %s unavailable (%v); .ci/run installs it", name, err)
		if isCI() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return p
}

// createTopic creates a topic with franz-go's admin client.
func createTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// record is one record as a client saw it on consumption.
type record struct {
	Partition int32             `json:"p"`
	Offset    int64             `json:"o"`
	Key       string            `json:"k"`
	Value     string            `json:"v"`
	Headers   map[string]string `json:"h"`
}

// The records a producer sends: key k-<codec>-<i>, value derived from the
// key, two headers. Values are long enough that compression matters.
func recordKey(codec string, i int) string { return fmt.Sprintf("k-%s-%d", codec, i) }

func recordValue(codec string, i int) string {
	return fmt.Sprintf("v-%s-%d-%s", codec, i, strings.Repeat("sluice", 8))
}

// verify checks consumed records against what was produced: every
// (codec, i) exactly once (or at least once with dupsOK), values and
// headers matching, offsets strictly increasing per partition, and, per
// partition, records of one codec in produce order.
func verify(t testing.TB, client string, got []record, codecs []string, perCodec int, dupsOK bool) {
	t.Helper()
	seen := map[string]int{}
	lastOffset := map[int32]int64{}
	lastIndex := map[string]int{} // partition/codec -> last i
	byPart := map[int32][]record{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		lastOffset[p] = -1
		for _, r := range byPart[p] {
			if r.Offset <= lastOffset[p] {
				t.Fatalf("%s: partition %d offset %d after %d", client, p, r.Offset, lastOffset[p])
			}
			lastOffset[p] = r.Offset
			fields := strings.SplitN(r.Key, "-", 3)
			if len(fields) != 3 {
				t.Fatalf("%s: unexpected key %q", client, r.Key)
			}
			codec := fields[1]
			i, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatalf("%s: unexpected key %q", client, r.Key)
			}
			if r.Value != recordValue(codec, i) {
				t.Fatalf("%s: key %s has value %q", client, r.Key, r.Value)
			}
			if r.Headers["idx"] != strconv.Itoa(i) || r.Headers["codec"] != codec {
				t.Fatalf("%s: key %s has headers %v", client, r.Key, r.Headers)
			}
			pc := fmt.Sprintf("%d/%s", p, codec)
			if last, ok := lastIndex[pc]; ok && i <= last && !dupsOK {
				t.Fatalf("%s: partition %d: record %d after %d (codec %s)", client, p, i, last, codec)
			}
			lastIndex[pc] = i
			seen[r.Key]++
		}
	}
	missing := 0
	for _, c := range codecs {
		for i := 0; i < perCodec; i++ {
			n := seen[recordKey(c, i)]
			if n == 0 {
				missing++
				if missing <= 5 {
					t.Errorf("%s: record %s missing", client, recordKey(c, i))
				}
			}
			if n > 1 && !dupsOK {
				t.Fatalf("%s: record %s seen %d times", client, recordKey(c, i), n)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%s: %d of %d records missing", client, missing, len(codecs)*perCodec)
	}
	if len(parts) < 2 {
		t.Fatalf("%s: keys landed in %d partition(s); expected spread over 3", client, len(parts))
	}
}

// listEnds returns the end offset of every partition of topic.
func listEnds(t testing.TB, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("list offsets %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// needKafkaJS returns node's path once kafkajs is installed in
// test/compat/js; fails in CI and skips loudly elsewhere otherwise.
func needKafkaJS(t *testing.T) string {
	t.Helper()
	node := needTool(t, "node", "--version")
	dir := filepath.Join(repoRoot(), "test/compat/js")
	if err := exec.Command(node, "-e", "require('"+filepath.Join(dir, "node_modules/kafkajs")+"')").Run(); err != nil {
		msg := "kafkajs not installed (run npm ci in test/compat/js; .ci/run does)"
		if isCI() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return node
}

func isCI() bool { return os.Getenv("CI") == "true" }
