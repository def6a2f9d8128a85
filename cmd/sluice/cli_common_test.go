package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain is the only one in package main: it checks every test, the CLI's
// and the server's, for leaked goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lockedBuffer is an io.Writer safe to read while a verb writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testIO returns a cliIO on buffers with the given environment.
func testIO(ctx context.Context, stdin string, environ map[string]string) (*cliIO, *lockedBuffer, *lockedBuffer) {
	var stdout, stderr lockedBuffer
	return &cliIO{
		ctx:    ctx,
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return environ[k] },
	}, &stdout, &stderr
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantN   int
		wantB   bool
		wantS   string
		wantErr string // "" ok, "usage", "help"
	}{
		{name: "none", args: nil, wantPos: nil},
		{name: "flags first", args: []string{"--n", "3", "t"}, wantPos: []string{"t"}, wantN: 3},
		{name: "flags after", args: []string{"t", "--n", "3", "-b"}, wantPos: []string{"t"}, wantN: 3, wantB: true},
		{name: "interleaved", args: []string{"a", "--n=4", "b", "--s", "x", "c"}, wantPos: []string{"a", "b", "c"}, wantN: 4, wantS: "x"},
		{name: "terminator", args: []string{"--n", "1", "--", "--b", "-x"}, wantPos: []string{"--b", "-x"}, wantN: 1},
		{name: "dash-dash as a value", args: []string{"--s", "--", "t", "--n", "2"}, wantPos: []string{"t"}, wantS: "--", wantN: 2},
		{name: "terminator after bool", args: []string{"-b", "--", "-n"}, wantPos: []string{"-n"}, wantB: true},
		{name: "negative value", args: []string{"--n", "-5", "t"}, wantPos: []string{"t"}, wantN: -5},
		{name: "unknown flag", args: []string{"t", "--nope"}, wantErr: "usage"},
		{name: "missing value", args: []string{"t", "--n"}, wantErr: "usage"},
		{name: "bad int", args: []string{"--n", "x"}, wantErr: "usage"},
		{name: "help", args: []string{"t", "-h"}, wantErr: "help"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testIO(context.Background(), "", nil)
			fs := newFlagSet(env, "x", "x")
			n := fs.Int("n", 0, "")
			b := fs.Bool("b", false, "")
			s := fs.String("s", "", "")
			pos, err := parseArgs(fs, tc.args)
			var ue *usageError
			switch tc.wantErr {
			case "":
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
			case "usage":
				if !errors.As(err, &ue) {
					t.Fatalf("want a usage error, got %v", err)
				}
				return
			case "help":
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("want flag.ErrHelp, got %v", err)
				}
				return
			}
			if !slices.Equal(pos, tc.wantPos) || *n != tc.wantN || *b != tc.wantB || *s != tc.wantS {
				t.Fatalf("got pos=%q n=%d b=%v s=%q; want pos=%q n=%d b=%v s=%q",
					pos, *n, *b, *s, tc.wantPos, tc.wantN, tc.wantB, tc.wantS)
			}
		})
	}
}

func TestGlobalFlags(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		wantBrokers []string
		wantTimeout time.Duration
		wantUsage   bool
	}{
		{name: "default", wantBrokers: []string{"127.0.0.1:9092"}, wantTimeout: defaultTimeout},
		{name: "env", env: map[string]string{envBrokers: "a:1, b:2"}, wantBrokers: []string{"a:1", "b:2"}, wantTimeout: defaultTimeout},
		{name: "flag beats env", env: map[string]string{envBrokers: "a:1"}, args: []string{"--brokers", "c:3", "--timeout", "2s"}, wantBrokers: []string{"c:3"}, wantTimeout: 2 * time.Second},
		{name: "empty brokers", args: []string{"--brokers", " , "}, wantUsage: true},
		{name: "zero timeout", args: []string{"--timeout", "0s"}, wantUsage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testIO(context.Background(), "", tc.env)
			fs := newFlagSet(env, "x", "x")
			var g globalFlags
			g.register(fs, env.getenv)
			if _, err := parseArgs(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			seeds, err := g.seeds()
			var ue *usageError
			if tc.wantUsage {
				if !errors.As(err, &ue) {
					t.Fatalf("want usage error, got %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(seeds, tc.wantBrokers) || g.timeout != tc.wantTimeout {
				t.Fatalf("got %q %v %v; want %q %v", seeds, g.timeout, err, tc.wantBrokers, tc.wantTimeout)
			}
		})
	}
}

func TestFinishExitCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"ok", nil, exitOK},
		{"help", flag.ErrHelp, exitOK},
		{"usage", usagef("bad"), exitUsage},
		{"failure", errors.New("broker said no"), exitFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := testIO(context.Background(), "", nil)
			if got := finish(env, "x", tc.err); got != tc.want {
				t.Fatalf("exit %d, want %d", got, tc.want)
			}
			if tc.err != nil && tc.err != flag.ErrHelp && !strings.Contains(stderr.String(), tc.err.Error()) {
				t.Fatalf("stderr %q does not name the error", stderr.String())
			}
		})
	}
}

func TestReadLines(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error
	}{
		{name: "empty", in: "", max: 10, want: nil},
		{name: "one without newline", in: "a", max: 10, want: []string{"a"}},
		{name: "trailing newline", in: "a\nb\n", max: 10, want: []string{"a", "b"}},
		{name: "inner empty lines kept", in: "a\n\nb", max: 10, want: []string{"a", "", "b"}},
		{name: "carriage return kept", in: "a\r\n", max: 10, want: []string{"a\r"}},
		{name: "exactly max", in: "12345\n", max: 5, want: []string{"12345"}},
		{name: "too long", in: "ok\n123456\n", max: 5, want: []string{"ok"}, wantErr: errLineTooLong},
		{name: "longer than the read buffer", in: strings.Repeat("x", 100<<10) + "\ny", max: 1 << 20, want: []string{strings.Repeat("x", 100<<10), "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readLines(context.Background(), strings.NewReader(tc.in), tc.max, func(b []byte) { got = append(got, string(b)) })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// blockingReader never returns until closed, like an idle terminal.
type blockingReader struct{ done chan struct{} }

func (r blockingReader) Read([]byte) (int, error) { <-r.done; return 0, io.EOF }

func TestReadLinesStopsOnCancel(t *testing.T) {
	r := blockingReader{done: make(chan struct{})}
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- readLines(ctx, r, 10, func([]byte) {}) }()
	cancel()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("got %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readLines did not return after cancel")
	}
}

func TestVerbsRegistered(t *testing.T) {
	for _, name := range []string{"topic", "produce", "consume", "group"} {
		if c, ok := commands[name]; !ok || c.summary == "" || c.run == nil {
			t.Errorf("verb %q is not registered with main's registry", name)
		}
	}
}
