package compat

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKill9KeepsAcknowledged: records acknowledged with acks=all
// (idempotent) and with acks=1 survive SIGKILL of the broker in the middle
// of a produce stream, over several kill cycles.
func TestKill9KeepsAcknowledged(t *testing.T) {
	if externalBrokers != "" {
		t.Skip("SKIPPING: SIGKILL needs a broker the suite starts; unset SLUICE_COMPAT_BROKERS")
	}
	for _, tc := range []struct {
		name       string
		idempotent bool // then no record may be on the log twice
		opts       []kgo.Opt
	}{
		{"acks=all", true, []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
		{"acks=1", false, []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t)
			topic := topicName("kill")
			createTopic(t, b.addr, topic, 3)
			acked := map[string]bool{}
			var mu sync.Mutex
			next := 0
			for cycle := 0; cycle < 3; cycle++ {
				cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr), kgo.RecordRetries(3),
					kgo.RecordDeliveryTimeout(5 * time.Second), kgo.ProducerLinger(time.Millisecond)}, tc.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Add(1)
				go func(start int) {
					defer wg.Done()
					for i := start; ctx.Err() == nil; i++ {
						key := "k-kill-" + strconv.Itoa(i)
						r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(recordValue("kill", i)),
							Headers: []kgo.RecordHeader{{Key: "idx", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte("kill")}}}
						cl.Produce(ctx, r, func(r *kgo.Record, err error) {
							if err == nil {
								mu.Lock()
								acked[string(r.Key)] = true
								mu.Unlock()
							}
						})
						if i%64 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}(next)
				time.Sleep(time.Duration(150+cycle*100) * time.Millisecond)
				b.kill()
				cancel()
				wg.Wait()
				cl.Close() // fails what is still in flight: those were never acknowledged
				mu.Lock()
				next += 1 << 20 // fresh key space per cycle
				n := len(acked)
				mu.Unlock()
				if n == 0 {
					t.Fatalf("cycle %d: nothing acknowledged before the kill", cycle)
				}
				b.start()
			}
			got := franzConsumeAll(t, b.addr, topic)
			present := map[string]int{}
			for _, r := range got {
				present[r.Key]++
				if tc.idempotent && present[r.Key] > 1 {
					t.Fatalf("idempotent producer: record %s is on the log twice", r.Key)
				}
				if r.Value != recordValue("kill", mustIdx(t, r.Key)) {
					t.Fatalf("record %s has a corrupt value", r.Key)
				}
			}
			lost := 0
			for k := range acked {
				if present[k] == 0 {
					lost++
				}
			}
			t.Logf("%d acknowledged, %d on the log after 3 SIGKILLs, %d lost", len(acked), len(got), lost)
			if lost > 0 {
				t.Fatalf("%d acknowledged records lost", lost)
			}
		})
	}
}

func mustIdx(t testing.TB, key string) int {
	i, err := strconv.Atoi(key[len("k-kill-"):])
	if err != nil {
		t.Fatalf("bad key %q", key)
	}
	return i
}

// franzConsumeAll reads a topic from the start to its end offsets.
func franzConsumeAll(t testing.TB, addr, topic string) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends := listEnds(t, cl, topic)
	cl.Close()
	total := int64(0)
	for _, e := range ends {
		total += e
	}
	return franzConsume(t, addr, topic, int(total))
}
