package main

// `sluice consume TOPIC`: print records, through kgo.
//
// Where it starts:
//   - default: the end of every partition (only new records);
//   - --from-beginning: the start of every partition;
//   - --offset N|earliest|latest|-N: that offset (-N: N records before the
//     end) in --partition P, or in every partition without --partition;
//   - --group G: the group's committed offsets (falling back to the end, or
//     the start with --from-beginning); printed records are committed when
//     the command exits (and periodically while it runs). --group-protocol
//     consumer joins with KIP-848 (broker-side assignment) instead of the
//     classic protocol.
//
// Output is one --format rendering per record (see cli_format.go) or, with
// --json, one JSON object per line (stable; fields are only ever added):
//
//	{"topic": string, "partition": int, "offset": int,
//	 "timestamp": int (ms since the epoch), "key": string|null,
//	 "value": string|null, "headers": [{"key": string, "value": string|null,
//	 "value_encoding"?: "base64"}], "key_encoding"?: "base64",
//	 "value_encoding"?: "base64"}
//
// key, value and header values are the raw bytes as a string when they are
// valid UTF-8; otherwise standard base64 with the matching *_encoding field
// set to "base64". null is a Kafka null.
//
// --count N exits after N records; --exit-at-end (-e) exits once every
// partition has been read up to the end offset it had when consuming began
// (a partition whose last offsets are transaction markers, which are never
// returned as records, would keep it waiting). SIGINT or SIGTERM exits
// cleanly (status 0) after committing, for a group, what was printed.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerCLI("consume", "print records of a topic", runConsume)
}

const consumeSynopsis = "consume TOPIC [--from-beginning] [--offset N|earliest|latest|-N] [--partition N] [--group G [--group-protocol classic|consumer]] [--count N] [--exit-at-end] [--format FMT | --json]"

type consumeOptions struct {
	global        globalFlags
	topic         string
	fromBeginning bool
	offsetSet     bool      // --offset was given
	start         startSpec // where each partition starts without a group commit
	exitAtEnd     bool
	partition     int32 // -1: all partitions
	group         string
	groupProtocol string // "classic" or "consumer" (KIP-848)
	count         int64  // 0: unbounded
	format        recordFormat
	json          bool
}

// startSpec is a start position: the log start, the log end, an absolute
// offset, or N records before the end. It is kept in this form, not only
// as a kgo.Offset, so --exit-at-end can resolve it against listed offsets.
type startSpec struct {
	kind byte  // 's' log start, 'e' log end, 'a' absolute offset n, 'r' n (<0) from the end
	n    int64 // for 'a' and 'r'
}

func (s startSpec) kgoOffset() kgo.Offset {
	switch s.kind {
	case 's':
		return kgo.NewOffset().AtStart()
	case 'a':
		return kgo.NewOffset().At(s.n)
	case 'r':
		return kgo.NewOffset().AtEnd().Relative(s.n)
	}
	return kgo.NewOffset().AtEnd()
}

// resolve is the first offset consumed from a partition whose log spans
// [logStart, end), with kgo's rule that out-of-range positions are bounded
// to the log.
func (s startSpec) resolve(logStart, end int64) int64 {
	var at int64
	switch s.kind {
	case 's':
		at = logStart
	case 'a':
		at = s.n
	case 'r':
		at = end + s.n
	default:
		at = end
	}
	return min(max(at, logStart), end)
}

// parseOffset reads --offset: an absolute offset, earliest, latest, or -N
// for N records before the end.
func parseOffset(s string) (startSpec, error) {
	switch s {
	case "earliest", "beginning", "start":
		return startSpec{kind: 's'}, nil
	case "latest", "end":
		return startSpec{kind: 'e'}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return startSpec{}, usagef("--offset wants a number, earliest or latest, got %q", s)
	}
	if n < 0 {
		return startSpec{kind: 'r', n: n}, nil
	}
	return startSpec{kind: 'a', n: n}, nil
}

// parseConsumeArgs turns the command line into options (table-tested).
func parseConsumeArgs(env *cliIO, args []string) (*consumeOptions, error) {
	var (
		o         consumeOptions
		offset    string
		partition int
		format    string
	)
	fs := newFlagSet(env, "consume", consumeSynopsis)
	o.global.register(fs, env.getenv)
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the beginning of each partition (default: the end)")
	fs.StringVar(&offset, "offset", "", "start at `N`, earliest, latest, or -N (N before the end)")
	fs.IntVar(&partition, "partition", -1, "consume only this partition")
	fs.StringVar(&o.group, "group", "", "consume as a member of consumer group `G`, committing printed records")
	fs.StringVar(&o.groupProtocol, "group-protocol", "classic", "group protocol with --group: classic, or consumer (KIP-848, broker-side assignment)")
	fs.BoolVar(&o.exitAtEnd, "exit-at-end", false, "exit once every partition is read up to the end it had at start (not with --group)")
	fs.BoolVar(&o.exitAtEnd, "e", false, "short for --exit-at-end")
	fs.Int64Var(&o.count, "count", 0, "exit after `N` records (0: never)")
	fs.StringVar(&format, "format", defaultFormat, "kcat-style output format (%t %p %o %k %v %s %h %T %K %S, \\n \\t)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per record and line")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if o.topic, err = oneName("topic", pos); err != nil {
		return nil, err
	}
	if partition < -1 || partition > 1<<31-1 {
		return nil, usagef("--partition must be a partition number, got %d", partition)
	}
	o.partition = int32(partition)
	if o.count < 0 {
		return nil, usagef("--count must not be negative, got %d", o.count)
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if explicit["format"] && o.json {
		return nil, usagef("--format and --json are exclusive")
	}
	if o.format, err = parseFormat(format); err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	o.start = startSpec{kind: 'e'}
	if o.fromBeginning {
		o.start = startSpec{kind: 's'}
	}
	if explicit["offset"] {
		if o.start, err = parseOffset(offset); err != nil {
			return nil, err
		}
		o.offsetSet = true
		if o.fromBeginning {
			return nil, usagef("--offset and --from-beginning are exclusive")
		}
	}
	switch o.groupProtocol {
	case "classic", "consumer":
	default:
		return nil, usagef("--group-protocol must be classic or consumer, got %q", o.groupProtocol)
	}
	if explicit["group-protocol"] && o.group == "" {
		return nil, usagef("--group-protocol needs --group")
	}
	if o.group != "" && (o.offsetSet || o.partition >= 0) {
		return nil, usagef("--group cannot be combined with --offset or --partition (use 'sluice group seek' to move a group)")
	}
	if o.group != "" && o.exitAtEnd {
		return nil, usagef("--exit-at-end cannot be combined with --group (other members may own partitions)")
	}
	return &o, nil
}

// clientOptions are the kgo options that decide where consuming starts.
func (o *consumeOptions) clientOptions() []kgo.Opt {
	start := o.start.kgoOffset()
	opts := []kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond)}
	switch {
	case o.group != "":
		opts = append(opts,
			kgo.ConsumeTopics(o.topic),
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeStartOffset(start),
			kgo.AutoCommitMarks(),
		)
		if o.groupProtocol == "consumer" {
			// Range is what the broker runs; the client only names it.
			opts = append(opts, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
		}
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			o.topic: {o.partition: start},
		}))
	default:
		opts = append(opts, kgo.ConsumeTopics(o.topic), kgo.ConsumeStartOffset(start))
	}
	return opts
}

func runConsume(env *cliIO, args []string) int {
	return finish(env, "consume", consume(env, args))
}

func consume(env *cliIO, args []string) error {
	o, err := parseConsumeArgs(env, args)
	if err != nil {
		return err
	}
	cl, err := o.global.connect(env, o.clientOptions()...)
	if err != nil {
		return err
	}
	defer cl.Close() // for a group: leaves it
	partitions, err := checkTopic(env, o, cl)
	if err != nil {
		return err
	}
	var remaining map[int32]int64 // --exit-at-end: partition -> end offset still to reach
	if o.exitAtEnd {
		if remaining, err = endsToReach(env, o, cl, partitions); err != nil {
			return err
		}
	}

	out := bufio.NewWriterSize(env.stdout, 64<<10)
	var (
		buf     []byte
		printed int64
		runErr  error
	)
poll:
	for (o.count == 0 || printed < o.count) && (remaining == nil || len(remaining) > 0) {
		fetches := cl.PollFetches(env.ctx)
		if env.ctx.Err() != nil {
			break
		}
		for _, fe := range fetches.Errors() {
			if isFatalFetchErr(fe.Err) {
				runErr = fetchErr(fe)
				break poll
			}
			fmt.Fprintf(env.stderr, "sluice consume: %v (retrying)\n", fetchErr(fe))
		}
		iter := fetches.RecordIter()
		for !iter.Done() && (o.count == 0 || printed < o.count) {
			r := iter.Next()
			buf = buf[:0]
			if o.json {
				buf = appendRecordJSON(buf, r)
			} else {
				buf = o.format.appendRecord(buf, r)
			}
			if _, err := out.Write(buf); err != nil {
				runErr = fmt.Errorf("writing output: %w", err)
				break poll
			}
			printed++
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		}
		if err := out.Flush(); err != nil {
			runErr = fmt.Errorf("writing output: %w", err)
			break
		}
	}
	if err := out.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing output: %w", err)
	}
	if o.group != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(env.ctx), o.global.timeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(ctx); err != nil && runErr == nil {
			runErr = fmt.Errorf("commit offsets of group %q: %w", o.group, err)
		}
	}
	return runErr
}

// endsToReach lists, for --exit-at-end, the end offset of every consumed
// partition that has records past its start position.
func endsToReach(env *cliIO, o *consumeOptions, cl *kgo.Client, partitions int32) (map[int32]int64, error) {
	ctx, cancel := o.global.opContext(env)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, o.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %q: %w", o.topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, o.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", o.topic, err)
	}
	remaining := map[int32]int64{}
	for p := range partitions {
		if o.partition >= 0 && p != o.partition {
			continue
		}
		s, okS := starts.Lookup(o.topic, p)
		e, okE := ends.Lookup(o.topic, p)
		if !okS || !okE {
			return nil, fmt.Errorf("no offsets listed for %s[%d]", o.topic, p)
		}
		if o.start.resolve(s.Offset, e.Offset) < e.Offset {
			remaining[p] = e.Offset
		}
	}
	return remaining, nil
}

// checkTopic fails fast, within --timeout, when the topic (or the asked-for
// partition) does not exist, instead of polling forever. It returns the
// topic's partition count.
func checkTopic(env *cliIO, o *consumeOptions, cl *kgo.Client) (int32, error) {
	ctx, cancel := o.global.opContext(env)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(o.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata for topic %q: %w", o.topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != o.topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, fmt.Errorf("topic %q: %w", o.topic, err)
		}
		if o.partition >= int32(len(t.Partitions)) {
			return 0, fmt.Errorf("topic %q has %d partition(s); there is no partition %d", o.topic, len(t.Partitions), o.partition)
		}
		return int32(len(t.Partitions)), nil
	}
	return 0, fmt.Errorf("topic %q: not in the broker's metadata response", o.topic)
}

// fetchErr names where a fetch error happened: a partition, or the group.
func fetchErr(fe kgo.FetchError) error {
	if fe.Topic == "" || fe.Partition < 0 {
		return fe.Err
	}
	return fmt.Errorf("%s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
}

// isFatalFetchErr reports a fetch or group error that retrying cannot fix
// (kgo retries the others itself): the client is closed, the topic is gone
// or forbidden, or the group session failed with an error that is neither
// a retriable Kafka error nor a network failure (for example a broker that
// does not implement the group APIs).
func isFatalFetchErr(err error) bool {
	if errors.Is(err, kgo.ErrClientClosed) ||
		errors.Is(err, kerr.UnknownTopicID) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) {
		return true
	}
	var session *kgo.ErrGroupSession
	if !errors.As(err, &session) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return !ke.Retriable
	}
	var ne net.Error
	return !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET)
}
