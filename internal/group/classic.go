package group

import (
	"bytes"
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Classic group protocol (JoinGroup v0-9, SyncGroup v0-5, Heartbeat v0-4,
// LeaveGroup v0-5).
//
// States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and
// back to PreparingRebalance whenever a member joins, leaves, changes its
// protocols, or times out. A rebalance completes when every member has
// rejoined (and no KIP-394 pending member is outstanding) or when the
// largest rebalance timeout of the members has passed; members that did not
// rejoin are removed. The first rebalance of an empty group waits
// InitialRebalanceDelay, extended per newly joined member up to the
// rebalance timeout, so that consumers started together land in one
// generation. The leader's SyncGroup assignments are written to the
// offsets log and handed to every member once durable.

type classicStateName uint8

const (
	stEmpty classicStateName = iota
	stPreparing
	stCompleting
	stStable
)

func (s classicStateName) String() string {
	switch s {
	case stPreparing:
		return "PreparingRebalance"
	case stCompleting:
		return "CompletingRebalance"
	case stStable:
		return "Stable"
	}
	return "Empty"
}

type protocol struct {
	name     string
	metadata []byte
}

type classicMember struct {
	id, instanceID       string
	clientID, clientHost string
	sessionTimeout       time.Duration
	rebalanceTimeout     time.Duration
	protocols            []protocol
	assignment           []byte
	joinSeq              uint64 // order of first join, for leader choice

	join        func(kmsg.Response) // parked JoinGroup
	joinVersion int16
	sync        func(kmsg.Response) // parked SyncGroup
	syncVersion int16

	session    Timer
	sessionSeq uint64
}

type pendingMember struct {
	timer Timer
}

type classicState struct {
	state        classicStateName
	protocolType string
	protocol     string
	leader       string
	generation   int32
	members      map[string]*classicMember
	pending      map[string]*pendingMember // KIP-394: ids handed out, not yet joined
	static       map[string]string         // group.instance.id -> member id
	joinSeq      uint64

	rebalance    Timer
	rebalanceSeq uint64
	// initial: the delayed first rebalance of an empty group is running.
	initial       bool
	initialCap    time.Time
	joinedInDelay bool
	stateTime     time.Time
}

func (cs *classicState) init() {
	cs.members = map[string]*classicMember{}
	cs.pending = map[string]*pendingMember{}
	cs.static = map[string]string{}
}

func (cs *classicState) shutdown() {
	for _, m := range cs.members {
		if m.session != nil {
			m.session.Stop()
		}
		answerJoinError(m, kerr.CoordinatorNotAvailable.Code)
		answerSyncError(m, kerr.CoordinatorNotAvailable.Code)
	}
	for _, p := range cs.pending {
		p.timer.Stop()
	}
	if cs.rebalance != nil {
		cs.rebalance.Stop()
	}
}

// restore loads a persisted classic group: Stable with its members if it
// had any (their sessions start now), Empty otherwise.
func (cs *classicState) restore(v *kmsg.GroupMetadataValue) {
	cs.protocolType = v.ProtocolType
	cs.generation = v.Generation
	if v.Protocol != nil {
		cs.protocol = *v.Protocol
	}
	if v.Leader != nil {
		cs.leader = *v.Leader
	}
	for i := range v.Members {
		mv := &v.Members[i]
		cs.joinSeq++
		m := &classicMember{
			id:               mv.MemberID,
			clientID:         mv.ClientID,
			clientHost:       mv.ClientHost,
			sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:        []protocol{{name: cs.protocol, metadata: mv.Subscription}},
			assignment:       mv.Assignment,
			joinSeq:          cs.joinSeq,
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		if mv.InstanceID != nil {
			m.instanceID = *mv.InstanceID
			cs.static[m.instanceID] = m.id
		}
		cs.members[m.id] = m
	}
	if len(cs.members) > 0 {
		cs.state = stStable
	}
}

// metadataValue is the persisted form of the group.
func (cs *classicState) metadataValue(now time.Time) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = cs.protocolType
	v.Generation = cs.generation
	if cs.protocol != "" {
		p := cs.protocol
		v.Protocol = &p
	}
	if cs.leader != "" {
		l := cs.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = now.UnixMilli()
	for _, m := range cs.sortedMembers() {
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID = m.id
		if m.instanceID != "" {
			inst := m.instanceID
			mv.InstanceID = &inst
		}
		mv.ClientID, mv.ClientHost = m.clientID, m.clientHost
		mv.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		mv.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		mv.Subscription = m.metadataFor(cs.protocol)
		mv.Assignment = m.assignment
		v.Members = append(v.Members, mv)
	}
	return v.AppendTo(nil)
}

func (cs *classicState) sortedMembers() []*classicMember {
	ms := make([]*classicMember, 0, len(cs.members))
	for _, m := range cs.members {
		ms = append(ms, m)
	}
	for i := 1; i < len(ms); i++ { // insertion sort by join order; groups are small
		for j := i; j > 0 && ms[j].joinSeq < ms[j-1].joinSeq; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	return ms
}

func (m *classicMember) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func sameProtocols(a []protocol, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].Name || !bytes.Equal(a[i].metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		out[i] = protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ---- entry points (called by Handle) ----

func (c *Coordinator) joinGroup(ctx context.Context, r *kmsg.JoinGroupRequest) kmsg.Response {
	if r.Group == "" {
		return joinError(r.Version, kerr.InvalidGroupID.Code, r.MemberID)
	}
	client := clientFrom(ctx)
	g := c.lookup(r.Group, true)
	return c.call(ctx, g, func(done func(kmsg.Response)) { g.join(r, client, done) })
}

func (c *Coordinator) syncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) kmsg.Response {
	if r.Group == "" {
		return syncError(kerr.InvalidGroupID.Code)
	}
	g := c.lookup(r.Group, false)
	if g == nil {
		return syncError(kerr.UnknownMemberID.Code)
	}
	return c.call(ctx, g, func(done func(kmsg.Response)) { g.sync(r, done) })
}

func (c *Coordinator) heartbeat(ctx context.Context, r *kmsg.HeartbeatRequest) kmsg.Response {
	resp := kmsg.NewPtrHeartbeatResponse()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lookup(r.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	return c.call(ctx, g, func(done func(kmsg.Response)) { done(g.heartbeat(r)) })
}

func (c *Coordinator) leaveGroup(ctx context.Context, r *kmsg.LeaveGroupRequest) kmsg.Response {
	if r.Group == "" {
		resp := kmsg.NewPtrLeaveGroupResponse()
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lookup(r.Group, false)
	if g == nil {
		return leaveUnknownGroup(r)
	}
	return c.call(ctx, g, func(done func(kmsg.Response)) { done(g.leave(r)) })
}

// ---- JoinGroup ----

func joinError(version int16, code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	if version < 7 {
		empty := ""
		resp.Protocol = &empty
	}
	return resp
}

func (g *group) join(r *kmsg.JoinGroupRequest, client clientInfo, done func(kmsg.Response)) {
	cs := &g.classic
	cfg := &g.c.cfg
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if r.Version >= 1 && r.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	fail := func(code int16) { done(joinError(r.Version, code, r.MemberID)) }
	if session < cfg.MinSessionTimeout || session > cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code)
		return
	}
	if g.kind == kindConsumer {
		if len(g.cons.members) > 0 {
			// A consumer-protocol group with members; online migration
			// is not implemented (see doc.go).
			fail(kerr.InconsistentGroupProtocol.Code)
			return
		}
		g.kind = kindClassic
		g.cons.reset()
		cs.state = stEmpty
	}
	g.kind = kindClassic
	if r.ProtocolType == "" || len(r.Protocols) == 0 {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	instance := deref(r.InstanceID)
	if r.Version < 5 {
		instance = ""
	}
	if cs.state != stEmpty && !g.supportsProtocols(r.MemberID, r.ProtocolType, r.Protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}

	if r.MemberID == "" {
		if instance != "" {
			if oldID, ok := cs.static[instance]; ok {
				g.replaceStatic(cs.members[oldID], r, client, session, rebalance, done)
				return
			}
		}
		if cfg.MaxGroupSize > 0 && len(cs.members)+len(cs.pending) >= cfg.MaxGroupSize {
			fail(kerr.GroupMaxSizeReached.Code)
			return
		}
		id := newMemberID(client.id)
		if instance == "" && r.Version >= 4 {
			// KIP-394: hand out the id and make the client come back
			// with it, so a client that never completes a join costs
			// nothing beyond this entry, which expires with its session.
			p := &pendingMember{}
			p.timer = g.after(session, func() {
				if cs.pending[id] == p {
					delete(cs.pending, id)
					g.maybeCompleteJoin()
				}
			})
			cs.pending[id] = p
			done(joinError(r.Version, kerr.MemberIDRequired.Code, id))
			return
		}
		g.addMember(id, instance, r, client, session, rebalance, done)
		return
	}

	if instance != "" {
		if owner, ok := cs.static[instance]; ok && owner != r.MemberID {
			fail(kerr.FencedInstanceID.Code)
			return
		}
	}
	if p, ok := cs.pending[r.MemberID]; ok {
		p.timer.Stop()
		delete(cs.pending, r.MemberID)
		g.addMember(r.MemberID, instance, r, client, session, rebalance, done)
		return
	}
	m := cs.members[r.MemberID]
	if m == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if m.instanceID != "" && instance != "" && m.instanceID != instance {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	unchanged := sameProtocols(m.protocols, r.Protocols)
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	switch cs.state {
	case stPreparing:
		g.parkJoin(m, r, done)
		g.maybeCompleteJoin()
	case stCompleting:
		if unchanged {
			// A retried join for the generation being completed.
			done(g.joinResponse(m, r.Version))
			return
		}
		g.parkJoin(m, r, done)
		g.prepareRebalance()
	case stStable:
		if unchanged && m.id != cs.leader {
			done(g.joinResponse(m, r.Version))
			g.scheduleSession(m)
			return
		}
		g.parkJoin(m, r, done)
		g.prepareRebalance()
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// supportsProtocols: the joining member's type matches and it shares at
// least one protocol with every other member.
func (g *group) supportsProtocols(self, ptype string, ps []kmsg.JoinGroupRequestProtocol) bool {
	cs := &g.classic
	if ptype != cs.protocolType {
		return false
	}
	for _, p := range ps {
		all := true
		for id, m := range cs.members {
			if id == self {
				continue
			}
			found := false
			for _, mp := range m.protocols {
				if mp.name == p.Name {
					found = true
					break
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (g *group) parkJoin(m *classicMember, r *kmsg.JoinGroupRequest, done func(kmsg.Response)) {
	answerJoinError(m, kerr.RebalanceInProgress.Code) // a join superseded by this one
	m.protocols = copyProtocols(r.Protocols)
	m.join, m.joinVersion = done, r.Version
	if m.session != nil {
		m.session.Stop() // a member waiting in a rebalance is not expired
		m.session = nil
	}
}

func (g *group) addMember(id, instance string, r *kmsg.JoinGroupRequest, client clientInfo, session, rebalance time.Duration, done func(kmsg.Response)) {
	cs := &g.classic
	cs.joinSeq++
	m := &classicMember{
		id:               id,
		instanceID:       instance,
		clientID:         client.id,
		clientHost:       client.host,
		sessionTimeout:   session,
		rebalanceTimeout: rebalance,
		joinSeq:          cs.joinSeq,
	}
	if len(cs.members) == 0 {
		cs.protocolType = r.ProtocolType
	}
	cs.members[id] = m
	if instance != "" {
		cs.static[instance] = id
	}
	g.parkJoin(m, r, done)
	if cs.state == stPreparing {
		cs.joinedInDelay = true
		g.maybeCompleteJoin()
		return
	}
	g.prepareRebalance()
}

// replaceStatic gives a known group.instance.id a new member id, fencing
// the old one (KIP-345). In a Stable group with unchanged metadata the
// member gets the current generation back without a rebalance.
func (g *group) replaceStatic(old *classicMember, r *kmsg.JoinGroupRequest, client clientInfo, session, rebalance time.Duration, done func(kmsg.Response)) {
	cs := &g.classic
	answerJoinError(old, kerr.FencedInstanceID.Code)
	answerSyncError(old, kerr.FencedInstanceID.Code)
	oldID := old.id
	newID := newMemberID(client.id)
	delete(cs.members, oldID)
	old.id = newID
	old.clientID, old.clientHost = client.id, client.host
	old.sessionTimeout, old.rebalanceTimeout = session, rebalance
	cs.members[newID] = old
	cs.static[old.instanceID] = newID
	wasLeader := cs.leader == oldID
	if wasLeader {
		cs.leader = newID
	}
	m := old
	unchanged := bytes.Equal(m.metadataFor(cs.protocol), metadataOf(r.Protocols, cs.protocol))
	if cs.state == stStable && unchanged && (!wasLeader || r.Version >= 9) {
		m.protocols = copyProtocols(r.Protocols)
		gen := cs.generation
		g.persist([]record{g.groupRecord()}, func(err error) {
			if err != nil {
				done(joinError(r.Version, kerr.CoordinatorNotAvailable.Code, ""))
				return
			}
			if cs.members[newID] != m || cs.generation != gen {
				done(joinError(r.Version, kerr.RebalanceInProgress.Code, newID))
				return
			}
			resp := g.joinResponse(m, r.Version)
			if wasLeader {
				resp.SkipAssignment = true // KIP-814: keep the assignment
			}
			done(resp)
			g.scheduleSession(m)
		})
		return
	}
	g.parkJoin(m, r, done)
	if cs.state == stPreparing {
		g.maybeCompleteJoin()
		return
	}
	g.prepareRebalance()
}

func metadataOf(ps []kmsg.JoinGroupRequestProtocol, name string) []byte {
	for _, p := range ps {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// prepareRebalance moves the group to PreparingRebalance.
func (g *group) prepareRebalance() {
	cs := &g.classic
	cfg := &g.c.cfg
	if cs.state == stCompleting {
		for _, m := range cs.members {
			answerSyncError(m, kerr.RebalanceInProgress.Code)
		}
	}
	now := g.now()
	initial := cs.state == stEmpty
	cs.state = stPreparing
	cs.stateTime = now
	var maxRebalance time.Duration
	for _, m := range cs.members {
		maxRebalance = max(maxRebalance, m.rebalanceTimeout)
	}
	wait := maxRebalance
	cs.initial = false
	if initial && cfg.InitialRebalanceDelay > 0 {
		cs.initial = true
		cs.joinedInDelay = false
		cs.initialCap = now.Add(maxRebalance)
		wait = min(cfg.InitialRebalanceDelay, maxRebalance)
	}
	g.armRebalance(wait)
	g.maybeCompleteJoin()
}

func (g *group) armRebalance(d time.Duration) {
	cs := &g.classic
	if cs.rebalance != nil {
		cs.rebalance.Stop()
	}
	cs.rebalanceSeq++
	seq := cs.rebalanceSeq
	cs.rebalance = g.after(d, func() {
		if cs.rebalanceSeq == seq && cs.state == stPreparing {
			g.rebalanceTimerFired()
		}
	})
}

func (g *group) rebalanceTimerFired() {
	cs := &g.classic
	if cs.initial {
		remaining := cs.initialCap.Sub(g.now())
		if cs.joinedInDelay && remaining > 0 {
			cs.joinedInDelay = false
			g.armRebalance(min(g.c.cfg.InitialRebalanceDelay, remaining))
			return
		}
		cs.initial = false
		if !g.allJoined() {
			// Wait out the rest of the rebalance timeout for
			// members that have not rejoined yet.
			if remaining > 0 {
				g.armRebalance(remaining)
				return
			}
		}
	}
	g.completeJoin()
}

func (g *group) allJoined() bool {
	cs := &g.classic
	if len(cs.pending) > 0 {
		return false
	}
	for _, m := range cs.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func (g *group) maybeCompleteJoin() {
	cs := &g.classic
	if cs.state == stPreparing && !cs.initial && g.allJoined() {
		g.completeJoin()
	}
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, a new generation starts, every joined member is answered.
func (g *group) completeJoin() {
	cs := &g.classic
	if cs.rebalance != nil {
		cs.rebalance.Stop()
		cs.rebalance = nil
	}
	cs.rebalanceSeq++
	cs.initial = false
	for _, m := range cs.members {
		if m.join == nil {
			g.removeClassicMember(m)
		}
	}
	cs.generation++
	cs.stateTime = g.now()
	if len(cs.members) == 0 {
		cs.state = stEmpty
		cs.protocol, cs.leader = "", ""
		g.persist([]record{g.groupRecord()}, nil)
		return
	}
	cs.protocol = g.selectProtocol()
	if lm := cs.members[cs.leader]; lm == nil {
		cs.leader = cs.sortedMembers()[0].id
	}
	cs.state = stCompleting
	for _, m := range cs.members {
		m.assignment = nil
		resp := g.joinResponse(m, m.joinVersion)
		m.join(resp)
		m.join = nil
		g.scheduleSession(m)
	}
}

// selectProtocol picks the protocol every member supports with the most
// first-choice votes; ties go to the earliest member's preference.
func (g *group) selectProtocol() string {
	cs := &g.classic
	ms := cs.sortedMembers()
	candidates := map[string]int{}
	for _, p := range ms[0].protocols {
		candidates[p.name] = 0
	}
	for _, m := range ms[1:] {
		has := map[string]bool{}
		for _, p := range m.protocols {
			has[p.name] = true
		}
		for name := range candidates {
			if !has[name] {
				delete(candidates, name)
			}
		}
	}
	for _, m := range ms {
		for _, p := range m.protocols {
			if _, ok := candidates[p.name]; ok {
				candidates[p.name]++
				break
			}
		}
	}
	best, votes := "", -1
	for _, p := range ms[0].protocols {
		if v, ok := candidates[p.name]; ok && v > votes {
			best, votes = p.name, v
		}
	}
	return best
}

func (g *group) joinResponse(m *classicMember, version int16) *kmsg.JoinGroupResponse {
	cs := &g.classic
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = cs.generation
	pt, p := cs.protocolType, cs.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = cs.leader
	resp.MemberID = m.id
	if m.id == cs.leader {
		for _, o := range cs.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			if o.instanceID != "" {
				inst := o.instanceID
				rm.InstanceID = &inst
			}
			rm.ProtocolMetadata = o.metadataFor(cs.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func answerJoinError(m *classicMember, code int16) {
	if m.join != nil {
		m.join(joinError(m.joinVersion, code, m.id))
		m.join = nil
	}
}

func answerSyncError(m *classicMember, code int16) {
	if m.sync != nil {
		m.sync(syncError(code))
		m.sync = nil
	}
}

// scheduleSession (re)starts m's session timeout.
func (g *group) scheduleSession(m *classicMember) {
	if m.session != nil {
		m.session.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.session = g.after(m.sessionTimeout, func() {
		if g.classic.members[m.id] == m && m.sessionSeq == seq && m.join == nil {
			g.c.cfg.Logger.Info("group member session expired", "group", g.id, "member", m.id)
			g.removeClassicMember(m)
			g.memberGone()
		}
	})
}

// removeClassicMember drops m, answering anything it has parked.
func (g *group) removeClassicMember(m *classicMember) {
	cs := &g.classic
	answerJoinError(m, kerr.UnknownMemberID.Code)
	answerSyncError(m, kerr.UnknownMemberID.Code)
	if m.session != nil {
		m.session.Stop()
		m.session = nil
	}
	m.sessionSeq++
	delete(cs.members, m.id)
	if m.instanceID != "" && cs.static[m.instanceID] == m.id {
		delete(cs.static, m.instanceID)
	}
}

// memberGone reacts to a member leaving or expiring.
func (g *group) memberGone() {
	switch g.classic.state {
	case stStable, stCompleting:
		g.prepareRebalance()
	case stPreparing:
		g.maybeCompleteJoin()
	}
}

// ---- SyncGroup ----

func syncError(code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return resp
}

func (g *group) sync(r *kmsg.SyncGroupRequest, done func(kmsg.Response)) {
	cs := &g.classic
	if g.kind != kindClassic {
		done(syncError(kerr.UnknownMemberID.Code))
		return
	}
	m := cs.members[r.MemberID]
	instance := deref(r.InstanceID)
	switch {
	case m == nil:
		if owner, ok := cs.static[instance]; ok && instance != "" && owner != r.MemberID {
			done(syncError(kerr.FencedInstanceID.Code))
			return
		}
		done(syncError(kerr.UnknownMemberID.Code))
		return
	case instance != "" && m.instanceID != instance:
		done(syncError(kerr.FencedInstanceID.Code))
		return
	case r.Generation != cs.generation:
		done(syncError(kerr.IllegalGeneration.Code))
		return
	case r.ProtocolType != nil && *r.ProtocolType != cs.protocolType,
		r.Protocol != nil && *r.Protocol != cs.protocol:
		done(syncError(kerr.InconsistentGroupProtocol.Code))
		return
	}
	switch cs.state {
	case stPreparing:
		done(syncError(kerr.RebalanceInProgress.Code))
	case stStable:
		g.scheduleSession(m)
		done(g.syncResponse(m))
	case stCompleting:
		answerSyncError(m, kerr.RebalanceInProgress.Code)
		m.sync, m.syncVersion = done, r.Version
		g.scheduleSession(m)
		if m.id != cs.leader {
			return
		}
		for _, o := range cs.members {
			o.assignment = []byte{}
		}
		for _, a := range r.GroupAssignment {
			if o := cs.members[a.MemberID]; o != nil {
				o.assignment = bytes.Clone(a.MemberAssignment)
			}
		}
		gen := cs.generation
		g.persist([]record{g.groupRecord()}, func(err error) {
			if cs.generation != gen || cs.state != stCompleting {
				return // a new rebalance answered the parked syncs
			}
			if err != nil {
				for _, o := range cs.members {
					answerSyncError(o, kerr.CoordinatorNotAvailable.Code)
				}
				g.prepareRebalance()
				return
			}
			cs.state = stStable
			cs.stateTime = g.now()
			for _, o := range cs.members {
				if o.sync != nil {
					o.sync(g.syncResponse(o))
					o.sync = nil
				}
			}
		})
	default:
		done(syncError(kerr.UnknownMemberID.Code))
	}
}

func (g *group) syncResponse(m *classicMember) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	pt, p := g.classic.protocolType, g.classic.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// ---- Heartbeat ----

func (g *group) heartbeat(r *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	cs := &g.classic
	resp := kmsg.NewPtrHeartbeatResponse()
	instance := deref(r.InstanceID)
	m := cs.members[r.MemberID]
	switch {
	case g.kind != kindClassic:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case m == nil:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if owner, ok := cs.static[instance]; ok && instance != "" && owner != r.MemberID {
			resp.ErrorCode = kerr.FencedInstanceID.Code
		}
	case instance != "" && m.instanceID != instance:
		resp.ErrorCode = kerr.FencedInstanceID.Code
	case r.Generation != cs.generation:
		resp.ErrorCode = kerr.IllegalGeneration.Code
	case cs.state == stPreparing:
		if m.join == nil {
			g.scheduleSession(m)
		}
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case cs.state == stEmpty:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	default:
		g.scheduleSession(m)
	}
	return resp
}

// ---- LeaveGroup ----

func leaveUnknownGroup(r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	if r.Version < 3 {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	for _, lm := range r.Members {
		m := kmsg.NewLeaveGroupResponseMember()
		m.MemberID, m.InstanceID = lm.MemberID, lm.InstanceID
		m.ErrorCode = kerr.UnknownMemberID.Code
		resp.Members = append(resp.Members, m)
	}
	return resp
}

func (g *group) leave(r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	cs := &g.classic
	resp := kmsg.NewPtrLeaveGroupResponse()
	if g.kind != kindClassic {
		return leaveUnknownGroup(r)
	}
	leaveOne := func(memberID, instance string) int16 {
		if instance != "" {
			owner, ok := cs.static[instance]
			switch {
			case !ok:
				return kerr.UnknownMemberID.Code
			case memberID != "" && owner != memberID:
				return kerr.FencedInstanceID.Code
			}
			memberID = owner
		}
		if p, ok := cs.pending[memberID]; ok {
			p.timer.Stop()
			delete(cs.pending, memberID)
			g.maybeCompleteJoin()
			return 0
		}
		m := cs.members[memberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		g.removeClassicMember(m)
		g.memberGone()
		return 0
	}
	if r.Version < 3 {
		resp.ErrorCode = leaveOne(r.MemberID, "")
		return resp
	}
	for _, lm := range r.Members {
		m := kmsg.NewLeaveGroupResponseMember()
		m.MemberID, m.InstanceID = lm.MemberID, lm.InstanceID
		m.ErrorCode = leaveOne(lm.MemberID, deref(lm.InstanceID))
		resp.Members = append(resp.Members, m)
	}
	return resp
}
