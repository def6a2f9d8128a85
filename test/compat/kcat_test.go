package compat

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestKcat drives librdkafka through kcat: produce from stdin with a key
// delimiter, per-invocation headers and each codec, idempotent with
// acks=all; consume with a format string.
func TestKcat(t *testing.T) {
	kcat := needTool(t, "kcat", "-V")
	b := startBroker(t)
	topic := topicName("kcat")
	createTopic(t, b.addr, topic, 3)
	for i, codec := range allCodecs {
		if i == 2 {
			b.restart()
		}
		var in bytes.Buffer
		for j := 0; j < perCodec; j++ {
			fmt.Fprintf(&in, "%s\t%s\n", recordKey(codec, j), recordValue(codec, j))
		}
		args := []string{"-b", b.addr, "-t", topic, "-P", "-K", "\t", "-H", "codec=" + codec,
			"-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5"}
		if codec != "none" {
			args = append(args, "-z", codec)
		}
		cmd := exec.Command(kcat, args...)
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat produce (%s): %v\n%s", codec, err, out)
		}
	}
	out, err := exec.Command(kcat, "-b", b.addr, "-t", topic, "-C", "-e", "-o", "beginning", "-q",
		"-f", "%p\t%o\t%k\t%s\t%h\n").Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	var got []record
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("kcat line %q", line)
		}
		p, _ := strconv.Atoi(f[0])
		o, _ := strconv.ParseInt(f[1], 10, 64)
		h := map[string]string{}
		for _, kv := range strings.Split(f[4], ",") {
			k, v, _ := strings.Cut(kv, "=")
			h[k] = v
		}
		// kcat sets headers per invocation, not per line: derive idx from
		// the key so verify still checks the codec header.
		h["idx"] = f[2][strings.LastIndex(f[2], "-")+1:]
		got = append(got, record{Partition: int32(p), Offset: o, Key: f[2], Value: f[3], Headers: h})
	}
	verify(t, "kcat", got, allCodecs, perCodec, false)
}
