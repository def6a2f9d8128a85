package bench

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// TestNullBrokerLatencyRun runs the latency workload's clients against the
// null broker: every record sent arrives, in a run that wraps the
// partitions' rings many times over.
func TestNullBrokerLatencyRun(t *testing.T) {
	b, err := StartNullBroker("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := newKafkaDriver(b.Addr(), time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Setup(ctx, "t", 2); err != nil {
		t.Fatal(err)
	}
	// 8 MB/s for 2 s over 2 partitions: each 4 MiB ring wraps twice.
	lr, err := runLatency(ctx, d, io.Discard, "null", "t", 2, 2, 1024, 8e6, 2*time.Second, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Errors != 0 || lr.Sent == 0 || lr.Received != lr.Sent {
		t.Fatalf("sent %d received %d errors %d", lr.Sent, lr.Received, lr.Errors)
	}
	if lr.Hist.Count() == 0 || lr.Ack.Count() == 0 {
		t.Fatalf("no latencies recorded: e2e %d ack %d", lr.Hist.Count(), lr.Ack.Count())
	}
}

// TestNullBrokerBadInput: a frame it cannot serve closes that connection,
// and the broker goes on serving others.
func TestNullBrokerBadInput(t *testing.T) {
	b, err := StartNullBroker("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for name, frame := range map[string][]byte{
		"negative size":   {0xff, 0xff, 0xff, 0xff},
		"tiny frame":      {0, 0, 0, 2, 0, 0},
		"unknown api key": {0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		"short header":    {0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 1},                                        // Metadata v1 without a client id
		"truncated body":  append([]byte{0, 0, 0, 14, 0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff}, 0, 0, 0, 9), // Produce v3, cut
	} {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var buf [4]byte
		// Closed: EOF, or a reset where the close left bytes unread; a
		// timeout means it was left hanging.
		_, err = io.ReadFull(c, buf[:])
		if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
			t.Errorf("%s: read %v (% x), want the connection closed", name, err, buf)
		}
		c.Close()
	}
	// Still serving: an ApiVersions v0 round trip.
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if corr := binary.BigEndian.Uint32(hdr[4:]); corr != 7 {
		t.Fatalf("correlation %d, want 7", corr)
	}
}

// TestBrokerStatsRoundTrip: the figures a broker writes when it stops come
// back in the run's extras, in milliseconds.
func TestBrokerStatsRoundTrip(t *testing.T) {
	var cycle, write, sync Histogram
	for i := 1; i <= 1000; i++ {
		cycle.Record(time.Duration(i) * 10 * time.Microsecond)
		write.Record(time.Duration(i) * time.Microsecond)
		sync.Record(time.Duration(i) * 5 * time.Microsecond)
	}
	name := t.TempDir() + "/stats.json"
	if err := NewBrokerStats(&cycle, &write, &sync).WriteFile(name); err != nil {
		t.Fatal(err)
	}
	bs, err := readBrokerStats(name)
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]float64{}
	bs.addTo(extra)
	for k, want := range map[string]float64{"fdatasync_max_ms": 5, "commit_cycle_max_ms": 10, "journal_write_max_ms": 1,
		"fdatasync_p99_ms": 4.95, "commit_cycle_p99_ms": 9.9} {
		if got := extra[k]; got < want || got > want*1.02 {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	// Nothing committed (durability=none): no figures.
	none := map[string]float64{}
	BrokerStats{}.addTo(none)
	if len(none) != 0 {
		t.Errorf("no cycles gave %v", none)
	}
}
