package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
