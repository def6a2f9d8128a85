package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// ErrCrashed is returned by a file handle opened before a simulated crash.
var ErrCrashed = errors.New("vfs: file handle from before a crash")

// Mem is an in-memory file system that models what survives a power loss.
// It is safe for concurrent use.
//
// Files and directories are inodes, as on a real disk. Every file keeps its
// current contents, its durable contents (as of its last Sync) and the
// writes and truncations since then, in order. Every directory keeps its
// current entries and the entries as of its last SyncDir: a create, remove
// or rename is durable only once SyncDir has run on the directory (for a
// rename across directories, on both).
//
// Crash simulates power loss: handles and views opened before it fail with
// ErrCrashed (call Restart for the next boot's view). Each directory entry
// changed since its directory's last SyncDir independently keeps its old or
// its new state, except that a rename is atomic: it is kept or undone as a
// whole. A file created but never made durable in its directory disappears
// however often its contents were synced. Each surviving file becomes its
// durable contents plus a random prefix of its unsynced operations, the last
// of which may be torn (only a prefix of its bytes landed, followed by up to
// SetTornGarbage bytes of garbage within the write's range). The choices
// depend only on rng, so a seed reproduces a crash. CrashDropUnsynced keeps
// exactly the durable state.
//
// Faults: SetWriteFault and SetSyncFault inject errors per call (FailWrite,
// FailWritesAfter, FailNextSync and FailSyncs are shorthands). A failed
// WriteAt or SyncDir changes nothing. A failed
// File.Sync behaves like Linux after a writeback error: the writes it
// covered stay readable but are lost to the disk, and a later successful
// Sync does not bring them back. SetCapacity makes a write or Allocate that
// would grow the total space in use past a limit fail whole with an error
// wrapping syscall.ENOSPC (nothing of that write lands); raising or lifting
// the limit makes writes succeed again. Injected errors wrap ErrInjected.
type Mem struct {
	*memDisk
	gen uint64 // the power cycle this view belongs to
}

// memDisk is the state shared by every view of one Mem across crashes.
type memDisk struct {
	mu      sync.Mutex
	root    *memNode
	gen     uint64
	renames []memRename // renames not yet durable in both directories

	used        int64 // space of linked files: data or reservation
	capacity    int64
	tornGarbage int
	writeFault  func(name string) error
	syncFault   func(name string) error
	syncs       int64
	written     int64
	read        int64
}

// memNode is an inode: a directory (entries) or a file (data).
type memNode struct {
	dir     bool
	entries map[string]*memNode // current entries
	synced  map[string]*memNode // entries as of the last SyncDir

	nlink   int     // directory entries naming this file
	alloc   int64   // bytes reserved by Allocate (may exceed len(data))
	data    memBuf  // current contents
	durable memBuf  // contents as of the last Sync
	pending []memOp // unsynced writes and truncations, in order
}

// memOp is an unsynced write (data != nil) or truncation.
type memOp struct {
	off  int64
	data []byte
	size int64 // truncation size when data == nil
}

// memEntry names one directory entry.
type memEntry struct {
	dir  *memNode
	name string
}

type memRename struct {
	from, to         memEntry
	fromDone, toDone bool // SyncDir ran on that side since the rename
}

func newDir() *memNode {
	return &memNode{dir: true, entries: map[string]*memNode{}, synced: map[string]*memNode{}}
}

// NewMem returns an empty in-memory file system with a root directory.
func NewMem() *Mem {
	return &Mem{memDisk: &memDisk{root: newDir()}}
}

var _ FS = (*Mem)(nil)

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

func clean(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return path.Clean(name)
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// walkLocked resolves the directory holding name (a cleaned path other than
// "/") and returns it with the last element.
func (m *memDisk) walkLocked(op, name string) (*memNode, string, error) {
	dir, base := path.Split(name)
	d := m.root
	for _, el := range strings.Split(strings.Trim(dir, "/"), "/") {
		if el == "" {
			continue
		}
		n, ok := d.entries[el]
		if !ok {
			return nil, "", pathErr(op, name, fs.ErrNotExist)
		}
		if !n.dir {
			return nil, "", pathErr(op, name, syscall.ENOTDIR)
		}
		d = n
	}
	return d, base, nil
}

// lookupLocked resolves name to its node.
func (m *memDisk) lookupLocked(op, name string) (*memNode, error) {
	if name == "/" {
		return m.root, nil
	}
	d, base, err := m.walkLocked(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := d.entries[base]
	if !ok {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	return n, nil
}

// SetWriteFault installs f, called before every WriteAt with the file's
// name; a non-nil result fails that write and nothing of it lands. f runs
// with the file system locked and must not call back into it. nil removes it.
func (m *Mem) SetWriteFault(f func(name string) error) {
	m.mu.Lock()
	m.writeFault = f
	m.mu.Unlock()
}

// SetSyncFault installs f, called before every File.Sync and SyncDir with
// the path; a non-nil result fails that call. f runs with the file system
// locked and must not call back into it. nil removes it.
func (m *Mem) SetSyncFault(f func(name string) error) {
	m.mu.Lock()
	m.syncFault = f
	m.mu.Unlock()
}

// FailWrite makes the nth WriteAt from now (n >= 1: 1 is the next one) fail
// with ErrInjected; every other write succeeds. It replaces SetWriteFault.
func (m *Mem) FailWrite(n int) {
	calls := 0
	m.SetWriteFault(func(name string) error {
		calls++
		if calls == n {
			return pathErr("write", name, ErrInjected)
		}
		return nil
	})
}

// FailWritesAfter lets the next n writes succeed and fails every later one
// with ErrInjected, until SetWriteFault(nil). It replaces SetWriteFault.
func (m *Mem) FailWritesAfter(n int) {
	calls := 0
	m.SetWriteFault(func(name string) error {
		calls++
		if calls > n {
			return pathErr("write", name, ErrInjected)
		}
		return nil
	})
}

// FailNextSync makes the next File.Sync or SyncDir fail with ErrInjected,
// once. It replaces SetSyncFault.
func (m *Mem) FailNextSync() {
	done := false
	m.SetSyncFault(func(name string) error {
		if done {
			return nil
		}
		done = true
		return pathErr("sync", name, ErrInjected)
	})
}

// FailSyncs makes every File.Sync and SyncDir fail with ErrInjected, until
// SetSyncFault(nil). It replaces SetSyncFault.
func (m *Mem) FailSyncs() {
	m.SetSyncFault(func(name string) error { return pathErr("sync", name, ErrInjected) })
}

// SetCapacity limits the total space of file data and reservations
// (0: unlimited). Lowering it below Used does not remove anything; it makes
// every write that needs more space fail with ENOSPC.
func (m *Mem) SetCapacity(bytes int64) {
	m.mu.Lock()
	m.capacity = bytes
	m.mu.Unlock()
}

// SetTornGarbage sets how many bytes of garbage may follow the landed prefix
// of a torn write at a Crash (0, the default: none). Garbage never goes past
// the torn write's own range.
func (m *Mem) SetTornGarbage(bytes int) {
	m.mu.Lock()
	m.tornGarbage = bytes
	m.mu.Unlock()
}

// Used is the total space of linked files: their data or reservation.
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

// unlinkLocked drops one name of n (and, for a directory, its whole tree).
func (m *memDisk) unlinkLocked(n *memNode) {
	if n.dir {
		for _, c := range n.entries {
			m.unlinkLocked(c)
		}
		return
	}
	n.nlink--
	if n.nlink == 0 {
		m.used -= n.footprint()
	}
}

func (m *Mem) open(name string, create, truncate, write bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("open", name); err != nil {
		return nil, err
	}
	if name == "/" {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	d, base, err := m.walkLocked("open", name)
	if err != nil {
		return nil, err
	}
	n, ok := d.entries[base]
	switch {
	case ok && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case !ok && !create:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		n = &memNode{nlink: 1}
		d.entries[base] = n
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
	if name == "/" {
		return pathErr("remove", name, syscall.EBUSY)
	}
	d, base, err := m.walkLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := d.entries[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.entries) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(d.entries, base)
	m.unlinkLocked(n)
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
	if name == "/" {
		return pathErr("remove", name, syscall.EBUSY)
	}
	d, base, err := m.walkLocked("remove", name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if n, ok := d.entries[base]; ok {
		delete(d.entries, base)
		m.unlinkLocked(n)
	}
	return nil
}

// Rename moves a file or directory tree. It replaces a file at the target
// with a file, or an empty directory with a directory.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("rename", oldname); err != nil {
		return err
	}
	if oldname == "/" || newname == "/" {
		return pathErr("rename", oldname, syscall.EBUSY)
	}
	od, obase, err := m.walkLocked("rename", oldname)
	if err != nil {
		return err
	}
	n, ok := od.entries[obase]
	if !ok {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	nd, nbase, err := m.walkLocked("rename", newname)
	if err != nil {
		return err
	}
	if oldname == newname {
		return nil
	}
	if n.dir && strings.HasPrefix(newname, oldname+"/") {
		return pathErr("rename", newname, syscall.EINVAL)
	}
	if t, ok := nd.entries[nbase]; ok {
		switch {
		case t == n:
			return nil // another name of the same file
		case n.dir && !t.dir:
			return pathErr("rename", newname, syscall.ENOTDIR)
		case !n.dir && t.dir:
			return pathErr("rename", newname, syscall.EISDIR)
		case t.dir && len(t.entries) > 0:
			return pathErr("rename", newname, syscall.ENOTEMPTY)
		}
		m.unlinkLocked(t)
	}
	delete(od.entries, obase)
	nd.entries[nbase] = n
	m.renames = append(m.renames, memRename{from: memEntry{od, obase}, to: memEntry{nd, nbase}})
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
	d := m.root
	for _, el := range strings.Split(strings.Trim(dir, "/"), "/") {
		if el == "" {
			continue
		}
		n, ok := d.entries[el]
		if !ok {
			n = newDir()
			d.entries[el] = n
		} else if !n.dir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		d = n
	}
	return nil
}

// ReadDir lists the names in a directory, sorted.
func (m *Mem) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("readdir", dir); err != nil {
		return nil, err
	}
	d, err := m.lookupLocked("readdir", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, pathErr("readdir", dir, syscall.ENOTDIR)
	}
	return slices.Sorted(maps.Keys(d.entries)), nil
}

// Stat reports a path's size and kind.
func (m *Mem) Stat(name string) (int64, bool, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("stat", name); err != nil {
		return 0, false, err
	}
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return 0, false, err
	}
	return n.data.size, n.dir, nil
}

// SyncDir makes the entries of dir durable as they are now.
func (m *Mem) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.liveLocked("syncdir", dir); err != nil {
		return err
	}
	d, err := m.lookupLocked("syncdir", dir)
	if err != nil {
		return err
	}
	if !d.dir {
		return pathErr("syncdir", dir, syscall.ENOTDIR)
	}
	if m.syncFault != nil {
		if err := m.syncFault(dir); err != nil {
			return err
		}
	}
	d.synced = maps.Clone(d.entries)
	kept := m.renames[:0]
	for _, r := range m.renames {
		r.fromDone = r.fromDone || r.from.dir == d
		r.toDone = r.toDone || r.to.dir == d
		if !r.fromDone || !r.toDone {
			kept = append(kept, r)
		}
	}
	clear(m.renames[len(kept):])
	m.renames = kept
	return nil
}

// Crash simulates a power loss with entry, write and tear choices drawn
// from rng. Use Restart for the view the next boot sees.
func (m *Mem) Crash(rng *rand.Rand) { m.crash(rng) }

// CrashDropUnsynced simulates a power loss that keeps exactly the durable
// state: synced contents and synced directory entries.
func (m *Mem) CrashDropUnsynced() { m.crash(nil) }

func (m *memDisk) crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	c := crasher{m: m, rng: rng, groups: map[memEntry]memEntry{}, coins: map[memEntry]bool{},
		dirs: map[*memNode]bool{}, files: map[*memNode]bool{}}
	for _, r := range m.renames {
		c.union(r.from, r.to)
	}
	m.renames = nil
	m.used = 0
	c.dir(m.root)
}

// crasher computes the state after one crash. Every choice is taken in
// sorted name order so that a seed reproduces the crash.
type crasher struct {
	m      *memDisk
	rng    *rand.Rand
	groups map[memEntry]memEntry // union-find over entries tied by renames
	coins  map[memEntry]bool     // per group: true keeps the new state
	dirs   map[*memNode]bool
	files  map[*memNode]bool
}

func (c *crasher) find(e memEntry) memEntry {
	for {
		p, ok := c.groups[e]
		if !ok || p == e {
			return e
		}
		e = p
	}
}

func (c *crasher) union(a, b memEntry) {
	ra, rb := c.find(a), c.find(b)
	if ra != rb {
		c.groups[ra] = rb
	}
}

// keepNew decides whether a changed entry takes its new state.
func (c *crasher) keepNew(e memEntry) bool {
	if c.rng == nil {
		return false
	}
	root := c.find(e)
	v, ok := c.coins[root]
	if !ok {
		v = c.rng.IntN(2) == 0
		c.coins[root] = v
	}
	return v
}

func (c *crasher) dir(d *memNode) {
	c.dirs[d] = true
	next := maps.Clone(d.synced)
	if c.rng != nil {
		for _, name := range slices.Sorted(maps.Keys(d.entries)) {
			if n := d.entries[name]; d.synced[name] != n && c.keepNew(memEntry{d, name}) {
				next[name] = n
			}
		}
		for _, name := range slices.Sorted(maps.Keys(d.synced)) {
			if _, ok := d.entries[name]; !ok && c.keepNew(memEntry{d, name}) {
				delete(next, name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		n := next[name]
		switch {
		case n.dir && c.dirs[n]:
			delete(next, name) // a half-durable directory rename: one name wins
		case n.dir:
			c.dir(n)
		case c.files[n]:
			n.nlink++
		default:
			c.files[n] = true
			c.file(n)
		}
	}
	d.entries, d.synced = next, maps.Clone(next)
}

// file leaves n with its durable contents plus a prefix of its unsynced
// operations, the last possibly torn.
func (c *crasher) file(n *memNode) {
	k := 0
	if c.rng != nil && len(n.pending) > 0 {
		k = c.rng.IntN(len(n.pending) + 1)
	}
	for i, op := range n.pending[:k] {
		if op.data == nil {
			n.durable.truncate(op.size)
			continue
		}
		b := op.data
		if i == k-1 && c.rng.IntN(3) == 0 {
			landed := c.rng.IntN(len(b) + 1)
			garbage := min(len(b)-landed, c.rng.IntN(c.m.tornGarbage+1))
			b = slices.Clone(b[:landed+garbage])
			for j := landed; j < len(b); j++ {
				b[j] = byte(c.rng.Uint32())
			}
		}
		n.durable.writeAt(b, op.off)
	}
	n.data = n.durable.clone()
	clear(n.pending)
	n.pending = n.pending[:0]
	n.alloc = 0
	n.nlink = 1
	c.m.used += n.data.size
}

// footprint is the space a file takes: its data or its reservation.
func (n *memNode) footprint() int64 { return max(n.data.size, n.alloc) }

// growLocked accounts for n taking end bytes of space, failing with ENOSPC
// past the capacity.
func (m *memDisk) growLocked(n *memNode, end int64) error {
	grow := end - n.footprint()
	if grow <= 0 || n.nlink == 0 {
		return nil
	}
	if m.capacity > 0 && m.used+grow > m.capacity {
		return syscall.ENOSPC
	}
	m.used += grow
	return nil
}

func (m *memDisk) truncateLocked(n *memNode, size int64) {
	before := n.footprint()
	n.data.truncate(size)
	n.alloc = min(n.alloc, size) // truncation frees reserved blocks past the end
	if n.nlink > 0 {
		m.used += n.footprint() - before
	}
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
		return pathErr(op, f.name, fs.ErrClosed)
	}
	if f.gen != f.fs.gen {
		return pathErr(op, f.name, ErrCrashed)
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
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	n := f.node.data.readAt(p, off)
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
	if !f.writable {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	if m.writeFault != nil {
		if err := m.writeFault(f.name); err != nil {
			return 0, err
		}
	}
	n := f.node
	end := off + int64(len(p))
	if err := m.growLocked(n, end); err != nil {
		return 0, pathErr("write", f.name, err)
	}
	n.data.writeAt(p, off)
	n.pending = append(n.pending, memOp{off: off, data: slices.Clone(p)})
	m.written += int64(len(p))
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat"); err != nil {
		return 0, err
	}
	return f.node.data.size, nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate"); err != nil {
		return err
	}
	if !f.writable || size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if err := f.fs.growLocked(f.node, size); err != nil {
		return pathErr("truncate", f.name, err)
	}
	f.fs.truncateLocked(f.node, size)
	return nil
}

// fallocateCheckLocked is fallocate(2)'s argument check: an open, writable
// file and a non-empty range from a non-negative offset.
func (f *memFile) fallocateCheckLocked(off, n int64) error {
	if err := f.checkLocked("fallocate"); err != nil {
		return err
	}
	if !f.writable || off < 0 || n <= 0 {
		return pathErr("fallocate", f.name, syscall.EINVAL)
	}
	return nil
}

// Allocate reserves space without changing the size. Reservations do not
// survive a crash.
func (f *memFile) Allocate(off, n int64) error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.fallocateCheckLocked(off, n); err != nil {
		return err
	}
	if err := m.growLocked(f.node, off+n); err != nil {
		return pathErr("fallocate", f.name, err)
	}
	f.node.alloc = max(f.node.alloc, off+n)
	return nil
}

// PunchHole zeros bytes [off, off+n) that lie within the file, as an
// unsynced write (a crash keeps the old bytes or the zeros, block by
// block like any write). The space accounting of SetCapacity does not
// shrink.
func (f *memFile) PunchHole(off, n int64) error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.fallocateCheckLocked(off, n); err != nil {
		return err
	}
	nd := f.node
	end := min(off+n, nd.data.size)
	if off >= end {
		return nil
	}
	zeros := make([]byte, end-off)
	nd.data.writeAt(zeros, off)
	nd.pending = append(nd.pending, memOp{off: off, data: zeros})
	return nil
}

// Sync makes the file's contents durable: its unsynced operations are
// applied to the durable copy. When it fails, they are dropped instead
// (Linux marks the pages clean after a writeback error).
func (f *memFile) Sync() error {
	m := f.fs
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := f.checkLocked("sync"); err != nil {
		return err
	}
	n := f.node
	if m.syncFault != nil {
		if err := m.syncFault(f.name); err != nil {
			clear(n.pending)
			n.pending = n.pending[:0]
			return err
		}
	}
	// Applying the operations (rather than sharing data's pages) keeps
	// both copies writable in place: small write+sync cycles copy only
	// the bytes written.
	for _, op := range n.pending {
		if op.data == nil {
			n.durable.truncate(op.size)
		} else {
			n.durable.writeAt(op.data, op.off)
		}
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
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}

// String describes the file system for test failures.
func (m *Mem) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("vfs.Mem{%d bytes in use, %d unsynced renames}", m.used, len(m.renames))
}
