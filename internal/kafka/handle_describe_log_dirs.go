package kafka

// DescribeLogDirs (key 35), versions 0–4.
//
// Served by the broker: the one data directory and the size of every
// partition in it.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeLogDirs(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.DescribeLogDirs(c.ctx, req.(*kmsg.DescribeLogDirsRequest)))
}
