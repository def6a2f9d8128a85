package kafka

// AlterConfigs (key 33), versions 0–2.
//
// Served by the broker: replaces a topic's whole config set, with
// validate-only.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleAlterConfigs(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.AlterConfigs(c.ctx, req.(*kmsg.AlterConfigsRequest)))
}
