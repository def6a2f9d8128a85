package broker

// Topic admin APIs: Metadata (v0-v13), CreateTopics (v0-v7), DeleteTopics
// (v0-v6), CreatePartitions (v0-v3).
//
// sluice is one node: every partition's leader, only replica and only ISR
// member is this node, the leader epoch is 0, and this node is the
// controller. Topics whose names start with "__" are sluice's internal logs:
// Metadata and DeleteTopics answer UNKNOWN_TOPIC_OR_PARTITION for them and
// CreateTopics refuses them with INVALID_TOPIC_EXCEPTION.

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorized-operation bit sets (KIP-430), reported when a client asks: no
// ACLs exist yet, so everything is allowed.
const (
	opsNotRequested int32 = math.MinInt32
	// READ(3) WRITE(4) CREATE(5) DELETE(6) ALTER(7) DESCRIBE(8)
	// DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11)
	topicOps int32 = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// CREATE(5) ALTER(7) DESCRIBE(8) CLUSTER_ACTION(9) DESCRIBE_CONFIGS(10)
	// ALTER_CONFIGS(11) IDEMPOTENT_WRITE(12)
	clusterOps int32 = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

// Metadata answers a metadata request, creating unknown topics when the
// broker allows it and the request does (v4+: AllowAutoTopicCreation; older
// versions always ask).
func (b *Broker) Metadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: b.cfg.NodeID, Host: b.cfg.Host, Port: b.cfg.Port}}
	cid := b.clusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.cfg.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOps
	}
	ops := opsNotRequested
	if req.IncludeTopicAuthorizedOperations {
		ops = topicOps
	}

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		b.mu.RLock()
		for _, name := range b.state.topicNames() {
			resp.Topics = append(resp.Topics, b.metadataTopicLocked(b.state.topics[name], ops))
		}
		b.mu.RUnlock()
		return resp
	}

	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	var create []topicSpec
	var createAt []int
	for _, rt := range req.Topics {
		mt := kmsg.NewMetadataResponseTopic()
		mt.AuthorizedOperations = ops
		if rt.Topic == nil {
			mt.TopicID = rt.TopicID
			b.mu.RLock()
			t, ok := b.state.byID[rt.TopicID]
			if ok {
				mt = b.metadataTopicLocked(t, ops)
			}
			b.mu.RUnlock()
			if !ok {
				mt.ErrorCode = codeUnknownTopicID
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		name := *rt.Topic
		mt.Topic = rt.Topic
		b.mu.RLock()
		t, ok := b.state.topics[name]
		if ok {
			mt = b.metadataTopicLocked(t, ops)
		}
		b.mu.RUnlock()
		switch {
		case ok:
		case isInternalTopic(name):
			mt.ErrorCode = codeUnknownTopicOrPartition
		case validateTopicName(name) != nil:
			mt.ErrorCode = codeInvalidTopic
		case autoCreate:
			create = append(create, topicSpec{name: name, partitions: b.cfg.DefaultPartitions})
			createAt = append(createAt, len(resp.Topics))
			mt.ErrorCode = codeLeaderNotAvailable
		default:
			mt.ErrorCode = codeUnknownTopicOrPartition
		}
		resp.Topics = append(resp.Topics, mt)
	}
	if len(create) > 0 {
		results := b.createTopics(create, false)
		for i, r := range results {
			mt := &resp.Topics[createAt[i]]
			switch r.code {
			case 0, codeTopicAlreadyExists: // created, or by a concurrent request
				b.mu.RLock()
				if t, ok := b.state.topics[create[i].name]; ok {
					*mt = b.metadataTopicLocked(t, ops)
				}
				b.mu.RUnlock()
			case codeInvalidTopic:
				mt.ErrorCode = codeInvalidTopic
			default:
				b.logger.Warn("auto-creating a topic failed", "topic", create[i].name, "code", r.code, "err", r.message)
			}
		}
	}
	return resp
}

// metadataTopicLocked describes a topic. The caller holds mu.
func (b *Broker) metadataTopicLocked(t *topicMeta, ops int32) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.AuthorizedOperations = ops
	ps := b.parts[t.id]
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.partitions)
	for i := range mt.Partitions {
		mp := &mt.Partitions[i]
		mp.Partition = int32(i)
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		mp.OfflineReplicas = []int32{}
		switch {
		case i >= len(ps):
			mp.ErrorCode = codeLeaderNotAvailable
		case ps[i].log.Err() != nil:
			mp.ErrorCode = codeStorageError
			mp.OfflineReplicas = []int32{b.cfg.NodeID}
			mp.ISR = []int32{}
		}
	}
	return mt
}

// topicSpec is a topic to create.
type topicSpec struct {
	name       string
	partitions int32
	configs    map[string]string
}

// createResult is the outcome of creating one topic.
type createResult struct {
	code    int16
	message string
	id      [16]byte
}

// createTopics validates specs against the state and, unless validateOnly,
// creates the valid ones: their partition logs are opened, then one
// metadata batch records them all and is made durable, then they become
// visible. Specs must have distinct names and valid partition counts.
func (b *Broker) createTopics(specs []topicSpec, validateOnly bool) []createResult {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	results := make([]createResult, len(specs))
	if b.closed.Load() {
		for i := range results {
			results[i] = createResult{code: codeNotLeader, message: "broker is shutting down"}
		}
		return results
	}
	// adminMu is held: the state cannot change underneath, and reading it
	// without mu is safe.
	keys := make(map[string]string, len(b.state.topics))
	for n := range b.state.topics {
		keys[collisionKey(n)] = n
	}
	var changes []change
	var metas []*topicMeta
	var at []int
	taken := make(map[[16]byte]*topicMeta, len(b.state.byID)+len(specs))
	for id, t := range b.state.byID {
		taken[id] = t
	}
	for i, s := range specs {
		r := &results[i]
		if err := validateTopicName(s.name); err != nil {
			r.code, r.message = codeInvalidTopic, err.Error()
			continue
		}
		if isInternalTopic(s.name) {
			r.code, r.message = codeInvalidTopic, fmt.Sprintf("topic names starting with %q are reserved for sluice's internal logs", internalPrefix)
			continue
		}
		if _, ok := b.state.topics[s.name]; ok {
			r.code, r.message = codeTopicAlreadyExists, fmt.Sprintf("topic %q already exists", s.name)
			continue
		}
		if other, ok := keys[collisionKey(s.name)]; ok {
			r.code, r.message = codeInvalidTopic, fmt.Sprintf("topic %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", s.name, other)
			continue
		}
		if err := validateTopicConfigs(s.configs); err != nil {
			r.code, r.message = codeInvalidConfig, err.Error()
			continue
		}
		id := newUUID(taken)
		r.id = id
		t := &topicMeta{name: s.name, id: id, partitions: s.partitions, configs: s.configs}
		taken[id] = t
		keys[collisionKey(s.name)] = s.name
		changes = append(changes, change{kind: changeTopicCreated, id: id, name: s.name, partitions: s.partitions, configs: s.configs})
		metas = append(metas, t)
		at = append(at, i)
	}
	if validateOnly || len(changes) == 0 {
		for _, i := range at {
			results[i].id = [16]byte{} // nothing was created
		}
		return results
	}
	fail := func(err error, from int) {
		for _, i := range at[from:] {
			results[i].code, results[i].message = codeStorageError, err.Error()
		}
	}
	opened := make([][]*Partition, len(metas))
	for j, t := range metas {
		ps, err := b.openPartitions(t, 0, t.partitions)
		if err != nil {
			b.removePartitionLogs(opened[:j])
			fail(err, 0)
			return results
		}
		opened[j] = ps
	}
	err := b.commit(changes, func() {
		for j, t := range metas {
			b.parts[t.id] = opened[j]
		}
	})
	if err != nil {
		b.removePartitionLogs(opened)
		fail(err, 0)
	}
	return results
}

// removePartitionLogs deletes partition logs that never became part of a
// topic. A failure leaves an orphan that the next Open removes.
func (b *Broker) removePartitionLogs(sets [][]*Partition) {
	for _, ps := range sets {
		for _, p := range ps {
			if err := b.store.Delete(p.log.Name()); err != nil {
				b.logger.Warn("removing a partition log failed", "log", p.log.Name(), "err", err)
			}
		}
	}
}

// CreateTopics creates topics (v0-v7; validate-only from v1). sluice is one
// node: replication factor -1 or 1 is accepted, anything larger is
// INVALID_REPLICATION_FACTOR; a manual assignment must put every partition
// on this node alone. A topic is answered as created only once its metadata
// record is durable.
func (b *Broker) CreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	counts := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	var specs []topicSpec
	var at []int
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		spec, code, msg := b.createSpec(&req.Topics[i], counts[t.Topic] > 1)
		if code != 0 {
			rt.ErrorCode, rt.ErrorMessage = code, &msg
			continue
		}
		specs = append(specs, spec)
		at = append(at, i)
	}
	results := b.createTopics(specs, req.ValidateOnly)
	for j, r := range results {
		rt := &resp.Topics[at[j]]
		if r.code != 0 {
			msg := r.message
			rt.ErrorCode, rt.ErrorMessage = r.code, &msg
			continue
		}
		s := specs[j]
		rt.TopicID = r.id
		rt.NumPartitions = s.partitions
		rt.ReplicationFactor = 1
		for i := range topicConfigDefs {
			d := &topicConfigDefs[i]
			v, src := b.defaults.effective(s.configs, d)
			rt.Configs = append(rt.Configs, kmsg.CreateTopicsResponseTopicConfig{Name: d.name, Value: &v, Source: src})
		}
	}
	return resp
}

// createSpec checks the parts of a CreateTopics entry that need no state.
func (b *Broker) createSpec(t *kmsg.CreateTopicsRequestTopic, duplicate bool) (topicSpec, int16, string) {
	s := topicSpec{name: t.Topic, partitions: t.NumPartitions, configs: map[string]string{}}
	if duplicate {
		return s, codeInvalidRequest, fmt.Sprintf("topic %q appears more than once in the request", t.Topic)
	}
	if err := validateTopicName(t.Topic); err != nil {
		return s, codeInvalidTopic, err.Error()
	}
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return s, codeInvalidRequest, "with a replica assignment, the partition count and replication factor must be -1"
		}
		seen := make(map[int32]bool, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(t.ReplicaAssignment) || seen[a.Partition] {
				return s, codeInvalidReplicaAssignment, "the assignment must list partitions 0 to n-1 once each"
			}
			seen[a.Partition] = true
			if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
				return s, codeInvalidReplicaAssignment, fmt.Sprintf("partition %d must be assigned to node %d alone: sluice is a single node", a.Partition, b.cfg.NodeID)
			}
		}
		s.partitions = int32(len(t.ReplicaAssignment))
	} else {
		switch {
		case t.NumPartitions == -1:
			s.partitions = b.cfg.DefaultPartitions
		case t.NumPartitions <= 0:
			return s, codeInvalidPartitions, fmt.Sprintf("number of partitions must be at least 1 (or -1 for the default), got %d", t.NumPartitions)
		case t.NumPartitions > maxPartitions:
			return s, codeInvalidPartitions, fmt.Sprintf("number of partitions %d exceeds the limit of %d", t.NumPartitions, maxPartitions)
		}
		switch {
		case t.ReplicationFactor == -1 || t.ReplicationFactor == 1:
		case t.ReplicationFactor <= 0:
			return s, codeInvalidReplicationFactor, fmt.Sprintf("replication factor must be at least 1 (or -1 for the default), got %d", t.ReplicationFactor)
		default:
			return s, codeInvalidReplicationFactor, fmt.Sprintf("replication factor %d is larger than the 1 available broker: sluice is a single node", t.ReplicationFactor)
		}
	}
	for _, c := range t.Configs {
		if _, dup := s.configs[c.Name]; dup {
			return s, codeInvalidRequest, fmt.Sprintf("config %q appears more than once", c.Name)
		}
		if c.Value == nil {
			continue // null means the default
		}
		s.configs[c.Name] = *c.Value
	}
	if err := validateTopicConfigs(s.configs); err != nil {
		return s, codeInvalidConfig, err.Error()
	}
	return s, 0, ""
}

// DeleteTopics deletes topics by name (v0-v6) or by topic ID (v6). The
// deletion is durable in the metadata log before it is answered; the
// partition logs are then removed (a leftover is removed by the next Open).
func (b *Broker) DeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type entry struct {
		name *string
		id   [16]byte
	}
	var entries []entry
	if req.Version >= 6 {
		for _, t := range req.Topics {
			entries = append(entries, entry{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			entries = append(entries, entry{name: &n})
		}
	}

	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	seen := make(map[[16]byte]bool)
	var changes []change
	var at []int
	for _, e := range entries {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = e.name, e.id
		var t *topicMeta
		var code int16
		var msg string
		switch {
		case e.name != nil && e.id != ([16]byte{}):
			code, msg = codeInvalidRequest, "give a topic name or a topic ID, not both"
		case e.name != nil:
			var ok bool
			if t, ok = b.state.topics[*e.name]; !ok || isInternalTopic(*e.name) {
				code, msg, t = codeUnknownTopicOrPartition, fmt.Sprintf("unknown topic %q", *e.name), nil
			}
		default:
			var ok bool
			if t, ok = b.state.byID[e.id]; !ok {
				code, msg = codeUnknownTopicID, "unknown topic ID"
			}
		}
		if t != nil && seen[t.id] {
			code, msg, t = codeInvalidRequest, fmt.Sprintf("topic %q appears more than once in the request", t.name), nil
		}
		if b.closed.Load() {
			code, msg, t = codeNotLeader, "broker is shutting down", nil
		}
		if t != nil {
			seen[t.id] = true
			name := t.name
			rt.Topic, rt.TopicID = &name, t.id
			changes = append(changes, change{kind: changeTopicDeleted, id: t.id})
			at = append(at, len(resp.Topics))
		} else {
			rt.ErrorCode, rt.ErrorMessage = code, &msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(changes) == 0 {
		return resp
	}
	var removed [][]*Partition
	err := b.commit(changes, func() {
		for _, c := range changes {
			removed = append(removed, b.parts[c.id])
			delete(b.parts, c.id)
		}
	})
	if err != nil {
		msg := err.Error()
		for _, i := range at {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = codeStorageError, &msg
		}
		return resp
	}
	b.removePartitionLogs(removed)
	return resp
}

// CreatePartitions grows topics' partition counts (v0-v3, with
// validate-only). Counts only increase; an assignment must put each new
// partition on this node alone.
func (b *Broker) CreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	counts := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		counts[t.Topic]++
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	type grow struct {
		t      *topicMeta
		from   int32
		to     int32
		result int
	}
	var grows []grow
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		code, msg := int16(0), ""
		t, ok := b.state.topics[rt.Topic]
		switch {
		case counts[rt.Topic] > 1:
			code, msg = codeInvalidRequest, fmt.Sprintf("topic %q appears more than once in the request", rt.Topic)
		case !ok || isInternalTopic(rt.Topic):
			code, msg = codeUnknownTopicOrPartition, fmt.Sprintf("unknown topic %q", rt.Topic)
		case b.closed.Load():
			code, msg = codeNotLeader, "broker is shutting down"
		case rt.Count < t.partitions:
			code, msg = codeInvalidPartitions, fmt.Sprintf("topic %q has %d partitions; the count can only grow", rt.Topic, t.partitions)
		case rt.Count == t.partitions:
			code, msg = codeInvalidPartitions, fmt.Sprintf("topic %q already has %d partitions", rt.Topic, t.partitions)
		case rt.Count > maxPartitions:
			code, msg = codeInvalidPartitions, fmt.Sprintf("number of partitions %d exceeds the limit of %d", rt.Count, maxPartitions)
		case rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.partitions):
			code, msg = codeInvalidReplicaAssignment, fmt.Sprintf("the assignment lists %d partitions, %d are being added", len(rt.Assignment), rt.Count-t.partitions)
		}
		if code == 0 {
			for _, a := range rt.Assignment {
				if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
					code, msg = codeInvalidReplicaAssignment, fmt.Sprintf("new partitions must be assigned to node %d alone: sluice is a single node", b.cfg.NodeID)
				}
			}
		}
		if code != 0 {
			out.ErrorCode, out.ErrorMessage = code, &msg
		} else if !req.ValidateOnly {
			grows = append(grows, grow{t, t.partitions, rt.Count, len(resp.Topics)})
		}
		resp.Topics = append(resp.Topics, out)
	}
	for _, g := range grows {
		fail := func(err error) {
			msg := err.Error()
			resp.Topics[g.result].ErrorCode, resp.Topics[g.result].ErrorMessage = codeStorageError, &msg
		}
		ps, err := b.openPartitions(g.t, g.from, g.to)
		if err != nil {
			fail(err)
			continue
		}
		id := g.t.id
		err = b.commit([]change{{kind: changePartitionsCreated, id: id, partitions: g.to}}, func() {
			b.parts[id] = append(b.parts[id][:g.from:g.from], ps...)
		})
		if err != nil {
			b.removePartitionLogs([][]*Partition{ps})
			fail(err)
		}
	}
	return resp
}

// nodeName is the broker resource name of this node.
func (b *Broker) nodeName() string { return strconv.Itoa(int(b.cfg.NodeID)) }
