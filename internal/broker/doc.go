// Package broker owns the topics of a sluice node: topic and partition
// metadata (names, 16-byte topic IDs, partition counts, configs), the
// metadata log that makes them durable, the idempotent-producer state of
// every partition, and the Kafka admin APIs that read and change them
// (Metadata, CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs, InitProducerId, DeleteRecords,
// DescribeLogDirs, DescribeCluster).
//
// It must never speak the wire protocol (internal/kafka decodes requests
// and encodes responses; this package takes and returns kmsg structs with
// every error as a Kafka code), never touch disk except through
// internal/log and internal/vfs, and never let a client see or create a
// topic whose name starts with "__": those are sluice's internal logs.
//
// # Metadata log
//
// Every metadata change is a record in the internal partition log
// "__cluster_metadata-0" (always fsync durability, kept forever, bounded by
// snapshots). An admin request's changes are written as one record batch v2
// (uncompressed, producer ID -1, CRC-32C as Kafka's), the broker waits until
// the batch is fsynced, and only then applies it to the in-memory state and
// answers: an acknowledged change is durable. Changes are applied by one
// deterministic state machine (metaState.apply: no I/O, no clock, no
// randomness; topic and cluster IDs are chosen before the record is written
// and carried in it), so replaying the same records always yields the same
// state: the shape a Raft-replicated log needs.
//
// Record format (part of the on-disk format). Each record's key is two
// bytes, [format version = 0][kind]; its value is big-endian, strings as
// uint16 length + bytes, configs as uint16 count + (name, value) pairs
// sorted by name:
//
//	kind 1 cluster            clusterID[16]
//	kind 2 topic created      topicID[16] name partitions:int32 configs
//	kind 3 topic deleted      topicID[16]
//	kind 4 partitions created topicID[16] newPartitionCount:int32
//	kind 5 topic configs      topicID[16] configs  (replaces every dynamic config)
//	kind 6 producer IDs       firstID:int64 count:int32 (IDs [first, first+count) reserved)
//
// Snapshot: every 1,000 changes and at Close, the state is written as the
// file metadata.snapshot in the metadata log's directory (temp file, fsync,
// rename, fsync of the directory):
//
//	"SLMS" version:uint16 = 1 covered:int64 batchLength:uint32 batch crc:uint32
//
// where batch is a record batch of the same change records that rebuilds
// the state from empty, covered is the metadata-log offset it reflects, and
// crc is the CRC-32C of everything before it. The log is then trimmed below
// covered (DeleteRecords). Open loads the snapshot and replays the log from
// covered.
//
// Partition directories: each topic partition is the log "<topic>-<n>"
// whose directory also holds partition.meta (version:uint8 = 1
// topicID[16] crc:uint32), tying it to its topic ID. Open removes the logs
// of topics the metadata does not know (deleted before a crash finished
// removing them) and a partition directory whose partition.meta names
// another topic ID (an earlier topic of the same name).
//
// # Idempotent producers
//
// InitProducerId hands out IDs from blocks reserved through the metadata
// log (kind 6), so no ID is handed out twice, crash or not. Each partition
// keeps, per producer ID, the epoch and the last five batches' (first
// sequence, last sequence, base offset, last offset, max timestamp,
// durability ticket). Partition.Produce checks and appends under the
// partition's mutex. The state is snapshotted per partition to
// producer.snapshot in the partition's directory (every 30 seconds when it
// changed, and at Close):
//
//	"SLPS" version:uint16 = 1 covered:int64 count:uint32
//	count × { producerID:int64 epoch:int16 n:uint8
//	          n × { firstSeq:int32 lastSeq:int32 baseOffset:int64
//	                lastOffset:int64 maxTimestamp:int64 } }
//	crc:uint32
//
// and rebuilt on Open from the snapshot plus the headers of the batches at
// and after covered (Log.ScanHeaders). A snapshot covering more than the
// log holds (a tail lost under a non-fsync policy) is ignored and the state
// rebuilt from the log start. Producers whose last batch lies below the
// log start offset are forgotten at the next snapshot, as Kafka does; a
// producer the partition knows nothing about may start at any sequence.
//
// # Locks
//
// Lock order: Broker.pidMu → Broker.adminMu → Broker.mu → Partition.mu.
// adminMu serialises metadata changes; mu guards the state and the
// partition table for readers; Partition.mu guards one partition's
// producer state and is held across check and append.
package broker
