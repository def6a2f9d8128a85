package kafka

// Metadata (key 3), versions 0–13.
//
// Served by the broker (internal/broker: topic listing, auto-creation when
// enabled, this node as the only broker and the leader of every partition
// with leader epoch 0). Every version's response lists the brokers: old
// clients (kafka-python) wait forever otherwise.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleMetadata(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.Metadata(c.ctx, req.(*kmsg.MetadataRequest)))
}
