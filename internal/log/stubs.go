package log

// TEMPORARY: method set of the log API; replaced by the real implementation.

import (
	"github.com/sluice-mq/sluice/internal/vfs"
)

type segment struct{}

// Store owns one data directory: the shared journal, the group committer and
// every partition log in it.
type Store struct{}

// OpenStore opens (recovering if needed) the store in dir.
func OpenStore(fs vfs.FS, dir string, opts StoreOptions) (*Store, error) { panic("todo") }

// Open opens the partition log called name (a directory under the store,
// such as "orders-0"), creating it if missing.
func (s *Store) Open(name string, cfg Config) (*Log, error) { panic("todo") }

// Names lists the partition logs present on disk.
func (s *Store) Names() ([]string, error) { panic("todo") }

// Delete closes and removes a partition log. Its journal entries can never be
// replayed afterwards.
func (s *Store) Delete(name string) error { panic("todo") }

// WhenDurable calls n.Durable once t is durable (perhaps at once, on this goroutine).
func (s *Store) WhenDurable(t Ticket, n Notifier) { panic("todo") }

// Sync makes everything appended so far durable, whatever the policies.
func (s *Store) Sync() error { panic("todo") }

// EnforceRetention applies every log's retention once.
func (s *Store) EnforceRetention() error { panic("todo") }

// Close syncs and closes every log and the journal.
func (s *Store) Close() error { panic("todo") }

// Log is one partition's log.
type Log struct{}

// Append validates the record set (one or more v2 batches, as produced),
// assigns offsets (rewriting base offsets and leader epochs in place), writes
// it and returns its offsets and durability ticket. Safe for concurrent use;
// appends to one log are serialised.
func (l *Log) Append(records []byte, leaderEpoch int32) (AppendResult, error) { panic("todo") }

// Read returns whole batches starting with the one containing offset, at most
// maxBytes in total but always at least one batch. Reads never go past the
// high watermark. Release the result when done.
func (l *Log) Read(offset int64, maxBytes int64, res *ReadResult) error { panic("todo") }

// Release drops the segment references a ReadResult holds.
func (r *ReadResult) Release() {}

// HighWatermark is the offset after the last durable record (atomic; never blocks).
func (l *Log) HighWatermark() int64 { panic("todo") }

// LogStartOffset is the first readable offset.
func (l *Log) LogStartOffset() int64 { panic("todo") }

// NextOffset is the log end offset (including not yet durable appends).
func (l *Log) NextOffset() int64 { panic("todo") }

// Changed returns a channel closed the next time the high watermark moves.
func (l *Log) Changed() <-chan struct{} { panic("todo") }

// OffsetForTimestamp returns the first offset whose batch max timestamp is
// >= ts, with that batch's max timestamp; (-1, -1) if none.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, err error) { panic("todo") }

// MaxTimestamp returns the largest timestamp in the log and the offset of its batch's last record.
func (l *Log) MaxTimestamp() (timestamp int64, offset int64) { panic("todo") }

// DeleteRecords advances the log start offset to offset (<= high watermark).
func (l *Log) DeleteRecords(offset int64) (int64, error) { panic("todo") }

// SetConfig replaces the log's configuration.
func (l *Log) SetConfig(cfg Config) {}

// Size is the total bytes of the log's segments.
func (l *Log) Size() int64 { panic("todo") }

// ScanHeaders calls fn for each batch header from offset on, up to the high watermark.
func (l *Log) ScanHeaders(from int64, fn func(h BatchHeader) bool) error { panic("todo") }

// ParseHeader decodes a batch header from b (at least 61 bytes).
func ParseHeader(b []byte) (BatchHeader, error) { panic("todo") }
