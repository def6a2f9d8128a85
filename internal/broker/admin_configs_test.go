package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// describeTopic returns a topic's configs as name → (value, source).
func describeTopic(t *testing.T, b *Broker, topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic}}
	res := b.DescribeConfigs(ctx, req).Resources[0]
	if res.ErrorCode != 0 {
		t.Fatalf("describe %s: code %d", topic, res.ErrorCode)
	}
	out := make(map[string]kmsg.DescribeConfigsResponseResourceConfig)
	for _, c := range res.Configs {
		out[c.Name] = c
	}
	return out
}

func TestConfigsRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	createTopic(t, b, "c", 2, map[string]string{"retention.ms": "60000"})

	got := describeTopic(t, b, "c")
	if len(got) != len(topicConfigDefs) {
		t.Fatalf("%d configs described, want %d", len(got), len(topicConfigDefs))
	}
	if c := got["retention.ms"]; deref(c.Value) != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.IsDefault {
		t.Fatalf("retention.ms %+v", c)
	}
	if c := got["sluice.durability"]; deref(c.Value) != "fsync" || c.Source != kmsg.ConfigSourceDefaultConfig ||
		c.Documentation == nil || len(c.ConfigSynonyms) != 1 || c.ConfigType != kmsg.ConfigTypeString {
		t.Fatalf("sluice.durability %+v", c)
	}

	// AlterConfigs replaces the whole set: retention.ms returns to default.
	alter := kmsg.NewPtrAlterConfigsRequest()
	alter.Version = 1
	v1, v2 := "none", "LogAppendTime"
	alter.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "c",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "sluice.durability", Value: &v1}, {Name: "message.timestamp.type", Value: &v2}}}}
	if code := b.AlterConfigs(ctx, alter).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("alter: code %d", code)
	}
	got = describeTopic(t, b, "c")
	if deref(got["retention.ms"].Value) != "604800000" || deref(got["sluice.durability"].Value) != "none" {
		t.Fatalf("after alter: retention %v durability %v", deref(got["retention.ms"].Value), deref(got["sluice.durability"].Value))
	}
	cfg := mustPartition(t, b, "c", 1).Log().Config()
	if cfg.Durability.Kind != log.DurabilityNone || !cfg.LogAppendTime {
		t.Fatalf("log config not applied: %+v", cfg)
	}

	// Incremental: SET, DELETE, APPEND on a list.
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.Version = 1
	s1, s2 := "1024", "delete"
	inc.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "c",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{
			{Name: "segment.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: &s1},
			{Name: "sluice.durability", Op: kmsg.IncrementalAlterConfigOpDelete},
			{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: &s2},
		}}}
	if res := b.IncrementalAlterConfigs(ctx, inc).Resources[0]; res.ErrorCode != 0 {
		t.Fatalf("incremental: code %d %s", res.ErrorCode, deref(res.ErrorMessage))
	}
	closeBroker(t, b)

	// Configs survive a restart and reach the logs.
	b = openBroker(t, fs)
	defer closeBroker(t, b)
	got = describeTopic(t, b, "c")
	want := map[string]string{"segment.bytes": "1024", "sluice.durability": "fsync", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"}
	for k, v := range want {
		if deref(got[k].Value) != v {
			t.Errorf("after reopen %s = %s, want %s", k, deref(got[k].Value), v)
		}
	}
	if cfg := mustPartition(t, b, "c", 0).Log().Config(); cfg.SegmentBytes != 1024 || cfg.Durability.Kind != log.DurabilityFsync || !cfg.LogAppendTime {
		t.Fatalf("log config after reopen: %+v", cfg)
	}
}

func TestAlterConfigsErrors(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "c", 1, nil)
	str := func(s string) *string { return &s }
	type op = kmsg.IncrementalAlterConfigsRequestResourceConfig
	tests := []struct {
		name     string
		resource kmsg.ConfigResourceType
		target   string
		ops      []op
		only     bool
		code     int16
	}{
		{"compact", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("compact")}}, false, codeInvalidConfig},
		{"append compact", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("compact")}}, false, codeInvalidConfig},
		{"append to scalar", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("1")}}, false, codeInvalidConfig},
		{"bad value", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("x")}}, false, codeInvalidConfig},
		{"unknown name", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "nope", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1")}}, false, codeInvalidConfig},
		{"set without value", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet}}, false, codeInvalidRequest},
		{"duplicate", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1")}, {Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}, false, codeInvalidRequest},
		{"bad op", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: 9, Value: str("1")}}, false, codeInvalidRequest},
		{"unknown topic", kmsg.ConfigResourceTypeTopic, "nope", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1")}}, false, codeUnknownTopicOrPartition},
		{"broker config", kmsg.ConfigResourceTypeBroker, "1", []op{{Name: "log.retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1")}}, false, codeInvalidConfig},
		{"other broker", kmsg.ConfigResourceTypeBroker, "7", nil, false, codeInvalidRequest},
		{"logger", kmsg.ConfigResourceTypeBrokerLogger, "1", nil, false, codeInvalidRequest},
		{"validate only ok", kmsg.ConfigResourceTypeTopic, "c", []op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("5")}}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = tt.only
			req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: tt.resource, ResourceName: tt.target, Configs: tt.ops}}
			res := b.IncrementalAlterConfigs(ctx, req).Resources[0]
			if res.ErrorCode != tt.code {
				t.Fatalf("code %d (%s), want %d", res.ErrorCode, deref(res.ErrorMessage), tt.code)
			}
			if tt.code != 0 && deref(res.ErrorMessage) == "" {
				t.Fatal("no error message")
			}
		})
	}
	// Nothing above changed the topic (validate-only included).
	for name, c := range describeTopic(t, b, "c") {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("%s was changed to %s", name, deref(c.Value))
		}
	}
}

func TestDescribeBrokerConfigs(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", ConfigNames: []string{"num.partitions"}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "__consumer_offsets"},
	}
	res := b.DescribeConfigs(ctx, req).Resources
	if res[0].ErrorCode != 0 || len(res[0].Configs) < 10 {
		t.Fatalf("broker configs: %+v", res[0])
	}
	if len(res[1].Configs) != 1 || deref(res[1].Configs[0].Value) != "1" || !res[1].Configs[0].ReadOnly {
		t.Fatalf("filtered: %+v", res[1].Configs)
	}
	if res[2].ErrorCode != codeUnknownTopicOrPartition {
		t.Fatalf("internal topic described: code %d", res[2].ErrorCode)
	}
}
