package bench

import (
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

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
	buf := make([]byte, 16<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	var written, sinceSync int64
	for written < n {
		m, err := f.Write(buf)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		written += int64(m)
		sinceSync += int64(m)
		if sinceSync >= ceilingGroup {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				r.Error = err.Error()
				return r
			}
			sinceSync = 0
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		r.Error = err.Error()
		return r
	}
	r.Seconds = time.Since(start).Seconds()
	r.Bytes = written
	r.MBps = float64(written) / r.Seconds / 1e6
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

// readCeiling reads every segment file (*.log) under dir sequentially with 1 MiB reads
// (page cache as it is) and returns the bytes and seconds.
func readCeiling(dir string) (int64, float64, error) {
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Ext(p) == ".log" {
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
