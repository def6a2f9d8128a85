package kafka

// InitProducerId (key 22), versions 0–5.
//
// Served by the broker: hands out a producer id and epoch for idempotent
// producers (v3+ may pass an existing id and epoch to bump it, KIP-360).
// Transactional ids are refused until transactions exist.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleInitProducerID(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.InitProducerID(c.ctx, req.(*kmsg.InitProducerIDRequest)))
}
