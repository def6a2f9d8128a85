package kafka

// Produce (key 0), versions 0–13.
//
// Records are appended as produced: record batches v2 (magic 2) go to
// broker.Partition.Produce, which validates them (CRC-32C, lengths,
// max.message.bytes), runs the idempotent-producer checks and appends them
// without re-encoding. Compressed batches are stored as produced too, but
// first inflated (streamed, bounded by Config.MaxInflatedBatchBytes) to
// validate their records (validate.go): malformed records get
// INVALID_RECORD (v8+; CORRUPT_MESSAGE before), undecodable data
// CORRUPT_MESSAGE, a batch inflating past the limit MESSAGE_TOO_LARGE with
// an error message.
//
// Legacy message sets (magic 0 and 1, what Produce v0–v2 carry) are
// converted into one uncompressed record batch v2 (legacy.go): CRC-32 of
// every message checked, compressed wrappers (gzip, snappy raw or xerial,
// lz4) decompressed within max.message.bytes, magic 0 messages stamped with
// the receive time. A corrupt set gets CORRUPT_MESSAGE (2), one too large
// once decompressed MESSAGE_TOO_LARGE (10). Produce v3+ must carry magic 2:
// a legacy set there gets UNSUPPORTED_FOR_MESSAGE_FORMAT (43). A v0–v2
// request that carries magic 2 batches is accepted as is. Consumers read
// converted records with Fetch v4+ (Fetch v0–v3, which would need
// down-conversion, is not served).
//
// acks: 0 (no response at all; if any partition fails the connection is
// closed, which is how Kafka tells an acks=0 producer), 1 and -1 (the
// response is sent once every appended batch is durable under its topic's
// durability policy: the request registers one Notifier for the largest
// group-commit ticket of its partitions with Store.WhenDurable, so no
// goroutine waits per request or partition, and the connection goes on
// reading and starting requests meanwhile). One node is the whole ISR, so
// acks=1 and acks=-1 mean the same. Any other acks value gets
// INVALID_REQUIRED_ACKS (21) on every partition.
//
// Transactional produce (a transactional id) gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) until transactions exist.
//
// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (3) and the other codes
// the broker returns; CORRUPT_MESSAGE (2) for a CRC mismatch;
// INVALID_RECORD (87, v8+; CORRUPT_MESSAGE before) for a malformed batch;
// MESSAGE_TOO_LARGE (10); KAFKA_STORAGE_ERROR (56) for disk failures
// (ENOSPC included) and for a failed fsync after the append;
// NOT_LEADER_OR_FOLLOWER (6) while shutting down. v2+ report the log
// append time (-1 for CreateTime topics), v5+ the log start offset. v12
// (KIP-890) changes nothing here; v13 (KIP-516) names topics by ID, and an
// unknown ID gets UNKNOWN_TOPIC_ID (100).

import (
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/log"
)

// legacyMagicOffset is where a record batch or legacy message set keeps its
// magic byte: after offset int64, length int32 and either the leader epoch
// (v2) or the crc (v0/v1), both int32.
const legacyMagicOffset = 16

// produceWait waits for a produce request's appends to become durable. It
// is the log.Notifier the request registers.
type produceWait struct {
	sl   *slot
	resp *kmsg.ProduceResponse
	// appended are the partitions whose append succeeded; they turn into
	// KAFKA_STORAGE_ERROR if the fsync fails.
	appended []*kmsg.ProduceResponseTopicPartition
	err      error
}

// Durable implements log.Notifier. It runs on the committer goroutine (or
// the reader's, if already durable) and only signals the writer.
func (w *produceWait) Durable(err error) {
	w.err = err
	w.sl.complete()
}

// finish runs on the writer before the response is encoded.
func (w *produceWait) finish() {
	if w.err == nil {
		return
	}
	code := logErrCode(w.err, w.resp.Version >= 8)
	for _, p := range w.appended {
		p.ErrorCode = code
		p.BaseOffset = -1
	}
}

func handleProduce(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	w := &produceWait{sl: sl, resp: resp}
	b := c.s.cfg.Broker
	var (
		maxTicket log.Ticket
		failed    bool
	)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := &resp.Topics[i]
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &rt.Partitions[j]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.BaseOffset = -1
			rp.ErrorCode = c.producePartition(r, t, p, rp, &maxTicket)
			if rp.ErrorCode != errNone {
				failed = true
				continue
			}
			w.appended = append(w.appended, rp)
		}
	}
	// The records are in the log now (Append copied them into the segment
	// and the journal) and the response holds nothing of the request's
	// bytes (kmsg copies strings): the frame goes back to the pool while
	// the appends wait for their fsync. Held until the response was
	// written, frames outnumbered the mapping cache (bigframe.go) and one
	// in five to eight was read into fresh memory.
	sl.releaseFrame()
	if r.Acks == 0 {
		sl.noResponse = true
		sl.closeConn = failed
		sl.complete()
		return
	}
	sl.resp = resp
	if len(w.appended) == 0 {
		sl.complete()
		return
	}
	sl.produce = w
	b.Store().WhenDurable(maxTicket, w)
}

// producePartition appends one partition's records and fills rp. It
// returns the partition's error code.
func (c *conn) producePartition(r *kmsg.ProduceRequest, t *kmsg.ProduceRequestTopic, p *kmsg.ProduceRequestTopicPartition, rp *kmsg.ProduceResponseTopicPartition, maxTicket *log.Ticket) int16 {
	switch {
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		return errInvalidRequiredAcks
	case r.TransactionID != nil:
		return errTransactionalIDAuthFailed
	}
	var part *broker.Partition
	var code int16
	if r.Version >= 13 {
		part, code = c.s.cfg.Broker.PartitionByID(t.TopicID, p.Partition)
	} else {
		part, code = c.s.cfg.Broker.Partition(t.Topic, p.Partition)
	}
	if code != errNone {
		return code
	}
	if part == nil {
		return errUnknownTopicOrPartition
	}
	records := p.Records
	if len(records) > legacyMagicOffset && records[legacyMagicOffset] < 2 {
		if r.Version > 2 {
			return errUnsupportedForMessageFormat
		}
		limit := int(part.Log().Config().MaxBatchBytes)
		converted, err := convertLegacy(records, limit, c.s.cfg.Clock().UnixMilli())
		switch {
		case errors.Is(err, errLegacyTooBig):
			return errMessageTooLarge
		case err != nil:
			return errCorruptMessage
		}
		records = converted
	} else if err := validateCompressed(records, c.s.cfg.MaxInflatedBatchBytes); err != nil {
		return c.invalidCompressed(err, r.Version, rp)
	}
	res, code, err := part.Produce(records)
	if code == errNone && err != nil {
		code = logErrCode(err, r.Version >= 8)
	}
	if code != errNone {
		if code == errKafkaStorage || code == errUnknownServer {
			c.connLogger().Warn("produce failed", "topic", part.Topic(), "partition", p.Partition, "err", err)
			if err != nil {
				rp.ErrorMessage = storageMessage(err) // v8+ carry it
			}
		}
		return code
	}
	rp.BaseOffset = res.BaseOffset
	rp.LogAppendTime = res.LogAppendTime
	rp.LogStartOffset = part.Log().LogStartOffset()
	if res.Ticket > *maxTicket {
		*maxTicket = res.Ticket
	}
	return errNone
}

// Messages for rejected compressed batches (Produce v8+ carries one).
var (
	msgInflateCorrupt = "a compressed record batch does not decompress"
	msgInvalidInner   = "a compressed record batch holds malformed records (lengths, record count or offset deltas 0..n-1)"
	msgInflateCodec   = "unknown compression codec"
)

// inflateTooBigMessage is the MESSAGE_TOO_LARGE message for a limit.
func inflateTooBigMessage(limit int) string {
	return "a compressed record batch inflates beyond " + strconv.Itoa(limit) + " bytes (the broker's --max-inflated-batch-bytes)"
}

// invalidCompressed maps an error of validateCompressed to the partition's
// error code and message.
func (c *conn) invalidCompressed(err error, version int16, rp *kmsg.ProduceResponseTopicPartition) int16 {
	switch {
	case errors.Is(err, errInflateTooBig):
		rp.ErrorMessage = &c.s.msgInflateTooBig
		return errMessageTooLarge
	case errors.Is(err, errCRC):
		return errCorruptMessage
	case errors.Is(err, errInflateCorrupt):
		rp.ErrorMessage = &msgInflateCorrupt
		return errCorruptMessage
	case errors.Is(err, errInflateCodec):
		rp.ErrorMessage = &msgInflateCodec
	default:
		rp.ErrorMessage = &msgInvalidInner
	}
	if version >= 8 {
		return errInvalidRecord
	}
	return errCorruptMessage
}
