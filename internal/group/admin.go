package group

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group administration: DescribeGroups v0-6, ListGroups v0-5 (state filter
// v4+, type filter v5+), DeleteGroups v0-3.
//
// DescribeGroups describes classic groups only, as Kafka does: an unknown
// group, or a KIP-848 group, is reported Dead (v0-5) or GROUP_ID_NOT_FOUND
// (v6+). Members' metadata and assignments are included only while the
// group is Stable. DeleteGroups removes only groups without members
// (NON_EMPTY_GROUP otherwise), writing tombstones for the group and all of
// its offsets, and answers once they are durable.

func (c *Coordinator) describeGroups(ctx context.Context, r *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	for _, id := range r.Groups {
		var d kmsg.DescribeGroupsResponseGroup
		g := c.lookup(id, false)
		switch {
		case id == "":
			d = kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = id, kerr.InvalidGroupID.Code
		case g == nil:
			d = deadGroup(id, r.Version)
		default:
			var ok bool
			d, ok = ask(ctx, g, func() kmsg.DescribeGroupsResponseGroup { return g.describe(r.Version) })
			if !ok {
				d = kmsg.NewDescribeGroupsResponseGroup()
				d.Group, d.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
			}
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func deadGroup(id string, version int16) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group, d.State = id, "Dead"
	if version >= 6 {
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "group " + id + " not found"
		d.ErrorMessage = &msg
	}
	return d
}

func (g *group) describe(version int16) kmsg.DescribeGroupsResponseGroup {
	if g.kind != kindClassic {
		return deadGroup(g.id, version)
	}
	cs := &g.classic
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.id
	d.State = cs.state.String()
	d.ProtocolType = cs.protocolType
	stable := cs.state == stStable
	if stable {
		d.Protocol = cs.protocol
	}
	for _, m := range cs.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			if md := m.metadataFor(cs.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// summary is one ListGroups entry.
type summary struct {
	exists                    bool
	protocolType, state, kind string
}

func (g *group) summary() summary {
	switch g.kind {
	case kindClassic:
		return summary{exists: true, protocolType: g.classic.protocolType, state: g.classic.state.String(), kind: "classic"}
	case kindConsumer:
		return summary{exists: true, protocolType: "consumer", state: g.cons.stateName(), kind: "consumer"}
	}
	return summary{}
}

func (c *Coordinator) listGroups(ctx context.Context, r *kmsg.ListGroupsRequest) kmsg.Response {
	resp := kmsg.NewPtrListGroupsResponse()
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	gs := c.all()
	// Ask every group at once, then collect in order.
	chans := make([]chan summary, len(gs))
	for i, g := range gs {
		ch := make(chan summary, 1)
		chans[i] = ch
		if !g.post(func() { ch <- g.summary() }) {
			close(ch)
		}
	}
	for i, g := range gs {
		var s summary
		select {
		case s = <-chans[i]:
		case <-g.done:
		case <-ctx.Done():
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = nil
			return resp
		}
		if !s.exists {
			continue
		}
		if r.Version >= 4 && !match(r.StatesFilter, s.state) {
			continue
		}
		if r.Version >= 5 && !match(r.TypesFilter, s.kind) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, s.protocolType, s.state, s.kind
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func (c *Coordinator) deleteGroups(ctx context.Context, r *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	for _, id := range r.Groups {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = id
		g := c.lookup(id, false)
		switch {
		case id == "":
			d.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			d.ErrorCode = kerr.GroupIDNotFound.Code
		default:
			ch := g.submit(func(done func(kmsg.Response)) { g.deleteGroup(done) })
			select {
			case res := <-ch:
				d.ErrorCode = res.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
			case <-g.done:
				d.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case <-ctx.Done():
				d.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

// deleteGroup answers with a one-group DeleteGroupsResponse.
func (g *group) deleteGroup(done func(kmsg.Response)) {
	answer := func(code int16) {
		resp := kmsg.NewPtrDeleteGroupsResponse()
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group, d.ErrorCode = g.id, code
		resp.Groups = append(resp.Groups, d)
		done(resp)
	}
	switch {
	case !g.exists():
		answer(kerr.GroupIDNotFound.Code)
		return
	case !g.isEmpty():
		answer(kerr.NonEmptyGroup.Code)
		return
	}
	var recs []record
	for t, parts := range g.offsets {
		for p := range parts {
			recs = append(recs, record{key: offsetKey(g.id, t, p)})
		}
	}
	recs = append(recs, record{key: groupKey(keyGroupMetadata, g.id)})
	g.persist(recs, func(err error) {
		if err != nil {
			answer(kerr.CoordinatorNotAvailable.Code)
			return
		}
		if !g.isEmpty() {
			// Members joined while the tombstones were written: the
			// offsets are gone on disk but the group lives on.
			g.offsets = map[string]map[int32]offsetEntry{}
			answer(0)
			return
		}
		g.kind = kindNone
		g.offsets = map[string]map[int32]offsetEntry{}
		g.classic.shutdown()
		g.classic.init()
		g.classic.state = stEmpty
		g.cons.reset()
		answer(0)
	})
}

// errorResponse answers req with code everywhere a code goes.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return joinError(r.Version, code, r.MemberID)
	case *kmsg.SyncGroupRequest:
		return syncError(code)
	case *kmsg.HeartbeatRequest:
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := kmsg.NewPtrLeaveGroupResponse()
		resp.ErrorCode = code
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := kmsg.NewPtrOffsetCommitResponse()
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.OffsetFetchRequest:
		resp := kmsg.NewPtrOffsetFetchResponse()
		resp.ErrorCode = code
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		for _, g := range r.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.OffsetDeleteRequest:
		resp := kmsg.NewPtrOffsetDeleteResponse()
		resp.ErrorCode = code
		return resp
	case *kmsg.DescribeGroupsRequest:
		resp := kmsg.NewPtrDescribeGroupsResponse()
		for _, id := range r.Groups {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = id, code
			resp.Groups = append(resp.Groups, d)
		}
		return resp
	case *kmsg.ListGroupsRequest:
		resp := kmsg.NewPtrListGroupsResponse()
		resp.ErrorCode = code
		return resp
	case *kmsg.DeleteGroupsRequest:
		resp := kmsg.NewPtrDeleteGroupsResponse()
		for _, id := range r.Groups {
			d := kmsg.NewDeleteGroupsResponseGroup()
			d.Group, d.ErrorCode = id, code
			resp.Groups = append(resp.Groups, d)
		}
		return resp
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.ErrorCode = code
		return resp
	case *kmsg.ConsumerGroupDescribeRequest:
		resp := kmsg.NewPtrConsumerGroupDescribeResponse()
		for _, id := range r.Groups {
			d := kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group, d.ErrorCode = id, code
			resp.Groups = append(resp.Groups, d)
		}
		return resp
	}
	resp := req.ResponseKind()
	return resp
}
