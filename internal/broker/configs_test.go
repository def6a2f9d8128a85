package broker

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/log"
)

func TestValidateTopicConfig(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"retention.ms", "1000", true},
		{"retention.ms", "-1", true},
		{"retention.ms", "-2", false},
		{"retention.ms", "soon", false},
		{"retention.bytes", "-1", true},
		{"retention.bytes", "1073741824", true},
		{"segment.bytes", "13", false},
		{"segment.bytes", "1048576", true},
		{"segment.bytes", "4294967296", false}, // int overflow
		{"segment.ms", "0", false},
		{"segment.ms", "60000", true},
		{"max.message.bytes", "0", true},
		{"max.message.bytes", "-5", false},
		{"message.timestamp.type", "CreateTime", true},
		{"message.timestamp.type", "LogAppendTime", true},
		{"message.timestamp.type", "logappendtime", false},
		{"cleanup.policy", "delete", true},
		{"cleanup.policy", "compact", false},
		{"cleanup.policy", "delete,compact", false},
		{"cleanup.policy", "", false},
		{"cleanup.policy", "shred", false},
		{"sluice.durability", "fsync", true},
		{"sluice.durability", "none", true},
		{"sluice.durability", "interval=100", true},
		{"sluice.durability", "interval=0", false},
		{"sluice.durability", "interval=", false},
		{"sluice.durability", "sometimes", false},
		{"min.insync.replicas", "1", true},
		{"compression.type", "zstd", true},
		{"compression.type", "brotli", false},
		{"remote.storage.enable", "true", false},
		{"no.such.config", "1", false},
	}
	for _, tt := range tests {
		err := validateTopicConfig(tt.name, tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%s=%q: err %v, want ok=%v", tt.name, tt.value, err, tt.ok)
		}
	}
	if err := validateTopicConfig("cleanup.policy", "compact"); !errors.Is(err, errCompaction) {
		t.Errorf("compact: %v, want the compaction message", err)
	}
}

func TestConfigDefsSortedAndDefaultsValid(t *testing.T) {
	if !sort.SliceIsSorted(topicConfigDefs, func(i, j int) bool { return topicConfigDefs[i].name < topicConfigDefs[j].name }) {
		t.Fatal("topicConfigDefs not sorted")
	}
	for _, d := range topicConfigDefs {
		if err := d.validate(d.def); err != nil {
			t.Errorf("default %s=%q invalid: %v", d.name, d.def, err)
		}
		if _, ok := lookupConfigDef(d.name); !ok {
			t.Errorf("lookup %s failed", d.name)
		}
	}
}

func TestLogConfig(t *testing.T) {
	td := topicDefaults{durability: log.Durability{Kind: log.DurabilityInterval, Interval: 50 * time.Millisecond}}
	tests := []struct {
		name string
		set  map[string]string
		want log.Config
	}{
		{"defaults", nil, log.Config{
			SegmentBytes: 1 << 30, SegmentAge: 7 * 24 * time.Hour, RetentionAge: 7 * 24 * time.Hour,
			MaxBatchBytes: 1048588, IndexIntervalBytes: 4096,
			Durability: log.Durability{Kind: log.DurabilityInterval, Interval: 50 * time.Millisecond},
		}},
		{"set", map[string]string{
			"retention.ms": "-1", "retention.bytes": "5000", "segment.bytes": "1024", "segment.ms": "60000",
			"max.message.bytes": "2048", "message.timestamp.type": "LogAppendTime", "sluice.durability": "fsync",
			"index.interval.bytes": "100",
		}, log.Config{
			SegmentBytes: 1024, SegmentAge: time.Minute, RetentionAge: -1, RetentionBytes: 5000,
			MaxBatchBytes: 2048, LogAppendTime: true, IndexIntervalBytes: 100,
			Durability: log.Durability{Kind: log.DurabilityFsync},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := td.logConfig(tt.set); got != tt.want {
				t.Fatalf("logConfig = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDurabilityRoundTrip(t *testing.T) {
	for _, s := range []string{"fsync", "none", "interval=1", "interval=250"} {
		d, err := parseDurability(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		if got := formatDurability(d); got != s {
			t.Errorf("format(parse(%q)) = %q", s, got)
		}
	}
}

func TestDurabilityDefaultFromBroker(t *testing.T) {
	td := topicDefaults{durability: log.Durability{Kind: log.DurabilityNone}}
	d, _ := lookupConfigDef(cfgDurability)
	if v, src := td.effective(nil, d); v != "none" || src != sourceStaticBroker {
		t.Fatalf("broker default: %s from %d", v, src)
	}
	if v, src := (topicDefaults{}).effective(nil, d); v != "fsync" || src != sourceDefault {
		t.Fatalf("built-in default: %s from %d", v, src)
	}
	if v, src := td.effective(map[string]string{cfgDurability: "interval=5"}, d); v != "interval=5" || src != sourceDynamicTopic {
		t.Fatalf("topic value: %s from %d", v, src)
	}
}
