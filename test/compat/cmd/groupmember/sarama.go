package main

import (
	"context"
	"time"

	"github.com/IBM/sarama"
)

// runSarama consumes with Sarama's ConsumerGroup (classic protocol, range
// balance strategy), committing synchronously whenever it has handled every
// message the claim has buffered (a commit per message costs Sarama about
// 250 ms, against sluice and kfake alike).
func runSarama(ctx context.Context, broker, topic, group string, session time.Duration, out *emitter) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = session
	cfg.Consumer.Group.Heartbeat.Interval = session / 6
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{broker}, group, cfg)
	if err != nil {
		return err
	}
	defer cg.Close()
	h := saramaHandler{topic: topic, out: out}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond) // Consume returned an error: retry the session
		}
	}
	return nil
}

type saramaHandler struct {
	topic string
	out   *emitter
}

func (h saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.out.set(s.Claims()[h.topic])
	return nil
}

func (h saramaHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.out.set(nil)
	return nil
}

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.out.rec(m.Partition, m.Offset)
		s.MarkMessage(m, "")
		if len(c.Messages()) == 0 {
			s.Commit() // synchronous
			h.out.commit(m.Partition, m.Offset+1)
		}
	}
	return nil
}
