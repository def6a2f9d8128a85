package group

import (
	"context"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848 consumer groups: ConsumerGroupHeartbeat v0-1 and
// ConsumerGroupDescribe v0-1.
//
// The group epoch is bumped whenever membership, a subscription, the
// chosen assignor or the partition count of a subscribed topic changes;
// the target assignment is then recomputed by the server-side assignor
// and stamped with that epoch (the assignment epoch). Each member then
// moves towards its target on its own heartbeats, with no group-wide
// barrier:
//
//  1. If it owns partitions that are not in its target, it is told its
//     assignment without them and stays at its old epoch (state
//     unrevoked) until a heartbeat reports it no longer owns them; only
//     then are they released to their new owners. A member that does not
//     revoke within its rebalance timeout is fenced.
//  2. Otherwise it moves to the assignment epoch and receives every
//     partition of its target that no other member still owns; the rest
//     follow on later heartbeats once released (state unreleased).
//
// So a partition is never assigned to two members at once. A heartbeat
// whose epoch is neither the member's epoch nor (with owned partitions
// that are a subset of its assignment) its previous epoch is answered
// FENCED_MEMBER_EPOCH. Static members (instance id) leaving with epoch -2
// keep their assignment for the session timeout; a new member with the
// same instance id takes it over, while a member that has not left
// yields UNRELEASED_INSTANCE_ID. Regular-expression subscriptions (v1,
// RE2 syntax, matching whole names, never internal "__" topics) are
// served when the TopicLookup is also a TopicLister, and re-resolved on
// every heartbeat; otherwise they get INVALID_REQUEST. The group epoch
// and every member (epochs, subscription, assignment, revocations) are
// persisted (memberlog.go), and a heartbeat that changed them is answered
// only once the records are durable, so a restart resumes the group where
// its members believe it is.

type memberState uint8

const (
	mStable     memberState = iota
	mUnrevoked              // waiting for the member to revoke partitions
	mUnreleased             // waiting for other members to release partitions
)

type consumerMember struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	epoch, prevEpoch       int32
	rebalanceTimeout       time.Duration
	topics                 []string // explicit subscription, sorted
	regex                  *regexp.Regexp
	regexSource            string
	resolved               []string // topics ∪ regex matches, sorted
	assignor               string
	assigned               tpSet // given to the member
	revoking               tpSet // taken away, not yet acknowledged
	state                  memberState
	sent                   tpSet  // last assignment sent; nil = never
	leftStatic             bool   // left with epoch -2, assignment held
	written                []byte // last record persisted; nil = none

	session     Timer
	sessionSeq  uint64
	revokeTimer Timer
	revokeSeq   uint64
}

type consumerState struct {
	groupEpoch      int32
	assignmentEpoch int32
	members         map[string]*consumerMember
	static          map[string]string
	target          map[string]tpSet
	owners          map[tp]string
	topicMeta       map[string]topicInfo
	assignor        string
}

func (cs *consumerState) init() {
	cs.members = map[string]*consumerMember{}
	cs.static = map[string]string{}
	cs.target = map[string]tpSet{}
	cs.owners = map[tp]string{}
	cs.topicMeta = map[string]topicInfo{}
}

// reset forgets members (the group changes type); epochs are kept.
func (cs *consumerState) reset() {
	cs.shutdown()
	cs.init()
}

func (cs *consumerState) shutdown() {
	for _, m := range cs.members {
		stopConsumerTimers(m)
	}
}

func stopConsumerTimers(m *consumerMember) {
	if m.session != nil {
		m.session.Stop()
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
	m.sessionSeq++
	m.revokeSeq++
}

func (cs *consumerState) stateName() string {
	if len(cs.members) == 0 {
		return "Empty"
	}
	if cs.groupEpoch > cs.assignmentEpoch {
		return "Assigning"
	}
	for _, m := range cs.members {
		if m.epoch != cs.assignmentEpoch || m.state != mStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// compileSubscription compiles a subscription regex to match whole names.
func compileSubscription(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + re + ")$")
}

func (c *Coordinator) consumerHeartbeat(ctx context.Context, r *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
	if r.Group == "" {
		resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	client := clientFrom(ctx)
	g := c.lookup(r.Group, true)
	return c.call(ctx, g, func(done func(kmsg.Response)) {
		before := g.appends
		resp := g.consumerHeartbeat(r, client)
		if g.appends == before {
			done(resp)
			return
		}
		// The heartbeat changed persisted state (membership, epochs,
		// assignments): answer once that is durable, so that a restart
		// never finds the group behind what a member was told.
		g.c.journal.whenDurable(g.lastTicket, &durableFunc{g: g, fn: func(err error) {
			if err != nil {
				resp = kmsg.NewPtrConsumerGroupHeartbeatResponse()
				resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
			done(resp)
		}})
	})
}

func (g *group) consumerHeartbeat(r *kmsg.ConsumerGroupHeartbeatRequest, client clientInfo) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	cfg := &g.c.cfg
	resp.HeartbeatIntervalMillis = int32(cfg.ConsumerHeartbeatInterval / time.Millisecond)
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	switch {
	case r.ServerAssignor != nil && *r.ServerAssignor != "" && !validAssignor(*r.ServerAssignor):
		return fail(kerr.UnsupportedAssignor.Code, "supported assignors: uniform, range")
	case r.MemberEpoch < -2:
		return fail(kerr.InvalidRequest.Code, "invalid member epoch")
	case r.MemberEpoch != 0 && r.MemberID == "":
		return fail(kerr.InvalidRequest.Code, "member id required")
	}
	var regex *regexp.Regexp
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		if _, ok := cfg.Topics.(TopicLister); !ok {
			return fail(kerr.InvalidRequest.Code, "regular-expression subscriptions are not supported")
		}
		re, err := compileSubscription(*r.SubscribedTopicRegex)
		if err != nil {
			return fail(kerr.InvalidRegularExpression.Code, "invalid regular expression (RE2 syntax)")
		}
		regex = re
	}
	if g.kind == kindClassic && (len(g.classic.members) > 0 || len(g.classic.pending) > 0) {
		return fail(kerr.GroupIDNotFound.Code, "group "+g.id+" is a classic group with members")
	}
	cs := &g.cons
	if g.kind != kindConsumer && r.MemberEpoch != 0 {
		return fail(kerr.UnknownMemberID.Code, "")
	}
	if g.kind != kindConsumer {
		g.classic.shutdown()
		g.classic.init()
		g.classic.state = stEmpty
		g.kind = kindConsumer
		g.persist([]record{g.groupRecord()}, nil)
	}

	var m *consumerMember
	bump := false
	switch r.MemberEpoch {
	case -1, -2:
		m = cs.members[r.MemberID]
		if m == nil {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		resp.MemberID = &m.id
		if r.MemberEpoch == -2 && m.instanceID != "" {
			m.leftStatic = true
			g.maybePersistMember(m)
			g.scheduleConsumerSession(m)
			resp.MemberEpoch = -2
			return resp
		}
		g.removeConsumer(m)
		g.bumpGroupEpoch()
		resp.MemberEpoch = -1
		return resp
	case 0:
		id := r.MemberID
		if id == "" {
			id = newMemberID("")
		}
		instance := deref(r.InstanceID)
		var old *consumerMember
		if instance != "" {
			if oldID, ok := cs.static[instance]; ok && oldID != id {
				old = cs.members[oldID]
				if old != nil && !old.leftStatic {
					return fail(kerr.UnreleasedInstanceID.Code, "instance "+instance+" is still in use")
				}
			}
		}
		if existing := cs.members[id]; existing != nil {
			// A rejoin with epoch 0: the member lost its state and
			// starts over (after being fenced, for example).
			g.removeConsumer(existing)
			bump = true
		}
		if old == nil && cfg.MaxGroupSize > 0 && len(cs.members) >= cfg.MaxGroupSize {
			return fail(kerr.GroupMaxSizeReached.Code, "")
		}
		m = &consumerMember{id: id, instanceID: instance, assigned: tpSet{}, assignor: assignorUniform}
		if old != nil {
			// Take over the static member's place: its assignment,
			// epoch and ownership.
			m.epoch, m.prevEpoch, m.state = old.epoch, old.prevEpoch, old.state
			m.assigned, m.revoking = old.assigned, old.revoking
			m.topics, m.assignor = old.topics, old.assignor
			m.regex, m.regexSource, m.resolved = old.regex, old.regexSource, old.resolved
			m.rebalanceTimeout = old.rebalanceTimeout
			for p, owner := range cs.owners {
				if owner == old.id {
					cs.owners[p] = id
				}
			}
			cs.target[id] = cs.target[old.id]
			delete(cs.target, old.id)
			stopConsumerTimers(old)
			g.forgetMember(old)
			delete(cs.members, old.id)
		} else {
			bump = true
		}
		cs.members[id] = m
		if instance != "" {
			cs.static[instance] = id
		}
	default:
		m = cs.members[r.MemberID]
		if m == nil {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		if r.MemberEpoch != m.epoch {
			if r.MemberEpoch != m.prevEpoch || !ownedWithin(r.Topics, m.assigned) {
				return fail(kerr.FencedMemberEpoch.Code, "")
			}
		}
		m.leftStatic = false
	}

	m.clientID, m.clientHost = client.id, client.host
	if r.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeout = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	if m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = 5 * time.Minute // Kafka's max.poll.interval.ms default
	}
	if r.RackID != nil {
		m.rackID = *r.RackID
	}
	if r.SubscribedTopicNames != nil || r.MemberEpoch == 0 {
		topics := slices.Clone(r.SubscribedTopicNames)
		sort.Strings(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics = topics
			bump = true
		}
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != m.regexSource {
		m.regex, m.regexSource = regex, *r.SubscribedTopicRegex
		bump = true
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != "" && *r.ServerAssignor != m.assignor {
		m.assignor = *r.ServerAssignor
		bump = true
	}
	g.scheduleConsumerSession(m)
	if g.refreshTopicMeta() {
		bump = true
	}
	if bump {
		g.bumpGroupEpoch()
	}
	if cs.groupEpoch > cs.assignmentEpoch {
		g.computeTarget()
	}
	g.reconcile(m, r.Topics)
	g.maybePersistMember(m)

	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	if m.sent == nil || !m.sent.equal(m.assigned) || r.MemberEpoch == 0 || !ownedConsistent(r.Topics, m) {
		m.sent = m.assigned.clone()
		resp.Assignment = &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: assignmentTopics(m.assigned)}
	}
	return resp
}

// ownedWithin reports whether the owned partitions a member reports are a
// subset of set (a nil report counts as consistent).
func ownedWithin(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, set tpSet) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if _, ok := set[tp{t.TopicID, p}]; !ok {
				return false
			}
		}
	}
	return true
}

// ownedConsistent: the member's report (if any) holds everything it was
// given and nothing beyond what it was given or is revoking.
func ownedConsistent(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, m *consumerMember) bool {
	if owned == nil {
		return true
	}
	seen := 0
	for _, t := range owned {
		for _, p := range t.Partitions {
			k := tp{t.TopicID, p}
			if _, ok := m.assigned[k]; ok {
				seen++
				continue
			}
			if _, ok := m.revoking[k]; !ok {
				return false
			}
		}
	}
	return seen == len(m.assigned)
}

func assignmentTopics(s tpSet) []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic {
	out := []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, p := range s.sorted() {
		if n := len(out); n == 0 || out[n-1].TopicID != p.id {
			t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			t.TopicID = p.id
			out = append(out, t)
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p.p)
	}
	return out
}

func (g *group) bumpGroupEpoch() {
	g.cons.groupEpoch++
	g.persist([]record{g.groupRecord()}, nil)
}

// TopicLister is implemented by a TopicLookup that can list topics; it
// enables KIP-848 regular-expression subscriptions.
type TopicLister interface {
	TopicNames() []string
}

// refreshTopicMeta resolves every member's subscription (explicit names
// and regular-expression matches) and re-reads the subscribed topics'
// partition counts. It reports whether anything changed.
func (g *group) refreshTopicMeta() bool {
	cs := &g.cons
	changed := false
	var all []string
	listed := false
	for _, m := range cs.members {
		resolved := m.topics
		if m.regex != nil {
			if !listed {
				if l, ok := g.c.cfg.Topics.(TopicLister); ok {
					all = l.TopicNames()
				}
				listed = true
			}
			resolved = slices.Clone(m.topics)
			for _, t := range all {
				if !strings.HasPrefix(t, "__") && m.regex.MatchString(t) {
					resolved = append(resolved, t)
				}
			}
			sort.Strings(resolved)
			resolved = slices.Compact(resolved)
		}
		if !slices.Equal(resolved, m.resolved) {
			m.resolved = resolved
			changed = true
		}
	}
	meta := map[string]topicInfo{}
	if look := g.c.cfg.Topics; look != nil {
		for _, m := range cs.members {
			for _, t := range m.resolved {
				if _, done := meta[t]; done {
					continue
				}
				if n, id, ok := look.TopicPartitions(t); ok {
					meta[t] = topicInfo{n: n, id: id}
				}
			}
		}
	}
	if len(meta) == len(cs.topicMeta) {
		same := true
		for k, v := range meta {
			if cs.topicMeta[k] != v {
				same = false
				break
			}
		}
		if same {
			return changed
		}
	}
	cs.topicMeta = meta
	return true
}

// computeTarget recomputes every member's target assignment.
func (g *group) computeTarget() {
	cs := &g.cons
	votes := map[string]int{}
	ids := make([]string, 0, len(cs.members))
	for id, m := range cs.members {
		ids = append(ids, id)
		votes[m.assignor]++
	}
	sort.Strings(ids)
	cs.assignor = assignorUniform
	best := -1
	for _, name := range []string{assignorUniform, assignorRange} {
		if votes[name] > best {
			cs.assignor, best = name, votes[name]
		}
	}
	members := make([]assignMember, len(ids))
	for i, id := range ids {
		members[i] = assignMember{id: id, topics: cs.members[id].resolved}
	}
	cs.target = assign(cs.assignor, members, cs.topicMeta, cs.target)
	cs.assignmentEpoch = cs.groupEpoch
}

// reconcile moves m towards its target (see the file comment).
func (g *group) reconcile(m *consumerMember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	cs := &g.cons
	if m.state == mUnrevoked {
		if owned == nil || ownsAny(owned, m.revoking) {
			return
		}
		for p := range m.revoking {
			if cs.owners[p] == m.id {
				delete(cs.owners, p)
			}
		}
		m.revoking = nil
		m.state = mStable
		if m.revokeTimer != nil {
			m.revokeTimer.Stop()
		}
		m.revokeSeq++
	}
	if m.epoch == cs.assignmentEpoch && m.state == mStable {
		return
	}
	target := cs.target[m.id]
	keep, revoke := tpSet{}, tpSet{}
	for p := range m.assigned {
		if _, ok := target[p]; ok {
			keep[p] = struct{}{}
		} else {
			revoke[p] = struct{}{}
		}
	}
	if len(revoke) > 0 {
		m.assigned, m.revoking, m.state = keep, revoke, mUnrevoked
		g.armRevokeTimer(m)
		return
	}
	if m.epoch != cs.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cs.assignmentEpoch
	}
	waiting := false
	for p := range target {
		if _, ok := keep[p]; ok {
			continue
		}
		if owner, taken := cs.owners[p]; taken && owner != m.id {
			waiting = true
			continue
		}
		keep[p] = struct{}{}
		cs.owners[p] = m.id
	}
	m.assigned = keep
	m.state = mStable
	if waiting {
		m.state = mUnreleased
	}
}

// armRevokeTimer fences m if it has not revoked within its rebalance
// timeout.
func (g *group) armRevokeTimer(m *consumerMember) {
	cs := &g.cons
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
	m.revokeSeq++
	seq := m.revokeSeq
	m.revokeTimer = g.after(m.rebalanceTimeout, func() {
		if cs.members[m.id] == m && m.revokeSeq == seq && m.state == mUnrevoked {
			g.c.cfg.Logger.Info("group member did not revoke in time; fenced", "group", g.id, "member", m.id)
			g.removeConsumer(m)
			g.bumpGroupEpoch()
		}
	})
}

func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, s tpSet) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if _, ok := s[tp{t.TopicID, p}]; ok {
				return true
			}
		}
	}
	return false
}

func (g *group) scheduleConsumerSession(m *consumerMember) {
	if m.session != nil {
		m.session.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.session = g.after(g.c.cfg.ConsumerSessionTimeout, func() {
		if g.cons.members[m.id] == m && m.sessionSeq == seq {
			g.c.cfg.Logger.Info("group member session expired", "group", g.id, "member", m.id)
			g.removeConsumer(m)
			g.bumpGroupEpoch()
		}
	})
}

// removeConsumer drops m and releases everything it owns.
func (g *group) removeConsumer(m *consumerMember) {
	cs := &g.cons
	stopConsumerTimers(m)
	for p, owner := range cs.owners {
		if owner == m.id {
			delete(cs.owners, p)
		}
	}
	g.forgetMember(m)
	delete(cs.members, m.id)
	delete(cs.target, m.id)
	if m.instanceID != "" && cs.static[m.instanceID] == m.id {
		delete(cs.static, m.instanceID)
	}
}

// ---- ConsumerGroupDescribe ----

func (c *Coordinator) consumerDescribe(ctx context.Context, r *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
	resp := kmsg.NewPtrConsumerGroupDescribeResponse()
	for _, id := range r.Groups {
		gr := kmsg.NewConsumerGroupDescribeResponseGroup()
		gr.Group = id
		g := c.lookup(id, false)
		switch {
		case id == "":
			gr.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			gr.ErrorCode = kerr.GroupIDNotFound.Code
		default:
			d, ok := ask(ctx, g, g.describeConsumer)
			if !ok {
				gr.ErrorCode = kerr.CoordinatorNotAvailable.Code
			} else {
				d.Group = id
				gr = d
			}
		}
		resp.Groups = append(resp.Groups, gr)
	}
	return resp
}

func (g *group) describeConsumer() kmsg.ConsumerGroupDescribeResponseGroup {
	gr := kmsg.NewConsumerGroupDescribeResponseGroup()
	if g.kind != kindConsumer {
		gr.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "group " + g.id + " is not a consumer group"
		gr.ErrorMessage = &msg
		return gr
	}
	cs := &g.cons
	gr.State = cs.stateName()
	gr.Epoch, gr.AssignmentEpoch = cs.groupEpoch, cs.assignmentEpoch
	gr.AssignorName = cs.assignor
	if gr.AssignorName == "" {
		gr.AssignorName = assignorUniform
	}
	names := map[[16]byte]string{}
	for name, info := range cs.topicMeta {
		names[info.id] = name
	}
	ids := make([]string, 0, len(cs.members))
	for id := range cs.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := cs.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		if m.rackID != "" {
			rack := m.rackID
			dm.RackID = &rack
		}
		dm.MemberEpoch = m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = slices.Clone(m.resolved)
		if m.regexSource != "" {
			re := m.regexSource
			dm.SubscribedTopicRegex = &re
		}
		dm.Assignment = describeAssignment(m.assigned, names)
		dm.TargetAssignment = describeAssignment(cs.target[m.id], names)
		dm.MemberType = 1
		gr.Members = append(gr.Members, dm)
	}
	return gr
}

func describeAssignment(s tpSet, names map[[16]byte]string) kmsg.Assignment {
	var a kmsg.Assignment
	for _, t := range assignmentTopics(s) {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = t.TopicID, names[t.TopicID], t.Partitions
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}
