package bench

import (
	"time"

	"github.com/sluice-mq/sluice/internal/hist"
)

// Histogram is the harness's latency histogram.
type Histogram = hist.Histogram

// Schedule is a fixed-rate send schedule: record i is meant to be sent at
// Start + i*Interval. Latency measured from the intended send time, not from
// the moment the sender got around to sending, is corrected for coordinated
// omission: a sender that stalls (because the broker stalled it) does not
// hide the stall by sending late and timing from then.
type Schedule struct {
	Start    time.Time
	Interval time.Duration
}

// NewSchedule returns the schedule of rate records per second from start.
func NewSchedule(start time.Time, rate float64) Schedule {
	iv := time.Duration(float64(time.Second) / rate)
	if iv <= 0 {
		iv = 1
	}
	return Schedule{Start: start, Interval: iv}
}

// Intended is the time record i should be sent.
func (s Schedule) Intended(i uint64) time.Time {
	return s.Start.Add(time.Duration(i) * s.Interval)
}

// Due is how many records (0..n-1) should have been sent by now.
func (s Schedule) Due(now time.Time) uint64 {
	el := now.Sub(s.Start)
	if el < 0 {
		return 0
	}
	return uint64(el/s.Interval) + 1
}
