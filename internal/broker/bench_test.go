package broker

import (
	"encoding/binary"
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// BenchmarkProduce measures Partition.Produce (checks + append) for 16 KiB
// batches of 1 KiB records, idempotent or not, with
// sluice.durability=none, so that it shows the broker's own cost and
// allocations rather than the disk's fsync. It runs on the OS file system
// (page cache) in a temporary directory.
func BenchmarkProduce(b *testing.B) {
	for _, bc := range []struct {
		name string
		pid  int64
	}{{"idempotent=false", -1}, {"idempotent=true", 7}} {
		b.Run("record=1KiB/batch=16KiB/"+bc.name, func(b *testing.B) {
			cfg := testConfig(vfs.OS{})
			cfg.DataDir = b.TempDir()
			br, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			tb := &testing.T{}
			createTopic(tb, br, "bench", 1, map[string]string{"sluice.durability": "none", "segment.bytes": "67108864", "retention.bytes": "134217728"})
			p, _ := br.Partition("bench", 0)
			tmpl := bigBatch(16, 1024, bc.pid)
			buf := make([]byte, len(tmpl))
			b.SetBytes(int64(len(tmpl)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(buf, tmpl)
				if bc.pid >= 0 {
					binary.BigEndian.PutUint32(buf[53:], uint32(i*16))
					fixCRC(buf)
				}
				if _, code, err := p.Produce(buf); code != 0 || err != nil {
					b.Fatalf("produce: code %d %v", code, err)
				}
			}
		})
	}
}

func bigBatch(n, size int, pid int64) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		var rec []byte
		rec = append(rec, 0)
		rec = binary.AppendVarint(rec, 0)
		rec = binary.AppendVarint(rec, int64(i))
		rec = binary.AppendVarint(rec, -1)
		rec = binary.AppendVarint(rec, int64(size))
		rec = append(rec, make([]byte, size)...)
		rec = binary.AppendVarint(rec, 0)
		records = binary.AppendVarint(records, int64(len(rec)))
		records = append(records, rec...)
	}
	b := batch(1, pid, 0, 0)[:61]
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	fixCRC(b)
	return b
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crcOf(b[21:]))
}
