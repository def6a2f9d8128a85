// Package compat is sluice's compatibility suite: real Kafka clients
// (franz-go, Sarama, kafka-go, kcat, confluent-kafka and kafka-python from
// python3, KafkaJS) against a real `sluice serve` process.
//
// For each client the suite creates a 3-partition topic, produces keyed
// records with headers under every compression codec the client supports,
// restarts the broker midway, consumes everything back and checks values,
// keys, headers, per-partition order and offsets. Separate tests kill the
// broker with SIGKILL under acknowledged load and check that nothing
// acknowledged is lost.
//
// The broker is built from ./cmd/sluice once per run. Client tools missing
// from the machine fail the suite when CI=true (.ci/run installs them) and
// are skipped, loudly, otherwise.
package compat
