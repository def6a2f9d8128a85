package log

import (
	"errors"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// Sentinel errors. The protocol layer maps them to Kafka error codes:
//
//	ErrCorruptBatch      -> CORRUPT_MESSAGE (2)
//	ErrInvalidBatch      -> INVALID_RECORD (87) / CORRUPT_MESSAGE
//	ErrBatchTooLarge     -> MESSAGE_TOO_LARGE (10)
//	ErrOffsetOutOfRange  -> OFFSET_OUT_OF_RANGE (1)
//	ErrStorage, ENOSPC   -> KAFKA_STORAGE_ERROR (56)
//	ErrOffline           -> KAFKA_STORAGE_ERROR (56)
//	ErrClosed            -> NOT_LEADER_OR_FOLLOWER (6) while shutting down
var (
	ErrCorruptBatch     = errors.New("log: corrupt record batch (crc mismatch)")
	ErrInvalidBatch     = errors.New("log: invalid record batch")
	ErrBatchTooLarge    = errors.New("log: record batch larger than max.message.bytes")
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	ErrClosed           = errors.New("log: closed")
	ErrOffline          = errors.New("log: partition offline")
	ErrStorage          = errors.New("log: storage error")
)

// DurabilityKind selects when an append counts as durable.
type DurabilityKind uint8

const (
	// DurabilityFsync: an append completes only after its bytes are fsynced
	// (through the shared journal). The default.
	DurabilityFsync DurabilityKind = iota
	// DurabilityInterval: appends complete at once; dirty files are fsynced
	// every Interval.
	DurabilityInterval
	// DurabilityNone: appends complete at once; the page cache decides
	// (Kafka's default behaviour).
	DurabilityNone
)

// Durability is a topic's durability policy.
type Durability struct {
	Kind     DurabilityKind
	Interval time.Duration // for DurabilityInterval
}

// Config is the per-partition configuration, taken from topic configs.
// Zero values mean the defaults listed on each field.
type Config struct {
	SegmentBytes       int64         // roll when the active segment reaches this size (default 1 GiB)
	SegmentAge         time.Duration // roll when the active segment is this old (default 7 days)
	RetentionAge       time.Duration // delete segments whose newest record is older (0 = default 7 days, <0 = forever)
	RetentionBytes     int64         // delete oldest segments while the log is larger (0 or <0 = unlimited)
	MaxBatchBytes      int32         // max.message.bytes (default 1 MiB + 12)
	LogAppendTime      bool          // message.timestamp.type=LogAppendTime
	IndexIntervalBytes int32         // bytes between sparse offset-index entries (default 4 KiB)
	Durability         Durability
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives recovery reports; nil discards them.
	Logger Logger
	// JournalCheckpointBytes: journal bytes after which segments are fsynced
	// and the journal is rotated (default 64 MiB).
	JournalCheckpointBytes int64
	// CheckpointInterval: how often every log is fsynced and the checkpoint
	// rewritten even without journal rotation (default 1 minute). Bounds the
	// tail that recovery must scan for interval- and none-policy logs.
	CheckpointInterval time.Duration
	// RetentionCheckInterval: how often retention runs (default 5 minutes;
	// negative disables the background pass).
	RetentionCheckInterval time.Duration
	// PerFileSync replaces the shared journal by one fsync per dirty segment
	// file per group commit. Kept for measurement (see DESIGN.md).
	PerFileSync bool
	// JournalLog makes the journal the log (journalseg.go): every append
	// is written once, to the journal, and segments refer to its entries
	// instead of copying them. Every durability policy then goes through
	// the journal: fsync-policy appends complete after the group's fsync,
	// the others at once, and all become readable after the group's fsync.
	// A data directory used with it must keep using it (OpenStore refuses
	// otherwise). Ignored with PerFileSync.
	JournalLog bool
	// JournalHotBytes, if positive, bounds the journal files kept on disk
	// in journal-log mode: past it the oldest segments are copied into
	// ordinary segment files (jclean.go), as they are anyway when the
	// journal holds more than twice what the segments use. Zero (the
	// default): no bound beyond that, so every byte is written once.
	JournalHotBytes int64
	// noCleaner keeps the journal cleaner from running (tests of what it
	// would otherwise clean up).
	noCleaner bool
}

// Logger is the subset of *slog.Logger the log uses.
type Logger interface {
	Warn(msg string, args ...any)
	Info(msg string, args ...any)
}

// Ticket identifies a point in the group-commit sequence. An append returns
// the ticket after which its bytes are durable.
type Ticket uint64

// Notifier is told when a ticket became durable (err == nil) or can never
// become durable (err != nil: the store failed to fsync and is now fatal).
// Implementations must not block. Passing a pointer to a pooled struct
// allocates nothing.
type Notifier interface {
	Durable(err error)
}

// AppendResult describes an appended record set.
type AppendResult struct {
	BaseOffset    int64
	LastOffset    int64
	LogAppendTime int64 // milliseconds; -1 unless the topic uses LogAppendTime
	// Ticket completes when the appended bytes are durable under the
	// partition's policy. For Interval and None it is already complete.
	Ticket Ticket
}

// Region is a byte range of a segment file, ready for sendfile. The file stays
// open until the ReadResult holding it is released.
type Region struct {
	File vfs.File
	Pos  int64
	Len  int64
}

// ReadResult is the outcome of Log.Read. Call Release when its regions have
// been sent.
type ReadResult struct {
	Regions        []Region // whole batches, in offset order
	Bytes          int64    // sum of Regions' lengths
	HighWatermark  int64
	LogStartOffset int64
	segments       []*segment // referenced segments, released by Release
	// hr is scratch space for batch headers: passing it to ReadAt through
	// the vfs interface makes it escape, so it lives in the reused result.
	hr headerReader
}

// BatchHeader is the fixed 61-byte header of a Kafka record batch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after this field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}
