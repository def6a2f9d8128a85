package group

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The scripts in testdata/*.txt drive the coordinator with a manual clock.
// Each line is one step:
//
//	config key=value...            before the first request: initial-delay, min-session, max-size
//	topic NAME PARTITIONS          create or resize a topic (TopicLookup)
//	advance DURATION               move the clock; due timers fire
//	M join [k=v...] &              start a JoinGroup for member M; do not wait
//	M await -> expectations        the answer to M's outstanding request
//	M pending                      M's outstanding request is still unanswered
//	M join|sync|heartbeat|leave|commit|cgh [k=v...] -> expectations
//	fetch|describe|list|delete|offsetdelete|cgdescribe [k=v...] -> expectations
//
// Member names stand for the member ids the coordinator handed out. Request
// keys: v (version), group, session, rebalance, protocols (p1,p2), meta
// (protocol metadata), instance, gen (default: M's last generation), id
// (member id; "none" for empty), assign (M1:bytes,M2:bytes), offsets
// (topic:part=offset,...), parts (topic:part,...), epoch, subscribe
// (t1,t2), assignor, owned ("assigned" = what M was last given, or
// topic:p,p;topic:p), states. Expectations compare named response fields;
// err is the Kafka error name (NONE for 0).

type script struct {
	t       *testing.T
	file    string
	line    int
	clock   *manualClock
	topics  *fakeTopics
	journal *memJournal
	c       *Coordinator
	cfg     Config

	ids      map[string]string // member name -> member id
	gens     map[string]int32
	epochs   map[string]int32
	assigned map[string]string // name -> last cgh assignment ("t:0,1;u:2")
	async    map[string]<-chan kmsg.Response
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, file string) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s := &script{
		t: t, file: file,
		clock:   newManualClock(),
		topics:  newFakeTopics(),
		journal: &memJournal{},
		ids:     map[string]string{}, gens: map[string]int32{}, epochs: map[string]int32{},
		assigned: map[string]string{},
		async:    map[string]<-chan kmsg.Response{},
	}
	s.cfg = Config{Clock: s.clock, Topics: s.topics, journal: s.journal, InitialRebalanceDelay: -1,
		MinSessionTimeout: time.Second, ConsumerSessionTimeout: 45 * time.Second}
	defer func() {
		if s.c != nil {
			s.c.Close()
		}
	}()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		s.line++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.step(line)
	}
}

func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func (s *script) coordinator() *Coordinator {
	if s.c == nil {
		c, err := New(s.cfg)
		if err != nil {
			s.fatalf("New: %v", err)
		}
		s.c = c
	}
	return s.c
}

// restart closes the coordinator and recovers a new one from the journal.
func (s *script) restart() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	s.coordinator()
}

func parseArgs(toks []string) map[string]string {
	m := map[string]string{}
	for _, tok := range toks {
		k, v, _ := strings.Cut(tok, "=")
		m[k] = v
	}
	return m
}

func (s *script) step(line string) {
	req, want, hasWant := strings.Cut(line, "->")
	toks := strings.Fields(req)
	async := false
	if n := len(toks); n > 0 && toks[n-1] == "&" {
		async, toks = true, toks[:n-1]
	}
	var expect map[string]string
	if hasWant {
		expect = parseArgs(strings.Fields(want))
	}
	switch toks[0] {
	case "config":
		for k, v := range parseArgs(toks[1:]) {
			switch k {
			case "initial-delay":
				s.cfg.InitialRebalanceDelay = s.dur(v)
			case "min-session":
				s.cfg.MinSessionTimeout = s.dur(v)
			case "max-size":
				s.cfg.MaxGroupSize, _ = strconv.Atoi(v)
			default:
				s.fatalf("unknown config %q", k)
			}
		}
		return
	case "topic":
		n, _ := strconv.Atoi(toks[2])
		s.topics.set(toks[1], int32(n))
		return
	case "advance":
		s.coordinator()
		s.clock.Advance(s.dur(toks[1]))
		s.barrier()
		return
	case "restart":
		s.restart()
		return
	case "fetch", "describe", "list", "delete", "offsetdelete", "cgdescribe":
		s.check(s.handle(s.adminRequest(toks[0], parseArgs(toks[1:]))), expect, "")
		return
	}
	name, op := toks[0], toks[1]
	args := parseArgs(toks[2:])
	switch op {
	case "await":
		ch := s.async[name]
		if ch == nil {
			s.fatalf("%s has no outstanding request", name)
		}
		delete(s.async, name)
		select {
		case resp := <-ch:
			s.check(s.roundTrip(resp), expect, name)
		case <-time.After(10 * time.Second):
			s.fatalf("%s: no answer", name)
		}
		return
	case "pending":
		s.barrier()
		select {
		case resp := <-s.async[name]:
			s.fatalf("%s: answered early: %+v", name, resp)
		default:
		}
		return
	}
	r := s.memberRequest(name, op, args)
	if async {
		s.async[name] = s.submit(r)
		s.barrier()
		return
	}
	s.check(s.handle(r), expect, name)
}

func (s *script) dur(v string) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		s.fatalf("bad duration %q", v)
	}
	return d
}

func (s *script) group(args map[string]string) string {
	if g, ok := args["group"]; ok {
		return g
	}
	return "g"
}

func (s *script) version(args map[string]string, def int16) int16 {
	if v, ok := args["v"]; ok {
		n, _ := strconv.Atoi(v)
		return int16(n)
	}
	return def
}

func (s *script) memberID(name string, args map[string]string) string {
	if v, ok := args["id"]; ok {
		if v == "none" {
			return ""
		}
		if id, ok := s.ids[v]; ok {
			return id
		}
		return v
	}
	return s.ids[name]
}

func (s *script) gen(name string, args map[string]string) int32 {
	if v, ok := args["gen"]; ok {
		n, _ := strconv.Atoi(v)
		return int32(n)
	}
	if g, ok := s.gens[name]; ok {
		return g
	}
	return -1
}

func strPtr(s string) *string { return &s }

func (s *script) memberRequest(name, op string, args map[string]string) kmsg.Request {
	group := s.group(args)
	var instance *string
	if v, ok := args["instance"]; ok {
		instance = strPtr(v)
	}
	switch op {
	case "join":
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version = s.version(args, 5)
		r.Group = group
		r.MemberID = s.memberID(name, args)
		r.InstanceID = instance
		r.SessionTimeoutMillis = 10000
		r.RebalanceTimeoutMillis = 20000
		if v, ok := args["session"]; ok {
			r.SessionTimeoutMillis = int32(s.dur(v) / time.Millisecond)
		}
		if v, ok := args["rebalance"]; ok {
			r.RebalanceTimeoutMillis = int32(s.dur(v) / time.Millisecond)
		}
		r.ProtocolType = "consumer"
		if v, ok := args["type"]; ok {
			r.ProtocolType = v
		}
		protos := "range"
		if v, ok := args["protocols"]; ok {
			protos = v
		}
		for _, p := range strings.Split(protos, ",") {
			if p == "" {
				continue
			}
			jp := kmsg.NewJoinGroupRequestProtocol()
			jp.Name = p
			jp.Metadata = []byte(args["meta"])
			if args["meta"] == "" {
				jp.Metadata = []byte(name)
			}
			r.Protocols = append(r.Protocols, jp)
		}
		return r
	case "sync":
		r := kmsg.NewPtrSyncGroupRequest()
		r.Version = s.version(args, 3)
		r.Group, r.MemberID, r.InstanceID = group, s.memberID(name, args), instance
		r.Generation = s.gen(name, args)
		if v, ok := args["assign"]; ok {
			for _, a := range strings.Split(v, ",") {
				who, what, _ := strings.Cut(a, ":")
				ga := kmsg.NewSyncGroupRequestGroupAssignment()
				ga.MemberID = s.ids[who]
				ga.MemberAssignment = []byte(what)
				r.GroupAssignment = append(r.GroupAssignment, ga)
			}
		}
		return r
	case "heartbeat":
		r := kmsg.NewPtrHeartbeatRequest()
		r.Version = s.version(args, 3)
		r.Group, r.MemberID, r.InstanceID = group, s.memberID(name, args), instance
		r.Generation = s.gen(name, args)
		return r
	case "leave":
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Version = s.version(args, 0)
		r.Group = group
		if r.Version < 3 {
			r.MemberID = s.memberID(name, args)
		} else if v, ok := args["members"]; ok {
			for _, who := range strings.Split(v, ",") {
				lm := kmsg.NewLeaveGroupRequestMember()
				lm.MemberID = s.ids[who]
				if lm.MemberID == "" {
					lm.MemberID = who
				}
				r.Members = append(r.Members, lm)
			}
		} else {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID, lm.InstanceID = s.memberID(name, args), instance
			if _, ok := args["id"]; !ok && instance != nil {
				lm.MemberID = ""
			}
			r.Members = append(r.Members, lm)
		}
		return r
	case "commit":
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version = s.version(args, 7)
		r.Group, r.MemberID, r.InstanceID = group, s.memberID(name, args), instance
		r.Generation = s.gen(name, args)
		if name == "admin" {
			r.MemberID = ""
		}
		if v, ok := args["epoch"]; ok {
			n, _ := strconv.Atoi(v)
			r.Generation = int32(n)
		} else if e, ok := s.epochs[name]; ok {
			r.Generation = e
		}
		byTopic := map[string]int{}
		for _, o := range strings.Split(args["offsets"], ",") {
			tpart, off, _ := strings.Cut(o, "=")
			topic, part, _ := strings.Cut(tpart, ":")
			p, _ := strconv.Atoi(part)
			n, _ := strconv.ParseInt(off, 10, 64)
			i, ok := byTopic[topic]
			if !ok {
				i = len(r.Topics)
				byTopic[topic] = i
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = topic
				r.Topics = append(r.Topics, rt)
			}
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = int32(p), n
			rp.Metadata = strPtr("m")
			r.Topics[i].Partitions = append(r.Topics[i].Partitions, rp)
		}
		return r
	case "cgh":
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version = s.version(args, 0)
		r.Group, r.InstanceID = group, instance
		r.MemberID = s.memberID(name, args)
		r.MemberEpoch = s.epochs[name]
		if v, ok := args["epoch"]; ok {
			n, _ := strconv.Atoi(v)
			r.MemberEpoch = int32(n)
		}
		if v, ok := args["subscribe"]; ok {
			r.SubscribedTopicNames = strings.Split(v, ",")
		}
		if v, ok := args["assignor"]; ok {
			r.ServerAssignor = strPtr(v)
		}
		if v, ok := args["regex"]; ok {
			r.SubscribedTopicRegex = strPtr(v)
		}
		if r.MemberEpoch == 0 {
			r.RebalanceTimeoutMillis = 30000
			if v, ok := args["rebalance"]; ok {
				r.RebalanceTimeoutMillis = int32(s.dur(v) / time.Millisecond)
			}
		}
		if v, ok := args["owned"]; ok {
			if v == "assigned" {
				v = s.assigned[name]
			}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			for _, tps := range strings.Split(v, ";") {
				if tps == "" {
					continue
				}
				topic, parts, _ := strings.Cut(tps, ":")
				rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
				rt.TopicID = s.topics.id(topic)
				for _, p := range strings.Split(parts, ",") {
					n, _ := strconv.Atoi(p)
					rt.Partitions = append(rt.Partitions, int32(n))
				}
				r.Topics = append(r.Topics, rt)
			}
		}
		return r
	}
	s.fatalf("unknown op %q", op)
	return nil
}

func (s *script) adminRequest(op string, args map[string]string) kmsg.Request {
	group := s.group(args)
	switch op {
	case "fetch":
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version = s.version(args, 7)
		var topics []kmsg.OffsetFetchRequestTopic
		if v, ok := args["parts"]; ok {
			idx := map[string]int{}
			for _, tpart := range strings.Split(v, ",") {
				topic, part, _ := strings.Cut(tpart, ":")
				p, _ := strconv.Atoi(part)
				i, ok := idx[topic]
				if !ok {
					i = len(topics)
					idx[topic] = i
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: topic})
				}
				topics[i].Partitions = append(topics[i].Partitions, int32(p))
			}
		}
		if r.Version >= 8 {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = group
			for _, t := range topics {
				rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
			r.Groups = append(r.Groups, rg)
		} else {
			r.Group, r.Topics = group, topics
		}
		return r
	case "describe":
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Version = s.version(args, 5)
		r.Groups = []string{group}
		return r
	case "list":
		r := kmsg.NewPtrListGroupsRequest()
		r.Version = s.version(args, 5)
		if v, ok := args["states"]; ok {
			r.StatesFilter = strings.Split(v, ",")
		}
		if v, ok := args["types"]; ok {
			r.TypesFilter = strings.Split(v, ",")
		}
		return r
	case "delete":
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Version = s.version(args, 2)
		r.Groups = []string{group}
		return r
	case "offsetdelete":
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		for _, tpart := range strings.Split(args["parts"], ",") {
			topic, part, _ := strings.Cut(tpart, ":")
			p, _ := strconv.Atoi(part)
			r.Topics = append(r.Topics, kmsg.OffsetDeleteRequestTopic{Topic: topic,
				Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: int32(p)}}})
		}
		return r
	case "cgdescribe":
		r := kmsg.NewPtrConsumerGroupDescribeRequest()
		r.Groups = []string{group}
		return r
	}
	return nil
}

func (s *script) handle(r kmsg.Request) kmsg.Response {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.coordinator().Handle(ctx, r)
	if err != nil {
		s.fatalf("Handle: %v", err)
	}
	return s.roundTrip(resp)
}

// roundTrip encodes resp at its version and decodes it again, so that the
// script sees exactly what a client would.
func (s *script) roundTrip(resp kmsg.Response) kmsg.Response {
	s.t.Helper()
	b := resp.AppendTo(nil)
	out := resp.RequestKind().ResponseKind()
	out.SetVersion(resp.GetVersion())
	if err := out.ReadFrom(b); err != nil {
		s.fatalf("%T v%d does not decode: %v", resp, resp.GetVersion(), err)
	}
	return out
}

// submit starts a JoinGroup or SyncGroup on the group's goroutine and
// returns where its answer will arrive; the step ends with a barrier, so
// the request is known to be parked or answered.
func (s *script) submit(r kmsg.Request) <-chan kmsg.Response {
	c := s.coordinator()
	switch r := r.(type) {
	case *kmsg.JoinGroupRequest:
		g := c.lookup(r.Group, true)
		return g.submit(func(done func(kmsg.Response)) {
			g.join(r, clientInfo{id: "client"}, func(resp kmsg.Response) { resp.SetVersion(r.Version); done(resp) })
		})
	case *kmsg.SyncGroupRequest:
		g := c.lookup(r.Group, true)
		return g.submit(func(done func(kmsg.Response)) {
			g.sync(r, func(resp kmsg.Response) { resp.SetVersion(r.Version); done(resp) })
		})
	}
	s.fatalf("only join and sync can be asynchronous")
	return nil
}

func (s *script) barrier() {
	if s.c == nil {
		return
	}
	for _, g := range s.c.all() {
		g.barrier()
	}
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

func (s *script) nameOf(id string) string {
	for n, v := range s.ids {
		if v == id {
			return n
		}
	}
	if id == "" {
		return "none"
	}
	return "?" + id
}

// check compares resp with the expectations and records ids, generations
// and epochs for member name.
func (s *script) check(resp kmsg.Response, expect map[string]string, name string) {
	s.t.Helper()
	got := map[string]string{}
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		if r.MemberID != "" && name != "" {
			s.ids[name] = r.MemberID
		}
		for _, m := range r.Members {
			// Scripts use the member's name as its protocol metadata,
			// which names members the script has not heard from yet.
			if n := string(m.ProtocolMetadata); n != "" && s.ids[n] == "" {
				s.ids[n] = m.MemberID
			}
		}
		got["err"] = errName(r.ErrorCode)
		got["gen"] = strconv.Itoa(int(r.Generation))
		got["leader"] = s.nameOf(r.LeaderID)
		got["proto"] = deref(r.Protocol)
		got["skip"] = strconv.FormatBool(r.SkipAssignment)
		if r.MemberID != "" && name != "" {
			s.ids[name] = r.MemberID
		}
		if r.ErrorCode == 0 {
			s.gens[name] = r.Generation
		}
		var ms []string
		for _, m := range r.Members {
			ms = append(ms, s.nameOf(m.MemberID)+"/"+string(m.ProtocolMetadata))
		}
		got["members"] = strings.Join(ms, ",")
	case *kmsg.SyncGroupResponse:
		got["err"] = errName(r.ErrorCode)
		got["assignment"] = string(r.MemberAssignment)
		got["proto"] = deref(r.Protocol)
	case *kmsg.HeartbeatResponse:
		got["err"] = errName(r.ErrorCode)
	case *kmsg.LeaveGroupResponse:
		got["err"] = errName(r.ErrorCode)
		var ms []string
		for _, m := range r.Members {
			ms = append(ms, errName(m.ErrorCode))
		}
		got["members"] = strings.Join(ms, ",")
	case *kmsg.OffsetCommitResponse:
		var errs []string
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				errs = append(errs, fmt.Sprintf("%s:%d=%s", t.Topic, p.Partition, errName(p.ErrorCode)))
			}
		}
		got["errs"] = strings.Join(errs, ",")
		got["err"] = "NONE"
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					got["err"] = errName(p.ErrorCode)
				}
			}
		}
	case *kmsg.OffsetFetchResponse:
		var offs []string
		if r.Version >= 8 {
			for _, g := range r.Groups {
				got["err"] = errName(g.ErrorCode)
				for _, t := range g.Topics {
					for _, p := range t.Partitions {
						offs = append(offs, fmt.Sprintf("%s:%d=%d", t.Topic, p.Partition, p.Offset))
					}
				}
			}
		} else {
			got["err"] = errName(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					offs = append(offs, fmt.Sprintf("%s:%d=%d", t.Topic, p.Partition, p.Offset))
				}
			}
		}
		sort.Strings(offs)
		got["offsets"] = strings.Join(offs, ",")
	case *kmsg.DescribeGroupsResponse:
		g := r.Groups[0]
		got["err"] = errName(g.ErrorCode)
		got["state"] = g.State
		got["proto"] = g.Protocol
		got["type"] = g.ProtocolType
		var ms []string
		for _, m := range g.Members {
			ms = append(ms, s.nameOf(m.MemberID)+"/"+string(m.MemberAssignment))
		}
		got["members"] = strings.Join(ms, ",")
	case *kmsg.ListGroupsResponse:
		got["err"] = errName(r.ErrorCode)
		var gs []string
		for _, g := range r.Groups {
			gs = append(gs, g.Group+"/"+g.GroupState+"/"+g.GroupType)
		}
		got["groups"] = strings.Join(gs, ",")
	case *kmsg.DeleteGroupsResponse:
		got["err"] = errName(r.Groups[0].ErrorCode)
	case *kmsg.OffsetDeleteResponse:
		got["err"] = errName(r.ErrorCode)
		var errs []string
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				errs = append(errs, fmt.Sprintf("%s:%d=%s", t.Topic, p.Partition, errName(p.ErrorCode)))
			}
		}
		got["errs"] = strings.Join(errs, ",")
	case *kmsg.ConsumerGroupHeartbeatResponse:
		got["err"] = errName(r.ErrorCode)
		got["epoch"] = strconv.Itoa(int(r.MemberEpoch))
		if r.MemberID != nil && name != "" {
			s.ids[name] = *r.MemberID
		}
		if r.ErrorCode == 0 {
			s.epochs[name] = r.MemberEpoch
		}
		got["assigned"] = "unchanged"
		if r.Assignment != nil {
			a := s.formatAssignment(r.Assignment.Topics)
			s.assigned[name] = a
			got["assigned"] = a
		}
	case *kmsg.ConsumerGroupDescribeResponse:
		g := r.Groups[0]
		got["err"] = errName(g.ErrorCode)
		got["state"] = g.State
		got["epoch"] = strconv.Itoa(int(g.Epoch))
		got["assignor"] = g.AssignorName
		var ms []string
		for _, m := range g.Members {
			var parts []string
			for _, t := range m.Assignment.TopicPartitions {
				parts = append(parts, fmt.Sprintf("%s:%s", t.Topic, joinInts(t.Partitions)))
			}
			ms = append(ms, fmt.Sprintf("%s@%d[%s]", s.nameOf(m.MemberID), m.MemberEpoch, strings.Join(parts, ";")))
		}
		sort.Strings(ms)
		got["members"] = strings.Join(ms, ",")
	default:
		s.fatalf("unexpected response %T", resp)
	}
	keys := make([]string, 0, len(expect))
	for k := range expect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := expect[k]
		g, ok := got[k]
		if !ok {
			s.fatalf("%T has no field %q (have %v)", resp, k, got)
		}
		if k == "memberid" {
			continue
		}
		if g != want {
			s.fatalf("%s = %q, want %q (response %v)", k, g, want, got)
		}
	}
}

func joinInts(ps []int32) string {
	s := slices.Clone(ps)
	slices.Sort(s)
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = strconv.Itoa(int(p))
	}
	return strings.Join(out, ",")
}

func (s *script) formatAssignment(ts []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic) string {
	var out []string
	for _, t := range ts {
		name, _ := s.topics.TopicName(t.TopicID)
		out = append(out, name+":"+joinInts(t.Partitions))
	}
	sort.Strings(out)
	return strings.Join(out, ";")
}
