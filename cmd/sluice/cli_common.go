package main

// This file holds what every client verb (topic, produce, consume, group)
// shares: the I/O bundle that lets tests run a verb in-process, interspersed
// flag parsing, the global flags (--brokers, --timeout, --verbose), client
// construction with a bounded reachability check, and the mapping from
// errors to exit codes.
//
// The client verbs speak only the Kafka protocol through franz-go (kgo for
// records, kadm for administration), so they work against Kafka as well as
// sluice. They never import the broker's internal packages.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exit codes shared by every verb (see main.go).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const (
	defaultBrokers = "127.0.0.1:9092"
	defaultTimeout = 10 * time.Second
	envBrokers     = "SLUICE_BROKERS"
)

// cliIO is everything a client verb touches outside its arguments. main
// wires it to the process; tests wire it to buffers and a cancelable context.
type cliIO struct {
	ctx    context.Context // canceled on SIGINT/SIGTERM
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// registerCLI registers a client verb with main's registry, giving it the
// process's standard streams and a context canceled by the first SIGINT or
// SIGTERM.
func registerCLI(name, summary string, run func(*cliIO, []string) int) {
	register(name, summary, func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The first signal asks the verb to wind down; a second one
		// kills the process as usual.
		context.AfterFunc(ctx, stop)
		return run(&cliIO{ctx: ctx, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, args)
	})
}

// usageError marks an error caused by how the command was invoked (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// finish prints err (if any) to stderr prefixed with the command name and
// returns the exit code that goes with it.
func finish(env *cliIO, name string, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "sluice %s: %v\nrun 'sluice %s -h' for usage\n", name, err, name)
		return exitUsage
	default:
		fmt.Fprintf(env.stderr, "sluice %s: %v\n", name, err)
		return exitFail
	}
}

// multiFlag is a repeatable string flag (--header k=v --header k2=v2).
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage, with the given synopsis, to stderr.
func newFlagSet(env *cliIO, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fs.SetOutput(env.stderr)
		fmt.Fprintf(env.stderr, "usage: sluice %s\n\nflags:\n", synopsis)
		printFlags(env.stderr, fs)
	}
	return fs
}

// printFlags lists flags GNU-style (--name), which is how they are
// documented; the flag package accepts -name too.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name
		}
		if arg != "" {
			line += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
}

// parseArgs parses flags anywhere among the arguments (Go's flag package
// stops at the first positional argument; users write `topic create NAME
// --partitions 3`). A bare "--" ends flag parsing; everything after it is
// positional. Flag syntax errors come back as usage errors; -h as
// flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	// fs.Parse prints the whole usage on any error; print it only for -h,
	// and report other errors in one line (finish adds a hint).
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var positional []string
	for {
		before := args
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		args = fs.Args()
		consumed := len(before) - len(args)
		if consumed > 0 && before[consumed-1] == "--" && !isFlagValue(fs, before, consumed-1) {
			return append(positional, args...), nil
		}
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// isFlagValue reports whether args[i] was consumed as the value of the flag
// before it (as in `--key-delimiter --`) rather than as the terminator.
func isFlagValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") || prev == "--" {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// globalFlags are accepted by every client verb.
type globalFlags struct {
	brokers string
	timeout time.Duration
	verbose bool
}

func (g *globalFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	def := defaultBrokers
	if env := strings.TrimSpace(getenv(envBrokers)); env != "" {
		def = env
	}
	fs.StringVar(&g.brokers, "brokers", def, "comma-separated seed brokers `host:port,...` (env "+envBrokers+")")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "bound on reaching the brokers and on each admin operation")
	fs.BoolVar(&g.verbose, "verbose", false, "log client activity to stderr")
}

func (g *globalFlags) seeds() ([]string, error) {
	var seeds []string
	for _, s := range strings.Split(g.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, usagef("--brokers is empty")
	}
	if g.timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %v", g.timeout)
	}
	return seeds, nil
}

// connect builds a client for the seed brokers and checks, within
// --timeout, that at least one answers. An unreachable cluster is reported
// as such, never waited on forever.
func (g *globalFlags) connect(env *cliIO, extra ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := g.seeds()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("sluice-cli"),
		kgo.DialTimeout(min(g.timeout, 5*time.Second)),
		kgo.RetryTimeout(g.timeout),
		// Bounds each response wait beyond the request's own timeout;
		// without it a peer that accepts connections and never answers
		// holds the connection handshake for kgo's default 10s,
		// whatever the context says.
		kgo.RequestTimeoutOverhead(g.timeout),
	}
	if g.verbose {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(env.stderr, kgo.LogLevelDebug, nil)))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(env.ctx, g.timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		if env.ctx.Err() != nil {
			return nil, env.ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach any broker at %s within %v: %w", g.brokers, g.timeout, err)
	}
	return cl, nil
}

// admin connects and wraps the client for kadm, with the broker-side timeout
// of admin requests (CreateTopics and the like) set to --timeout. The caller
// closes the returned kgo client.
func (g *globalFlags) admin(env *cliIO) (*kadm.Client, *kgo.Client, error) {
	cl, err := g.connect(env)
	if err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(g.timeout.Milliseconds(), 1<<31-1)))
	return adm, cl, nil
}

// opContext bounds one admin operation by --timeout.
func (g *globalFlags) opContext(env *cliIO) (context.Context, context.CancelFunc) {
	return context.WithTimeout(env.ctx, g.timeout)
}

// kafkaErr formats a Kafka error with the broker's optional extra message.
func kafkaErr(err error, msg string) error {
	if err == nil {
		return nil
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return fmt.Errorf("%w (%s)", err, msg)
	}
	return err
}

// errName is the Kafka error name for JSON output ("" when err is nil).
func errName(err error) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// topicIDString renders a topic ID as Kafka's tools do: URL-safe base64
// without padding; "" for the all-zero ID of brokers without topic IDs.
func topicIDString(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// writeJSON writes v as one indented JSON document followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// parseKeyValue splits "k=v" at the first '='.
func parseKeyValue(flagName, s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", usagef("%s wants key=value, got %q", flagName, s)
	}
	return k, v, nil
}

// subcommand is one verb of `sluice NOUN VERB ...`.
type subcommand struct {
	name, synopsis, summary string
	run                     func(env *cliIO, args []string) error
}

// runSubcommand dispatches `sluice NOUN VERB ...` to the named verb.
func runSubcommand(env *cliIO, noun string, subs []subcommand, args []string) int {
	printUsage := func() {
		fmt.Fprintf(env.stderr, "usage: sluice %s <command> [flags]\n\ncommands:\n", noun)
		for _, s := range subs {
			fmt.Fprintf(env.stderr, "  %-9s %s\n            sluice %s\n", s.name, s.summary, s.synopsis)
		}
		fmt.Fprintf(env.stderr, "\nevery command takes --brokers (env %s), --timeout and --verbose;\nrun 'sluice %s <command> -h' for its flags\n", envBrokers, noun)
	}
	if len(args) == 0 {
		printUsage()
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		printUsage()
		return exitOK
	}
	for _, s := range subs {
		if s.name == args[0] {
			return finish(env, noun+" "+s.name, s.run(env, args[1:]))
		}
	}
	fmt.Fprintf(env.stderr, "sluice %s: unknown command %q\n", noun, args[0])
	printUsage()
	return exitUsage
}
