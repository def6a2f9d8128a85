package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is the CPU time (user + system, seconds) and resident set size
// (bytes) of a process and all its descendants, read from /proc.
type procStat struct {
	CPU float64
	RSS int64
	// DiskWrite is write_bytes of /proc/PID/io: bytes the process sent, or
	// dirtied in the page cache for, the storage layer.
	DiskWrite int64
}

// readTree sums procStat over pid and its descendants (brokers like
// RabbitMQ run as a shell script's child).
func readTree(pid int) (procStat, error) {
	pids := []int{pid}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, _, err := statOf(p); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var st procStat
	seen := map[int]bool{}
	for len(pids) > 0 {
		p := pids[len(pids)-1]
		pids = pids[:len(pids)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		_, cpu, rss, err := statOf(p)
		if err != nil {
			if p == pid {
				return st, err
			}
			continue
		}
		st.CPU += cpu
		st.RSS += rss
		st.DiskWrite += writeBytes(p)
		pids = append(pids, children[p]...)
	}
	return st, nil
}

// statOf parses /proc/PID/stat: parent pid, CPU seconds (utime + stime),
// and RSS bytes.
func statOf(pid int) (ppid int, cpu float64, rss int64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 22 {
		return 0, 0, 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	stt, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return ppid, (ut + stt) / clockTicks, pages * int64(os.Getpagesize()), nil
}

// vmHWM reads the peak resident set size of one process (VmHWM).
func vmHWM(pid int) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmHWM:") {
			fs := strings.Fields(line)
			if len(fs) >= 2 {
				kb, _ := strconv.ParseInt(fs[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// writeBytes is write_bytes of /proc/PID/io, 0 if unreadable.
func writeBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n
		}
	}
	return 0
}

// monitor samples a broker's process tree while a workload runs: CPU
// seconds used between start and stop, and the peak RSS seen.
type monitor struct {
	pid      int
	cpu0     float64
	write0   int64
	mu       sync.Mutex
	peak     int64
	stop     chan struct{}
	stopped  chan struct{}
	interval time.Duration
}

func startMonitor(pid int) *monitor {
	m := &monitor{pid: pid, stop: make(chan struct{}), stopped: make(chan struct{}), interval: 250 * time.Millisecond}
	st, _ := readTree(pid)
	m.cpu0, m.peak, m.write0 = st.CPU, st.RSS, st.DiskWrite
	go m.loop()
	return m
}

func (m *monitor) loop() {
	defer close(m.stopped)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if st, err := readTree(m.pid); err == nil {
				m.mu.Lock()
				if st.RSS > m.peak {
					m.peak = st.RSS
				}
				m.mu.Unlock()
			}
		}
	}
}

// finish stops sampling and returns CPU seconds used since start, the
// peak RSS (the larger of the sampled tree sum and the process's VmHWM) and
// the bytes written to storage since start.
func (m *monitor) finish() (cpu float64, peak, diskWrite int64) {
	close(m.stop)
	<-m.stopped
	st, _ := readTree(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.RSS > m.peak {
		m.peak = st.RSS
	}
	if h := vmHWM(m.pid); h > m.peak {
		m.peak = h
	}
	return st.CPU - m.cpu0, m.peak, st.DiskWrite - m.write0
}
