package kafka

import (
	"errors"
	"syscall"

	"github.com/sluice-mq/sluice/internal/log"
)

// Kafka error codes used by this package (the protocol guide's table).
const (
	errNone                        int16 = 0
	errUnknownServer               int16 = -1
	errOffsetOutOfRange            int16 = 1
	errCorruptMessage              int16 = 2
	errUnknownTopicOrPartition     int16 = 3
	errNotLeaderOrFollower         int16 = 6
	errMessageTooLarge             int16 = 10
	errCoordinatorNotAvailable     int16 = 15
	errInvalidTopic                int16 = 17
	errInvalidRequiredAcks         int16 = 21
	errInvalidRequest              int16 = 42
	errUnsupportedForMessageFormat int16 = 43
	errUnsupportedVersion          int16 = 35
	errTransactionalIDAuthFailed   int16 = 53
	errKafkaStorage                int16 = 56
	errFetchSessionIDNotFound      int16 = 70
	errInvalidFetchSessionEpoch    int16 = 71
	errFencedLeaderEpoch           int16 = 74
	errUnknownLeaderEpoch          int16 = 75
	errInvalidRecord               int16 = 87
	errUnknownTopicID              int16 = 100
)

// logErrCode maps an error from internal/log (or from the broker, which
// passes them through) to a Kafka error code, as internal/log/api.go lists.
// newRecordErrors says whether the client's request version knows
// INVALID_RECORD (Produce v8+); older clients get CORRUPT_MESSAGE.
func logErrCode(err error, newRecordErrors bool) int16 {
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, log.ErrStorage), errors.Is(err, log.ErrOffline), errors.Is(err, syscall.ENOSPC):
		// First: an offline log's error also wraps the damage found in
		// its segment (ErrInvalidBatch, ErrCorruptBatch), which is not
		// the client's batch.
		return errKafkaStorage
	case errors.Is(err, log.ErrCorruptBatch):
		return errCorruptMessage
	case errors.Is(err, log.ErrInvalidBatch):
		if newRecordErrors {
			return errInvalidRecord
		}
		return errCorruptMessage
	case errors.Is(err, log.ErrBatchTooLarge):
		return errMessageTooLarge
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return errOffsetOutOfRange
	case errors.Is(err, log.ErrClosed):
		return errNotLeaderOrFollower
	default:
		return errKafkaStorage
	}
}

// leaderEpochCode checks a client's idea of the partition leader epoch
// against this node's, which is always 0 (one node, no leader changes).
// -1 means the client does not know and is always accepted.
func leaderEpochCode(current int32) int16 {
	switch {
	case current < 0 || current == 0:
		return errNone
	default:
		return errUnknownLeaderEpoch
	}
}

// Messages for KAFKA_STORAGE_ERROR (Produce v8+ carries one). Fixed text,
// never the Go error (which names files on the broker): the broker log has
// the details.
var (
	msgOffline  = "partition offline: its log holds damaged acknowledged data and was not repaired; the broker log names the segment and byte"
	msgDiskFull = "no space left on the broker's disk"
	msgStorage  = "storage error on this partition; see the broker log"
)

func storageMessage(err error) *string {
	switch {
	case errors.Is(err, log.ErrOffline):
		return &msgOffline
	case errors.Is(err, syscall.ENOSPC):
		return &msgDiskFull
	}
	return &msgStorage
}
