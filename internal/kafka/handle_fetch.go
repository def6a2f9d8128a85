package kafka

// Fetch (key 1), versions 0–16.
//
// v0–v3 predate record batches v2: their responses are down-converted to
// legacy message sets in memory (fetch_legacy.go). v4+ are described below.
//
// Reads whole record batches from the partition logs and sends them with
// sendfile(2) straight from the segment files (fetch_response.go writes the
// response itself, byte-identical to kmsg's encoding, so that the records
// can be spliced in from files; small regions are copied with pread, which
// costs less than a flush plus a sendfile).
//
// Behaviour:
//   - Long poll: the response waits until MinBytes are available or
//     MaxWaitMillis passes (capped at 5 minutes), woken by the logs'
//     Changed() channels — no polling loop. A waiting fetch holds one
//     goroutine per request (not per partition); the connection keeps
//     reading and starting requests meanwhile. Any partition error answers
//     at once. Shutdown answers waiting fetches at once with what they have.
//   - Byte limits: PartitionMaxBytes per partition and MaxBytes (v3+) for
//     the response, both soft for the first batch of the first partition
//     that has data (KIP-74), so a batch larger than the limits still
//     makes progress. A later partition whose first batch does not fit in
//     what is left returns no records this time.
//   - Every partition carries the high watermark, the last stable offset
//     (= the high watermark: no transactions yet, so read_committed reads
//     what read_uncommitted reads) and the log start offset.
//     AbortedTransactions is always null; PreferredReadReplica is -1.
//   - OFFSET_OUT_OF_RANGE (1) when the offset is below the log start offset
//     or above the high watermark; UNKNOWN_TOPIC_OR_PARTITION (3) (v13+:
//     UNKNOWN_TOPIC_ID (100), topics named by ID) for unknown partitions;
//     UNKNOWN_LEADER_EPOCH (75) when the client's current leader epoch
//     (v9+) is newer than this node's (always 0); KAFKA_STORAGE_ERROR (56)
//     for an offline partition.
//   - Incremental fetch sessions (KIP-227, v7+) are not kept: every
//     response has session id 0 and is a full response, which every client
//     reads as "the broker did not create a session" and keeps sending full
//     requests. A request naming a session id gets FETCH_SESSION_ID_NOT_FOUND
//     (70); session id 0 with an epoch other than -1 or 0 gets
//     INVALID_FETCH_SESSION_EPOCH (71), as Kafka answers.
//   - Follower fetches (ReplicaID >= 0) are served like consumer fetches.

import (
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
)

// fetchPart is one requested partition's state across the reads of one
// fetch.
type fetchPart struct {
	topic     int // index into the request's topics
	partition int32
	log       *log.Log // nil when code is set before reading
	code      int16
	offset    int64
	maxBytes  int64
	res       log.ReadResult
	hw        int64
	logStart  int64
}

// fetchState is a fetch in progress and then its encoded response. Pooled:
// a steady stream of fetches reuses its slices and read results.
type fetchState struct {
	parts   []fetchPart
	chans   []<-chan struct{}
	cases   []reflect.SelectCase
	resp    fetchResponse
	minimum int64
	total   int64 // MaxBytes
}

var fetchPool = sync.Pool{New: func() any { return new(fetchState) }}

func handleFetch(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.FetchRequest)
	if r.Version >= 7 && (r.SessionID != 0 || (r.SessionEpoch != -1 && r.SessionEpoch != 0)) {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = errFetchSessionIDNotFound
		if r.SessionID == 0 {
			resp.ErrorCode = errInvalidFetchSessionEpoch
		}
		resp.SessionID = r.SessionID
		sl.respond(resp)
		return
	}
	f := fetchPool.Get().(*fetchState)
	f.prepare(c, r)
	bytes, failed := f.readAll()
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if bytes >= f.minimum || failed || wait <= 0 || c.ctx.Err() != nil {
		f.finish(sl, r)
		return
	}
	f.releaseReads()
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		f.longPoll(c, min(wait, maxFetchWait))
		f.finish(sl, r)
	}()
}

// prepare resolves the requested partitions.
func (f *fetchState) prepare(c *conn, r *kmsg.FetchRequest) {
	b := c.s.cfg.Broker
	f.minimum = int64(r.MinBytes)
	f.total = int64(r.MaxBytes)
	if r.Version < 3 || f.total <= 0 {
		f.total = 1<<31 - 1
	}
	f.parts = f.parts[:0]
	for i := range r.Topics {
		t := &r.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			fp := f.nextPart()
			fp.topic, fp.partition = i, p.Partition
			fp.offset, fp.maxBytes = p.FetchOffset, int64(p.PartitionMaxBytes)
			fp.hw, fp.logStart = -1, -1
			var part interface{ Log() *log.Log }
			var code int16
			if r.Version >= 13 {
				bp, cd := b.PartitionByID(t.TopicID, p.Partition)
				part, code = bp, cd
				if bp == nil && code == errNone {
					code = errUnknownTopicID
				}
			} else {
				bp, cd := b.Partition(t.Topic, p.Partition)
				part, code = bp, cd
				if bp == nil && code == errNone {
					code = errUnknownTopicOrPartition
				}
			}
			if code == errNone && r.Version >= 9 {
				code = leaderEpochCode(p.CurrentLeaderEpoch)
			}
			if code != errNone {
				fp.code = code
				continue
			}
			fp.log = part.Log()
		}
	}
}

// nextPart appends a cleared part, keeping the read result's slices of a
// pooled state for reuse.
func (f *fetchState) nextPart() *fetchPart {
	n := len(f.parts)
	if n < cap(f.parts) {
		f.parts = f.parts[:n+1]
		res := f.parts[n].res
		f.parts[n] = fetchPart{res: res}
	} else {
		f.parts = append(f.parts, fetchPart{})
	}
	return &f.parts[n]
}

// readAll reads every partition within the byte limits. It returns the
// bytes read and whether any partition has an error.
func (f *fetchState) readAll() (bytes int64, failed bool) {
	remaining := f.total
	for i := range f.parts {
		p := &f.parts[i]
		if p.log == nil {
			failed = true
			continue
		}
		p.code = errNone
		limit := min(p.maxBytes, remaining)
		if bytes > 0 && limit <= 0 {
			p.res.Regions = p.res.Regions[:0]
			p.res.Bytes = 0
			p.hw, p.logStart = p.log.HighWatermark(), p.log.LogStartOffset()
			continue
		}
		err := p.log.Read(p.offset, limit, &p.res)
		if err != nil {
			p.code = logErrCode(err, true)
			p.hw, p.logStart = p.log.HighWatermark(), p.log.LogStartOffset()
			failed = true
			continue
		}
		p.hw, p.logStart = p.res.HighWatermark, p.res.LogStartOffset
		if bytes > 0 && p.res.Bytes > limit {
			// Over the limit only because a read returns at least one
			// batch; that allowance belongs to the first partition.
			p.res.Release()
			p.res.Bytes = 0
			continue
		}
		bytes += p.res.Bytes
		remaining -= p.res.Bytes
	}
	return bytes, failed
}

// releaseReads drops the segment references of the last read.
func (f *fetchState) releaseReads() {
	for i := range f.parts {
		f.parts[i].res.Release()
		f.parts[i].res.Bytes = 0
	}
}

// longPoll waits until MinBytes are readable, wait passes or the
// connection is cancelled, then leaves the final read in f.
func (f *fetchState) longPoll(c *conn, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	expired := false
	for {
		// Take the change channels before reading so that no append
		// between the read and the wait is missed.
		f.chans = f.chans[:0]
		for i := range f.parts {
			if l := f.parts[i].log; l != nil {
				f.chans = append(f.chans, l.Changed())
			}
		}
		bytes, failed := f.readAll()
		if expired || bytes >= f.minimum || failed {
			return
		}
		f.releaseReads()
		if !f.waitAny(c, timer.C) {
			expired = true
		}
	}
}

// waitAny blocks until one of f.chans is closed (true) or the timer fires
// or the connection is cancelled (false).
func (f *fetchState) waitAny(c *conn, timer <-chan time.Time) bool {
	if len(f.chans) == 1 {
		select {
		case <-f.chans[0]:
			return true
		case <-timer:
		case <-c.ctx.Done():
		}
		return false
	}
	f.cases = f.cases[:0]
	f.cases = append(f.cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ctx.Done())})
	for _, ch := range f.chans {
		f.cases = append(f.cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(f.cases)
	return chosen >= 2
}

// finish encodes the response and completes the slot.
func (f *fetchState) finish(sl *slot, r *kmsg.FetchRequest) {
	if r.Version < 4 {
		f.resp.encodeLegacy(sl, r, f.parts)
	} else {
		f.resp.encode(sl, r, f.parts)
	}
	f.resp.state = f
	sl.fetch = &f.resp
	sl.complete()
}

// release returns the fetch's resources once the response is written.
func (f *fetchState) release() {
	f.releaseReads()
	for i := range f.parts {
		f.parts[i].log = nil
	}
	f.parts = f.parts[:0]
	clear(f.chans)
	f.chans = f.chans[:0]
	clear(f.cases)
	f.cases = f.cases[:0]
	f.resp.reset()
	fetchPool.Put(f)
}
