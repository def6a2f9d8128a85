package main

// `sluice produce TOPIC`: one record per stdin line, through kgo.
//
// Each line (without its trailing "\n") is a record value; with
// --key-delimiter the line is split at the first delimiter into key and
// value (a line without the delimiter has a null key). Every --header is
// attached to every record. Records go to --partition if given, else to the
// client's default partitioner (sticky for unkeyed records, hashed by key
// otherwise, as Kafka's Java client does).
//
// A summary goes to stderr at the end; the exit code is 1 if any record
// failed. The first few failures are printed with their line numbers.
// SIGINT stops reading, then waits (bounded by --timeout) for what was
// already sent.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	registerCLI("produce", "write stdin lines as records to a topic", runProduce)
}

const produceSynopsis = "produce TOPIC [--key-delimiter STR] [--header k=v ...] [--partition N] [--acks all|1|0]"

// maxReportedFailures bounds how many individual record failures are printed.
const maxReportedFailures = 10

type produceOptions struct {
	global    globalFlags
	topic     string
	keyDelim  string
	headers   []kgo.RecordHeader
	partition int32 // -1: let the partitioner choose
	acks      kgo.Acks
	idempot   bool // acks=all keeps the idempotent producer on
	maxBytes  int
}

// parseProduceArgs turns the command line into options (table-tested).
func parseProduceArgs(env *cliIO, args []string) (*produceOptions, error) {
	var (
		o         produceOptions
		headers   multiFlag
		partition int
		acks      string
	)
	fs := newFlagSet(env, "produce", produceSynopsis)
	o.global.register(fs, env.getenv)
	fs.StringVar(&o.keyDelim, "key-delimiter", "", "split each line at the first `STR` into key and value")
	fs.Var(&headers, "header", "header `key=value` added to every record (repeatable)")
	fs.IntVar(&partition, "partition", -1, "write every record to this partition (-1: partitioner decides)")
	fs.StringVar(&acks, "acks", "all", "acknowledgement level: all, 1 or 0")
	fs.IntVar(&o.maxBytes, "max-line-bytes", 1<<20, "longest accepted input line")
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
	switch acks {
	case "all", "-1":
		o.acks, o.idempot = kgo.AllISRAcks(), true
	case "1":
		o.acks = kgo.LeaderAck()
	case "0":
		o.acks = kgo.NoAck()
	default:
		return nil, usagef("--acks must be all, 1 or 0, got %q", acks)
	}
	for _, h := range headers {
		k, v, err := parseKeyValue("--header", h)
		if err != nil {
			return nil, err
		}
		o.headers = append(o.headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if o.maxBytes <= 0 {
		return nil, usagef("--max-line-bytes must be positive")
	}
	return &o, nil
}

// record builds the record for one input line (line has no trailing "\n").
func (o *produceOptions) record(line []byte) *kgo.Record {
	r := &kgo.Record{Topic: o.topic, Partition: o.partition, Headers: o.headers}
	if o.keyDelim != "" {
		if i := bytes.Index(line, []byte(o.keyDelim)); i >= 0 {
			r.Key = line[:i]
			line = line[i+len(o.keyDelim):]
		}
	}
	r.Value = line
	return r
}

// produceStats counts outcomes; promises run on the client's goroutines.
type produceStats struct {
	mu        sync.Mutex
	ok        int64
	failed    int64
	firstErrs []string
}

func (s *produceStats) done(line int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.ok++
		return
	}
	s.failed++
	if len(s.firstErrs) < maxReportedFailures {
		s.firstErrs = append(s.firstErrs, fmt.Sprintf("line %d: %v", line, err))
	}
}

func runProduce(env *cliIO, args []string) int {
	return finish(env, "produce", produce(env, args))
}

func produce(env *cliIO, args []string) error {
	o, err := parseProduceArgs(env, args)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(o.topic),
		kgo.AllowAutoTopicCreation(), // where the broker allows it, as kcat does
		kgo.RequiredAcks(o.acks),
		kgo.RecordDeliveryTimeout(o.global.timeout),
		kgo.ProducerBatchMaxBytes(int32(min(max(o.maxBytes+1024, 1<<20), 1<<30))),
	}
	if !o.idempot {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := o.global.connect(env, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	start := time.Now()
	var stats produceStats
	var lineNo int64
	readErr := readLines(env.ctx, env.stdin, o.maxBytes, func(line []byte) {
		lineNo++
		n := lineNo
		// The client keeps the record until its promise runs, so it
		// gets its own copy of the line.
		r := o.record(bytes.Clone(line))
		// Produce uses ctx only while waiting for buffer space; delivery
		// is bounded by RecordDeliveryTimeout.
		cl.Produce(env.ctx, r, func(_ *kgo.Record, err error) { stats.done(n, err) })
	})
	interrupted := env.ctx.Err() != nil

	// Wait for what was sent, even after SIGINT, within --timeout.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(env.ctx), o.global.timeout)
	defer cancel()
	flushErr := cl.Flush(flushCtx)

	stats.mu.Lock()
	defer stats.mu.Unlock()
	for _, e := range stats.firstErrs {
		fmt.Fprintf(env.stderr, "sluice produce: %s\n", e)
	}
	if stats.failed > int64(len(stats.firstErrs)) {
		fmt.Fprintf(env.stderr, "sluice produce: ... and %d more failures\n", stats.failed-int64(len(stats.firstErrs)))
	}
	pending := lineNo - stats.ok - stats.failed
	fmt.Fprintf(env.stderr, "produced %d record(s) to %q in %v", stats.ok, o.topic, time.Since(start).Round(time.Millisecond))
	if stats.failed > 0 || pending > 0 {
		fmt.Fprintf(env.stderr, "; %d failed, %d unconfirmed", stats.failed, pending)
	}
	fmt.Fprintln(env.stderr)

	switch {
	case readErr != nil:
		return fmt.Errorf("reading stdin: %w", readErr)
	case stats.failed > 0 || pending > 0:
		if flushErr != nil {
			return fmt.Errorf("%d of %d record(s) not acknowledged: %w", stats.failed+pending, lineNo, flushErr)
		}
		return fmt.Errorf("%d of %d record(s) not acknowledged", stats.failed+pending, lineNo)
	case interrupted:
		fmt.Fprintln(env.stderr, "sluice produce: interrupted; stopped reading stdin")
	}
	return nil
}

// errLineTooLong reports an input line longer than --max-line-bytes.
var errLineTooLong = errors.New("line longer than --max-line-bytes")

// readLines calls fn for each "\n"-terminated line of r (the last line may
// lack the "\n"; an empty remainder after the last "\n" is not a line). It
// returns early, without error, once ctx is done: the reading runs on its
// own goroutine so a blocked stdin never delays that (that goroutine then
// stays blocked in Read until the process exits). fn's argument is only
// valid during the call.
func readLines(ctx context.Context, r io.Reader, maxBytes int, fn func([]byte)) error {
	type chunk struct {
		line []byte
		last bool // no more lines; err says why
		err  error
	}
	lines := make(chan chunk)
	next := make(chan struct{}) // fn is done with the line; its buffer may be reused
	stop := make(chan struct{})
	defer close(stop)
	send := func(c chunk) bool {
		select {
		case lines <- c:
		case <-stop:
			return false
		}
		if c.last {
			return false
		}
		select {
		case <-next:
			return true
		case <-stop:
			return false
		}
	}
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		var buf []byte
		for {
			buf = buf[:0]
			var err error
			for {
				var frag []byte
				frag, err = br.ReadSlice('\n')
				buf = append(buf, frag...)
				if len(buf) > maxBytes+1 {
					err = fmt.Errorf("%w (%d bytes)", errLineTooLong, maxBytes)
					break
				}
				if !errors.Is(err, bufio.ErrBufferFull) {
					break
				}
			}
			line := bytes.TrimSuffix(buf, []byte("\n"))
			if (err == nil || (errors.Is(err, io.EOF) && len(line) > 0)) && !send(chunk{line: line}) {
				return
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				send(chunk{last: true, err: err})
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-lines:
			if c.last {
				return c.err
			}
			fn(c.line)
			next <- struct{}{}
		}
	}
}
