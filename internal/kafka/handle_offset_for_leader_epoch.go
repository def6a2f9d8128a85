package kafka

// OffsetForLeaderEpoch (key 23), versions 0–4 (KIP-101, KIP-279, KIP-320).
//
// One node, one leader epoch: 0. Clients (franz-go, librdkafka) ask for the
// end offset of the epoch of the last record they consumed to detect
// truncation. For epoch 0 (or any older epoch: none exist, so 0 covers
// them) the answer is epoch 0 ending at the log end offset that readers
// can see, the high watermark; a requested epoch newer than 0 is answered
// with epoch -1 and end offset -1 (UNDEFINED), as Kafka does for an epoch
// it has not seen. v2+ check CurrentLeaderEpoch (UNKNOWN_LEADER_EPOCH if it
// is newer than 0). Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION; an
// offline log KAFKA_STORAGE_ERROR. v1+ report the leader epoch.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleOffsetForLeaderEpoch(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch, rp.EndOffset = -1, -1
			part, code := c.s.cfg.Broker.Partition(t.Topic, p.Partition)
			if code == errNone && part == nil {
				code = errUnknownTopicOrPartition
			}
			if code == errNone && r.Version >= 2 {
				code = leaderEpochCode(p.CurrentLeaderEpoch)
			}
			if code == errNone {
				if err := part.Log().Err(); err != nil {
					code = logErrCode(err, true)
				}
			}
			if code != errNone {
				rp.ErrorCode = code
				continue
			}
			if p.LeaderEpoch <= 0 {
				rp.LeaderEpoch, rp.EndOffset = 0, part.Log().HighWatermark()
			}
		}
	}
	sl.respond(resp)
}
