// Package compat is sluice's compatibility suite: real Kafka clients
// (franz-go, Sarama, kafka-go, kcat, confluent-kafka and kafka-python from
// /usr/bin/python3, KafkaJS) against a real `sluice serve` process. It owns
// no broker code and must never reach into internal/*: everything goes over
// the wire, as a user's client would.
//
// Produce/consume (one test per client): create a 3-partition topic,
// produce 10,000 keyed records with headers spread over every compression
// codec the client supports (idempotently where the client can), restart
// the broker midway (SIGTERM, then start again on the same data directory),
// consume everything back and check values, keys, headers, per-partition
// order and offsets, and that no record is duplicated.
//
// Crashes (kill_test.go): SIGKILL the broker three times under a produce
// stream with acks=all (idempotent) and acks=1; every acknowledged record
// must be on the log afterwards, and none twice with the idempotent
// producer.
//
// Consumer groups (group_test.go): franz-go (eager, cooperative-sticky,
// KIP-848), Sarama, kafka-go, confluent-kafka, kafka-python and KafkaJS.
// Members are processes (cmd/groupmember for the Go clients, the scripts'
// "group" mode for the others), so killing one is a real crash.
//
// The broker is built from ./cmd/sluice once per run; each test starts its
// own on a free loopback port with a temporary data directory.
// SLUICE_COMPAT_BROKERS=host:port runs the suite against a broker that is
// already running instead (for harness development: cmd/fakekafka, an
// in-memory kfake cluster); restart and kill checks are then skipped, saying
// so. Client tools missing from the machine fail the suite when CI=true
// (.ci/run installs them) and are skipped, loudly, otherwise.
package compat
