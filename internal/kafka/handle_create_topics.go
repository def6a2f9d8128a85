package kafka

// CreateTopics (key 19), versions 0–7.
//
// Served by the broker: topic-name validation as Kafka does it, internal
// ("__") names refused, validate-only (v1+), topic configs, topic IDs (v7).

import "github.com/twmb/franz-go/pkg/kmsg"

func handleCreateTopics(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.CreateTopics(c.ctx, req.(*kmsg.CreateTopicsRequest)))
}
