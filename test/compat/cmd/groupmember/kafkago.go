package main

import (
	"context"
	"errors"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

// runKafkaGo consumes with segmentio/kafka-go's ConsumerGroup (the classic
// protocol at the old JoinGroup/SyncGroup versions kafka-go hard-codes): one
// partition reader per assigned partition per generation, committing
// through the generation after each message.
func runKafkaGo(ctx context.Context, broker, topic, group string, session time.Duration, out *emitter) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: []string{broker}, Topics: []string{topic},
		SessionTimeout: session, HeartbeatInterval: session / 6, RebalanceTimeout: 2 * session,
		StartOffset: kafka.FirstOffset, Timeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer cg.Close()
	for ctx.Err() == nil {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			return err
		}
		var ps []int32
		for _, a := range gen.Assignments[topic] {
			ps = append(ps, int32(a.ID))
		}
		out.set(ps)
		for _, a := range gen.Assignments[topic] {
			a := a
			gen.Start(func(gctx context.Context) {
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: a.ID,
					MaxWait: 200 * time.Millisecond})
				defer r.Close()
				if err := r.SetOffset(a.Offset); err != nil {
					return
				}
				for {
					m, err := r.ReadMessage(gctx)
					if err != nil {
						return // the generation ended
					}
					out.rec(int32(m.Partition), m.Offset)
					if err := gen.CommitOffsets(map[string]map[int]int64{topic: {m.Partition: m.Offset + 1}}); err != nil {
						return
					}
					out.commit(int32(m.Partition), m.Offset+1)
				}
			})
		}
	}
	return nil
}
