package reliability

import (
	"strings"
	"testing"
)

// clean is a history of two partitions with nothing wrong: sequences 0-3
// on partition 0 (3 never acknowledged, but written), 0-1 on partition 1.
func clean() ([]Ack, []Read) {
	acks := []Ack{{0, 0, 0}, {0, 1, 1}, {0, 2, 2}, {1, 0, 0}, {1, 1, 1}}
	reads := []Read{{0, 0, 0}, {0, 1, 1}, {0, 2, 2}, {0, 3, 3}, {1, 0, 0}, {1, 1, 1}}
	return acks, reads
}

func TestCheckLogClean(t *testing.T) {
	acks, reads := clean()
	r := CheckLog(acks, reads)
	if !r.OK() || r.Unacked != 1 || r.Acked != 5 || r.Read != 6 {
		t.Fatalf("clean history: %v %v", r, r.Problems)
	}
	// An unacknowledged record may be missing.
	r = CheckLog(acks, append(reads[:3:3], reads[4:]...))
	if !r.OK() {
		t.Fatalf("missing unacknowledged record flagged: %v %v", r, r.Problems)
	}
}

// TestCheckLogDetects fabricates each fault the crash harness looks for and
// checks that the checker reports it: the harness can fail.
func TestCheckLogDetects(t *testing.T) {
	cases := []struct {
		name  string
		reads func([]Read) []Read
		want  func(LogReport) bool
		text  string
	}{
		{"loss", func(r []Read) []Read { return append(r[:1:1], r[2:]...) }, // seq 1 of p0 gone
			func(r LogReport) bool { return r.Lost == 1 }, "sequence 1 acknowledged at offset 1 is missing"},
		{"duplicate", func(r []Read) []Read { return append(r[:6:6], Read{1, 2, 1}) },
			func(r LogReport) bool { return r.Duplicated == 1 }, "sequence 1 read again"},
		{"duplicate of an unacknowledged record", func(r []Read) []Read { return append(r[:4:4], Read{0, 4, 3}) },
			func(r LogReport) bool { return r.Duplicated == 1 }, "sequence 3 read again"},
		{"reorder", func(r []Read) []Read {
			return []Read{{0, 0, 0}, {0, 1, 2}, {0, 2, 1}, {1, 0, 0}, {1, 1, 1}}
		}, func(r LogReport) bool { return r.Reordered == 1 && r.Misplaced == 2 }, "sequence 1 at offset 2 after sequence 2"},
		{"acknowledged offset reused", func(r []Read) []Read {
			return []Read{{0, 0, 0}, {0, 1, 1}, {0, 5, 2}, {1, 0, 0}, {1, 1, 1}}
		}, func(r LogReport) bool { return r.Misplaced == 1 }, "acknowledged at offset 2, read at 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acks, reads := clean()
			r := CheckLog(acks, tc.reads(reads))
			if r.OK() || !tc.want(r) {
				t.Fatalf("got %v", r)
			}
			if !strings.Contains(strings.Join(r.Problems, "\n"), tc.text) {
				t.Fatalf("problems %q do not mention %q", r.Problems, tc.text)
			}
		})
	}
}

func TestCheckCommits(t *testing.T) {
	acked := map[int32]int64{0: 10, 1: 5, 2: 0}
	attempted := map[int32]int64{0: 12, 1: 5, 2: 3}
	if p := CheckCommits(acked, attempted, map[int32]int64{0: 10, 1: 5, 2: 3}); len(p) != 0 {
		t.Fatalf("good commits flagged: %v", p)
	}
	p := CheckCommits(acked, attempted, map[int32]int64{0: 9, 1: 6})
	if len(p) != 3 {
		t.Fatalf("want 3 problems (p0 back, p1 ahead, p2 missing), got %q", p)
	}
	for i, want := range []string{"partition 0: committed offset 9 went back", "partition 1: committed offset 6 is beyond", "partition 2: committed offset -1 went back"} {
		if !strings.HasPrefix(p[i], want) {
			t.Fatalf("problem %d = %q, want prefix %q", i, p[i], want)
		}
	}
}
