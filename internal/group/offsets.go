package group

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets: OffsetCommit v0-10, OffsetFetch v0-10, OffsetDelete v0.
//
// OffsetCommit: a commit with generation -1 and no member id is a "simple"
// commit (admin tools, manual assignment) and is allowed only while the
// group has no members; otherwise the member and generation (classic) or
// member epoch (KIP-848, v9+) must match; an older member epoch is
// accepted when every committed partition is still the member's. Retention fields (v1-v4) are
// accepted and ignored: offsets live until deleted. The response is sent
// only after the records are fsynced; the offsets become visible to
// OffsetFetch at the same moment. v10 names topics by ID.
//
// OffsetFetch: null topics (v2+) mean every committed offset of the group;
// multiple groups from v8; topic IDs in v10; require_stable (v7+) is
// accepted (no transactional offsets exist yet, so nothing is unstable).
// Unknown groups and partitions answer offset -1 without an error.

type commitItem struct {
	ti, pi int
	topic  string
	part   int32
	entry  offsetEntry
}

func (c *Coordinator) offsetCommit(ctx context.Context, r *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = r.Version
	var items []commitItem
	now := c.cfg.Clock.Now().UnixMilli()
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		rtResp := kmsg.NewOffsetCommitResponseTopic()
		rtResp.Topic, rtResp.TopicID = rt.Topic, rt.TopicID
		topic, topicCode := c.resolveTopic(r.Version >= 10, rt.Topic, rt.TopicID)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			pr := kmsg.NewOffsetCommitResponseTopicPartition()
			pr.Partition = rp.Partition
			switch {
			case r.Group == "":
				pr.ErrorCode = kerr.InvalidGroupID.Code
			case topicCode != 0:
				pr.ErrorCode = topicCode
			case !c.partitionExists(topic, rp.Partition):
				pr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > c.cfg.MaxMetadataBytes:
				pr.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				epoch := int32(-1)
				if r.Version >= 6 {
					epoch = rp.LeaderEpoch
				}
				items = append(items, commitItem{ti: ti, pi: pi, topic: topic, part: rp.Partition,
					entry: offsetEntry{offset: rp.Offset, leaderEpoch: epoch, metadata: deref(rp.Metadata), commitTime: now}})
			}
			rtResp.Partitions = append(rtResp.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, rtResp)
	}
	if len(items) == 0 {
		return resp
	}
	g := c.lookup(r.Group, true)
	return c.call(ctx, g, func(done func(kmsg.Response)) { g.commit(r, resp, items, done) })
}

// resolveTopic maps a v10 topic ID to its name.
func (c *Coordinator) resolveTopic(byID bool, name string, id [16]byte) (string, int16) {
	if !byID {
		return name, 0
	}
	if c.cfg.Topics == nil {
		return "", kerr.UnknownTopicID.Code
	}
	n, ok := c.cfg.Topics.TopicName(id)
	if !ok {
		return "", kerr.UnknownTopicID.Code
	}
	return n, 0
}

func (c *Coordinator) partitionExists(topic string, p int32) bool {
	if c.cfg.Topics == nil {
		return topic != ""
	}
	n, _, ok := c.cfg.Topics.TopicPartitions(topic)
	return ok && p >= 0 && p < n
}

func (g *group) commit(r *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, items []commitItem, done func(kmsg.Response)) {
	setAll := func(code int16) {
		for _, it := range items {
			resp.Topics[it.ti].Partitions[it.pi].ErrorCode = code
		}
	}
	if code := g.validateCommit(r, items); code != 0 {
		setAll(code)
		done(resp)
		return
	}
	recs := make([]record, len(items))
	for i, it := range items {
		recs[i] = record{key: offsetKey(g.id, it.topic, it.part), value: offsetValue(it.entry)}
	}
	g.persist(recs, func(err error) {
		if err != nil {
			setAll(kerr.CoordinatorNotAvailable.Code)
			done(resp)
			return
		}
		if g.kind == kindNone {
			g.kind = kindClassic
		}
		for _, it := range items {
			g.setOffset(it.topic, it.part, it.entry)
		}
		done(resp)
	})
}

// validateCommit returns the error code for the whole commit, or 0.
func (g *group) validateCommit(r *kmsg.OffsetCommitRequest, items []commitItem) int16 {
	gen, member, instance := int32(-1), "", ""
	if r.Version >= 1 {
		gen, member = r.Generation, r.MemberID
	}
	if r.Version >= 7 {
		instance = deref(r.InstanceID)
	}
	simple := gen < 0 && member == "" && instance == ""
	switch g.kind {
	case kindNone:
		if gen < 0 {
			return 0
		}
		return kerr.IllegalGeneration.Code
	case kindConsumer:
		if simple {
			if len(g.cons.members) == 0 {
				return 0
			}
			return kerr.UnknownMemberID.Code
		}
		m := g.cons.members[member]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		switch {
		case gen == m.epoch:
			return 0
		case gen > m.epoch:
			return kerr.StaleMemberEpoch.Code
		case r.Version >= 9 && g.ownsAll(m, items):
			// An older epoch, but every partition committed is still
			// the member's: the commit raced with a heartbeat that
			// moved the member to a new epoch (as Kafka 4.3 allows).
			return 0
		case r.Version >= 9:
			return kerr.StaleMemberEpoch.Code
		}
		return kerr.IllegalGeneration.Code
	}
	cs := &g.classic
	if gen < 0 && cs.state == stEmpty {
		return 0
	}
	if simple {
		return kerr.UnknownMemberID.Code // a simple commit to a group with members
	}
	if instance != "" {
		if owner, ok := cs.static[instance]; ok && owner != member {
			return kerr.FencedInstanceID.Code
		}
	}
	m := cs.members[member]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if gen != cs.generation {
		return kerr.IllegalGeneration.Code
	}
	if cs.state == stCompleting {
		return kerr.RebalanceInProgress.Code
	}
	if m.join == nil && cs.state == stStable {
		g.scheduleSession(m) // a commit is as good as a heartbeat
	}
	return 0
}

// ownsAll reports whether every committed partition is assigned to m or
// still being revoked by it.
func (g *group) ownsAll(m *consumerMember, items []commitItem) bool {
	for _, it := range items {
		info, ok := g.cons.topicMeta[it.topic]
		if !ok {
			return false
		}
		k := tp{info.id, it.part}
		_, assigned := m.assigned[k]
		_, revoking := m.revoking[k]
		if !assigned && !revoking {
			return false
		}
	}
	return true
}

// ---- OffsetFetch ----

// fetchTopic is one topic of a fetch request, by name and, for v10, ID.
type fetchTopic struct {
	name  string
	id    [16]byte
	parts []int32
}

// fetchResult is one group's answer.
type fetchResult struct {
	code   int16
	topics []fetchedTopic
}

type fetchedTopic struct {
	name  string
	id    [16]byte
	parts []fetchedPartition
}

type fetchedPartition struct {
	part  int32
	entry offsetEntry
	found bool
	code  int16
}

func (c *Coordinator) offsetFetch(ctx context.Context, r *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = r.Version
	if r.Version < 8 {
		var topics []fetchTopic
		if r.Topics != nil || r.Version < 2 {
			for _, t := range r.Topics {
				topics = append(topics, fetchTopic{name: t.Topic, parts: t.Partitions})
			}
			if topics == nil {
				topics = []fetchTopic{}
			}
		}
		res := c.fetchGroup(ctx, r.Group, nil, -1, topics, false)
		resp.ErrorCode = res.code
		for _, t := range res.topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.name
			for _, p := range t.parts {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition = p.part
				rp.Offset, rp.LeaderEpoch, rp.ErrorCode = -1, -1, p.code
				md := ""
				if p.found {
					rp.Offset, rp.LeaderEpoch, md = p.entry.offset, p.entry.leaderEpoch, p.entry.metadata
				}
				if r.Version < 2 && res.code != 0 {
					rp.ErrorCode = res.code // v0-v1 have no group-level error
				}
				rp.Metadata = &md
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range r.Groups {
		var topics []fetchTopic
		if rg.Topics != nil {
			topics = []fetchTopic{}
			for _, t := range rg.Topics {
				ft := fetchTopic{name: t.Topic, id: t.TopicID, parts: t.Partitions}
				if r.Version >= 10 {
					ft.name, _ = c.resolveTopic(true, "", t.TopicID)
				}
				topics = append(topics, ft)
			}
		}
		res := c.fetchGroup(ctx, rg.Group, rg.MemberID, rg.MemberEpoch, topics, r.Version >= 10)
		gr := kmsg.NewOffsetFetchResponseGroup()
		gr.Group, gr.ErrorCode = rg.Group, res.code
		for _, t := range res.topics {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.TopicID = t.name, t.id
			for _, p := range t.parts {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition = p.part
				rp.Offset, rp.LeaderEpoch, rp.ErrorCode = -1, -1, p.code
				md := ""
				if p.found {
					rp.Offset, rp.LeaderEpoch, md = p.entry.offset, p.entry.leaderEpoch, p.entry.metadata
				}
				rp.Metadata = &md
				rt.Partitions = append(rt.Partitions, rp)
			}
			gr.Topics = append(gr.Topics, rt)
		}
		resp.Groups = append(resp.Groups, gr)
	}
	return resp
}

// fetchGroup reads one group's offsets; topics nil means all of them.
func (c *Coordinator) fetchGroup(ctx context.Context, id string, member *string, epoch int32, topics []fetchTopic, byID bool) fetchResult {
	if id == "" {
		return fetchResult{code: kerr.InvalidGroupID.Code, topics: unknownOffsets(topics)}
	}
	g := c.lookup(id, false)
	if g == nil {
		return fetchResult{topics: unknownOffsets(topics)}
	}
	res, ok := ask(ctx, g, func() fetchResult { return g.fetch(member, epoch, topics) })
	if !ok {
		return fetchResult{code: kerr.CoordinatorNotAvailable.Code, topics: unknownOffsets(topics)}
	}
	if res.topics == nil && topics != nil {
		res.topics = unknownOffsets(topics)
	}
	if byID {
		for i := range res.topics {
			t := &res.topics[i]
			if t.name == "" { // an ID the broker does not know
				for j := range t.parts {
					t.parts[j].code = kerr.UnknownTopicID.Code
				}
			}
			if t.id == ([16]byte{}) && c.cfg.Topics != nil {
				_, t.id, _ = c.cfg.Topics.TopicPartitions(t.name)
			}
		}
	}
	return res
}

func unknownOffsets(topics []fetchTopic) []fetchedTopic {
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{name: t.name, id: t.id}
		for _, p := range t.parts {
			ft.parts = append(ft.parts, fetchedPartition{part: p})
		}
		out = append(out, ft)
	}
	return out
}

func (g *group) fetch(member *string, epoch int32, topics []fetchTopic) fetchResult {
	if member != nil && *member != "" && g.kind == kindConsumer {
		m := g.cons.members[*member]
		switch {
		case m == nil:
			return fetchResult{code: kerr.UnknownMemberID.Code, topics: unknownOffsets(topics)}
		case epoch != m.epoch:
			return fetchResult{code: kerr.StaleMemberEpoch.Code, topics: unknownOffsets(topics)}
		}
	}
	if topics == nil {
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		out := make([]fetchedTopic, 0, len(names))
		for _, t := range names {
			ft := fetchedTopic{name: t}
			parts := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				ft.parts = append(ft.parts, fetchedPartition{part: p, entry: g.offsets[t][p], found: true})
			}
			out = append(out, ft)
		}
		return fetchResult{topics: out}
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{name: t.name, id: t.id}
		for _, p := range t.parts {
			e, ok := g.offsets[t.name][p]
			ft.parts = append(ft.parts, fetchedPartition{part: p, entry: e, found: ok})
		}
		out = append(out, ft)
	}
	return fetchResult{topics: out}
}

// ---- OffsetDelete ----

func (c *Coordinator) offsetDelete(ctx context.Context, r *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lookup(r.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if c.cfg.Topics != nil && !c.partitionExists(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return c.call(ctx, g, func(done func(kmsg.Response)) { g.deleteOffsets(resp, done) })
}

func (g *group) deleteOffsets(resp *kmsg.OffsetDeleteResponse, done func(kmsg.Response)) {
	if !g.exists() {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		resp.Topics = nil
		done(resp)
		return
	}
	subscribed, ok := g.subscribedTopics()
	if !ok {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		resp.Topics = nil
		done(resp)
		return
	}
	type del struct {
		topic string
		part  int32
	}
	var dels []del
	var recs []record
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.ErrorCode != 0 {
				continue
			}
			if subscribed[t.Topic] {
				p.ErrorCode = kerr.GroupSubscribedToTopic.Code
				continue
			}
			if _, ok := g.offsets[t.Topic][p.Partition]; ok {
				dels = append(dels, del{t.Topic, p.Partition})
				recs = append(recs, record{key: offsetKey(g.id, t.Topic, p.Partition)})
			}
		}
	}
	if len(recs) == 0 {
		done(resp)
		return
	}
	g.persist(recs, func(err error) {
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Topics = nil
			done(resp)
			return
		}
		for _, d := range dels {
			if parts := g.offsets[d.topic]; parts != nil {
				delete(parts, d.part)
				if len(parts) == 0 {
					delete(g.offsets, d.topic)
				}
			}
		}
		done(resp)
	})
}

// subscribedTopics returns the topics the group's members subscribe to.
// ok is false for a non-empty classic group whose protocol type is not
// "consumer": its subscriptions cannot be known.
func (g *group) subscribedTopics() (map[string]bool, bool) {
	out := map[string]bool{}
	switch g.kind {
	case kindConsumer:
		for _, m := range g.cons.members {
			for _, t := range m.resolved {
				out[t] = true
			}
		}
		return out, true
	case kindClassic:
		cs := &g.classic
		if len(cs.members) == 0 {
			return out, true
		}
		if cs.protocolType != "consumer" {
			return nil, false
		}
		for _, m := range cs.members {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(m.metadataFor(cs.protocol)); err != nil {
				continue
			}
			for _, t := range md.Topics {
				out[t] = true
			}
		}
	}
	return out, true
}
