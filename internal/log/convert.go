package log

import (
	"errors"
	"fmt"
	"path"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Leaving journal-log mode. A directory written with the journal as the
// log keeps records only in journal files, which segment-file mode would
// replay as a write-ahead log and then retire. Opening such a directory
// without JournalLog therefore first converts it: the store is opened in
// journal-log mode (so recovery places every record), every
// journal-backed segment is copied into an ordinary segment file by the
// cleaner's own copy (materialize: tmp file, fsync, rename), the store is
// closed (its checkpoint retires the journal files nothing refers to any
// more), and only then is the marker removed. A crash at any point leaves
// either the marker, and the next open converts again (segments already
// copied stay copied), or a directory with no journal-backed data.

// convertToSegmentFiles converts the journal-log directory dir (marked)
// to segment files, returning how many segments it copied.
func convertToSegmentFiles(fsys vfs.FS, dir string, opts StoreOptions) (int, error) {
	opts.JournalLog, opts.PerFileSync, opts.noCleaner = true, false, true
	s, err := OpenStore(fsys, dir, opts)
	if err != nil {
		return 0, err
	}
	s.cleanMu.Lock()
	n, err := s.unpin(^uint64(0))
	if err == nil {
		err = s.pinnedErr()
	}
	s.cleanMu.Unlock()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := s.fs.Remove(path.Join(s.dir, journalLogMarker)); err != nil && !errors.Is(err, errNotExist) {
		return n, fmt.Errorf("open store %s: remove journal-log marker: %w", s.dir, err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return n, fmt.Errorf("open store %s: %w", s.dir, err)
	}
	return n, nil
}

// pinnedErr reports a log that still has records only in the journal
// (after unpin: one that is offline, whose records cannot be copied).
func (s *Store) pinnedErr() error {
	for _, l := range s.snapshotLogs() {
		for _, seg := range l.segments() {
			if seg.jb != nil && seg.written.Load() > 0 {
				msg := "its records exist only in journal files"
				if err := l.Err(); err != nil {
					msg = err.Error()
				}
				return fmt.Errorf("%w: cannot convert %s to segment files: log %s: %s; open it with the journal log enabled",
					ErrStorage, s.dir, l.name, msg)
			}
		}
	}
	return nil
}
