package main

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runFranz consumes with franz-go: franz-eager uses the classic protocol
// with the (eager) range balancer, franz-cooperative the classic protocol
// with cooperative-sticky, franz-848 the KIP-848 protocol with the broker's
// uniform assignor.
func runFranz(ctx context.Context, client, broker, topic, group string, session time.Duration, out *emitter) error {
	var balancer kgo.GroupOpt
	switch client {
	case "franz-eager":
		balancer = kgo.Balancers(kgo.RangeBalancer())
	case "franz-cooperative":
		balancer = kgo.Balancers(kgo.CooperativeStickyBalancer())
	case "franz-848":
		balancer = kgo.Balancers(kgo.StickyBalancer())
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(broker), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), balancer,
		kgo.SessionTimeout(session), kgo.HeartbeatInterval(session / 6), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { out.add(m[topic]...) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { out.remove(m[topic]...) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { out.remove(m[topic]...) }),
	}
	if client == "franz-848" {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()          // leaves the group
	defer cl.AllowRebalance() // a poll cut short by SIGTERM may still hold the block
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		next := map[int32]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			out.rec(r.Partition, r.Offset)
			next[r.Partition] = r.Offset + 1
		})
		if len(next) > 0 {
			if err := cl.CommitUncommittedOffsets(ctx); err == nil {
				for p, o := range next {
					out.commit(p, o)
				}
			}
		}
		cl.AllowRebalance()
	}
	return nil
}
