package group

import (
	"bytes"
	"sort"
)

// Server-side assignors for KIP-848 groups. Both are pure functions of the
// members' subscriptions, the topics' partition counts and (uniform) the
// previous target assignment, so they are deterministic and testable alone.
//
// uniform: every partition of the subscribed topics goes to a subscribed
// member; members end with floor(P/M) or floor(P/M)+1 partitions (exactly,
// when subscriptions are identical), and a partition stays with its
// previous owner whenever that keeps the balance.
//
// range: per topic, the subscribed members sorted by id get contiguous
// ranges of partitions, the first n%k one more, so that members subscribed
// to co-partitioned topics get the same partition numbers of each.

const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

func validAssignor(name string) bool { return name == assignorUniform || name == assignorRange }

// tp is a topic partition, by topic ID.
type tp struct {
	id [16]byte
	p  int32
}

// tpSet is a set of topic partitions.
type tpSet map[tp]struct{}

func (s tpSet) sorted() []tp {
	out := make([]tp, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sortTPs(out)
	return out
}

func sortTPs(s []tp) {
	sort.Slice(s, func(i, j int) bool {
		if c := bytes.Compare(s[i].id[:], s[j].id[:]); c != 0 {
			return c < 0
		}
		return s[i].p < s[j].p
	})
}

func (s tpSet) clone() tpSet {
	out := make(tpSet, len(s))
	for k := range s {
		out[k] = struct{}{}
	}
	return out
}

func (s tpSet) equal(o tpSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

// topicInfo is what an assignor knows of a topic.
type topicInfo struct {
	n  int32
	id [16]byte
}

type assignMember struct {
	id     string
	topics []string // sorted
}

// assign runs the named assignor. members are sorted by id.
func assign(name string, members []assignMember, meta map[string]topicInfo, prev map[string]tpSet) map[string]tpSet {
	if name == assignorRange {
		return assignRange(members, meta)
	}
	return assignUniform(members, meta, prev)
}

func assignRange(members []assignMember, meta map[string]topicInfo) map[string]tpSet {
	out := make(map[string]tpSet, len(members))
	subs := map[string][]string{}
	for _, m := range members {
		out[m.id] = tpSet{}
		for _, t := range m.topics {
			subs[t] = append(subs[t], m.id)
		}
	}
	for t, ids := range subs {
		info, ok := meta[t]
		if !ok || info.n <= 0 {
			continue
		}
		sort.Strings(ids)
		k := int32(len(ids))
		per, extra := info.n/k, info.n%k
		next := int32(0)
		for i, id := range ids {
			cnt := per
			if int32(i) < extra {
				cnt++
			}
			for p := next; p < next+cnt; p++ {
				out[id][tp{info.id, p}] = struct{}{}
			}
			next += cnt
		}
	}
	return out
}

func assignUniform(members []assignMember, meta map[string]topicInfo, prev map[string]tpSet) map[string]tpSet {
	out := make(map[string]tpSet, len(members))
	count := make(map[string]int, len(members))
	eligible := map[[16]byte]map[string]bool{}
	var all []tp
	active := 0
	for _, m := range members {
		out[m.id] = tpSet{}
		any := false
		for _, t := range m.topics {
			info, ok := meta[t]
			if !ok || info.n <= 0 {
				continue
			}
			any = true
			if eligible[info.id] == nil {
				eligible[info.id] = map[string]bool{}
				for p := int32(0); p < info.n; p++ {
					all = append(all, tp{info.id, p})
				}
			}
			eligible[info.id][m.id] = true
		}
		if any {
			active++
		}
	}
	if active == 0 {
		return out
	}
	sortTPs(all)
	floor, extras := len(all)/active, len(all)%active
	taken := make(map[tp]bool, len(all))
	give := func(id string, p tp) {
		out[id][p] = struct{}{}
		count[id]++
		taken[p] = true
	}
	// Keep previous partitions up to the floor, then one more for as many
	// members as there are extra partitions.
	for _, m := range members {
		for _, p := range prev[m.id].sorted() {
			if count[m.id] < floor && !taken[p] && eligible[p.id][m.id] {
				give(m.id, p)
			}
		}
	}
	for _, m := range members {
		if extras == 0 {
			break
		}
		if count[m.id] != floor {
			continue
		}
		for _, p := range prev[m.id].sorted() {
			if !taken[p] && eligible[p.id][m.id] {
				give(m.id, p)
				extras--
				break
			}
		}
	}
	// The rest go to the least-loaded eligible member.
	for _, p := range all {
		if taken[p] {
			continue
		}
		best := ""
		for _, m := range members {
			if !eligible[p.id][m.id] {
				continue
			}
			if best == "" || count[m.id] < count[best] {
				best = m.id
			}
		}
		if best != "" {
			give(best, p)
		}
	}
	return out
}
