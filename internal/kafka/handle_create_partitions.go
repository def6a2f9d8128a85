package kafka

// CreatePartitions (key 37), versions 0–3.
//
// Served by the broker, with validate-only. Manual replica assignments are
// meaningless on one node and answered as the broker decides.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleCreatePartitions(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.CreatePartitions(c.ctx, req.(*kmsg.CreatePartitionsRequest)))
}
