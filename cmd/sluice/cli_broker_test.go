package main

// TestAgainstBroker runs the CLI's verbs against a real broker (sluice serve
// or Kafka) when SLUICE_CLI_TEST_BROKERS names one; it uses names unique to
// the run, so the broker may hold other data. Without the variable it is
// skipped; the kfake tests cover the same ground in-process.
//
//	SLUICE_CLI_TEST_BROKERS=127.0.0.1:9092 go test -run TestAgainstBroker ./cmd/sluice

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAgainstBroker(t *testing.T) {
	b := os.Getenv("SLUICE_CLI_TEST_BROKERS")
	if b == "" {
		t.Skip("SLUICE_CLI_TEST_BROKERS is not set")
	}
	run := fmt.Sprintf("cli-test-%d", time.Now().UnixNano())
	topic, group := run+"-topic", run+"-group"

	mustCLI(t, b, "", "topic", "create", topic, "--partitions", "3", "--config", "retention.ms=3600000")
	defer cli(t, b, "", "topic", "delete", topic)
	var listed []topicListJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "topic", "list", "--json").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(listed, func(l topicListJSON) bool { return l.Name == topic && l.Partitions == 3 }) {
		t.Fatalf("%s missing from topic list: %+v", topic, listed)
	}

	var in strings.Builder
	for i := range 30 {
		fmt.Fprintf(&in, "k%d:v%d\n", i%5, i)
	}
	mustCLI(t, b, in.String(), "produce", topic, "--key-delimiter", ":", "--header", "run="+run)
	var d topicDescribeJSON
	if err := json.Unmarshal([]byte(mustCLI(t, b, "", "topic", "describe", topic, "--json").stdout), &d); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range d.Partitions {
		total += p.EndOffset - p.StartOffset
	}
	if len(d.Partitions) != 3 || total != 30 || configValue(d, "retention.ms") != "3600000" {
		t.Fatalf("describe: %d partitions, %d records, retention.ms %q", len(d.Partitions), total, configValue(d, "retention.ms"))
	}

	r := mustCLI(t, b, "", "consume", topic, "--from-beginning", "--exit-at-end", "--format", `%k=%v %h\n`)
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(got) != 30 || !strings.HasSuffix(got[0], " run="+run) {
		t.Fatalf("consumed %d records: %q", len(got), r.stdout)
	}

	mustCLI(t, b, "", "topic", "alter", topic, "--partitions", "4", "--delete-config", "retention.ms")

	r = mustCLI(t, b, "", "consume", topic, "--group", group, "--from-beginning", "--count", "10")
	if n := strings.Count(r.stdout, "\n"); n != 10 {
		t.Fatalf("group consume printed %d lines", n)
	}
	// Only partitions the group committed are listed once it is empty, and
	// the 10 printed records are what it committed (starts are 0).
	gd := describeGroup(t, b, group)
	var committed int64
	for _, o := range gd.Offsets {
		committed += o.CommittedOffset
	}
	if gd.State != "Empty" || committed != 10 {
		t.Fatalf("group describe: state %q, %d committed; want Empty, 10: %+v", gd.State, committed, gd)
	}
	mustCLI(t, b, "", "group", "seek", group, "--topic", topic, "--to", "earliest")
	if gd = describeGroup(t, b, group); gd.TotalLag != 30 {
		t.Fatalf("after seek to earliest, total lag %d, want 30", gd.TotalLag)
	}
	mustCLI(t, b, "", "group", "delete", group)
	mustCLI(t, b, "", "topic", "delete", topic)
}
