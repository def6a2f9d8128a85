package broker

import (
	"fmt"
	"strings"
)

// maxTopicNameLength is Kafka's limit: a partition directory is
// "<topic>-<partition>" and must fit a 255-byte file name.
const maxTopicNameLength = 249

// internalPrefix starts the names sluice reserves for its own logs
// ("__cluster_metadata-0", "__consumer_offsets-0"). Clients can neither see
// nor create such topics.
const internalPrefix = "__"

// validateTopicName checks a topic name as Kafka does: 1 to 249 characters
// from [a-zA-Z0-9._-], and neither "." nor "..". It returns a message fit
// for a client on failure.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name cannot be %q", name)
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("topic name is %d characters long, the maximum is %d", len(name), maxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return nil
}

// isInternalTopic reports whether name is reserved for sluice's own logs.
func isInternalTopic(name string) bool { return strings.HasPrefix(name, internalPrefix) }

// collisionKey maps '.' to '_': Kafka refuses two topics whose names differ
// only there, because metric names would collide.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// partitionLogName is the partition log's name in the store (part of the
// on-disk layout).
func partitionLogName(topic string, partition int32) string {
	return fmt.Sprintf("%s-%d", topic, partition)
}
