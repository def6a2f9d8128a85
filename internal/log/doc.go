// Package log is sluice's durable partition log.
//
// A Store owns a data directory: one directory per partition holding segment
// files of Kafka record batches (v2, stored exactly as produced), a sparse
// offset index and a time index per segment, a shared journal through which
// every fsync-policy append becomes durable with one fsync per group commit
// however many partitions it touches, and a checkpoint file that bounds what
// recovery must validate. DESIGN.md at the repository root draws the on-disk
// formats and explains the choices; the constants that are part of the
// on-disk format are marked where they are declared.
//
// Use:
//
//	s, _ := log.OpenStore(vfs.OS{}, dir, log.StoreOptions{})
//	l, _ := s.Open("orders-0", log.Config{})
//	res, err := l.Append(records, leaderEpoch) // validates, assigns offsets, never waits
//	s.WhenDurable(res.Ticket, notifier)         // notifier.Durable(nil) once fsynced
//	l.Read(offset, maxBytes, &readResult)        // file regions for sendfile
//
// What it owns: validation of record batch framing and CRC, offset
// assignment, segment and index files, group commit, recovery, retention
// and the log start offset.
//
// What it must never do: reach the disk except through internal/vfs; speak
// Kafka error codes (it returns the sentinels in api.go); re-encode or
// decompress records; block an appender on an fsync; let a reader take the
// appender's lock; retry a failed fsync.
package log
