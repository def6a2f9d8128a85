package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NullBroker is a Kafka server that does no work: a produce is acknowledged
// as soon as it is read, its batches stay in memory and fetches are answered
// from there. Run under the same clients, schedule and cores as the brokers,
// it measures what the clients and the machine cost by themselves (the
// "clients floor" of the latency runs): no broker can deliver a record faster
// than this server, which neither writes, copies nor validates anything.
//
// It speaks just enough of the protocol for the harness's franz-go clients
// (ApiVersions, Metadata, CreateTopics, InitProducerID, Produce, ListOffsets,
// Fetch without sessions) and is not a broker: records live in memory, only
// the newest nullKeepBytes of each partition are kept, and anything else
// closes the connection.
type NullBroker struct {
	ln   net.Listener
	addr string

	mu      sync.Mutex
	topics  map[string][]*nullPartition
	changed chan struct{} // closed and replaced on every produce
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	closed  bool
}

// nullPartition keeps a partition's newest batches in a ring of
// nullKeepBytes: a consumer at the tail reads from there, and nothing is
// allocated per batch.
type nullPartition struct {
	ring    []byte
	head    int64 // ring position after the last batch (grows forever)
	batches []nullBatch
	first   int   // batches[first:] are still in the ring
	next    int64 // high watermark
	start   int64 // log start offset: the oldest batch still kept
}

type nullBatch struct {
	base int64 // base offset
	pos  int64 // ring position (physical: pos % len(ring))
	n    int64
}

// nullKeepBytes is how much of each partition the null broker keeps: a
// tenth of a second and more at the latency runs' rates, for a consumer at
// the tail.
const nullKeepBytes = 4 << 20

// nullMaxFrame bounds a request frame.
const nullMaxFrame = 64 << 20

// StartNullBroker listens on addr (host:port) and serves until Close.
func StartNullBroker(addr string) (*NullBroker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &NullBroker{ln: ln, addr: ln.Addr().String(), topics: map[string][]*nullPartition{},
		changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the address the broker listens on.
func (b *NullBroker) Addr() string { return b.addr }

// Close stops the broker and waits for its connections to end.
func (b *NullBroker) Close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	close(b.changed) // wakes waiting fetches
	b.changed = make(chan struct{})
	b.mu.Unlock()
	b.ln.Close()
	b.wg.Wait()
}

func (b *NullBroker) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			_ = b.serve(c)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// serve answers c's requests one after another (franz-go keeps produce and
// fetch on connections of their own, so a waiting fetch holds up nothing).
func (b *NullBroker) serve(c net.Conn) error {
	var size [4]byte
	var frame, out []byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > nullMaxFrame {
			return fmt.Errorf("null broker: bad frame size %d", n)
		}
		// Produce copies the batches into the rings: the frame is reused.
		if cap(frame) < int(n) {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(c, frame); err != nil {
			return err
		}
		key := int16(binary.BigEndian.Uint16(frame[0:]))
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		corr := binary.BigEndian.Uint32(frame[4:])
		req := kmsg.RequestForKey(key)
		if key == kmsg.ApiVersions.Int16() && version > nullMaxVersion(key) {
			// Newer than known: a v0 answer with the versions there are,
			// which the client retries with.
			resp, _ := b.handle(kmsg.NewPtrApiVersionsRequest())
			resp.(*kmsg.ApiVersionsResponse).ErrorCode = kerr.UnsupportedVersion.Code
			resp.SetVersion(0)
			out = binary.BigEndian.AppendUint32(append(out[:0], 0, 0, 0, 0), corr)
			out = resp.AppendTo(out)
			binary.BigEndian.PutUint32(out, uint32(len(out)-4))
			if _, err := c.Write(out); err != nil {
				return err
			}
			continue
		}
		if req == nil || version < 0 || version > nullMaxVersion(key) {
			return fmt.Errorf("null broker: unsupported request %d v%d", key, version)
		}
		req.SetVersion(version)
		body, err := skipRequestHeader(frame[8:], req.IsFlexible())
		if err != nil {
			return err
		}
		if err := req.ReadFrom(body); err != nil {
			return fmt.Errorf("null broker: %s v%d: %w", kmsg.NameForKey(key), version, err)
		}
		if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
			b.produce(pr) // acks=0: no response at all
			continue
		}
		out = append(out[:0], 0, 0, 0, 0)
		out = binary.BigEndian.AppendUint32(out, corr)
		if req.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			out = append(out, 0) // response header v1: no tagged fields
		}
		if f, ok := req.(*kmsg.FetchRequest); ok {
			out = b.fetch(f, out)
		} else {
			resp, err := b.handle(req)
			if err != nil {
				return err
			}
			resp.SetVersion(version)
			out = resp.AppendTo(out)
		}
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}

// skipRequestHeader returns the request body after the client id (and the
// header's tagged fields in flexible versions).
func skipRequestHeader(b []byte, flexible bool) ([]byte, error) {
	bad := errors.New("null broker: short request header")
	if len(b) < 2 {
		return nil, bad
	}
	if l := int16(binary.BigEndian.Uint16(b)); l > 0 {
		if len(b) < 2+int(l) {
			return nil, bad
		}
		b = b[2+int(l):]
	} else {
		b = b[2:]
	}
	if flexible {
		nt, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, bad
		}
		b = b[k:]
		for ; nt > 0; nt-- {
			_, k1 := binary.Uvarint(b)
			if k1 <= 0 {
				return nil, bad
			}
			l, k2 := binary.Uvarint(b[k1:])
			if k2 <= 0 || uint64(len(b)-k1-k2) < l {
				return nil, bad
			}
			b = b[k1+k2+int(l):]
		}
	}
	return b, nil
}

// nullMaxVersion is the highest version the null broker answers for key
// (-1: not at all). It stays below topic IDs and fetch sessions.
func nullMaxVersion(key int16) int16 {
	switch kmsg.Key(key) {
	case kmsg.ApiVersions:
		return 3
	case kmsg.Metadata:
		return 9
	case kmsg.CreateTopics:
		return 5
	case kmsg.InitProducerID:
		return 4
	case kmsg.Produce:
		return 9
	case kmsg.ListOffsets:
		return 7
	case kmsg.Fetch:
		return 12
	}
	return -1
}

func (b *NullBroker) handle(req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []kmsg.Key{kmsg.ApiVersions, kmsg.Metadata, kmsg.CreateTopics, kmsg.InitProducerID, kmsg.Produce, kmsg.ListOffsets, kmsg.Fetch} {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.Int16(), MinVersion: 0, MaxVersion: nullMaxVersion(k.Int16())})
		}
		return resp, nil
	case *kmsg.MetadataRequest:
		return b.metadata(r), nil
	case *kmsg.CreateTopicsRequest:
		return b.createTopics(r), nil
	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = time.Now().UnixNano()&0x7fffffffffff, 0
		return resp, nil
	case *kmsg.ProduceRequest:
		return b.produce(r), nil
	case *kmsg.ListOffsetsRequest:
		return b.listOffsets(r), nil
	}
	return nil, fmt.Errorf("null broker: unhandled %s", kmsg.NameForKey(req.Key()))
}

func (b *NullBroker) createTopics(r *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	b.mu.Lock()
	for _, t := range r.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, t.NumPartitions, 1
		switch {
		case b.topics[t.Topic] != nil:
			rt.ErrorCode = kerr.TopicAlreadyExists.Code
		case t.NumPartitions < 1 || t.NumPartitions > 100000:
			rt.ErrorCode = kerr.InvalidPartitions.Code
		default:
			ps := make([]*nullPartition, t.NumPartitions)
			for i := range ps {
				ps[i] = &nullPartition{}
			}
			b.topics[t.Topic] = ps
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.mu.Unlock()
	return resp
}

func (b *NullBroker) listOffsets(r *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	b.mu.Lock()
	for _, t := range r.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch = p.Partition, -1
			if np := b.partition(t.Topic, p.Partition); np == nil {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if p.Timestamp == -2 {
				rp.Offset = np.start
			} else {
				rp.Offset = np.next
			}
			rp.Timestamp = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.mu.Unlock()
	return resp
}

// partition returns topic's partition p, or nil. Called with b.mu held.
func (b *NullBroker) partition(topic string, p int32) *nullPartition {
	ps := b.topics[topic]
	if p < 0 || int(p) >= len(ps) {
		return nil
	}
	return ps[p]
}

func (b *NullBroker) metadata(r *kmsg.MetadataRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	host, port, _ := net.SplitHostPort(b.addr)
	var pn int32
	fmt.Sscan(port, &pn)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: host, Port: pn}}
	resp.ControllerID = 0
	b.mu.Lock()
	defer b.mu.Unlock()
	add := func(name string) {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		ps, ok := b.topics[name]
		if !ok {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for i := range ps {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.LeaderEpoch = int32(i), 0, -1
			rp.Replicas, rp.ISR = []int32{0}, []int32{0}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if r.Topics == nil {
		for name := range b.topics {
			add(name)
		}
	} else {
		for _, t := range r.Topics {
			if t.Topic != nil {
				add(*t.Topic)
			}
		}
	}
	return resp
}

func (b *NullBroker) produce(r *kmsg.ProduceRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	b.mu.Lock()
	for _, t := range r.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			np := b.partition(t.Topic, p.Partition)
			if np == nil {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if base, ok := np.append(p.Records); !ok {
				rp.ErrorCode = kerr.CorruptMessage.Code
			} else {
				rp.BaseOffset, rp.LogStartOffset, rp.LogAppendTime = base, np.start, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
	return resp
}

// append stores the v2 batches in recs with offsets assigned and returns
// the first one's base offset; false if recs is not whole v2 batches (or
// one is larger than the ring).
func (p *nullPartition) append(recs []byte) (int64, bool) {
	if p.ring == nil {
		p.ring = make([]byte, nullKeepBytes)
	}
	size := int64(len(p.ring))
	first := p.next
	for len(recs) > 0 {
		if len(recs) < 61 || recs[16] != 2 {
			return 0, false
		}
		n := 12 + int64(int32(binary.BigEndian.Uint32(recs[8:])))
		if n < 61 || n > int64(len(recs)) || n > size {
			return 0, false
		}
		if p.head%size+n > size {
			p.head += size - p.head%size // wrap: batches are kept whole
		}
		at := p.head % size
		copy(p.ring[at:], recs[:n])
		recs = recs[n:]
		binary.BigEndian.PutUint64(p.ring[at:], uint64(p.next))
		p.batches = append(p.batches, nullBatch{base: p.next, pos: p.head, n: n})
		p.head += n
		p.next += int64(int32(binary.BigEndian.Uint32(p.ring[at+23:]))) + 1
	}
	for p.first < len(p.batches) && p.batches[p.first].pos < p.head-size {
		p.first++
	}
	if p.first > 4096 && p.first > len(p.batches)/2 {
		p.batches = append(p.batches[:0], p.batches[p.first:]...)
		p.first = 0
	}
	p.start = p.batches[p.first].base
	return first, true
}

// read returns the batches from the one holding offset on, physically
// contiguous in the ring and at most max bytes (at least one batch).
func (p *nullPartition) read(offset int64, max int64) []byte {
	bs := p.batches[p.first:]
	i := sort.Search(len(bs), func(i int) bool { return bs[i].base > offset }) - 1
	if i < 0 {
		return nil
	}
	size := int64(len(p.ring))
	from, end := bs[i].pos, bs[i].pos+bs[i].n
	for i++; i < len(bs) && bs[i].pos == end && end%size != 0 && end+bs[i].n-from <= max; i++ {
		end += bs[i].n
	}
	at := from % size
	return p.ring[at : at+end-from]
}

// fetch answers r once it has records for it or its wait is over, and
// returns the response encoded (under the lock: it refers to the rings).
func (b *NullBroker) fetch(r *kmsg.FetchRequest, out []byte) []byte {
	deadline := time.Now().Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	for {
		b.mu.Lock()
		resp, n := b.fetchLocked(r)
		if wait := time.Until(deadline); n > 0 || r.MinBytes <= 0 || wait <= 0 || b.closed {
			out = resp.AppendTo(out)
			b.mu.Unlock()
			return out
		}
		changed := b.changed
		b.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// fetchLocked builds r's response from what is stored; n is the bytes of
// records in it. Its record batches are the rings' bytes.
func (b *NullBroker) fetchLocked(r *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(r.Version)
	total := 0
	for _, t := range r.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			np := b.partition(t.Topic, p.Partition)
			switch {
			case np == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.FetchOffset < np.start || p.FetchOffset > np.next:
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
			}
			if np != nil {
				rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = np.next, np.next, np.start
			}
			if rp.ErrorCode == 0 && p.FetchOffset < np.next && total < int(r.MaxBytes) {
				rp.RecordBatches = np.read(p.FetchOffset, int64(min(p.PartitionMaxBytes, r.MaxBytes-int32(total))))
				total += len(rp.RecordBatches)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total
}

// RunNullBroker serves a NullBroker on addr until ctx ends (the harness's
// `sluice bench-null-broker`).
func RunNullBroker(ctx context.Context, addr string) error {
	b, err := StartNullBroker(addr)
	if err != nil {
		return err
	}
	<-ctx.Done()
	b.Close()
	return nil
}
