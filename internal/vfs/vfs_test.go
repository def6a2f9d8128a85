package vfs

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"

	"path/filepath"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// conformance runs the same checks against every implementation.
func conformance(t *testing.T, fsys FS, root string) {
	p := func(n string) string { return filepath.Join(root, n) }
	if err := fsys.MkdirAll(p("a/b")); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(p("a/b/f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello world"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("W"), 6); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello World" {
		t.Fatalf("read %q %v", buf, err)
	}
	if n, _ := f.Size(); n != 11 {
		t.Fatalf("size %d", n)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Size(); n != 5 {
		t.Fatalf("size after truncate %d", n)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fsys.SyncDir(p("a/b")); err != nil {
		t.Fatal(err)
	}
	// OpenRW keeps contents; Create truncates.
	g, err := fsys.OpenRW(p("a/b/f"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := g.Size(); n != 5 {
		t.Fatalf("OpenRW size %d", n)
	}
	g.Close()
	// Rename replaces.
	h, _ := fsys.Create(p("a/b/g"))
	h.WriteAt([]byte("other"), 0)
	h.Close()
	if err := fsys.Rename(p("a/b/g"), p("a/b/f")); err != nil {
		t.Fatal(err)
	}
	r, err := fsys.Open(p("a/b/f"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	r.ReadAt(got, 0)
	r.Close()
	if string(got) != "other" {
		t.Fatalf("after rename %q", got)
	}
	names, err := fsys.ReadDir(p("a/b"))
	if err != nil || len(names) != 1 || names[0] != "f" {
		t.Fatalf("readdir %v %v", names, err)
	}
	if _, isDir, err := fsys.Stat(p("a")); err != nil || !isDir {
		t.Fatalf("stat dir %v %v", isDir, err)
	}
	if _, err := fsys.Open(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	if err := fsys.Remove(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("remove missing: %v", err)
	}
	if err := fsys.RemoveAll(p("a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fsys.Stat(p("a/b/f")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat after RemoveAll: %v", err)
	}
}

func TestConformanceOS(t *testing.T) {
	dir := t.TempDir()
	conformance(t, OS{}, dir)
	f, _ := OS{}.Create(filepath.Join(dir, "x"))
	defer f.Close()
	if _, ok := f.(Fder); !ok {
		t.Fatal("OS files must expose descriptors for sendfile")
	}
}

func TestConformanceMem(t *testing.T) { conformance(t, NewMem(), "/root") }

func TestMemCrashKeepsSyncedDropsUnsynced(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d")
	m.SyncDir("/")
	f, _ := m.Create("/d/f")
	m.SyncDir("/d")
	f.WriteAt([]byte("durable"), 0)
	f.Sync()
	f.WriteAt([]byte("-lost"), 7)
	g, _ := m.Create("/d/unsynced-entry")
	g.WriteAt([]byte("x"), 0)
	g.Sync() // contents synced, directory entry not

	m.CrashDropUnsynced()
	if _, err := f.WriteAt([]byte("z"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old handle after crash: %v", err)
	}
	if _, err := m.Create("/d/again"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old view after crash: %v", err)
	}
	m = m.Restart()
	r, err := m.Open("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 20)
	n, _ := r.ReadAt(b, 0)
	if string(b[:n]) != "durable" {
		t.Fatalf("after crash %q", b[:n])
	}
	if _, _, err := m.Stat("/d/unsynced-entry"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("entry without SyncDir survived: %v", err)
	}
}

func TestMemCrashTearsOnlyUnsyncedWrites(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := NewMem()
		f, _ := m.Create("/f")
		m.SyncDir("/")
		synced := bytes.Repeat([]byte{'s'}, 100)
		f.WriteAt(synced, 0)
		f.Sync()
		f.WriteAt(bytes.Repeat([]byte{'a'}, 50), 100)
		f.WriteAt(bytes.Repeat([]byte{'b'}, 50), 150)
		m.Crash(rng)
		m = m.Restart()
		g, _ := m.Open("/f")
		size, _ := g.Size()
		b := make([]byte, size)
		g.ReadAt(b, 0)
		if size < 100 || !bytes.Equal(b[:100], synced) {
			t.Fatalf("seed %d: synced prefix damaged (%d bytes)", seed, size)
		}
		// What follows is a prefix of the unsynced writes, in order.
		want := append(bytes.Repeat([]byte{'a'}, 50), bytes.Repeat([]byte{'b'}, 50)...)
		if !bytes.Equal(b[100:], want[:size-100]) {
			t.Fatalf("seed %d: unsynced tail is not a prefix: %q", seed, b[100:])
		}
	}
}

func TestMemFaults(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("/f")
	m.SetWriteFault(func(string) error { return ErrInjected })
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrInjected) {
		t.Fatalf("write fault: %v", err)
	}
	m.SetWriteFault(nil)
	m.SetSyncFault(func(string) error { return ErrInjected })
	f.WriteAt([]byte("x"), 0)
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("sync fault: %v", err)
	}
	m.SetSyncFault(nil)
	m.SetCapacity(m.Used() + 10)
	if _, err := f.WriteAt(make([]byte, 20), 1); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("capacity: %v", err)
	}
	if n, _ := f.Size(); n != 1 {
		t.Fatalf("failed write changed the size to %d", n)
	}
	if _, err := f.WriteAt(make([]byte, 5), 1); err != nil {
		t.Fatalf("write within capacity: %v", err)
	}
	m.SetCapacity(0)
	if _, err := f.WriteAt(make([]byte, 100), 0); err != nil {
		t.Fatalf("write after capacity lifted: %v", err)
	}
}
