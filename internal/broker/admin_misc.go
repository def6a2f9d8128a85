package broker

// InitProducerId (v0-v5), DeleteRecords (v0-v2), DescribeLogDirs (v0-v5) and
// DescribeCluster (v0-v2).

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
)

// InitProducerID hands out producer IDs for idempotent producers (epoch 0).
// IDs are reserved durably in blocks through the metadata log, so an ID is
// never handed out twice, even across crashes (the rest of a block is
// skipped after a restart).
//
// KIP-360: a request (v3+) carrying a producer ID this broker handed out and
// its current epoch gets the same ID with the epoch bumped; when the epoch
// would overflow, or the ID is unknown, a new ID is handed out. Idempotent
// producers have no fencing, so the broker keeps no global epoch per ID;
// partitions enforce epochs per producer in Produce.
//
// Transactions do not exist yet: a non-null transactional ID is answered
// with INVALID_REQUEST (42), a non-retriable error, so a transactional
// producer fails at once instead of retrying forever.
func (b *Broker) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = codeTransactionalIDNotAllowed
		return resp
	}
	if req.Version >= 3 && req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		b.mu.RLock()
		known := req.ProducerID < b.state.producerIDEnd
		b.mu.RUnlock()
		if known {
			resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
			return resp
		}
	}
	id, err := b.allocateProducerID()
	if err != nil {
		if errors.Is(err, ErrClosed) {
			resp.ErrorCode = codeNotLeader
		} else {
			resp.ErrorCode = codeStorageError
		}
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

// allocateProducerID returns an unused producer ID, reserving a new block
// in the metadata log when the current one is used up.
func (b *Broker) allocateProducerID() (int64, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	b.mu.RLock()
	end := b.state.producerIDEnd
	b.mu.RUnlock()
	if b.nextPID >= end {
		b.adminMu.Lock()
		c := change{kind: changeProducerIDs, firstID: b.state.producerIDEnd, count: producerIDBlock}
		err := b.commit([]change{c}, nil)
		b.adminMu.Unlock()
		if err != nil {
			return -1, err
		}
		b.nextPID = c.firstID
	}
	id := b.nextPID
	b.nextPID++
	return id, nil
}

// DeleteRecords advances partitions' log start offsets (-1: to the high
// watermark). An offset above the high watermark is OFFSET_OUT_OF_RANGE.
func (b *Broker) DeleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition, op.LowWatermark = rp.Partition, -1
			p, code := b.Partition(rt.Topic, rp.Partition)
			switch {
			case code != 0:
				op.ErrorCode = code
			case rp.Offset < -1:
				op.ErrorCode = codeOffsetOutOfRange
			default:
				lso, err := p.log.DeleteRecords(rp.Offset)
				switch {
				case err == nil:
					op.LowWatermark = lso
				case errors.Is(err, log.ErrOffsetOutOfRange):
					op.ErrorCode = codeOffsetOutOfRange
				default:
					op.ErrorCode = appendErrorCode(err)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// DescribeLogDirs reports the data directory and the size of each partition
// (all partitions when Topics is null). Total and usable bytes are -1: the
// vfs does not report file-system capacity.
func (b *Broker) DescribeLogDirs(ctx context.Context, req *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.store.Dir()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	describe := func(name string, ps []*Partition, only []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = name
		add := func(p *Partition) {
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p.index, p.log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if only == nil {
			for _, p := range ps {
				add(p)
			}
		} else {
			for _, i := range only {
				if i >= 0 && int(i) < len(ps) {
					add(ps[i])
				}
			}
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	b.mu.RLock()
	if req.Topics == nil {
		for _, name := range b.state.topicNames() {
			describe(name, b.parts[b.state.topics[name].id], nil)
		}
	} else {
		for _, rt := range req.Topics {
			if t, ok := b.state.topics[rt.Topic]; ok {
				describe(rt.Topic, b.parts[t.id], rt.Partitions)
			}
		}
	}
	b.mu.RUnlock()
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp
}

// DescribeCluster describes this one-node cluster. Only the brokers
// endpoint type (1) exists; asking for controllers (2) is
// UNSUPPORTED_ENDPOINT_TYPE.
func (b *Broker) DescribeCluster(ctx context.Context, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		msg := fmt.Sprintf("endpoint type %d is not supported; sluice has no separate controllers", req.EndpointType)
		resp.ErrorCode, resp.ErrorMessage = codeUnsupportedEndpointType, &msg
		resp.EndpointType = req.EndpointType
		return resp
	}
	resp.ClusterID = b.clusterID()
	resp.ControllerID = b.cfg.NodeID
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, b.cfg.Host, b.cfg.Port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOps
	}
	return resp
}
