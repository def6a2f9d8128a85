package kafka

// DescribeCluster (key 60), versions 0–1 (KIP-700).
//
// Served by the broker: this node as the only broker and the controller.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeCluster(c *conn, sl *slot, req kmsg.Request, _ *header) {
	sl.respond(c.s.cfg.Broker.DescribeCluster(c.ctx, req.(*kmsg.DescribeClusterRequest)))
}
