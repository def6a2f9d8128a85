// Package log is sluice's durable partition log.
//
// A Store owns a data directory: one directory per partition holding segment
// files of Kafka record batches (v2, stored exactly as produced), a sparse
// offset index and a time index per segment, and a shared journal through
// which every fsync-policy append is made durable with one fsync per group
// commit, however many partitions it touches.
//
// The package reaches disk only through internal/vfs. It never speaks Kafka
// error codes (see the sentinels in api.go) and never re-encodes records.
package log
