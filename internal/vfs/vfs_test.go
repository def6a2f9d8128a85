package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// impls are the implementations every conformance test runs against; each
// returns a file system and a root directory to work under.
var impls = []struct {
	name string
	new  func(t *testing.T) (FS, string)
}{
	{"OS", func(t *testing.T) (FS, string) { return OS{}, t.TempDir() }},
	{"Mem", func(t *testing.T) (FS, string) { return NewMem(), "/root" }},
}

// forEach runs fn once per implementation with a fresh file system whose
// root directory exists.
func forEach(t *testing.T, fn func(t *testing.T, fsys FS, p func(string) string)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.new(t)
			must(t, fsys.MkdirAll(root))
			fn(t, fsys, func(n string) string { return filepath.Join(root, n) })
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, fsys FS, name, contents string) {
	t.Helper()
	f, err := fsys.Create(name)
	must(t, err)
	if _, err := f.WriteAt([]byte(contents), 0); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
}

// contents reads a whole file.
func contents(t *testing.T, fsys FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	must(t, err)
	defer f.Close()
	size, err := f.Size()
	must(t, err)
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n != len(b) || (err != nil && err != io.EOF) {
		t.Fatalf("read %s: %d of %d bytes: %v", name, n, len(b), err)
	}
	return string(b)
}

func TestReadWriteAtOffsets(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		f, err := fsys.Create(p("f"))
		must(t, err)
		defer f.Close()
		writes := []struct {
			off  int64
			data string
			want string // whole file after the write
		}{
			{0, "hello world", "hello world"},
			{6, "W", "hello World"},
			{11, "!", "hello World!"},
			{14, "xy", "hello World!\x00\x00xy"}, // a hole reads as zeros
			{0, "J", "Jello World!\x00\x00xy"},
		}
		for _, w := range writes {
			if n, err := f.WriteAt([]byte(w.data), w.off); err != nil || n != len(w.data) {
				t.Fatalf("WriteAt(%q, %d) = %d, %v", w.data, w.off, n, err)
			}
			if size, err := f.Size(); err != nil || size != int64(len(w.want)) {
				t.Fatalf("after WriteAt(%q, %d): size %d %v, want %d", w.data, w.off, size, err, len(w.want))
			}
			got := make([]byte, len(w.want))
			if _, err := f.ReadAt(got, 0); err != nil || string(got) != w.want {
				t.Fatalf("after WriteAt(%q, %d): read %q %v, want %q", w.data, w.off, got, err, w.want)
			}
		}
		reads := []struct {
			off    int64
			n      int
			want   string
			wantEO bool // io.EOF expected
		}{
			{6, 5, "World", false},
			{14, 4, "xy", true}, // short read at the end
			{16, 4, "", true},   // at the end
			{100, 1, "", true},  // past the end
			{0, 16, "Jello World!\x00\x00xy", false},
		}
		for _, r := range reads {
			b := make([]byte, r.n)
			n, err := f.ReadAt(b, r.off)
			if string(b[:n]) != r.want || (err == io.EOF) != r.wantEO || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d bytes at %d) = %q, %v; want %q (EOF %v)", r.n, r.off, b[:n], err, r.want, r.wantEO)
			}
		}
		if _, err := f.WriteAt([]byte("x"), -1); err == nil {
			t.Fatal("WriteAt at a negative offset succeeded")
		}
	})
}

func TestTruncate(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		f, err := fsys.Create(p("f"))
		must(t, err)
		defer f.Close()
		f.WriteAt([]byte("0123456789"), 0)
		for _, c := range []struct {
			size int64
			want string
		}{
			{4, "0123"},
			{6, "0123\x00\x00"}, // growing reads as zeros, not the old bytes
			{0, ""},
		} {
			must(t, f.Truncate(c.size))
			if size, _ := f.Size(); size != c.size {
				t.Fatalf("Truncate(%d): size %d", c.size, size)
			}
			if got := contents(t, fsys, p("f")); got != c.want {
				t.Fatalf("Truncate(%d): %q, want %q", c.size, got, c.want)
			}
		}
		must(t, f.Allocate(0, 8192))
		if size, _ := f.Size(); size != 0 {
			t.Fatalf("Allocate changed the size to %d", size)
		}
	})
}

func TestOpenModes(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		create(t, fsys, p("f"), "data")
		g, err := fsys.OpenRW(p("f"))
		must(t, err)
		if size, _ := g.Size(); size != 4 {
			t.Fatalf("OpenRW truncated to %d", size)
		}
		must(t, g.Close())
		if _, err := g.WriteAt([]byte("x"), 0); !errors.Is(err, fs.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if err := g.Close(); err == nil {
			t.Fatal("second Close succeeded")
		}
		r, err := fsys.Open(p("f"))
		must(t, err)
		if r.Name() != p("f") {
			t.Fatalf("Name %q", r.Name())
		}
		if _, err := r.WriteAt([]byte("x"), 0); err == nil {
			t.Fatal("write through a read-only handle succeeded")
		}
		r.Close()
		h, err := fsys.OpenRW(p("new"))
		must(t, err)
		h.Close()
		if _, _, err := fsys.Stat(p("new")); err != nil {
			t.Fatalf("OpenRW did not create: %v", err)
		}
		create(t, fsys, p("f"), "")
		if got := contents(t, fsys, p("f")); got != "" {
			t.Fatalf("Create did not truncate: %q", got)
		}
	})
}

func TestNotExist(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		ops := map[string]func() error{
			"Open":          func() error { _, err := fsys.Open(p("missing")); return err },
			"Create in dir": func() error { _, err := fsys.Create(p("nodir/f")); return err },
			"OpenRW in dir": func() error { _, err := fsys.OpenRW(p("nodir/f")); return err },
			"Remove":        func() error { return fsys.Remove(p("missing")) },
			"Rename":        func() error { return fsys.Rename(p("missing"), p("other")) },
			"Rename to dir": func() error { create(t, fsys, p("src"), "x"); return fsys.Rename(p("src"), p("nodir/x")) },
			"ReadDir":       func() error { _, err := fsys.ReadDir(p("missing")); return err },
			"Stat":          func() error { _, _, err := fsys.Stat(p("missing")); return err },
			"Stat in dir":   func() error { _, _, err := fsys.Stat(p("nodir/f")); return err },
			"SyncDir":       func() error { return fsys.SyncDir(p("missing")) },
		}
		for _, name := range slices.Sorted(maps.Keys(ops)) {
			if err := ops[name](); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v, want fs.ErrNotExist", name, err)
			}
		}
		if err := fsys.RemoveAll(p("missing")); err != nil {
			t.Errorf("RemoveAll of a missing path: %v", err)
		}
	})
}

func TestRenameAndRemove(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		create(t, fsys, p("a"), "new")
		create(t, fsys, p("b"), "old")
		must(t, fsys.Rename(p("a"), p("b")))
		if got := contents(t, fsys, p("b")); got != "new" {
			t.Fatalf("rename did not replace: %q", got)
		}
		if _, _, err := fsys.Stat(p("a")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("source still there: %v", err)
		}
		// A directory moves with its tree.
		must(t, fsys.MkdirAll(p("d/e")))
		create(t, fsys, p("d/e/f"), "deep")
		must(t, fsys.Rename(p("d"), p("moved")))
		if got := contents(t, fsys, p("moved/e/f")); got != "deep" {
			t.Fatalf("after directory rename: %q", got)
		}
		if err := fsys.Remove(p("moved")); err == nil {
			t.Fatal("Remove of a non-empty directory succeeded")
		}
		must(t, fsys.Remove(p("moved/e/f")))
		must(t, fsys.Remove(p("moved/e")))
		must(t, fsys.RemoveAll(p("moved")))
		names, err := fsys.ReadDir(p(""))
		if err != nil || !slices.Equal(names, []string{"b"}) {
			t.Fatalf("ReadDir %v %v", names, err)
		}
		if err := fsys.MkdirAll(p("b/c")); err == nil {
			t.Fatal("MkdirAll through a file succeeded")
		}
	})
}

func TestReadDirSortedAndStat(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		for _, n := range []string{"b", "a", "10", "9", "c"} {
			create(t, fsys, p(n), n+n)
		}
		must(t, fsys.MkdirAll(p("sub/x")))
		names, err := fsys.ReadDir(p(""))
		want := []string{"10", "9", "a", "b", "c", "sub"}
		if err != nil || !slices.Equal(names, want) {
			t.Fatalf("ReadDir = %v %v, want %v", names, err, want)
		}
		if size, isDir, err := fsys.Stat(p("10")); err != nil || isDir || size != 4 {
			t.Fatalf("Stat file = %d %v %v", size, isDir, err)
		}
		if _, isDir, err := fsys.Stat(p("sub")); err != nil || !isDir {
			t.Fatalf("Stat dir = %v %v", isDir, err)
		}
		must(t, fsys.MkdirAll(p("sub/x"))) // existing: no error
		must(t, fsys.SyncDir(p("sub")))
	})
}

// TestConcurrentReadersOneWriter: reads alongside a writer and other files'
// writers are race-free (run with -race).
func TestConcurrentReadersOneWriter(t *testing.T) {
	forEach(t, func(t *testing.T, fsys FS, p func(string) string) {
		w, err := fsys.Create(p("f"))
		must(t, err)
		defer w.Close()
		block := bytes.Repeat([]byte{7}, 512)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 0 { // the one writer
					for j := range 200 {
						w.WriteAt(block, int64(j*len(block)))
					}
					w.Sync()
					return
				}
				r, err := fsys.Open(p("f"))
				if err != nil {
					t.Error(err)
					return
				}
				defer r.Close()
				b := make([]byte, 512)
				for j := range 200 {
					n, _ := r.ReadAt(b, int64(j*100))
					for _, c := range b[:n] {
						if c != 0 && c != 7 {
							t.Errorf("read garbage %d", c)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if size, _ := w.Size(); size != 200*512 {
			t.Fatalf("size %d", size)
		}
	})
}

func TestOSFilesExposeDescriptors(t *testing.T) {
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "x"))
	must(t, err)
	defer f.Close()
	if fd, ok := f.(Fder); !ok || fd.Fd() == ^uintptr(0) {
		t.Fatal("OS files must expose descriptors for sendfile")
	}
	d, err := OS{}.CreateDirect(filepath.Join(t.TempDir(), "d"))
	must(t, err)
	defer d.Close()
	buf := make([]byte, 2*DirectAlign)
	// Aligned memory: the part of buf starting at a 4096-byte boundary.
	off := DirectAlign - int(uintptr(unsafe.Pointer(&buf[0]))%DirectAlign)
	if off == DirectAlign {
		off = 0
	}
	block := buf[off : off+DirectAlign]
	if _, err := d.WriteAt(block, 0); err != nil {
		t.Fatalf("aligned direct write: %v", err)
	}
	must(t, d.Sync())
}

// TestOSErrorsWrapErrno: ENOSPC from the kernel is visible through
// errors.Is, as the log's disk-full handling needs. /dev/full fails every
// write with ENOSPC.
func TestOSErrorsWrapErrno(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := OS{}.OpenRW("/dev/full")
	must(t, err)
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to /dev/full: %v, want ENOSPC", err)
	}
	closed, err := OS{}.Create(filepath.Join(t.TempDir(), "c"))
	must(t, err)
	closed.Close()
	if err := closed.Sync(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := closed.Allocate(0, 10); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Allocate after Close: %v", err)
	}
}
