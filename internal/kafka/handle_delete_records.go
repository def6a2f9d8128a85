package kafka

// DeleteRecords (key 21), versions 0–2.
//
// Served by the broker: advances a partition's log start offset (-1 means
// the high watermark) and answers with the new low watermark.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDeleteRecords(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.DeleteRecords(c.ctx, req.(*kmsg.DeleteRecordsRequest)))
}
