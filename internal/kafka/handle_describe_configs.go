package kafka

// DescribeConfigs (key 32), versions 0–4.
//
// Served by the broker: topic configs (retention.ms, retention.bytes,
// segment.bytes, segment.ms, max.message.bytes, message.timestamp.type,
// cleanup.policy and sluice's durability policy) and broker configs.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeConfigs(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.DescribeConfigs(c.ctx, req.(*kmsg.DescribeConfigsRequest)))
}
