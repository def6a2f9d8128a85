package main

// `sluice group list|describe|delete|seek`, through kadm.
//
// describe works for classic groups (DescribeGroups) and for KIP-848
// groups (ConsumerGroupDescribe, tried when DescribeGroups reports an
// error). Lag is the partition's end offset minus the group's committed
// offset, for every partition that is committed or assigned.
//
// JSON output (--json) is a stable interface; fields are only ever added.
//
// group list --json: an array, sorted by group, of
//
//	{"group": string, "state": string, "protocol_type": string,
//	 "coordinator": int}
//
// group describe --json: one object
//
//	{"group": string, "state": string, "protocol_type": string,
//	 "protocol": string (the assignor), "group_protocol": "classic"|"consumer",
//	 "coordinator": int (-1: unknown), "total_lag": int,
//	 "members": [{"member_id": string, "instance_id": string|null,
//	     "client_id": string, "client_host": string,
//	     "assignment": [{"topic": string, "partitions": [int]}]}],
//	 "offsets": [{"topic": string, "partition": int,
//	     "committed_offset": int (-1: none), "end_offset": int (-1: unknown),
//	     "lag": int (-1: unknown), "member_id": string ("": unassigned),
//	     "error": string}]}
//
// group seek --json: an array of
//
//	{"topic": string, "partition": int, "offset": int, "error": string}

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerCLI("group", "list, describe, delete or seek consumer groups", runGroup)
}

const (
	groupListSynopsis     = "group list [--json]"
	groupDescribeSynopsis = "group describe GROUP [--json]"
	groupDeleteSynopsis   = "group delete GROUP"
	groupSeekSynopsis     = "group seek GROUP --topic T --to earliest|latest|OFFSET|@UNIX_MS|RFC3339 [--partition N] [--dry-run] [--json]"
)

var groupSubcommands = []subcommand{
	{"list", groupListSynopsis, "list consumer groups", groupList},
	{"describe", groupDescribeSynopsis, "state, members, assignment, committed offsets and lag", groupDescribe},
	{"delete", groupDeleteSynopsis, "delete an empty group and its committed offsets", groupDelete},
	{"seek", groupSeekSynopsis, "move an empty group's committed offsets", groupSeek},
}

func runGroup(env *cliIO, args []string) int {
	return runSubcommand(env, "group", groupSubcommands, args)
}

type groupListJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func groupList(env *cliIO, args []string) error {
	var (
		g      globalFlags
		asJSON bool
	)
	fs := newFlagSet(env, "group list", groupListSynopsis)
	g.register(fs, env.getenv)
	fs.BoolVar(&asJSON, "json", false, "print a JSON array")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments: %s", strings.Join(pos, " "))
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	out := make([]groupListJSON, 0, len(groups))
	for _, l := range groups.Sorted() {
		out = append(out, groupListJSON{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Coordinator: l.Coordinator})
	}
	if asJSON {
		return writeJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Group, l.State, l.ProtocolType)
	}
	return tw.Flush()
}

type topicPartitionsJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type groupMemberJSON struct {
	MemberID   string                `json:"member_id"`
	InstanceID *string               `json:"instance_id"`
	ClientID   string                `json:"client_id"`
	ClientHost string                `json:"client_host"`
	Assignment []topicPartitionsJSON `json:"assignment"`
}

type groupOffsetJSON struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	EndOffset       int64  `json:"end_offset"`
	Lag             int64  `json:"lag"`
	MemberID        string `json:"member_id"`
	Error           string `json:"error"`
}

type groupDescribeJSON struct {
	Group         string            `json:"group"`
	State         string            `json:"state"`
	ProtocolType  string            `json:"protocol_type"`
	Protocol      string            `json:"protocol"`
	GroupProtocol string            `json:"group_protocol"`
	Coordinator   int32             `json:"coordinator"`
	TotalLag      int64             `json:"total_lag"`
	Members       []groupMemberJSON `json:"members"`
	Offsets       []groupOffsetJSON `json:"offsets"`
}

func topicsSetJSON(s kadm.TopicsSet) []topicPartitionsJSON {
	out := []topicPartitionsJSON{}
	for _, t := range s.Sorted() {
		ps := slices.Clone(t.Partitions)
		slices.Sort(ps)
		out = append(out, topicPartitionsJSON{Topic: t.Topic, Partitions: ps})
	}
	return out
}

// describeGroupMembers fills state and members, from DescribeGroups or, for
// KIP-848 groups, ConsumerGroupDescribe. Brokers answer DescribeGroups for a
// KIP-848 group either with an error (Kafka: GROUP_ID_NOT_FOUND, "not a
// classic group") or as a group without protocol type or members, so either
// answer leads to ConsumerGroupDescribe; its own error is reported only if
// DescribeGroups failed too.
func describeGroupMembers(env *cliIO, g *globalFlags, adm *kadm.Client, cl *kgo.Client, group string, out *groupDescribeJSON) error {
	ctx, cancel := g.opContext(env)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, group)
	var classic kadm.DescribedGroup
	if err == nil {
		classic, err = described.On(group, nil)
	}
	if err == nil {
		err = kafkaErr(classic.Err, classic.ErrMessage)
	}
	if err != nil || (classic.ProtocolType == "" && len(classic.Members) == 0) {
		found, cgErr := describeConsumerGroup(ctx, adm, cl, group, out)
		if cgErr == nil && found {
			return nil
		}
		if err != nil {
			return fmt.Errorf("describe group %q: %w", group, err)
		}
	}
	out.State, out.ProtocolType, out.Protocol = classic.State, classic.ProtocolType, classic.Protocol
	out.GroupProtocol, out.Coordinator = "classic", classic.Coordinator.NodeID
	for _, m := range classic.Members {
		mj := groupMemberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignment: []topicPartitionsJSON{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			s := make(kadm.TopicsSet)
			for _, t := range c.Topics {
				s.Add(t.Topic, t.Partitions...)
			}
			mj.Assignment = topicsSetJSON(s)
		}
		out.Members = append(out.Members, mj)
	}
	return nil
}

// describeConsumerGroup describes a KIP-848 group with ConsumerGroupDescribe
// (raw, to keep topic IDs: assignments whose topic name the broker left out
// are named through a metadata lookup). found is false when the broker
// does not know the group as a KIP-848 group.
func describeConsumerGroup(ctx context.Context, adm *kadm.Client, cl *kgo.Client, group string, out *groupDescribeJSON) (found bool, err error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false, err
	}
	if len(resp.Groups) != 1 || resp.Groups[0].Group != group {
		return false, fmt.Errorf("ConsumerGroupDescribe answered for %d groups", len(resp.Groups))
	}
	dg := resp.Groups[0]
	if err := kerr.ErrorForCode(dg.ErrorCode); err != nil {
		return false, err
	}
	var names map[[16]byte]string // filled on first need
	topicName := func(tp kmsg.AssignmentTopicPartition) string {
		if tp.Topic != "" {
			return tp.Topic
		}
		if names == nil {
			names = map[[16]byte]string{}
			mreq := kmsg.NewPtrMetadataRequest()
			if mresp, err := mreq.RequestWith(ctx, cl); err == nil {
				for _, t := range mresp.Topics {
					if t.Topic != nil {
						names[t.TopicID] = *t.Topic
					}
				}
			}
		}
		if n, ok := names[tp.TopicID]; ok {
			return n
		}
		return base64.RawURLEncoding.EncodeToString(tp.TopicID[:]) // unknown: show the ID
	}
	out.State, out.ProtocolType, out.Protocol = dg.State, "consumer", dg.AssignorName
	out.GroupProtocol = "consumer"
	out.Coordinator = -1
	if c, ok := adm.FindGroupCoordinators(ctx, group)[group]; ok && c.Err == nil {
		out.Coordinator = c.NodeID
	}
	for _, m := range dg.Members {
		s := make(kadm.TopicsSet)
		for _, tp := range m.Assignment.TopicPartitions {
			s.Add(topicName(tp), tp.Partitions...)
		}
		out.Members = append(out.Members, groupMemberJSON{
			MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Assignment: topicsSetJSON(s),
		})
	}
	return true, nil
}

func groupDescribe(env *cliIO, args []string) error {
	var (
		g      globalFlags
		asJSON bool
	)
	fs := newFlagSet(env, "group describe", groupDescribeSynopsis)
	g.register(fs, env.getenv)
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	group, err := oneName("group", pos)
	if err != nil {
		return err
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := groupDescribeJSON{Group: group, Members: []groupMemberJSON{}, Offsets: []groupOffsetJSON{}}
	if err := describeGroupMembers(env, &g, adm, cl, group, &out); err != nil {
		return err
	}
	ctx, cancel := g.opContext(env)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
	}
	if (out.State == "Dead" || out.State == "") && len(out.Members) == 0 && len(committed) == 0 {
		return fmt.Errorf("group %q does not exist", group)
	}

	// Every partition that is committed or assigned, with its owner.
	owner := map[string]map[int32]string{}
	parts := make(kadm.TopicsSet)
	for _, m := range out.Members {
		for _, tp := range m.Assignment {
			parts.Add(tp.Topic, tp.Partitions...)
			if owner[tp.Topic] == nil {
				owner[tp.Topic] = map[int32]string{}
			}
			for _, p := range tp.Partitions {
				owner[tp.Topic][p] = m.MemberID
			}
		}
	}
	parts.Merge(committed.Partitions())
	var ends kadm.ListedOffsets
	if topics := parts.Topics(); len(topics) > 0 {
		if ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
	}
	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			o := groupOffsetJSON{Topic: tp.Topic, Partition: p, CommittedOffset: -1, EndOffset: -1, Lag: -1, MemberID: owner[tp.Topic][p]}
			if c, ok := committed.Lookup(tp.Topic, p); ok {
				if c.Err != nil {
					o.Error = errName(c.Err)
				} else {
					o.CommittedOffset = c.At
				}
			}
			if e, ok := ends.Lookup(tp.Topic, p); ok && e.Err == nil {
				o.EndOffset = e.Offset
			} else if ok && o.Error == "" {
				o.Error = errName(e.Err)
			}
			if o.CommittedOffset >= 0 && o.EndOffset >= 0 {
				o.Lag = max(o.EndOffset-o.CommittedOffset, 0)
				out.TotalLag += o.Lag
			}
			out.Offsets = append(out.Offsets, o)
		}
	}
	slices.SortFunc(out.Offsets, func(a, b groupOffsetJSON) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})

	if asJSON {
		return writeJSON(env.stdout, out)
	}
	w := env.stdout
	fmt.Fprintf(w, "Group: %s\nState: %s\nGroup protocol: %s\nProtocol type: %s\nAssignor: %s\nCoordinator: %d\nMembers: %d\nTotal lag: %d\n",
		out.Group, out.State, out.GroupProtocol, orDash(out.ProtocolType), orDash(out.Protocol), out.Coordinator, len(out.Members), out.TotalLag)
	if len(out.Members) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT\tHOST\tASSIGNMENT")
		for _, m := range out.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			var as []string
			for _, tp := range m.Assignment {
				as = append(as, tp.Topic+"["+joinInt32(tp.Partitions)+"]")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost, strings.Join(as, " "))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER\tERROR")
	for _, o := range out.Offsets {
		member := o.MemberID
		if member == "" {
			member = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", o.Topic, o.Partition, offsetText(o.CommittedOffset),
			offsetText(o.EndOffset), offsetText(o.Lag), member, o.Error)
	}
	return tw.Flush()
}

func groupDelete(env *cliIO, args []string) error {
	var g globalFlags
	fs := newFlagSet(env, "group delete", groupDeleteSynopsis)
	g.register(fs, env.getenv)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	group, err := oneName("group", pos)
	if err != nil {
		return err
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	resp, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("delete group %q: %w", group, err)
	}
	fmt.Fprintf(env.stderr, "deleted group %q\n", group)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
