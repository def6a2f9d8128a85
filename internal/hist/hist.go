// Package hist is a latency histogram: log-linear buckets that keep every
// value to within 1/64 of itself in a fixed array, so recording allocates
// nothing and percentiles come out of any number of observations. The
// benchmark harness records end-to-end latencies with it, and the log its
// commit cycles.
package hist

import (
	"math"
	"math/bits"
	"time"
)

// subBuckets is the number of linear buckets per power of two: values are
// kept to within 1/64 (~1.6%) of their true value, which is plenty for
// latency percentiles and keeps the histogram a fixed 3,712-slot array.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	// Values below 2^63: bucketOf's exponent is at most 63-subBits-1, so
	// the last index is (64-subBits-1)*subBuckets + subBuckets-1.
	numBuckets = (64 - subBits) * subBuckets
)

// RelativeError bounds how far above a value its bucket's upper bound (what
// Quantile reports) can be, relative to the value.
const RelativeError = 1.0 / subBuckets

// Histogram records durations (nanoseconds) in log-linear buckets. The zero
// value is ready to use. It is not safe for concurrent use; merge per-
// goroutine histograms with Merge.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	if u < subBuckets {
		return int(u)
	}
	e := bits.Len64(u) - subBits - 1 // u>>e in [subBuckets, 2*subBuckets)
	return (e+1)*subBuckets + int(u>>uint(e)) - subBuckets
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	lo64 := m << uint(e)
	hi64 := lo64 + (uint64(1) << uint(e)) - 1
	if hi64 > math.MaxInt64 || hi64 < lo64 {
		hi64 = math.MaxInt64
	}
	return int64(lo64), int64(hi64)
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest observation, exact.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the arithmetic mean of the observations.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q in [0, 1]: the smallest bucket
// value v such that at least q of the observations are <= v (nearest rank),
// reported as the bucket's upper bound clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			if hi > h.max {
				hi = h.max
			}
			if hi < h.min {
				hi = h.min
			}
			return time.Duration(hi)
		}
	}
	return time.Duration(h.max)
}
