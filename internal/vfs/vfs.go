// Package vfs is the only way sluice reaches a file system.
//
// It owns two implementations of one small interface:
//
//   - OS: the real file system, used in production and in disk benchmarks.
//   - Mem: an in-memory file system that can simulate power loss (drop every
//     write that was not made durable by Sync, and tear the last write) and
//     inject faults (a failed write, a failed fsync, a full disk).
//
// The interface is deliberately narrow: positional reads and writes
// (ReadAt/WriteAt, no shared file offset), Sync as fdatasync, and SyncDir to
// make creations, renames and removals durable. Code above this package must
// never call package os for data files; that is what lets the power-loss
// tests in internal/log and internal/broker see every byte sluice writes.
//
// Durability model (both implementations): file contents are durable only
// after File.Sync; a directory entry (create, rename, remove) is durable only
// after FS.SyncDir on its parent directory (a rename across directories: on
// both). A new file therefore needs Sync on the file and SyncDir on its
// directory, and a new directory SyncDir on its parent. A failed Sync must be
// treated as data loss, never retried as if nothing happened: Linux drops the
// dirty pages after a writeback error, and Mem models exactly that.
//
// This package must never buffer, cache or reorder writes of its own, nor
// retry a failed Sync: what callers see is what the disk was asked to do.
package vfs

import (
	"errors"
	"io"
)

// File is an open file. Implementations are safe for concurrent ReadAt calls
// alongside one writer; callers serialise writes to one file themselves.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Name is the path the file was opened with.
	Name() string
	// Size is the current size of the file (including unsynced writes).
	Size() (int64, error)
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Sync makes the file's contents durable (fdatasync on Linux).
	Sync() error
	// Allocate reserves disk space for bytes [off, off+n) without changing
	// the file's size, so later writes there cannot fail for lack of space
	// (fallocate(2) with FALLOC_FL_KEEP_SIZE). It fails with ENOSPC when the
	// space is not there. File systems without support treat it as a no-op.
	Allocate(off, n int64) error
	// PunchHole gives back the disk space of bytes [off, off+n), which then
	// read as zeros, without changing the file's size (fallocate(2) with
	// FALLOC_FL_PUNCH_HOLE). Like a write, it is durable after Sync. File
	// systems without support leave the bytes as they are and return nil:
	// callers use it only on bytes nothing will read again.
	PunchHole(off, n int64) error
}

// Fder is implemented by files backed by an operating-system descriptor. The
// fetch path uses it to send file regions with sendfile(2).
type Fder interface {
	Fd() uintptr
}

// DirectCreator is implemented by file systems that can open a file for
// direct I/O (O_DIRECT): writes skip the page cache, and must start at a
// 4096-byte aligned offset, from 4096-byte aligned memory, in multiples of
// 4096 bytes. CreateDirect falls back to an ordinary file where the file
// system does not support direct I/O; callers keep the alignment rules
// either way.
type DirectCreator interface {
	CreateDirect(name string) (File, error)
	// OpenDirect opens an existing file read-write for direct I/O, without
	// truncating it (an ordinary open where direct I/O is refused).
	OpenDirect(name string) (File, error)
}

// DirectAlign is the alignment direct I/O needs.
const DirectAlign = 4096

// FS is a file system.
type FS interface {
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenRW opens a file read-write, creating it if it does not exist. It
	// never truncates.
	OpenRW(name string) (File, error)
	// Create creates or truncates a file and opens it read-write.
	Create(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a directory tree. Missing paths are not an error.
	RemoveAll(name string) error
	// Rename renames a file, replacing the target atomically.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string) error
	// ReadDir lists the names in a directory, sorted.
	ReadDir(dir string) ([]string, error)
	// Stat reports whether name exists, its size and whether it is a directory.
	Stat(name string) (size int64, isDir bool, err error)
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
}

// ErrNotExist is returned (wrapped) when a path does not exist. It is
// io/fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) works for both
// implementations.
var ErrNotExist = errNotExist()

// ErrInjected is the error returned by faults injected into Mem.
var ErrInjected = errors.New("vfs: injected fault")
