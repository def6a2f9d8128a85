package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// exists reports whether name is present, failing on any other error.
func exists(t *testing.T, m *Mem, name string) bool {
	t.Helper()
	_, _, err := m.Stat(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// dump describes every path and its contents, for comparing crashes.
func dump(t *testing.T, m *Mem, dir string) string {
	t.Helper()
	var b strings.Builder
	names, err := m.ReadDir(dir)
	must(t, err)
	for _, n := range names {
		p := strings.TrimSuffix(dir, "/") + "/" + n
		if _, isDir, _ := m.Stat(p); isDir {
			fmt.Fprintf(&b, "%s/\n%s", p, dump(t, m, p))
		} else {
			fmt.Fprintf(&b, "%s=%q\n", p, contents(t, m, p))
		}
	}
	return b.String()
}

func TestMemCrashInvalidatesHandlesAndViews(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	must(t, err)
	m.CrashDropUnsynced()
	ops := map[string]error{}
	_, ops["WriteAt"] = f.WriteAt([]byte("x"), 0)
	_, ops["ReadAt"] = f.ReadAt(make([]byte, 1), 0)
	_, ops["Size"] = f.Size()
	ops["Sync"] = f.Sync()
	ops["Truncate"] = f.Truncate(0)
	ops["Allocate"] = f.Allocate(0, 1)
	_, ops["view Create"] = m.Create("/g")
	_, ops["view Open"] = m.Open("/f")
	ops["view SyncDir"] = m.SyncDir("/")
	ops["view MkdirAll"] = m.MkdirAll("/d")
	for op, err := range ops {
		if !errors.Is(err, ErrCrashed) {
			t.Errorf("%s after crash: %v, want ErrCrashed", op, err)
		}
	}
	m = m.Restart()
	g, err := m.Create("/g")
	must(t, err)
	if _, err := g.WriteAt([]byte("after"), 0); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
}

// TestMemDirectoryDurability: each case builds a state, crashes keeping only
// what is durable, and checks which names exist with what contents.
func TestMemDirectoryDurability(t *testing.T) {
	cases := []struct {
		name  string
		build func(m *Mem)
		want  map[string]string // path -> contents ("<dir>" for a directory); missing paths must not exist
	}{
		{
			name: "file synced, directory not: gone",
			build: func(m *Mem) {
				f, _ := m.Create("/d/f")
				f.WriteAt([]byte("x"), 0)
				f.Sync()
			},
			want: map[string]string{"/d": "<dir>"},
		},
		{
			name: "file and directory synced: kept",
			build: func(m *Mem) {
				f, _ := m.Create("/d/f")
				f.WriteAt([]byte("x"), 0)
				f.Sync()
				m.SyncDir("/d")
			},
			want: map[string]string{"/d": "<dir>", "/d/f": "x"},
		},
		{
			name: "directory synced, contents not: empty file",
			build: func(m *Mem) {
				f, _ := m.Create("/d/f")
				m.SyncDir("/d")
				f.WriteAt([]byte("x"), 0)
			},
			want: map[string]string{"/d": "<dir>", "/d/f": ""},
		},
		{
			name: "remove without SyncDir: file is back",
			build: func(m *Mem) {
				mkSynced(m, "/d/f", "old")
				m.Remove("/d/f")
			},
			want: map[string]string{"/d": "<dir>", "/d/f": "old"},
		},
		{
			name: "remove with SyncDir: gone",
			build: func(m *Mem) {
				mkSynced(m, "/d/f", "old")
				m.Remove("/d/f")
				m.SyncDir("/d")
			},
			want: map[string]string{"/d": "<dir>"},
		},
		{
			name: "rename without SyncDir: undone",
			build: func(m *Mem) {
				mkSynced(m, "/d/target", "old")
				mkSynced(m, "/d/tmp", "new")
				m.Rename("/d/tmp", "/d/target")
			},
			want: map[string]string{"/d": "<dir>", "/d/target": "old", "/d/tmp": "new"},
		},
		{
			name: "rename with SyncDir: done",
			build: func(m *Mem) {
				mkSynced(m, "/d/target", "old")
				mkSynced(m, "/d/tmp", "new")
				m.Rename("/d/tmp", "/d/target")
				m.SyncDir("/d")
			},
			want: map[string]string{"/d": "<dir>", "/d/target": "new"},
		},
		{
			name: "new directory never synced in its parent: tree gone",
			build: func(m *Mem) {
				m.MkdirAll("/d/new")
				mkSynced(m, "/d/new/f", "x") // syncs /d/new, not /d
			},
			want: map[string]string{"/d": "<dir>"},
		},
		{
			name: "directory rename moves the tree",
			build: func(m *Mem) {
				mkSynced(m, "/d/sub/f", "x")
				m.SyncDir("/d")
				m.Rename("/d/sub", "/d/moved")
				m.SyncDir("/d")
			},
			want: map[string]string{"/d": "<dir>", "/d/moved": "<dir>", "/d/moved/f": "x"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMem()
			m.MkdirAll("/d")
			m.SyncDir("/")
			c.build(m)
			m.CrashDropUnsynced()
			m = m.Restart()
			got := map[string]string{}
			var walk func(dir string)
			walk = func(dir string) {
				names, err := m.ReadDir(dir)
				must(t, err)
				for _, n := range names {
					p := strings.TrimSuffix(dir, "/") + "/" + n
					if _, isDir, _ := m.Stat(p); isDir {
						got[p] = "<dir>"
						walk(p)
					} else {
						got[p] = contents(t, m, p)
					}
				}
			}
			walk("/")
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("after crash:\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

// mkSynced creates name (and its directories) with durable contents and a
// durable entry in its directory.
func mkSynced(m *Mem, name, data string) {
	dir := name[:strings.LastIndex(name, "/")]
	m.MkdirAll(dir)
	f, _ := m.Create(name)
	f.WriteAt([]byte(data), 0)
	f.Sync()
	f.Close()
	m.SyncDir(dir)
}

// TestMemRenameIsAtomic: across random crashes, a rename without SyncDir is
// kept or undone as a whole: the file is never lost nor left under both
// names, and the target never loses its old contents without gaining the
// new ones.
func TestMemRenameIsAtomic(t *testing.T) {
	var kept, undone int
	for seed := range uint64(300) {
		m := NewMem()
		m.MkdirAll("/d")
		m.SyncDir("/")
		mkSynced(m, "/d/target", "old")
		mkSynced(m, "/d/tmp", "new")
		mkSynced(m, "/d/other", "o")
		must(t, m.Rename("/d/tmp", "/d/target"))
		must(t, m.Remove("/d/other")) // an unrelated change, decided on its own
		m.Crash(rand.New(rand.NewPCG(seed, 7)))
		m = m.Restart()
		target := contents(t, m, "/d/target")
		switch tmp := exists(t, m, "/d/tmp"); {
		case target == "new" && !tmp:
			kept++
		case target == "old" && tmp && contents(t, m, "/d/tmp") == "new":
			undone++
		default:
			t.Fatalf("seed %d: torn rename: target %q, tmp exists %v", seed, target, tmp)
		}
	}
	if kept == 0 || undone == 0 {
		t.Fatalf("crashes never explored both outcomes: kept %d, undone %d", kept, undone)
	}
}

// TestMemCrashTearsOnlyUnsyncedWrites: after a crash a file holds its synced
// bytes followed by a prefix of the unsynced writes in order; across seeds
// every outcome (nothing, everything, a write torn mid-way) occurs.
func TestMemCrashTearsOnlyUnsyncedWrites(t *testing.T) {
	synced := bytes.Repeat([]byte{'s'}, 100)
	want := append(bytes.Repeat([]byte{'a'}, 50), bytes.Repeat([]byte{'b'}, 50)...)
	sizes := map[int]bool{}
	for seed := range uint64(300) {
		m := NewMem()
		mkSynced(m, "/f", string(synced))
		f, _ := m.OpenRW("/f")
		f.WriteAt(want[:50], 100)
		f.WriteAt(want[50:], 150)
		m.Crash(rand.New(rand.NewPCG(seed, 1)))
		m = m.Restart()
		b := []byte(contents(t, m, "/f"))
		if len(b) < 100 || !bytes.Equal(b[:100], synced) {
			t.Fatalf("seed %d: synced prefix damaged: %q", seed, b)
		}
		if !bytes.Equal(b[100:], want[:len(b)-100]) {
			t.Fatalf("seed %d: unsynced tail is not a prefix: %q", seed, b[100:])
		}
		sizes[len(b)] = true
	}
	if !sizes[100] || !sizes[200] || len(sizes) < 10 {
		t.Fatalf("crash outcomes not explored: sizes %v", slices.Sorted(func(yield func(int) bool) {
			for s := range sizes {
				yield(s)
			}
		}))
	}
}

// TestMemTornGarbage: with SetTornGarbage, a torn write may end in garbage,
// bounded in length and confined to the write's own range.
func TestMemTornGarbage(t *testing.T) {
	const limit = 8
	write := bytes.Repeat([]byte{'w'}, 64)
	sawGarbage := false
	for seed := range uint64(500) {
		m := NewMem()
		m.SetTornGarbage(limit)
		mkSynced(m, "/f", "")
		f, _ := m.OpenRW("/f")
		f.WriteAt(write, 0)
		m.Crash(rand.New(rand.NewPCG(seed, 2)))
		m = m.Restart()
		b := []byte(contents(t, m, "/f"))
		if len(b) > len(write) {
			t.Fatalf("seed %d: %d bytes, past the write's range", seed, len(b))
		}
		good := 0
		for good < len(b) && b[good] == 'w' {
			good++
		}
		if len(b)-good > limit {
			t.Fatalf("seed %d: %d bytes of garbage, limit %d", seed, len(b)-good, limit)
		}
		sawGarbage = sawGarbage || good < len(b)
	}
	if !sawGarbage {
		t.Fatal("no crash produced garbage")
	}
}

// TestMemCrashIsReproducible: the same seed gives the same state.
func TestMemCrashIsReproducible(t *testing.T) {
	run := func(seed uint64) string {
		m := NewMem()
		m.MkdirAll("/d")
		m.SyncDir("/")
		for i := range 20 {
			f, _ := m.Create(fmt.Sprintf("/d/f%02d", i))
			for j := range 5 {
				f.WriteAt([]byte(fmt.Sprintf("%d-%d;", i, j)), int64(j*4))
				if i%3 == j {
					f.Sync()
				}
			}
			if i%2 == 0 {
				m.SyncDir("/d")
			}
		}
		m.Rename("/d/f01", "/d/f02")
		m.Remove("/d/f04")
		m.Crash(rand.New(rand.NewPCG(seed, 3)))
		return dump(t, m.Restart(), "/")
	}
	for seed := range uint64(20) {
		if a, b := run(seed), run(seed); a != b {
			t.Fatalf("seed %d: two crashes differ:\n%s\n---\n%s", seed, a, b)
		}
	}
	if run(1) == run(2) && run(2) == run(3) {
		t.Fatal("different seeds give the same crash")
	}
}

// TestMemManyCrashCycles: write, sync, crash and reopen repeatedly; synced
// data always survives and nothing grows without bound.
func TestMemManyCrashCycles(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/log"))
	must(t, m.SyncDir("/"))
	rng := rand.New(rand.NewPCG(9, 9))
	var durable []byte
	for cycle := range 500 {
		f, err := m.OpenRW("/log/seg")
		must(t, err)
		if cycle == 0 {
			must(t, m.SyncDir("/log"))
		}
		size, _ := f.Size()
		if int(size) < len(durable) || !bytes.Equal([]byte(contents(t, m, "/log/seg"))[:len(durable)], durable) {
			t.Fatalf("cycle %d: synced data lost (size %d, durable %d)", cycle, size, len(durable))
		}
		// Recovery: cut back to the durable length, as a log would after
		// validating, then append.
		must(t, f.Truncate(int64(len(durable))))
		rec := []byte(fmt.Sprintf("record-%d;", cycle))
		f.WriteAt(rec, int64(len(durable)))
		if rng.IntN(2) == 0 {
			must(t, f.Sync())
			durable = append(durable, rec...)
		}
		f.WriteAt([]byte("unsynced"), int64(len(durable)+len(rec)))
		m.Crash(rng)
		m = m.Restart()
	}
	if used := m.Used(); used > int64(len(durable))+64 {
		t.Fatalf("Used %d for %d durable bytes", used, len(durable))
	}
}

// TestMemFailedSyncLosesWrites: like Linux after a writeback error, the
// writes a failed Sync covered stay readable but never become durable, even
// after a later Sync succeeds.
func TestMemFailedSyncLosesWrites(t *testing.T) {
	m := NewMem()
	mkSynced(m, "/f", "durable")
	f, _ := m.OpenRW("/f")
	f.WriteAt([]byte("-lost"), 7)
	m.FailNextSync()
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Sync: %v, want ErrInjected", err)
	}
	if got := contents(t, m, "/f"); got != "durable-lost" {
		t.Fatalf("before crash %q", got)
	}
	must(t, f.Sync()) // succeeds, but the lost writes are not resubmitted
	f.WriteAt([]byte("+kept"), 12)
	must(t, f.Sync())
	m.CrashDropUnsynced()
	if got := contents(t, m.Restart(), "/f"); got != "durable\x00\x00\x00\x00\x00+kept" {
		t.Fatalf("after crash %q", got)
	}
}

func TestMemFaults(t *testing.T) {
	type result struct{ writes, syncs string } // "." ok, "x" injected
	cases := []struct {
		name   string
		inject func(m *Mem)
		want   result
	}{
		{"none", func(*Mem) {}, result{".....", "..."}},
		{"FailWrite(2)", func(m *Mem) { m.FailWrite(2) }, result{".x...", "..."}},
		{"FailWritesAfter(3)", func(m *Mem) { m.FailWritesAfter(3) }, result{"...xx", "..."}},
		{"FailNextSync", func(m *Mem) { m.FailNextSync() }, result{".....", "x.."}},
		{"FailSyncs", func(m *Mem) { m.FailSyncs() }, result{".....", "xxx"}},
		{"by name", func(m *Mem) {
			m.SetWriteFault(func(name string) error {
				if name == "/f" {
					return fmt.Errorf("%w: EIO", ErrInjected)
				}
				return nil
			})
		}, result{"xxxxx", "..."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMem()
			f, _ := m.Create("/f")
			c.inject(m)
			var got result
			for i := range 5 {
				_, err := f.WriteAt([]byte{byte(i)}, int64(i))
				got.writes += mark(t, err)
			}
			got.syncs += mark(t, f.Sync())
			got.syncs += mark(t, m.SyncDir("/"))
			got.syncs += mark(t, f.Sync())
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if want := int64(strings.Count(got.writes, ".")); m.BytesWritten() != want {
				t.Fatalf("BytesWritten %d, want %d", m.BytesWritten(), want)
			}
			fileSyncs := strings.Count(got.syncs[:1], ".") + strings.Count(got.syncs[2:], ".")
			if m.Syncs() != int64(fileSyncs) {
				t.Fatalf("Syncs %d, want %d", m.Syncs(), fileSyncs)
			}
			m.SetWriteFault(nil)
			m.SetSyncFault(nil)
			if _, err := f.WriteAt([]byte("ok"), 0); err != nil {
				t.Fatalf("write after clearing faults: %v", err)
			}
		})
	}
}

func mark(t *testing.T, err error) string {
	t.Helper()
	switch {
	case err == nil:
		return "."
	case errors.Is(err, ErrInjected):
		return "x"
	}
	t.Fatalf("unexpected error %v", err)
	return ""
}

// TestMemCapacity: writes past the capacity fail whole with ENOSPC and
// change nothing; overwrites and removals still work; lifting the limit
// restores writes.
func TestMemCapacity(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("/f")
	f.WriteAt(make([]byte, 60), 0)
	m.SetCapacity(100)
	enospc := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s: %v, want ENOSPC", what, err)
		}
	}
	_, err := f.WriteAt(make([]byte, 50), 60)
	enospc("write past capacity", err)
	if size, _ := f.Size(); size != 60 || m.Used() != 60 {
		t.Fatalf("failed write changed state: size %d, used %d", size, m.Used())
	}
	g, _ := m.Create("/g")
	enospc("Allocate past capacity", g.Allocate(0, 41))
	must(t, g.Allocate(0, 40)) // exactly to the limit
	if _, err := g.WriteAt(make([]byte, 40), 0); err != nil {
		t.Fatalf("write into reserved space: %v", err)
	}
	_, err = f.WriteAt([]byte{1}, 60)
	enospc("write at a full disk", err)
	if _, err := f.WriteAt(bytes.Repeat([]byte{9}, 60), 0); err != nil {
		t.Fatalf("overwrite at a full disk: %v", err)
	}
	enospc("Truncate growing at a full disk", f.Truncate(61))
	must(t, m.Remove("/g")) // frees its 40 bytes
	if _, err := f.WriteAt(make([]byte, 40), 60); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	_, err = f.WriteAt([]byte{1}, 100)
	enospc("write at a full disk again", err)
	m.SetCapacity(0)
	if _, err := f.WriteAt(make([]byte, 1000), 100); err != nil {
		t.Fatalf("write after the limit was lifted: %v", err)
	}
	if m.Used() != 1100 {
		t.Fatalf("Used %d, want 1100", m.Used())
	}
}

// TestMemConcurrentCrash: writers, readers and a crash at once are race-free
// and every failure is ErrCrashed.
func TestMemConcurrentCrash(t *testing.T) {
	m := NewMem()
	var wg sync.WaitGroup
	for i := range 4 {
		f, err := m.Create(fmt.Sprintf("/f%d", i))
		must(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				_, err := f.WriteAt([]byte("data"), int64(j*4))
				if err == nil {
					_, err = f.ReadAt(make([]byte, 4), int64(j*4))
				}
				if err == nil && j%10 == 0 {
					err = f.Sync()
				}
				if err == nil && j%50 == 0 {
					err = m.SyncDir("/")
				}
				if err != nil {
					if !errors.Is(err, ErrCrashed) {
						t.Errorf("file %d: %v", i, err)
					}
					return
				}
			}
		}()
	}
	m.Crash(rand.New(rand.NewPCG(1, 1)))
	wg.Wait()
	m = m.Restart()
	if _, err := m.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMemCrashCycle measures one power-loss test step on a store-like
// tree: 16 partitions of 256 KiB, 64 more 4 KiB appends with a sync every 8,
// a crash, a restart and reopening every file.
func BenchmarkMemCrashCycle(b *testing.B) {
	m := NewMem()
	m.MkdirAll("/data")
	block := bytes.Repeat([]byte{1}, 4096)
	for p := range 16 {
		mkSynced(m, fmt.Sprintf("/data/t-%d/seg", p), string(bytes.Repeat(block, 64)))
	}
	m.SyncDir("/data")
	m.SyncDir("/")
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		files := make([]File, 16)
		for p := range files {
			files[p], _ = m.OpenRW(fmt.Sprintf("/data/t-%d/seg", p))
		}
		for i := range 64 {
			f := files[i%16]
			size, _ := f.Size()
			if size > 1<<20 {
				f.Truncate(256 << 10)
				size = 256 << 10
			}
			f.WriteAt(block, size)
			if i%8 == 7 {
				f.Sync()
			}
		}
		m.Crash(rng)
		m = m.Restart()
	}
}

// TestMemWritesAfterCrashAreUnsynced: after a restart a file's contents and
// its durable copy are independent again: an overwrite that is not synced
// does not survive the next crash.
func TestMemWritesAfterCrashAreUnsynced(t *testing.T) {
	m := NewMem()
	mkSynced(m, "/f", "aaaa")
	for range 2 {
		m.CrashDropUnsynced()
		m = m.Restart()
		f, err := m.OpenRW("/f")
		must(t, err)
		f.WriteAt([]byte("bb"), 0)
		must(t, f.Truncate(3))
	}
	m.CrashDropUnsynced()
	if got := contents(t, m.Restart(), "/f"); got != "aaaa" {
		t.Fatalf("after crash %q, want the synced %q", got, "aaaa")
	}
}
