// Package broker owns the topics of a sluice node: topic and partition
// metadata, topic configs, the metadata log, idempotent-producer state and
// the Kafka admin APIs that change them.
//
// It never speaks the wire protocol (internal/kafka decodes and encodes) and
// never touches disk except through internal/log and internal/vfs.
package broker
