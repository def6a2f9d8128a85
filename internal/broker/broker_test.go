package broker

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestCreateProduceReopen(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	id := createTopic(t, b, "orders", 3, map[string]string{"retention.ms": "1000"})
	p := mustPartition(t, b, "orders", 2)
	res, code := produce(t, b, p, batch(3, -1, -1, -1))
	if code != 0 || res.BaseOffset != 0 || res.LastOffset != 2 {
		t.Fatalf("produce: %+v code %d", res, code)
	}
	closeBroker(t, b)

	b = openBroker(t, fs)
	defer closeBroker(t, b)
	n, gotID, ok := b.TopicPartitions("orders")
	if !ok || n != 3 || gotID != id {
		t.Fatalf("after reopen: n=%d id=%x ok=%v, want 3 %x", n, gotID, ok, id)
	}
	if got := mustPartition(t, b, "orders", 2).Log().NextOffset(); got != 3 {
		t.Fatalf("next offset %d, want 3", got)
	}
}
