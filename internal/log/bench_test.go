package log

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Benchmarks on the real disk. Run them with
//
//	go test ./internal/log -run '^$' -bench 'Append|Ceiling|SequentialRead' -count 6 | tee out.txt
//	benchstat out.txt
//
// SLUICE_BENCH_DIR picks the file system (default: the OS temp dir, which
// must be a real disk, not tmpfs, for the figures to mean anything).

const (
	benchRecord    = 1024
	benchBatchRecs = 16 // 16 KiB batches
	benchWriters   = 64 // appends in flight, as from many producer connections
)

func benchDir(b *testing.B) string {
	root := os.Getenv("SLUICE_BENCH_DIR")
	d, err := os.MkdirTemp(root, "sluice-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// syncNotifier is a reusable, allocation-free Notifier.
type syncNotifier struct{ ch chan error }

func (n *syncNotifier) Durable(err error) { n.ch <- err }

// BenchmarkAppend measures durable appends (fsync policy) at each partition
// count in three ways, run back to back so they share the machine's state:
// sync=journal (the default design), sync=raw (the ceiling: see
// benchCeiling) and sync=perfile (one fsync per dirty segment file).
func BenchmarkAppend(b *testing.B) {
	for _, parts := range []int{1, 16, 256, 1024} {
		for _, mode := range []string{"journal", "raw", "perfile"} {
			b.Run(fmt.Sprintf("record=1KiB/partitions=%d/sync=%s", parts, mode), func(b *testing.B) {
				if mode == "raw" {
					benchCeiling(b)
					return
				}
				benchAppend(b, parts, mode == "perfile")
			})
		}
	}
}

func benchAppend(b *testing.B, parts int, perFile bool) {
	s, err := OpenStore(vfs.OS{}, benchDir(b), StoreOptions{PerFileSync: perFile, JournalCheckpointBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	logs := make([]*Log, parts)
	for i := range logs {
		if logs[i], err = s.Open(fmt.Sprintf("bench-%d", i), Config{}); err != nil {
			b.Fatal(err)
		}
	}
	proto := makeBatch(benchBatchRecs, benchRecord-20, 1, 7)
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	perWriter := b.N/benchWriters + 1
	b.ResetTimer()
	for w := 0; w < benchWriters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			batch := append([]byte(nil), proto...)
			n := &syncNotifier{ch: make(chan error, 1)}
			for i := 0; i < perWriter; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				l := logs[(w+i*benchWriters)%parts]
				res, err := l.Append(batch, 0)
				if err != nil {
					b.Error(err)
					return
				}
				s.WhenDurable(res.Ticket, n)
				if err := <-n.ch; err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkCeiling is the raw ceiling for BenchmarkAppend: the same bytes,
// from the same number of concurrent writers, appended to one file and made
// durable by fdatasync in group commits (each fsync covers everything
// written before it), with nothing else: no segments, no indexes.
func BenchmarkCeiling(b *testing.B) {
	b.Run("record=1KiB", benchCeiling)
}

func benchCeiling(b *testing.B) {
	{
		f, err := os.Create(filepath.Join(benchDir(b), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		proto := makeBatch(benchBatchRecs, benchRecord-20, 1, 7)
		b.SetBytes(int64(len(proto)))
		b.ReportAllocs()
		var (
			mu      sync.Mutex
			pos     int64
			waiting []chan struct{}
			wake    = make(chan struct{}, 1)
			stop    = make(chan struct{})
			flushed = make(chan struct{})
		)
		go func() {
			defer close(flushed)
			var ready []chan struct{}
			for {
				select {
				case <-wake:
				case <-stop:
					return
				}
				mu.Lock()
				ready, waiting = waiting, ready[:0]
				mu.Unlock()
				if err := f.Sync(); err != nil {
					b.Error(err)
				}
				for _, c := range ready {
					c <- struct{}{}
				}
			}
		}()
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for w := 0; w < benchWriters; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				done := make(chan struct{}, 1)
				for next.Add(1) <= int64(b.N) {
					mu.Lock()
					if _, err := f.WriteAt(proto, pos); err != nil {
						mu.Unlock()
						b.Error(err)
						return
					}
					pos += int64(len(proto))
					waiting = append(waiting, done)
					mu.Unlock()
					select {
					case wake <- struct{}{}:
					default:
					}
					<-done
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(stop)
		<-flushed
	}
}

// BenchmarkSequentialRead reads a 1 GiB partition from start to end through
// Log.Read regions (as the fetch path does, 1 MiB at a time) against a raw
// sequential read of the same segment files in the same run. Both read from
// the page cache after the first pass.
func BenchmarkSequentialRead(b *testing.B) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	dir := benchDir(b)
	s, err := OpenStore(vfs.OS{}, dir, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, err := s.Open("read-0", Config{Durability: Durability{Kind: DurabilityNone}, SegmentBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	proto := makeBatch(benchBatchRecs, benchRecord-20, 1, 7)
	for l.Size() < size {
		if _, err := l.Append(append([]byte(nil), proto...), 0); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 1<<20)
	b.Run("via=log", func(b *testing.B) {
		b.SetBytes(l.Size())
		b.ReportAllocs()
		var res ReadResult
		for i := 0; i < b.N; i++ {
			for off := int64(0); off < l.HighWatermark(); {
				if err := l.Read(off, int64(len(buf)), &res); err != nil {
					b.Fatal(err)
				}
				for _, r := range res.Regions {
					if _, err := r.File.ReadAt(buf[:r.Len], r.Pos); err != nil {
						b.Fatal(err)
					}
				}
				last := res.Regions[len(res.Regions)-1]
				h, _ := ParseHeader(buf[last.Len-int64(len(proto)):])
				off = h.LastOffset() + 1
				res.Release()
			}
		}
	})
	b.Run("via=raw", func(b *testing.B) {
		b.SetBytes(l.Size())
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, seg := range l.segments() {
				for pos := int64(0); pos < seg.written.Load(); pos += int64(len(buf)) {
					n := min(int64(len(buf)), seg.written.Load()-pos)
					if _, err := seg.file.ReadAt(buf[:n], pos); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}

// TestAppendAllocs guards the hot path: appending a batch (validation,
// offset assignment, segment write, journal write, durability wait with a
// reused notifier) and reading it back allocate nothing.
func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; `make test` runs this test without it")
	}
	for _, journalLog := range []bool{false, true} {
		s, err := OpenStore(vfs.OS{}, tempDir(t), StoreOptions{JournalLog: journalLog})
		if err != nil {
			t.Fatal(err)
		}
		appendAllocs(t, s, journalLog)
		s.Close()
	}
}

func appendAllocs(t *testing.T, s *Store, journalLog bool) {
	pols := []DurabilityKind{DurabilityFsync, DurabilityNone}
	if journalLog {
		// There a none-policy append is readable only after its group:
		// the read right after it would be past the high watermark.
		pols = pols[:1]
	}
	for _, pol := range pols {
		l, err := s.Open(fmt.Sprintf("allocs-%d", pol), Config{Durability: Durability{Kind: pol}})
		if err != nil {
			t.Fatal(err)
		}
		batch := makeBatch(16, 100, 1, 1)
		n := &syncNotifier{ch: make(chan error, 1)}
		var res ReadResult
		// Warm up the reused buffers.
		for i := 0; i < 10; i++ {
			r, _ := l.Append(batch, 0)
			s.WhenDurable(r.Ticket, n)
			<-n.ch
		}
		// per appends k batches, waits for the last one's group, then
		// reads each back.
		per := func(k int) float64 {
			return testing.AllocsPerRun(200, func() {
				var first int64
				var r AppendResult
				for i := range k {
					var err error
					if r, err = l.Append(batch, 0); err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						first = r.BaseOffset
					}
				}
				s.WhenDurable(r.Ticket, n)
				if err := <-n.ch; err != nil {
					t.Fatal(err)
				}
				for off := first; off <= r.LastOffset; off += 16 {
					if err := l.Read(off, 1<<20, &res); err != nil {
						t.Fatal(err)
					}
					res.Release()
				}
			})
		}
		one, many := per(1), per(32)
		if !journalLog && (one != 0 || many != 0) {
			t.Errorf("policy %d: %.1f allocations per append+read (%.1f for 32), want 0", pol, one, many)
		}
		// In journal-log mode each commit group is kept in memory for
		// readers and never reused (recentCache): a few allocations per
		// group, none per append.
		if journalLog && (one > 4 || many > one) {
			t.Errorf("policy %d, journal log: %.1f allocations for 1 append+read, %.1f for 32: want at most 4, not growing", pol, one, many)
		}
		t.Logf("policy %d, journal log %v: %.1f allocations for 1 append+read, %.1f for 32", pol, journalLog, one, many)
	}
}
