package kafka

// IncrementalAlterConfigs (key 44), versions 0–1 (KIP-339).
//
// Served by the broker: set, delete, append and subtract operations on
// topic configs, with validate-only.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleIncrementalAlterConfigs(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.IncrementalAlterConfigs(c.ctx, req.(*kmsg.IncrementalAlterConfigsRequest)))
}
