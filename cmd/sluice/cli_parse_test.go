package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseProduceArgs(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErr   string // substring of a usage error
		check     func(*produceOptions) bool
		checkDesc string
	}{
		{name: "defaults", args: []string{"t"}, check: func(o *produceOptions) bool {
			return o.topic == "t" && o.partition == -1 && o.keyDelim == "" && len(o.headers) == 0 && o.idempot
		}, checkDesc: "topic t, partitioner, acks=all idempotent"},
		{name: "everything", args: []string{"--key-delimiter", ":", "t", "--header", "a=1", "--header=b=x=y", "--partition", "2", "--acks", "1"},
			check: func(o *produceOptions) bool {
				return o.topic == "t" && o.keyDelim == ":" && o.partition == 2 && !o.idempot &&
					len(o.headers) == 2 && o.headers[1].Key == "b" && string(o.headers[1].Value) == "x=y"
			}, checkDesc: "all flags applied, header value keeps its '='"},
		{name: "acks 0", args: []string{"t", "--acks", "0"}, check: func(o *produceOptions) bool { return !o.idempot }},
		{name: "acks -1", args: []string{"t", "--acks", "-1"}, check: func(o *produceOptions) bool { return o.idempot }},
		{name: "missing topic", args: nil, wantErr: "missing topic"},
		{name: "two topics", args: []string{"a", "b"}, wantErr: "unexpected arguments"},
		{name: "bad acks", args: []string{"t", "--acks", "2"}, wantErr: "--acks"},
		{name: "bad header", args: []string{"t", "--header", "novalue"}, wantErr: "key=value"},
		{name: "empty header key", args: []string{"t", "--header", "=v"}, wantErr: "key=value"},
		{name: "bad partition", args: []string{"t", "--partition", "-2"}, wantErr: "--partition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testIO(context.Background(), "", nil)
			o, err := parseProduceArgs(env, tc.args)
			if tc.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("options %+v; want %s", o, tc.checkDesc)
			}
		})
	}
}

func TestProduceRecordSplitting(t *testing.T) {
	tests := []struct {
		name, delim, line string
		wantKey           []byte
		wantValue         string
	}{
		{name: "no delimiter flag", delim: "", line: "a:b", wantKey: nil, wantValue: "a:b"},
		{name: "split at first", delim: ":", line: "a:b:c", wantKey: []byte("a"), wantValue: "b:c"},
		{name: "multi-byte delimiter", delim: "::", line: "k::v", wantKey: []byte("k"), wantValue: "v"},
		{name: "delimiter missing: null key", delim: ":", line: "abc", wantKey: nil, wantValue: "abc"},
		{name: "empty key", delim: ":", line: ":v", wantKey: []byte{}, wantValue: "v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &produceOptions{topic: "t", keyDelim: tc.delim, partition: -1}
			r := o.record([]byte(tc.line))
			if (r.Key == nil) != (tc.wantKey == nil) || string(r.Key) != string(tc.wantKey) || string(r.Value) != tc.wantValue {
				t.Fatalf("key %q (nil %v) value %q; want key %q (nil %v) value %q",
					r.Key, r.Key == nil, r.Value, tc.wantKey, tc.wantKey == nil, tc.wantValue)
			}
		})
	}
}

func TestParseConsumeArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*consumeOptions) bool
	}{
		{name: "defaults", args: []string{"t"}, check: func(o *consumeOptions) bool {
			return o.topic == "t" && !o.offsetSet && o.partition == -1 && o.count == 0 && !o.json && len(o.format) == 2
		}},
		{name: "partition and offset", args: []string{"t", "--partition", "1", "--offset", "5"}, check: func(o *consumeOptions) bool {
			return o.partition == 1 && o.offsetSet && o.start == startSpec{kind: 'a', n: 5}
		}},
		{name: "relative offset", args: []string{"t", "--offset", "-3"}, check: func(o *consumeOptions) bool {
			return o.offsetSet && o.start == startSpec{kind: 'r', n: -3}
		}},
		{name: "default start is the end", args: []string{"t"}, check: func(o *consumeOptions) bool { return o.start.kind == 'e' }},
		{name: "from beginning", args: []string{"t", "--from-beginning"}, check: func(o *consumeOptions) bool { return o.start.kind == 's' }},
		{name: "exit at end", args: []string{"t", "-e"}, check: func(o *consumeOptions) bool { return o.exitAtEnd }},
		{name: "exit at end with group", args: []string{"t", "--exit-at-end", "--group", "g"}, wantErr: "--exit-at-end"},
		{name: "earliest", args: []string{"--offset", "earliest", "t"}, check: func(o *consumeOptions) bool {
			return o.start.kind == 's'
		}},
		{name: "group", args: []string{"t", "--group", "g", "--from-beginning", "--count", "3"}, check: func(o *consumeOptions) bool {
			return o.group == "g" && o.fromBeginning && o.count == 3
		}},
		{name: "kip-848 group", args: []string{"t", "--group", "g", "--group-protocol", "consumer"}, check: func(o *consumeOptions) bool {
			return o.group == "g" && o.groupProtocol == "consumer"
		}},
		{name: "bad group protocol", args: []string{"t", "--group", "g", "--group-protocol", "eager"}, wantErr: "--group-protocol"},
		{name: "group protocol without group", args: []string{"t", "--group-protocol", "consumer"}, wantErr: "needs --group"},
		{name: "json", args: []string{"t", "--json"}, check: func(o *consumeOptions) bool { return o.json }},
		{name: "format and json", args: []string{"t", "--json", "--format", "%v"}, wantErr: "exclusive"},
		{name: "bad format", args: []string{"t", "--format", "%z"}, wantErr: "unknown directive"},
		{name: "offset and from-beginning", args: []string{"t", "--offset", "1", "--from-beginning"}, wantErr: "exclusive"},
		{name: "group and offset", args: []string{"t", "--group", "g", "--offset", "1"}, wantErr: "--group"},
		{name: "group and partition", args: []string{"t", "--group", "g", "--partition", "0"}, wantErr: "--group"},
		{name: "bad offset", args: []string{"t", "--offset", "soon"}, wantErr: "--offset"},
		{name: "negative count", args: []string{"t", "--count", "-1"}, wantErr: "--count"},
		{name: "missing topic", args: []string{"--json"}, wantErr: "missing topic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testIO(context.Background(), "", nil)
			o, err := parseConsumeArgs(env, tc.args)
			if tc.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("unexpected options %+v", o)
			}
		})
	}
}

func TestParseSeekTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    seekTarget
		wantErr bool
	}{
		{in: "earliest", want: seekTarget{kind: "earliest"}},
		{in: "latest", want: seekTarget{kind: "latest"}},
		{in: "42", want: seekTarget{kind: "offset", offset: 42}},
		{in: "1732000000000", want: seekTarget{kind: "offset", offset: 1732000000000}},
		{in: "@1732000000000", want: seekTarget{kind: "timestamp", millis: 1732000000000}},
		{in: "2024-11-19T07:06:40Z", want: seekTarget{kind: "timestamp", millis: 1732000000000}},
		{in: "", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "@", wantErr: true},
		{in: "@-5", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSeekTarget(tc.in)
			if tc.wantErr {
				var ue *usageError
				if !errors.As(err, &ue) {
					t.Fatalf("got %+v, %v; want a usage error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestStartSpecResolve(t *testing.T) {
	tests := []struct {
		name          string
		spec          startSpec
		logStart, end int64
		want          int64
	}{
		{"start", startSpec{kind: 's'}, 5, 10, 5},
		{"end", startSpec{kind: 'e'}, 5, 10, 10},
		{"absolute inside", startSpec{kind: 'a', n: 7}, 5, 10, 7},
		{"absolute below start", startSpec{kind: 'a', n: 1}, 5, 10, 5},
		{"absolute past end", startSpec{kind: 'a', n: 99}, 5, 10, 10},
		{"relative", startSpec{kind: 'r', n: -2}, 5, 10, 8},
		{"relative past start", startSpec{kind: 'r', n: -20}, 5, 10, 5},
		{"empty log", startSpec{kind: 's'}, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.resolve(tc.logStart, tc.end); got != tc.want {
				t.Fatalf("resolve(%d, %d) = %d, want %d", tc.logStart, tc.end, got, tc.want)
			}
		})
	}
}
