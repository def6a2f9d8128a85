package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecord() *kgo.Record {
	return &kgo.Record{
		Topic:     "orders",
		Partition: 2,
		Offset:    41,
		Key:       []byte("k1"),
		Value:     []byte("hello"),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("")}},
		Timestamp: time.UnixMilli(1732000000123),
	}
}

func TestFormat(t *testing.T) {
	nullRecord := &kgo.Record{Topic: "t", Timestamp: time.UnixMilli(0)}
	tests := []struct {
		name    string
		format  string
		record  *kgo.Record
		want    string
		wantErr string
	}{
		{name: "default", format: defaultFormat, record: testRecord(), want: "hello\n"},
		{name: "kcat example", format: `%k %v %o`, record: testRecord(), want: "k1 hello 41"},
		{name: "every directive", format: `%t|%p|%o|%k|%v|%h|%T|%K|%S`, record: testRecord(),
			want: "orders|2|41|k1|hello|a=1,b=|1732000000123|2|5"},
		{name: "kcat value and lengths", format: `%s(%S) %k(%K)`, record: testRecord(), want: "hello(5) k1(2)"},
		{name: "escapes", format: `%k\t%v\r\n\\`, record: testRecord(), want: "k1\thello\r\n\\"},
		{name: "percent", format: `100%% %v`, record: testRecord(), want: "100% hello"},
		{name: "literal only", format: `x`, record: testRecord(), want: "x"},
		{name: "empty format", format: ``, record: testRecord(), want: ""},
		{name: "nulls", format: `[%k][%v][%K][%S][%h]`, record: nullRecord, want: "[][][-1][-1][]"},
		{name: "empty not null", format: `%K %S`, record: &kgo.Record{Key: []byte{}, Value: []byte{}}, want: "0 0"},
		{name: "utf8 passes through", format: `%v`, record: &kgo.Record{Value: []byte("héllo ✓")}, want: "héllo ✓"},
		{name: "unknown directive", format: `%x`, wantErr: "unknown directive %x"},
		{name: "lone percent", format: `abc%`, wantErr: "lone %"},
		{name: "lone backslash", format: `abc\`, wantErr: "lone backslash"},
		{name: "unknown escape", format: `\q`, wantErr: `unknown escape \q`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseFormat(tc.format)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.appendRecord(nil, tc.record)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatAllocatesNothingPerRecord(t *testing.T) {
	f, err := parseFormat(`%t %p %o %k %v %h %T %K %S\n`)
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() { buf = f.appendRecord(buf[:0], r) })
	if allocs != 0 {
		t.Fatalf("%v allocations per record, want 0", allocs)
	}
}

// recordJSON decodes one line of `consume --json` (documented in cli_consume.go).
type recordJSON struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     int64        `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Value         *string      `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
	Headers       []headerJSON `json:"headers"`
}

type headerJSON struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding,omitempty"`
}

func TestRecordJSON(t *testing.T) {
	r := testRecord()
	r.Value = []byte{0xff, 0x00}
	r.Key = nil
	line := appendRecordJSON(nil, r)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one JSON line: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"topic": "orders", "partition": 2.0, "offset": 41.0, "timestamp": 1732000000123.0,
		"key": nil, "value": "/wA=", "value_encoding": "base64",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if _, ok := got["key_encoding"]; ok {
		t.Errorf("key_encoding present for a null key")
	}
	hs, _ := got["headers"].([]any)
	if len(hs) != 2 {
		t.Fatalf("headers %#v", got["headers"])
	}
	if h := hs[0].(map[string]any); h["key"] != "a" || h["value"] != "1" {
		t.Errorf("header 0 = %#v", h)
	}
}

func BenchmarkRender(b *testing.B) {
	r := testRecord()
	r.Value = []byte(strings.Repeat("v", 1024))
	f, err := parseFormat(`%t %p %o %k %v %h %T\n`)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("format=kcat/record=1KiB", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.SetBytes(int64(len(r.Value)))
		b.ReportAllocs()
		for b.Loop() {
			buf = f.appendRecord(buf[:0], r)
		}
	})
	b.Run("format=json/record=1KiB", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.SetBytes(int64(len(r.Value)))
		b.ReportAllocs()
		for b.Loop() {
			buf = appendRecordJSON(buf[:0], r)
		}
	})
}

// decodeJSONBytes undoes appendJSONBytes.
func decodeJSONBytes(t *testing.T, s *string, encoding string) []byte {
	t.Helper()
	switch {
	case s == nil:
		return nil
	case encoding == "base64":
		b, err := base64.StdEncoding.DecodeString(*s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case encoding != "":
		t.Fatalf("unknown encoding %q", encoding)
	}
	return []byte(*s)
}

// TestRecordJSONRoundTrip checks the hand-written encoder against
// encoding/json on random records: every line decodes back to the record.
func TestRecordJSONRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randBytes := func() []byte {
		switch rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2: // text with every escape-worthy character
			return []byte("q\"b\\n\n\r\t\x00\x1f\x7f é ✓ </script> \u2028")
		}
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	var buf []byte
	for i := range 2000 {
		r := &kgo.Record{
			Topic: "t-" + string(randBytes()), Partition: rng.Int32(), Offset: rng.Int64(),
			Key: randBytes(), Value: randBytes(), Timestamp: time.UnixMilli(rng.Int64N(1 << 42)),
		}
		if !utf8.ValidString(r.Topic) {
			r.Topic = "topic" // topic names are ASCII
		}
		for range rng.IntN(3) {
			k := string(randBytes())
			if !utf8.ValidString(k) {
				k = "k"
			}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: randBytes()})
		}
		buf = appendRecordJSON(buf[:0], r)
		var got recordJSON
		if err := json.Unmarshal(buf, &got); err != nil {
			t.Fatalf("record %d: %v in %q", i, err, buf)
		}
		key, value := decodeJSONBytes(t, got.Key, got.KeyEncoding), decodeJSONBytes(t, got.Value, got.ValueEncoding)
		if got.Topic != r.Topic || got.Partition != r.Partition || got.Offset != r.Offset || got.Timestamp != r.Timestamp.UnixMilli() ||
			!bytes.Equal(key, r.Key) || (key == nil) != (r.Key == nil) || !bytes.Equal(value, r.Value) || (value == nil) != (r.Value == nil) ||
			len(got.Headers) != len(r.Headers) {
			t.Fatalf("record %d: %+v decoded as %s", i, r, buf)
		}
		for j, h := range got.Headers {
			v := decodeJSONBytes(t, h.Value, h.ValueEncoding)
			if h.Key != r.Headers[j].Key || !bytes.Equal(v, r.Headers[j].Value) || (v == nil) != (r.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d: %+v decoded as %s", i, j, r.Headers[j], buf)
			}
		}
	}
}

func TestRecordJSONAllocatesNothing(t *testing.T) {
	r := testRecord()
	r.Value = []byte{0xff, 0xfe, '"'}
	buf := make([]byte, 0, 4096)
	if allocs := testing.AllocsPerRun(1000, func() { buf = appendRecordJSON(buf[:0], r) }); allocs != 0 {
		t.Fatalf("%v allocations per record, want 0", allocs)
	}
}
