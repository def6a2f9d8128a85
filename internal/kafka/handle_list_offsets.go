package kafka

// ListOffsets (key 2), versions 0–10.
//
// Per partition, by Timestamp:
//   - -1 (latest): the high watermark. With read_committed (v2+) the last
//     stable offset, which equals the high watermark until transactions
//     exist.
//   - -2 (earliest) and -4 (earliest local, v8+, KIP-405: all data is
//     local): the log start offset.
//   - -3 (max timestamp, v7+, KIP-734): the largest batch timestamp and the
//     last offset of that batch (sluice indexes batches, not records).
//   - >= 0: the first batch whose max timestamp is at least Timestamp, with
//     that timestamp; offset and timestamp -1 if there is none. (Kafka finds
//     the exact record; sluice answers with the batch's base offset, so a
//     consumer may see a few earlier records of that batch.)
//
// v0 answers in the old style: OldStyleOffsets holds the one offset found
// (or none), whatever MaxNumOffsets asks beyond one. v4+ report leader
// epoch 0 and check CurrentLeaderEpoch (UNKNOWN_LEADER_EPOCH if it is
// newer than 0). -5 (latest tiered, v9+, KIP-1005) and any other negative
// timestamp are answered with offset and timestamp -1: nothing is tiered.
// v10 (KIP-1075) adds a timeout, which needs no wait here. Unknown
// partitions get UNKNOWN_TOPIC_OR_PARTITION; an offline log
// KAFKA_STORAGE_ERROR.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleListOffsets(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			c.listOffset(r.Version, t.Topic, p, rp)
		}
	}
	sl.respond(resp)
}

func (c *conn) listOffset(version int16, topic string, p *kmsg.ListOffsetsRequestTopicPartition, rp *kmsg.ListOffsetsResponseTopicPartition) {
	part, code := c.s.cfg.Broker.Partition(topic, p.Partition)
	if code == errNone && part == nil {
		code = errUnknownTopicOrPartition
	}
	if code == errNone && version >= 4 {
		code = leaderEpochCode(p.CurrentLeaderEpoch)
	}
	if code != errNone {
		rp.ErrorCode = code
		return
	}
	l := part.Log()
	if err := l.Err(); err != nil {
		rp.ErrorCode = logErrCode(err, true)
		return
	}
	offset, ts := int64(-1), int64(-1)
	switch p.Timestamp {
	case -1:
		offset = l.HighWatermark()
	case -2, -4:
		offset = l.LogStartOffset()
	case -3:
		ts, offset = l.MaxTimestamp()
	default:
		if p.Timestamp >= 0 {
			var err error
			if offset, ts, err = l.OffsetForTimestamp(p.Timestamp); err != nil {
				rp.ErrorCode = logErrCode(err, true)
				return
			}
		}
	}
	if version == 0 {
		if offset >= 0 && p.MaxNumOffsets > 0 {
			rp.OldStyleOffsets = []int64{offset}
		} else {
			rp.OldStyleOffsets = []int64{}
		}
		return
	}
	rp.Offset, rp.Timestamp = offset, ts
	if offset >= 0 {
		rp.LeaderEpoch = 0
	}
}
