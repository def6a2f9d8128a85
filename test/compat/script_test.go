package compat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// scriptClient is a client driven through a script that speaks the
// produce/consume protocol of test/compat/py and test/compat/js.
type scriptClient struct {
	name string
	cmd  []string // interpreter and script
}

type produceResult struct {
	Acked  int      `json:"acked"`
	Errors []string `json:"errors"`
}

func (c scriptClient) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(c.cmd[0], append(c.cmd[1:], args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", c.name, args, err, tail(stderr.String(), 3000))
	}
	return out
}

// exercise produces 10,000 records split evenly over the codecs
// (restarting the broker midway), consumes them all back and verifies them.
func (c scriptClient) exercise(t *testing.T, codecs []string, dupsOK bool) {
	perCodec := 10000 / len(codecs)
	b := startBroker(t)
	topic := topicName(c.name)
	createTopic(t, b.addr, topic, 3)
	for i, codec := range codecs {
		if i == len(codecs)/2 {
			b.restart()
		}
		var res produceResult
		out := c.run(t, "produce", b.addr, topic, codec, strconv.Itoa(perCodec))
		if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
			t.Fatalf("%s produce output %q: %v", c.name, out, err)
		}
		if res.Acked != perCodec {
			t.Fatalf("%s produce (%s): %d of %d acknowledged; errors %v", c.name, codec, res.Acked, perCodec, res.Errors)
		}
	}
	want := perCodec * len(codecs)
	out := c.run(t, "consume", b.addr, topic, strconv.Itoa(want))
	var got []record
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s consume line %q: %v", c.name, sc.Text(), err)
		}
		got = append(got, r)
	}
	if len(got) != want {
		t.Fatalf("%s consumed %d records, want %d", c.name, len(got), want)
	}
	verify(t, c.name, got, codecs, perCodec, dupsOK)
}

func TestConfluentKafkaPython(t *testing.T) {
	py := needTool(t, "/usr/bin/python3", "-c", "import confluent_kafka")
	c := scriptClient{name: "confluent-kafka", cmd: []string{py, filepath.Join(repoRoot(), "test/compat/py/confluent_client.py")}}
	c.exercise(t, allCodecs, false)
}

func TestKafkaPython(t *testing.T) {
	py := needTool(t, "/usr/bin/python3", "-c", "import kafka")
	c := scriptClient{name: "kafka-python", cmd: []string{py, filepath.Join(repoRoot(), "test/compat/py/kafka_python_client.py")}}
	var codecs []string
	if err := json.Unmarshal(c.run(t, "codecs"), &codecs); err != nil {
		t.Fatal(err)
	}
	if len(codecs) < len(allCodecs) {
		msg := fmt.Sprintf("kafka-python supports only %v here (python3-snappy, python3-lz4, python3-zstandard missing?)", codecs)
		if isCI() {
			t.Fatal(msg) // .ci/run installs the codec modules
		}
		t.Log("WARNING: " + msg)
	}
	// kafka-python 2.0 has no idempotent producer: a retry after a lost
	// acknowledgement may duplicate, which is the client's contract.
	c.exercise(t, codecs, true)
}

func TestKafkaJS(t *testing.T) {
	node := needKafkaJS(t)
	dir := filepath.Join(repoRoot(), "test/compat/js")
	c := scriptClient{name: "kafkajs", cmd: []string{node, filepath.Join(dir, "client.js")}}
	// KafkaJS ships gzip only; snappy, lz4 and zstd are third-party plugins.
	c.exercise(t, []string{"none", "gzip"}, false)
}
