package kafka

// DeleteTopics (key 20), versions 0–6.
//
// Served by the broker; v6 may name topics by ID.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDeleteTopics(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.DeleteTopics(c.ctx, req.(*kmsg.DeleteTopicsRequest)))
}
