package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// throughputResult is what a produce-throughput run measured.
type throughputResult struct {
	Records  uint64
	Bytes    int64
	Seconds  float64
	Errors   uint64
	FirstErr string
}

// progress prints a running rate every interval until stop is closed.
func progress(w io.Writer, label string, total time.Duration, bytes *atomic.Int64, stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var last int64
	lastT := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			b := bytes.Load()
			rate := float64(b-last) / now.Sub(lastT).Seconds() / 1e6
			last, lastT = b, now
			fmt.Fprintf(w, "  %-28s %5.0fs/%.0fs  %8.1f MB/s  %8.1f MB total\n", label,
				now.Sub(start).Seconds(), total.Seconds(), rate, float64(b)/1e6)
		}
	}
}

// runThroughput sends records of size bytes as fast as the broker
// acknowledges them from producers producers for dur (or until limit bytes
// were acknowledged, if limit > 0), spreading them over the partitions.
func runThroughput(ctx context.Context, d Driver, out io.Writer, label, topic string, partitions, producers, size int, dur time.Duration, limit int64) (throughputResult, error) {
	value := make([]byte, size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var acked, sentBytes atomic.Int64
	var records, errs atomic.Uint64
	var firstErr atomic.Value
	prods := make([]Producer, producers)
	for i := range prods {
		p, err := d.NewProducer(ctx)
		if err != nil {
			for _, q := range prods[:i] {
				q.Close()
			}
			return throughputResult{}, err
		}
		prods[i] = p
	}
	defer func() {
		for _, p := range prods {
			p.Close()
		}
	}()
	stop := make(chan struct{})
	go progress(out, label, dur, &acked, stop)
	defer close(stop)
	runCtx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range prods {
		wg.Add(1)
		go func(i int, p Producer) {
			defer wg.Done()
			part := i % partitions
			for runCtx.Err() == nil {
				if limit > 0 && sentBytes.Add(int64(size)) > limit {
					break
				}
				p.Send(ctx, topic, part, value, func(err error) {
					if err != nil {
						if errs.Add(1) == 1 {
							firstErr.Store(err.Error())
						}
						return
					}
					records.Add(1)
					acked.Add(int64(size))
				})
				part = (part + producers) % partitions
			}
			fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
			_ = p.Flush(fctx)
			fcancel()
		}(i, p)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	r := throughputResult{Records: records.Load(), Bytes: acked.Load(), Seconds: el, Errors: errs.Load()}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstErr = s
	}
	return r, nil
}

// latencyResult is what a fixed-rate end-to-end latency run measured.
type latencyResult struct {
	Hist     *Histogram
	Ack      *Histogram
	Due      uint64 // records the schedule had due by its end
	Sent     uint64
	Received uint64
	Errors   uint64
	Seconds  float64
	Bytes    int64
}

// runLatency produces records of size bytes at rate bytes per second on a
// fixed schedule (records dealt round-robin to producers producers) for dur while a consumer reads them, and records each
// record's latency from its intended send time (coordinated-omission
// corrected) to its receipt. The first warmup of records is left out.
func runLatency(ctx context.Context, d Driver, out io.Writer, label, topic string, partitions, producers, size int, rate float64, dur, warmup time.Duration) (latencyResult, error) {
	if size < 16 {
		size = 16
	}
	recRate := rate / float64(size)
	var mu sync.Mutex
	hist := &Histogram{}
	var received atomic.Uint64
	var recvBytes atomic.Int64
	var sched Schedule
	var schedSet atomic.Bool
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	consErr := make(chan error, 1)
	go func() {
		consErr <- d.Consume(cctx, topic, partitions, "", func(v []byte) {
			now := time.Now()
			if len(v) < 16 || !schedSet.Load() {
				return
			}
			intended := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			received.Add(1)
			recvBytes.Add(int64(len(v)))
			if intended.Sub(sched.Start) < warmup {
				return
			}
			mu.Lock()
			hist.Record(now.Sub(intended))
			mu.Unlock()
		})
	}()
	prods := make([]Producer, max(producers, 1))
	for i := range prods {
		p, err := d.NewProducer(ctx)
		if err != nil {
			for _, q := range prods[:i] {
				q.Close()
			}
			return latencyResult{}, err
		}
		prods[i] = p
	}
	defer func() {
		for _, p := range prods {
			p.Close()
		}
	}()
	// Give the consumer a moment to connect and start fetching.
	time.Sleep(500 * time.Millisecond)
	stop := make(chan struct{})
	go progress(out, label, dur, &recvBytes, stop)
	defer close(stop)
	var errs atomic.Uint64
	// The produce acknowledgement's latency, also from the intended send
	// time: tells a slow broker ack from a slow delivery to the consumer.
	var ackMu sync.Mutex
	ackHist := &Histogram{}
	sched = NewSchedule(time.Now(), recRate)
	schedSet.Store(true)
	end := sched.Start.Add(dur)
	var next uint64
	part := 0
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			break
		}
		due := sched.Due(now)
		for ; next < due; next++ {
			// A broker that blocks the sender must not keep the run going
			// past its end sending the backlog.
			if next%256 == 0 && (time.Now().After(end) || ctx.Err() != nil) {
				break
			}
			v := make([]byte, size)
			binary.BigEndian.PutUint64(v, uint64(sched.Intended(next).UnixNano()))
			binary.BigEndian.PutUint64(v[8:], next)
			intended := sched.Intended(next)
			prods[part%len(prods)].Send(ctx, topic, part, v, func(err error) {
				if err != nil {
					errs.Add(1)
					return
				}
				if intended.Sub(sched.Start) >= warmup {
					now := time.Now()
					ackMu.Lock()
					ackHist.Record(now.Sub(intended))
					ackMu.Unlock()
				}
			})
			part = (part + 1) % partitions
		}
		// Sleep until the next record is due, but at least 500µs: the
		// records due meanwhile go out together. The schedule, not the
		// sleep, defines the intended times, so the wait is charged to
		// the latency; waking every 20µs at 50 MB/s would cost a core.
		wait := time.Until(sched.Intended(next))
		time.Sleep(max(wait, 500*time.Microsecond))
	}
	sent := next
	due := sched.Due(end)
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	for _, p := range prods {
		_ = p.Flush(fctx)
	}
	fcancel()
	// Wait for the consumer to see everything (bounded).
	deadline := time.Now().Add(15 * time.Second)
	for received.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ccancel()
	if err := <-consErr; err != nil && ctx.Err() == nil {
		return latencyResult{}, fmt.Errorf("consumer: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	ackMu.Lock()
	defer ackMu.Unlock()
	return latencyResult{Hist: hist, Ack: ackHist, Due: due, Sent: sent, Received: received.Load(), Errors: errs.Load(),
		Seconds: dur.Seconds(), Bytes: recvBytes.Load()}, nil
}

// consumeAll reads topic from the start until want records arrived (or
// timeout) and returns the bytes read and the seconds it took.
func consumeAll(ctx context.Context, d Driver, topic string, partitions int, group string, want uint64, timeout time.Duration, counter *atomic.Int64) (uint64, int64, float64, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var n atomic.Uint64
	var b atomic.Int64
	start := time.Now()
	var doneAt atomic.Int64
	errc := make(chan error, 1)
	go func() {
		errc <- d.Consume(cctx, topic, partitions, group, func(v []byte) {
			b.Add(int64(len(v)))
			if counter != nil {
				counter.Add(int64(len(v)))
			}
			if n.Add(1) == want {
				doneAt.Store(int64(time.Since(start)))
				cancel()
			}
		})
	}()
	err := <-errc
	el := time.Duration(doneAt.Load())
	if el == 0 {
		el = time.Since(start)
	}
	if err != nil && cctx.Err() == nil {
		return n.Load(), b.Load(), el.Seconds(), err
	}
	return n.Load(), b.Load(), el.Seconds(), nil
}
