package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// ErrCrashed is returned by a file handle opened before a simulated crash.
var ErrCrashed = errors.New("vfs: file handle from before a crash")

// Mem is an in-memory file system that models what survives a power loss.
//
// Every file keeps its current contents, its durable contents (as of its
// last Sync) and the writes and truncations since then, in order. Every
// directory entry (file or directory) is durable only once SyncDir has run
// on its parent after the entry changed.
//
// Crash simulates power loss: handles opened before it fail with
// ErrCrashed; each directory entry changed since its parent's last SyncDir
// independently keeps its old or new state; each file becomes its durable
// contents plus a random prefix of its unsynced operations, the last of
// which may be torn (only a prefix of its bytes landed). CrashDropUnsynced
// keeps exactly the durable state.
//
// Faults: SetWriteFault and SetSyncFault inject errors per call; SetCapacity
// makes writes that would grow the total data past a limit fail whole with
// an error wrapping syscall.ENOSPC (nothing of that write lands).
type Mem struct {
	*memDisk
	gen uint64 // the power cycle this view belongs to
}

// memDisk is the state shared by every view of one Mem across crashes.
type memDisk struct {
	mu      sync.Mutex
	names   map[string]*memNode // current namespace (absolute, cleaned paths)
	durable map[string]*memNode // namespace as the disk holds it
	gen     uint64

	used       int64
	capacity   int64
	writeFault func(name string) error
	syncFault  func(name string) error
	syncs      int64
	written    int64
	read       int64
}

type memNode struct {
	dir     bool
	alloc   int64 // bytes reserved by Allocate (may exceed len(data))
	data    []byte
	durable []byte
	pending []memOp
}

// memOp is an unsynced write (data != nil) or truncation.
type memOp struct {
	off  int64
	data []byte
	size int64 // truncation size when data == nil
}

// NewMem returns an empty in-memory file system with a root directory.
func NewMem() *Mem {
	root := &memNode{dir: true}
	return &Mem{memDisk: &memDisk{
		names:   map[string]*memNode{"/": root},
		durable: map[string]*memNode{"/": root},
	}}
}

// Restart returns the file system as the next boot sees it. After Crash,
// every operation through the old view (and its files) fails with
// ErrCrashed, just as a process does not outlive a power loss.
func (m *Mem) Restart() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Mem{memDisk: m.memDisk, gen: m.memDisk.gen}
}

// liveLocked fails operations through a view from before a crash.
func (m *Mem) liveLocked(op, name string) error {
	if m.gen != m.memDisk.gen {
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

var _ FS = (*Mem)(nil)

func clean(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return path.Clean(name)
}

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// SetWriteFault installs f, called before every write with the file's name;
// a non-nil result fails that write. nil removes it.
func (m *Mem) SetWriteFault(f func(name string) error) {
	m.mu.Lock()
	m.writeFault = f
	m.mu.Unlock()
}

// SetSyncFault installs f, called before every File.Sync and SyncDir; a
// non-nil result fails that call (and the data stays unsynced). nil removes it.
func (m *Mem) SetSyncFault(f func(name string) error) {
	m.mu.Lock()
	m.syncFault = f
	m.mu.Unlock()
}

// SetCapacity limits the total bytes of file data (0: unlimited).
func (m *Mem) SetCapacity(bytes int64) {
	m.mu.Lock()
	m.capacity = bytes
	m.mu.Unlock()
}

// Used is the total bytes of file data.
func (m *Mem) Used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// Syncs counts successful File.Sync calls.
func (m *Mem) Syncs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

// BytesRead counts bytes read through ReadAt.
func (m *Mem) BytesRead() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read
}

// BytesWritten counts bytes written through WriteAt.
func (m *Mem) BytesWritten() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.written
}

func (m *Mem) parentExists(name string) bool {
	p, ok := m.names[path.Dir(name)]
	return ok && p.dir
}

func (m *Mem) open(name string, create, truncate, write bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("open", name); err != nil {
		return nil, err
	}
	n, ok := m.names[name]
	switch {
	case ok && n.dir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case !ok && !create:
		return nil, notExist("open", name)
	case !ok:
		if !m.parentExists(name) {
			return nil, notExist("open", name)
		}
		n = &memNode{}
		m.names[name] = n
	case truncate:
		m.truncateLocked(n, 0)
	}
	return &memFile{fs: m.memDisk, node: n, name: name, gen: m.gen, writable: write}, nil
}

// Open opens an existing file read-only.
func (m *Mem) Open(name string) (File, error) { return m.open(name, false, false, false) }

// OpenRW opens a file read-write, creating it if missing.
func (m *Mem) OpenRW(name string) (File, error) { return m.open(name, true, false, true) }

// Create creates or truncates a file.
func (m *Mem) Create(name string) (File, error) { return m.open(name, true, true, true) }

// Remove removes a file or an empty directory.
func (m *Mem) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("remove", name); err != nil {
		return err
	}
	n, ok := m.names[name]
	if !ok {
		return notExist("remove", name)
	}
	if n.dir {
		for p := range m.names {
			if path.Dir(p) == name && p != name {
				return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
	}
	delete(m.names, name)
	m.used -= n.footprint()
	return nil
}

// RemoveAll removes a tree; a missing path is not an error.
func (m *Mem) RemoveAll(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("remove", name); err != nil {
		return err
	}
	for p, n := range m.names {
		if p == name || strings.HasPrefix(p, name+"/") {
			delete(m.names, p)
			m.used -= n.footprint()
		}
	}
	return nil
}

// Rename moves a file or directory tree, replacing a file at the target.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("rename", oldname); err != nil {
		return err
	}
	n, ok := m.names[oldname]
	if !ok {
		return notExist("rename", oldname)
	}
	if !m.parentExists(newname) {
		return notExist("rename", newname)
	}
	if t, ok := m.names[newname]; ok && t.dir != n.dir {
		return &fs.PathError{Op: "rename", Path: newname, Err: syscall.EEXIST}
	} else if ok && !t.dir && t != n {
		m.used -= t.footprint() // the replaced file is gone
	}
	moved := map[string]*memNode{}
	for p, c := range m.names {
		if p == oldname {
			moved[newname] = c
			delete(m.names, p)
		} else if n.dir && strings.HasPrefix(p, oldname+"/") {
			moved[newname+strings.TrimPrefix(p, oldname)] = c
			delete(m.names, p)
		}
	}
	for p, c := range moved {
		m.names[p] = c
	}
	return nil
}

// MkdirAll creates a directory and its parents.
func (m *Mem) MkdirAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("mkdir", dir); err != nil {
		return err
	}
	for p := dir; ; p = path.Dir(p) {
		if n, ok := m.names[p]; ok {
			if !n.dir {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
		} else {
			m.names[p] = &memNode{dir: true}
		}
		if p == "/" {
			return nil
		}
	}
}

// ReadDir lists the names in a directory, sorted.
func (m *Mem) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("readdir", dir); err != nil {
		return nil, err
	}
	if n, ok := m.names[dir]; !ok || !n.dir {
		return nil, notExist("readdir", dir)
	}
	var out []string
	for p := range m.names {
		if p != dir && path.Dir(p) == dir {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat reports a path's size and kind.
func (m *Mem) Stat(name string) (int64, bool, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("stat", name); err != nil {
		return 0, false, err
	}
	n, ok := m.names[name]
	if !ok {
		return 0, false, notExist("stat", name)
	}
	return int64(len(n.data)), n.dir, nil
}

// SyncDir makes the entries of dir durable: the disk namespace takes, for
// every path directly in dir, its current state.
func (m *Mem) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("syncdir", dir); err != nil {
		return err
	}
	if n, ok := m.names[dir]; !ok || !n.dir {
		return notExist("syncdir", dir)
	}
	if m.syncFault != nil {
		if err := m.syncFault(dir); err != nil {
			return err
		}
	}
	for p := range m.durable {
		if p != dir && path.Dir(p) == dir {
			if _, ok := m.names[p]; !ok {
				delete(m.durable, p)
			}
		}
	}
	for p, n := range m.names {
		if p != dir && path.Dir(p) == dir {
			m.durable[p] = n
		}
	}
	return nil
}

// Crash simulates a power loss with torn and partial writes chosen by rng.
// Use Restart for the view the next boot sees.
func (m *Mem) Crash(rng *rand.Rand) { m.crash(rng) }

// CrashDropUnsynced simulates a power loss that keeps exactly what was
// synced.
func (m *Mem) CrashDropUnsynced() { m.crash(nil) }

func (m *memDisk) crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	// Namespace: each entry whose state differs from the disk's keeps the
	// old or the new state at random.
	names := make(map[string]*memNode, len(m.durable))
	for p, n := range m.durable {
		names[p] = n
	}
	if rng != nil {
		for p, n := range m.names {
			if d, ok := m.durable[p]; !ok || d != n {
				if rng.IntN(2) == 0 {
					names[p] = n
				}
			}
		}
		for p := range m.durable {
			if _, ok := m.names[p]; !ok && rng.IntN(2) == 0 {
				delete(names, p)
			}
		}
	}
	// Entries whose parent did not survive are gone.
	for changed := true; changed; {
		changed = false
		for p := range names {
			if p == "/" {
				continue
			}
			if parent, ok := names[path.Dir(p)]; !ok || !parent.dir {
				delete(names, p)
				changed = true
			}
		}
	}
	// Contents: durable plus a random prefix of the unsynced operations.
	seen := map[*memNode]bool{}
	m.used = 0
	for _, n := range names {
		if seen[n] || n.dir {
			continue
		}
		seen[n] = true
		data := append([]byte(nil), n.durable...)
		if rng != nil && len(n.pending) > 0 {
			k := rng.IntN(len(n.pending) + 1)
			for i := 0; i < k; i++ {
				op := n.pending[i]
				if op.data == nil {
					data = resize(data, op.size)
					continue
				}
				b := op.data
				if i == k-1 && rng.IntN(3) == 0 {
					b = b[:rng.IntN(len(b)+1)] // torn: a prefix landed
				}
				if end := op.off + int64(len(b)); end > int64(len(data)) {
					data = resize(data, end)
				}
				copy(data[op.off:], b)
			}
		}
		n.data = data
		n.durable = append([]byte(nil), data...)
		n.pending = nil
		n.alloc = 0
		m.used += int64(len(data))
	}
	m.names = names
	m.durable = make(map[string]*memNode, len(names))
	for p, n := range names {
		m.durable[p] = n
	}
}

func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}

// footprint is the space a node takes: its data or its reservation.
func (n *memNode) footprint() int64 { return max(int64(len(n.data)), n.alloc) }

func (m *memDisk) truncateLocked(n *memNode, size int64) {
	before := n.footprint()
	n.data = resize(n.data, size)
	n.alloc = min(n.alloc, size) // truncation frees reserved blocks past the end
	m.used += n.footprint() - before
	n.pending = append(n.pending, memOp{size: size})
}

type memFile struct {
	fs       *memDisk
	node     *memNode
	name     string
	gen      uint64
	writable bool
	closed   bool
}

func (f *memFile) checkLocked(op string) error {
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	if f.gen != f.fs.gen {
		return &fs.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	}
	return nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EINVAL}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	f.fs.read += int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.checkLocked("write"); err != nil {
		return 0, err
	}
	if !f.writable || off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if m.writeFault != nil {
		if err := m.writeFault(f.name); err != nil {
			return 0, err
		}
	}
	n := f.node
	end := off + int64(len(p))
	if grow := end - n.footprint(); grow > 0 {
		if m.capacity > 0 && m.used+grow > m.capacity {
			return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
		m.used += grow
	}
	if end > int64(len(n.data)) {
		n.data = resize(n.data, end)
	}
	copy(n.data[off:], p)
	n.pending = append(n.pending, memOp{off: off, data: append([]byte(nil), p...)})
	m.written += int64(len(p))
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate"); err != nil {
		return err
	}
	if !f.writable || size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	f.fs.truncateLocked(f.node, size)
	return nil
}

// Allocate reserves space without changing the size.
func (f *memFile) Allocate(off, n int64) error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.checkLocked("fallocate"); err != nil {
		return err
	}
	if !f.writable || off < 0 || n <= 0 {
		return &fs.PathError{Op: "fallocate", Path: f.name, Err: syscall.EINVAL}
	}
	node := f.node
	if grow := off + n - node.footprint(); grow > 0 {
		if m.capacity > 0 && m.used+grow > m.capacity {
			return &fs.PathError{Op: "fallocate", Path: f.name, Err: syscall.ENOSPC}
		}
		m.used += grow
	}
	node.alloc = max(node.alloc, off+n)
	return nil
}

// Sync makes the file's contents durable: its unsynced operations are
// applied to the durable copy.
func (f *memFile) Sync() error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.checkLocked("sync"); err != nil {
		return err
	}
	if m.syncFault != nil {
		if err := m.syncFault(f.name); err != nil {
			return err
		}
	}
	n := f.node
	for _, op := range n.pending {
		if op.data == nil {
			n.durable = resize(n.durable, op.size)
			continue
		}
		if end := op.off + int64(len(op.data)); end > int64(len(n.durable)) {
			n.durable = resize(n.durable, end)
		}
		copy(n.durable[op.off:], op.data)
	}
	clear(n.pending)
	n.pending = n.pending[:0]
	m.syncs++
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// String describes the file system for test failures.
func (m *Mem) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("vfs.Mem{%d entries, %d bytes}", len(m.names), m.used)
}
