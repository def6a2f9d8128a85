package vfs

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestMemBufAgainstModel drives several buffers that clone each other with
// random writes, truncations and reads, and checks each against a plain
// byte slice: clones never see each other's later changes.
func TestMemBufAgainstModel(t *testing.T) {
	for seed := range uint64(15) {
		rng := rand.New(rand.NewPCG(seed, 4))
		bufs := make([]memBuf, 3)
		models := make([][]byte, 3)
		for step := range 400 {
			i := rng.IntN(len(bufs))
			b, model := &bufs[i], models[i]
			// Offsets and sizes straddle page boundaries.
			off := int64(rng.IntN(4 * memPageSize))
			switch op := rng.IntN(10); {
			case op < 5:
				p := make([]byte, rng.IntN(2*memPageSize)+1)
				for k := range p {
					p[k] = byte(rng.Uint32())
				}
				b.writeAt(p, off)
				if end := int(off) + len(p); end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], p)
			case op < 7:
				b.truncate(off)
				if int(off) <= len(model) {
					model = model[:off]
				} else {
					model = append(model, make([]byte, int(off)-len(model))...)
				}
			case op < 9:
				j := rng.IntN(len(bufs))
				bufs[j] = b.clone()
				models[j] = bytes.Clone(model)
				if j == i {
					continue
				}
			default:
				p := make([]byte, rng.IntN(memPageSize))
				n := b.readAt(p, off)
				want := 0
				if int(off) < len(model) {
					want = copy(make([]byte, len(p)), model[off:])
				}
				if n != want || !bytes.Equal(p[:n], model[min(int(off), len(model)):][:n]) {
					t.Fatalf("seed %d step %d: readAt(%d, %d) = %d bytes, want %d", seed, step, len(p), off, n, want)
				}
			}
			models[i] = model
			for k := range bufs {
				if got := bufs[k].bytes(); !bytes.Equal(got, models[k]) {
					t.Fatalf("seed %d step %d: buffer %d differs from its model (len %d vs %d)", seed, step, k, len(got), len(models[k]))
				}
			}
		}
	}
}
