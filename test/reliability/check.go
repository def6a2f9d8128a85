package reliability

import (
	"fmt"
	"sort"
)

// Ack is a record the broker acknowledged: the producer's sequence number
// within its partition and the offset the broker answered with.
type Ack struct {
	Partition int32
	Offset    int64
	Seq       int64
}

// Read is a record as a consumer read it back.
type Read struct {
	Partition int32
	Offset    int64
	Seq       int64
}

// LogReport is what CheckLog found. Lost, Duplicated, Reordered and
// Misplaced count violations; Problems describes the first few.
type LogReport struct {
	Acked      int // acknowledged records
	Read       int // records read back
	Unacked    int // records read back that were never acknowledged (allowed)
	Lost       int // acknowledged but not read back
	Duplicated int // a sequence number read more than once
	Reordered  int // a sequence number read after a larger one
	Misplaced  int // acknowledged at one offset, read at another
	Problems   []string
}

// OK reports whether the history has no violation.
func (r LogReport) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 && r.Misplaced == 0
}

func (r LogReport) String() string {
	return fmt.Sprintf("%d acknowledged, %d read back (%d never acknowledged), lost %d, duplicated %d, reordered %d, misplaced %d",
		r.Acked, r.Read, r.Unacked, r.Lost, r.Duplicated, r.Reordered, r.Misplaced)
}

const maxProblems = 10

func (r *LogReport) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// CheckLog checks what was read back from a log against what was
// acknowledged by an idempotent producer that numbers its records 0, 1, 2…
// per partition. reads must be every record of the partitions, in offset
// order per partition. Every acknowledged record must be read exactly once,
// at its acknowledged offset; records never acknowledged may be missing
// but, like every record, never duplicated, and sequence numbers must
// increase along the log.
func CheckLog(acks []Ack, reads []Read) LogReport {
	r := LogReport{Acked: len(acks), Read: len(reads)}
	type key struct {
		p   int32
		seq int64
	}
	ackAt := make(map[key]int64, len(acks))
	for _, a := range acks {
		ackAt[key{a.Partition, a.Seq}] = a.Offset
	}
	seen := make(map[key]int, len(reads))
	last := map[int32]int64{}    // partition -> largest sequence read so far
	lastOff := map[int32]int64{} // partition -> last offset read
	for _, rd := range reads {
		k := key{rd.Partition, rd.Seq}
		if off, ok := lastOff[rd.Partition]; ok && rd.Offset <= off {
			r.problem("partition %d: offset %d read after offset %d", rd.Partition, rd.Offset, off)
			r.Reordered++
		}
		lastOff[rd.Partition] = rd.Offset
		seen[k]++
		switch {
		case seen[k] > 1:
			r.Duplicated++
			r.problem("partition %d: sequence %d read again at offset %d", rd.Partition, rd.Seq, rd.Offset)
		case rd.Seq < last[rd.Partition]:
			r.Reordered++
			r.problem("partition %d: sequence %d at offset %d after sequence %d", rd.Partition, rd.Seq, rd.Offset, last[rd.Partition])
		}
		if prev, ok := last[rd.Partition]; !ok || rd.Seq > prev {
			last[rd.Partition] = rd.Seq
		}
		off, acked := ackAt[k]
		switch {
		case !acked:
			if seen[k] == 1 {
				r.Unacked++
			}
		case off != rd.Offset:
			r.Misplaced++
			r.problem("partition %d: sequence %d acknowledged at offset %d, read at %d", rd.Partition, rd.Seq, off, rd.Offset)
		}
	}
	lost := make([]Ack, 0)
	for _, a := range acks {
		if seen[key{a.Partition, a.Seq}] == 0 {
			r.Lost++
			lost = append(lost, a)
		}
	}
	sort.Slice(lost, func(i, j int) bool {
		if lost[i].Partition != lost[j].Partition {
			return lost[i].Partition < lost[j].Partition
		}
		return lost[i].Seq < lost[j].Seq
	})
	for _, a := range lost {
		r.problem("partition %d: sequence %d acknowledged at offset %d is missing", a.Partition, a.Seq, a.Offset)
	}
	return r
}

// CheckCommits checks the committed offsets a broker returns after a
// restart: per partition, never behind the last commit it acknowledged
// (acked) and never ahead of the last one attempted (attempted), since a
// commit that was in flight at the crash may or may not have landed.
// Partitions missing from got count as offset -1 (nothing committed).
func CheckCommits(acked, attempted, got map[int32]int64) []string {
	var problems []string
	parts := make([]int32, 0, len(acked))
	for p := range acked {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		g, ok := got[p]
		if !ok {
			g = -1
		}
		if g < acked[p] {
			problems = append(problems, fmt.Sprintf("partition %d: committed offset %d went back below the acknowledged commit %d", p, g, acked[p]))
		}
		if a, ok := attempted[p]; ok && g > a {
			problems = append(problems, fmt.Sprintf("partition %d: committed offset %d is beyond any commit made (%d)", p, g, a))
		}
	}
	return problems
}
