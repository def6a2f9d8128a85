package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// OS is the operating system's file system. Paths are used as given. Errors
// are the os package's (*fs.PathError and friends around a syscall.Errno), so
// errors.Is(err, fs.ErrNotExist) and errors.Is(err, syscall.ENOSPC) work.
type OS struct{}

var _ FS = OS{}

type osFile struct {
	f *os.File
}

var (
	_ File = (*osFile)(nil)
	_ Fder = (*osFile)(nil)
)

func (f *osFile) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f *osFile) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f *osFile) Close() error                             { return f.f.Close() }
func (f *osFile) Name() string                             { return f.f.Name() }
func (f *osFile) Truncate(size int64) error                { return f.f.Truncate(size) }
func (f *osFile) Fd() uintptr                              { return f.f.Fd() }

func (f *osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Sync is fdatasync(2): file data and the metadata needed to read it back
// (the size), not timestamps.
func (f *osFile) Sync() error {
	return f.control("fdatasync", func(fd int) error { return unix.Fdatasync(fd) })
}

// Allocate is fallocate(2) with FALLOC_FL_KEEP_SIZE; a no-op where the file
// system does not support it.
func (f *osFile) Allocate(off, n int64) error {
	err := f.control("fallocate", func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil // best effort on file systems without it
	}
	return err
}

// PunchHole is fallocate(2) with FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE;
// a no-op where the file system does not support it.
func (f *osFile) PunchHole(off, n int64) error {
	err := f.control("fallocate", func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil // best effort on file systems without it
	}
	return err
}

// control runs a system call on the descriptor, retrying on EINTR. Going
// through SyscallConn keeps the descriptor from being closed (and reused by
// another file) while the call runs.
func (f *osFile) control(op string, call func(fd int) error) error {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: f.f.Name(), Err: err}
	}
	var callErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if callErr = call(int(fd)); callErr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		// Control fails only when the file is closed or closing.
		return &os.PathError{Op: op, Path: f.f.Name(), Err: fs.ErrClosed}
	}
	if callErr != nil {
		return &os.PathError{Op: op, Path: f.f.Name(), Err: callErr}
	}
	return nil
}

func openOS(name string, flag int) (File, error) {
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

// Open opens an existing file read-only.
func (OS) Open(name string) (File, error) { return openOS(name, os.O_RDONLY) }

// OpenRW opens a file read-write, creating it if missing.
func (OS) OpenRW(name string) (File, error) { return openOS(name, os.O_RDWR|os.O_CREATE) }

// Create creates or truncates a file.
func (OS) Create(name string) (File, error) {
	return openOS(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
}

// CreateDirect creates or truncates a file opened with O_DIRECT, or an
// ordinary file where the file system refuses O_DIRECT (tmpfs).
func (OS) CreateDirect(name string) (File, error) {
	f, err := openOS(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_DIRECT)
	if err != nil {
		return openOS(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	}
	return f, nil
}

// OpenDirect opens an existing file read-write with O_DIRECT, never
// truncating it, or without O_DIRECT where the file system refuses it.
func (OS) OpenDirect(name string) (File, error) {
	f, err := openOS(name, os.O_RDWR|unix.O_DIRECT)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return openOS(name, os.O_RDWR)
	}
	return f, err
}

// Remove removes a file or empty directory.
func (OS) Remove(name string) error { return os.Remove(name) }

// RemoveAll removes a tree.
func (OS) RemoveAll(name string) error { return os.RemoveAll(name) }

// Rename renames atomically.
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll creates a directory and its parents.
func (OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// ReadDir lists a directory's names, sorted.
func (OS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// Stat reports size and kind.
func (OS) Stat(name string) (int64, bool, error) {
	st, err := os.Stat(name)
	if err != nil {
		return 0, false, err
	}
	return st.Size(), st.IsDir(), nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
