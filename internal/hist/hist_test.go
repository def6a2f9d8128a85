package hist

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

// The histogram's quantiles stay within its 1/64 relative precision of
// the exact nearest-rank quantile of the same data.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var h Histogram
	vals := make([]int64, 100000)
	for i := range vals {
		// Log-uniform from 1µs to ~1s.
		v := int64(1000 * (1 << uint(rng.Intn(20))))
		v += rng.Int63n(v)
		vals[i] = v
		h.Record(time.Duration(v))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		rank := int(float64(len(vals))*q+0.999999) - 1
		exact := float64(vals[rank])
		got := float64(h.Quantile(q))
		if got < exact || got > exact*(1+1.0/subBuckets) {
			t.Errorf("q=%v: got %v, exact %v (want within +1/64)", q, got, exact)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) {
		t.Errorf("max %v, want %v", h.Max(), vals[len(vals)-1])
	}
	if h.Quantile(1) != h.Max() || h.Quantile(0) != time.Duration(vals[0]) {
		t.Errorf("q=0/1: %v %v", h.Quantile(0), h.Quantile(1))
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramSmallAndMerge(t *testing.T) {
	var a, b Histogram
	if a.Quantile(0.5) != 0 || a.Max() != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram not zero")
	}
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i))
	}
	for i := 51; i <= 100; i++ {
		b.Record(time.Duration(i))
	}
	a.Merge(&b)
	// Below 64 ns every value has its own bucket: exact.
	if got := a.Quantile(0.5); got != 50 {
		t.Errorf("p50 of 1..100 = %v, want 50", got)
	}
	if got := a.Quantile(0.99); got < 99 || got > 100 {
		t.Errorf("p99 of 1..100 = %v", got)
	}
	if a.Max() != 100 || a.Count() != 100 {
		t.Errorf("max %v count %d", a.Max(), a.Count())
	}
	a.Record(-5) // clamped, not a panic
	if a.Quantile(0) != 0 {
		t.Errorf("negative not clamped to 0")
	}
	for i := 0; i < len(a.counts); i++ {
		lo, hi := bucketRange(i)
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d range [%d,%d] maps to %d,%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
	}
}

// A sender on a fixed schedule of 1,000 records/s whose broker stalls for
// one second: measuring from the intended send time shows the stall in
// the percentiles; timing each record from when the stalled sender got
// round to sending it (coordinated omission) hides it.
