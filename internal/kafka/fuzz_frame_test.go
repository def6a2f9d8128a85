package kafka

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/group"
)

// servedAPIs is the version table a real server builds: the broker's keys
// and the group coordinator's, as cmd/sluice wires them.
func servedAPIs() versionTable {
	var groups []APIRange
	for _, a := range group.APIs() {
		groups = append(groups, APIRange{Key: a.Key, MinVersion: a.MinVersion, MaxVersion: a.MaxVersion})
	}
	return buildVersions(groups)
}

// TestFuzzSeedsCoverServedAPIs: FuzzRequestDecode seeds one request for
// every key and every version the server advertises, so the fuzzer starts
// from each body decoder. Fails if the fuzz table drifts from what is
// served.
func TestFuzzSeedsCoverServedAPIs(t *testing.T) {
	served := servedAPIs().apiKeys()
	seeds := map[[2]int16]bool{}
	for _, frame := range requestSeeds() {
		d, err := servedAPIs().decode(frame[4:])
		if err != nil || d.req == nil {
			t.Fatalf("seed does not decode: %v", err)
		}
		seeds[[2]int16{d.h.key, d.h.version}] = true
	}
	n := 0
	for _, k := range served {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			n++
			if !seeds[[2]int16{k.ApiKey, v}] {
				t.Errorf("%s v%d is served but has no fuzz seed", kmsg.NameForKey(k.ApiKey), v)
			}
		}
	}
	t.Logf("%d keys, %d key/version pairs seeded", len(served), n)
}

// requestSeeds is one well-formed (default-valued) request frame, size
// prefix included, per served key and version.
func requestSeeds() [][]byte {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var out [][]byte
	for _, k := range servedAPIs().apiKeys() {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			req := kmsg.RequestForKey(k.ApiKey)
			req.SetVersion(v)
			out = append(out, fm.AppendRequest(nil, req, 1))
		}
	}
	return out
}

// FuzzParseHeader: the request header decoder on arbitrary frames, with
// and without header v2 tags. It never panics; on success the body is the
// frame's tail, the client id is the bytes after its length, and the
// fixed fields are the frame's first bytes.
func FuzzParseHeader(f *testing.F) {
	for _, s := range requestSeeds()[:8] {
		f.Add(s[4:], false)
	}
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 2, 1, 3, 'a', 'b', 'c', 2, 0x80, 0x01}, true)
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f}, true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff}, false)
	f.Fuzz(func(t *testing.T, frame []byte, flexible bool) {
		h, err := parseHeader(frame, func(int16, int16) bool { return flexible })
		if err != nil {
			return
		}
		if len(frame) < minHeaderBytes {
			t.Fatal("short frame accepted")
		}
		if h.key != int16(binary.BigEndian.Uint16(frame)) || h.version != int16(binary.BigEndian.Uint16(frame[2:])) ||
			h.correlation != int32(binary.BigEndian.Uint32(frame[4:])) {
			t.Fatal("fixed fields do not match the frame")
		}
		if len(h.body) > len(frame)-minHeaderBytes || !bytes.HasSuffix(frame, h.body) {
			t.Fatal("body is not the frame's tail")
		}
		idLen := int16(binary.BigEndian.Uint16(frame[8:]))
		switch {
		case idLen == -1 && h.clientID != nil, idLen >= 0 && (h.clientID == nil || *h.clientID != string(frame[10:10+int(idLen)])):
			t.Fatal("client id does not match the frame")
		}
		if !flexible && len(h.body) != len(frame)-minHeaderBytes-max(int(idLen), 0) {
			t.Fatal("non-flexible header consumed tag bytes")
		}
	})
}

// FuzzDecompress: the decompressors the broker runs on client data — the
// legacy produce path (gzip, snappy raw and xerial, lz4) and Fetch
// down-conversion (those and zstd) — never panic and never return more
// than their budget, whatever the input claims about its size.
func FuzzDecompress(f *testing.F) {
	plain := bytes.Repeat([]byte("sluice fuzz "), 50)
	for codec := byte(1); codec <= 3; codec++ {
		f.Add(codec, compress(f, codec, plain), uint32(1<<12))
		f.Add(codec, compress(f, codec, plain), uint32(100))
	}
	f.Add(byte(2), snappyRaw(plain), uint32(1<<12))
	f.Add(byte(4), zstdBytes(plain), uint32(1<<12))
	f.Add(byte(4), zstdBytes(make([]byte, 1<<20)), uint32(1<<12))
	f.Add(byte(1), gzipBytes(make([]byte, 1<<20)), uint32(1<<12))
	f.Fuzz(func(t *testing.T, codec byte, data []byte, budget uint32) {
		limit := int(budget % (1 << 16))
		if codec >= 1 && codec <= 3 {
			if out, err := decompressLegacy(codec, data, limit); err == nil {
				if len(*out) > limit {
					t.Fatalf("legacy codec %d: %d bytes out, budget %d", codec, len(*out), limit)
				}
				putBuf(out)
			}
		}
		if out, err := decompressRecords(uint16(codec), data, limit); err == nil && len(out) > limit {
			t.Fatalf("codec %d: %d bytes out, budget %d", codec, len(out), limit)
		}
	})
}

// decompressRecords reads a compressed batch's records through the
// down-conversion and produce validation paths' reader (inflater) into at
// most budget bytes.
func decompressRecords(codec uint16, data []byte, budget int) ([]byte, error) {
	z := getInflater()
	defer putInflater(z)
	r, err := z.reader(codec, data, budget+1)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(r)
	if err != nil || len(out) > budget {
		return nil, errDownConvert
	}
	return out, nil
}

func snappyRaw(b []byte) []byte {
	out := compress(nil, 2, b)[16:] // strip the xerial header and the first block length
	return out[4:]
}

func zstdBytes(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	defer e.Close()
	return e.EncodeAll(b, nil)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestDecompressAllocsBounded: a small compressed input that expands hugely
// (64 MiB of zeros) costs memory in proportion to the budget, not to what
// the input claims.
func TestDecompressAllocsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation figures are meaningless under the race detector")
	}
	plain := bytes.Repeat([]byte("round trip "), 1000)
	for codec, packed := range map[uint16][]byte{1: gzipBytes(plain), 2: compress(t, 2, plain), 3: compress(t, 3, plain), 4: zstdBytes(plain)} {
		if out, err := decompressRecords(codec, packed, len(plain)); err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("codec %d: round trip failed: %v", codec, err)
		}
		if _, err := decompressRecords(codec, packed, len(plain)-1); err == nil {
			t.Fatalf("codec %d: output one byte over the budget accepted", codec)
		}
	}
	big := make([]byte, 64<<20)
	const budget = 1 << 20
	bombs := map[string][]byte{"gzip": gzipBytes(big), "zstd": zstdBytes(big), "lz4": compress(t, 3, big)}
	for name, bomb := range bombs {
		codec := map[string]uint16{"gzip": 1, "lz4": 3, "zstd": 4}[name]
		decompressRecords(codec, bomb, budget) // warm pools
		var err error
		n := allocated(func() { _, err = decompressRecords(codec, bomb, budget) })
		t.Logf("%s: %d-byte input claiming 64 MiB, budget 1 MiB: %d bytes allocated, err %v", name, len(bomb), n, err)
		if err == nil {
			t.Fatalf("%s: bomb decompressed within a 1 MiB budget", name)
		}
		if n > 16*budget {
			t.Errorf("%s: %d bytes allocated for a 1 MiB budget", name, n)
		}
	}
}

// TestDecodeAllocsBounded: decoding a request frame allocates at most a small
// multiple of the frame's size (plus a constant), whatever lengths it
// declares. For every served key and version, frames are built from the
// well-formed request with its bytes overwritten by adversarial lengths
// (0x7fffffff int32 arrays/strings, huge uvarints for compact ones) and by
// random bytes.
func TestDecodeAllocsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation figures are meaningless under the race detector")
	}
	vt := servedAPIs()
	rng := rand.New(rand.NewPCG(5, 5))
	const factor, slack = 32, 16 << 10
	var frames, worst int
	var worstRatio float64
	var slowest time.Duration
	check := func(frame []byte) {
		frames++
		start := time.Now()
		n := allocated(func() { vt.decode(frame) })
		if d := time.Since(start); d > slowest {
			slowest = d
			if d > time.Second {
				d, _ := vt.decode(frame)
				t.Fatalf("%s v%d: %d-byte frame took %v to decode", kmsg.NameForKey(d.h.key), d.h.version, len(frame), slowest)
			}
		}
		if int(n) > factor*len(frame)+slack {
			d, _ := vt.decode(frame)
			t.Fatalf("%s v%d: %d-byte frame allocated %d bytes", kmsg.NameForKey(d.h.key), d.h.version, len(frame), n)
		}
		if r := float64(n) / float64(len(frame)); r > worstRatio {
			worstRatio, worst = r, int(n)
		}
	}
	hostile := [][]byte{
		{0x7f, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0x0f}, {0x7f, 0xff}, {0xff, 0xff, 0xff, 0xff, 0x07},
	}
	for _, seed := range requestSeeds() {
		frame := seed[4:]
		h, err := parseHeader(frame, flexibleRequest)
		if err != nil {
			t.Fatal(err)
		}
		bodyAt := len(frame) - len(h.body)
		// The body padded with bytes that hostile lengths can claim.
		base := append(append([]byte(nil), frame...), make([]byte, 64)...)
		for at := bodyAt; at < len(base)-5; at++ {
			for _, hv := range hostile {
				f := append([]byte(nil), base...)
				copy(f[at:], hv)
				check(f)
			}
		}
		for range 20 {
			f := append([]byte(nil), frame[:bodyAt]...)
			tail := make([]byte, 16+rng.IntN(256))
			for i := range tail {
				tail[i] = byte(rng.Uint32())
				if rng.IntN(4) == 0 {
					tail[i] = 0xff
				}
			}
			check(append(f, tail...))
		}
	}
	t.Logf("%d adversarial frames decoded; worst %.1f bytes allocated per frame byte (%d bytes); slowest %v", frames, worstRatio, worst, slowest)
}
