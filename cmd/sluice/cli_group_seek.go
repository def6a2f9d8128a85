package main

// `sluice group seek`: move a group's committed offsets for one topic, with
// an admin OffsetCommit (generation -1, no member). Kafka accepts that only
// while the group is empty; otherwise the broker's error is reported, with
// a hint, and nothing changes.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// seekTarget is a parsed --to.
type seekTarget struct {
	kind   string // "earliest", "latest", "offset", "timestamp"
	offset int64  // for "offset"
	millis int64  // for "timestamp"
}

// parseSeekTarget reads --to: earliest, latest, an offset, @<unix ms>, or
// an RFC 3339 time. A bare number is always an offset; timestamps need the
// '@' (or a date) so the two can never be confused.
func parseSeekTarget(s string) (seekTarget, error) {
	switch s {
	case "earliest", "beginning", "start":
		return seekTarget{kind: "earliest"}, nil
	case "latest", "end":
		return seekTarget{kind: "latest"}, nil
	case "":
		return seekTarget{}, usagef("--to is required: earliest, latest, an offset, @UNIX_MS or an RFC 3339 time")
	}
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return seekTarget{}, usagef("--to %q: want @ followed by milliseconds since the epoch", s)
		}
		return seekTarget{kind: "timestamp", millis: n}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return seekTarget{}, usagef("--to %q: offsets are not negative", s)
		}
		return seekTarget{kind: "offset", offset: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return seekTarget{kind: "timestamp", millis: t.UnixMilli()}, nil
	}
	return seekTarget{}, usagef("--to %q: want earliest, latest, an offset, @UNIX_MS or an RFC 3339 time", s)
}

type seekResultJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error"`
}

func groupSeek(env *cliIO, args []string) error {
	var (
		g         globalFlags
		topic, to string
		partition int
		dryRun    bool
		asJSON    bool
	)
	fs := newFlagSet(env, "group seek", groupSeekSynopsis)
	g.register(fs, env.getenv)
	fs.StringVar(&topic, "topic", "", "topic whose committed offsets move (required)")
	fs.StringVar(&to, "to", "", "earliest, latest, an offset, @UNIX_MS, or an RFC 3339 time (required)")
	fs.IntVar(&partition, "partition", -1, "move only this partition")
	fs.BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	fs.BoolVar(&asJSON, "json", false, "print a JSON array")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	group, err := oneName("group", pos)
	if err != nil {
		return err
	}
	if topic == "" {
		return usagef("--topic is required")
	}
	target, err := parseSeekTarget(to)
	if err != nil {
		return err
	}
	if partition < -1 || partition > 1<<31-1 {
		return usagef("--partition must be a partition number, got %d", partition)
	}

	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()

	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	var listed kadm.ListedOffsets
	switch target.kind {
	case "earliest":
		listed = starts
	case "latest":
		listed, err = adm.ListEndOffsets(ctx, topic)
	case "timestamp":
		listed, err = adm.ListOffsetsAfterMilli(ctx, target.millis, topic)
	case "offset":
		listed, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	offsets := make(kadm.Offsets)
	listed.Each(func(l kadm.ListedOffset) {
		if partition >= 0 && l.Partition != int32(partition) {
			return
		}
		at := l.Offset
		if target.kind == "offset" {
			// Clamp into [start, end], as Kafka's own tool does.
			start := int64(0)
			if s, ok := starts.Lookup(topic, l.Partition); ok {
				start = s.Offset
			}
			at = min(max(target.offset, start), l.Offset)
			if at != target.offset {
				fmt.Fprintf(env.stderr, "sluice group seek: %s[%d]: offset %d is outside [%d, %d]; using %d\n",
					topic, l.Partition, target.offset, start, l.Offset, at)
			}
		}
		offsets.AddOffset(topic, l.Partition, at, -1)
	})
	if len(offsets) == 0 {
		return fmt.Errorf("topic %q has no partition %d", topic, partition)
	}

	results := make([]seekResultJSON, 0)
	for _, o := range offsets.Sorted() {
		results = append(results, seekResultJSON{Topic: o.Topic, Partition: o.Partition, Offset: o.At})
	}
	var commitErr error
	if !dryRun {
		resps, err := adm.CommitOffsets(ctx, group, offsets)
		if err != nil {
			return fmt.Errorf("commit offsets of group %q: %w", group, err)
		}
		for i := range results {
			r, ok := resps.Lookup(results[i].Topic, results[i].Partition)
			switch {
			case !ok:
				results[i].Error = "missing from the broker's response"
			case r.Err != nil:
				results[i].Error = errName(r.Err)
				if commitErr == nil {
					commitErr = r.Err
				}
			}
		}
	}
	if asJSON {
		if err := writeJSON(env.stdout, results); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tNEW-OFFSET\tERROR")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Topic, r.Partition, r.Offset, r.Error)
		}
		tw.Flush()
	}
	if commitErr != nil {
		return fmt.Errorf("the broker refused to move group %q: %w%s", group, commitErr, seekHint(commitErr))
	}
	if dryRun {
		fmt.Fprintf(env.stderr, "dry run: group %q not changed\n", group)
	}
	return nil
}

// seekHint explains the errors Kafka gives for a commit into a group that
// still has members.
func seekHint(err error) string {
	for _, e := range []error{kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress, kerr.StaleMemberEpoch, kerr.FencedMemberEpoch} {
		if errors.Is(err, e) {
			return " (offsets can only be moved while the group is empty: stop its consumers first)"
		}
	}
	return ""
}
