package bench

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ceilingGroup is how many bytes each fdatasync of the disk ceiling covers:
// a group commit of 64 records of 16 KiB batches, about what a commit
// cycle of the broker covers under load (a) on this kind of machine.
const ceilingGroup = 1 << 20

// diskCeiling writes n bytes sequentially to a fresh file in 16 KiB
// writes, with an fdatasync after every ceilingGroup bytes: the same bytes
// made durable with nothing else (no broker, no framing, no indexes).
func diskCeiling(dir string, n int64) Result {
	r := Result{Workload: WThroughput, Target: "ceiling-disk", Label: "ceiling-disk",
		Settings: "write(2) 16 KiB, fdatasync every 1 MiB, one file"}
	f, err := os.CreateTemp(dir, "ceiling-")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer os.Remove(f.Name())
	defer f.Close()
	writeDurably(&r, f, make([]byte, 16<<10), n, ceilingGroup)
	return r
}

// writeDurably writes n bytes to f sequentially in writes of buf, with an
// fdatasync after every group bytes and at the end, and puts the rate (or
// the error) in r.
func writeDurably(r *Result, f *os.File, buf []byte, n, group int64) {
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	var written, sinceSync int64
	for written < n {
		m, err := f.Write(buf)
		if err != nil {
			r.Error = err.Error()
			return
		}
		written += int64(m)
		sinceSync += int64(m)
		if sinceSync >= group {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				r.Error = err.Error()
				return
			}
			sinceSync = 0
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		r.Error = err.Error()
		return
	}
	r.Seconds = time.Since(start).Seconds()
	r.Bytes = written
	r.MBps = float64(written) / r.Seconds / 1e6
}

// ceilingDirectGroup is how many bytes each fdatasync of the direct-I/O
// disk ceiling covers: about the commit groups of the journal log under
// load (a) on this machine (9–15 MB measured; DESIGN.md).
const ceilingDirectGroup = 8 << 20

// diskCeilingDirect writes n bytes sequentially to a fresh file with
// direct I/O, 1 MiB per write, and an fdatasync after every
// ceilingDirectGroup bytes: the way the journal log writes its groups
// (O_DIRECT, one fsync per group), with nothing else. With the buffered
// ceiling (diskCeiling) it bounds what any way of writing these bytes
// durably at a group-commit cadence gets from this disk; the (a) check
// takes the better of the two.
func diskCeilingDirect(dir string, n int64) Result {
	r := Result{Workload: WThroughput, Target: "ceiling-disk-direct", Label: "ceiling-disk-direct",
		Settings: "O_DIRECT write(2) 1 MiB, fdatasync every 8 MiB, one fresh file"}
	name := filepath.Join(dir, fmt.Sprintf("ceiling-direct-%d", os.Getpid()))
	defer os.Remove(name)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC|unix.O_DIRECT, 0o600)
	if err != nil {
		r.Error = fmt.Sprintf("direct I/O: %v", err)
		return r
	}
	defer f.Close()
	writeDurably(&r, f, alignedBlock(1<<20), n, ceilingDirectGroup)
	return r
}

// tcpCeiling measures loopback TCP bandwidth: one connection, 1 MiB
// writes, for dur.
func tcpCeiling(dur time.Duration) Result {
	r := Result{Workload: WThroughput, Target: "ceiling-tcp", Label: "ceiling-tcp", Settings: "one loopback TCP connection, 1 MiB writes"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for time.Since(start) < dur {
		if _, err := c.Write(buf); err != nil {
			r.Error = err.Error()
			break
		}
	}
	c.Close()
	n := <-got
	r.Seconds = time.Since(start).Seconds()
	r.Bytes = n
	r.MBps = float64(n) / r.Seconds / 1e6
	return r
}

// readCeiling reads every file that holds records under dir — segment
// files (*.log) and journal files (*.wal, which are the log with the
// journal log) — sequentially with 1 MiB reads (page cache as it is) and
// returns the bytes and seconds.
func readCeiling(dir string) (int64, float64, error) {
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if ext := filepath.Ext(p); err == nil && d.Type().IsRegular() && (ext == ".log" || ext == ".wal") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	buf := make([]byte, 1<<20)
	var total int64
	start := time.Now()
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		for {
			m, err := f.Read(buf)
			total += int64(m)
			if err != nil {
				break
			}
		}
		f.Close()
	}
	return total, time.Since(start).Seconds(), nil
}

// fsyncFloorRing is the size of the file the fsync floor overwrites in a
// ring: written once before the run, like a recycled journal file, so each
// fdatasync is a device flush and no file system metadata.
const fsyncFloorRing = 64 << 20

// fsyncFloor is the (b) counterpart of the disk ceiling: the latency an
// ideal group committer on this disk would give at rate bytes per second.
// Records of size bytes fall due on the same fixed schedule as in (b);
// each cycle writes every record due so far (4 KiB-aligned, direct I/O
// where the file system allows it) and fdatasyncs; a record's latency runs
// from its due time to the end of the fdatasync that covered it. No
// network, no broker, no clients, no segment files: what is left is the
// disk's flush latency and the wait for the cycle in progress, so the gap
// between this and a broker's p99 is the broker's (and its clients') own.
// The first warmup of records is left out, as in (b).
func fsyncFloor(dir string, rate float64, size int, dur, warmup time.Duration) Result {
	r := Result{Workload: WLatency, Target: "ceiling-fsync", Label: "ceiling-fsync", RateMBps: rate / 1e6, RecordSize: size,
		Settings: "ideal group commit: records due on the (b) schedule, each cycle one 4 KiB-aligned write of all records due + fdatasync, 64 MiB pre-written file overwritten in a ring"}
	name := filepath.Join(dir, fmt.Sprintf("fsync-floor-%d", os.Getpid()))
	defer os.Remove(name)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC|unix.O_DIRECT, 0o600)
	direct := err == nil
	if !direct {
		f, err = os.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer f.Close()
	if !direct {
		r.Settings += " (no direct I/O here: buffered writes)"
	}
	buf := alignedBlock(1 << 20)
	for off := int64(0); off < fsyncFloorRing; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		r.Error = err.Error()
		return r
	}
	hist := &Histogram{}
	sched := NewSchedule(time.Now(), rate/float64(size))
	end := sched.Start.Add(dur)
	var next uint64
	var pos, written int64
	for {
		now := time.Now()
		if now.After(end) {
			break
		}
		due := sched.Due(now)
		if due == next {
			time.Sleep(time.Until(sched.Intended(next)))
			continue
		}
		n := (int64(due-next)*int64(size) + 4095) &^ 4095
		for n > 0 {
			m := min(n, int64(len(buf)))
			if pos+m > fsyncFloorRing {
				pos = 0
			}
			if _, err := f.WriteAt(buf[:m], pos); err != nil {
				r.Error = err.Error()
				return r
			}
			pos += m
			n -= m
			written += m
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			r.Error = err.Error()
			return r
		}
		done := time.Now()
		for i := next; i < due; i++ {
			if t := sched.Intended(i); t.Sub(sched.Start) >= warmup {
				hist.Record(done.Sub(t))
			}
		}
		next = due
	}
	r.Records, r.Bytes, r.Seconds = next, int64(next)*int64(size), dur.Seconds()
	r.MBps = float64(r.Bytes) / r.Seconds / 1e6
	r.Latency = summarize(hist)
	return r
}

// alignedBlock returns n bytes at a 4096-byte aligned address (direct I/O).
func alignedBlock(n int) []byte {
	b := make([]byte, n+4096)
	off := 0
	if rem := int(uintptr(unsafe.Pointer(&b[0])) & 4095); rem != 0 {
		off = 4096 - rem
	}
	return b[off : off+n : off+n]
}
