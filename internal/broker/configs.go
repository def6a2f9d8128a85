package broker

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/log"
)

// Topic config names sluice acts on.
const (
	cfgRetentionMs      = "retention.ms"
	cfgRetentionBytes   = "retention.bytes"
	cfgSegmentBytes     = "segment.bytes"
	cfgSegmentMs        = "segment.ms"
	cfgMaxMessageBytes  = "max.message.bytes"
	cfgTimestampType    = "message.timestamp.type"
	cfgCleanupPolicy    = "cleanup.policy"
	cfgDurability       = "sluice.durability"
	cfgIndexInterval    = "index.interval.bytes"
	defaultMaxMessage   = 1048588 // Kafka's max.message.bytes default (1 MiB + 12)
	defaultSegmentBytes = 1 << 30
	defaultWeekMs       = 7 * 24 * 60 * 60 * 1000
)

// Kafka config types (DescribeConfigs v3+).
const (
	typeBoolean int8 = 1
	typeString  int8 = 2
	typeInt     int8 = 3
	typeLong    int8 = 5
	typeDouble  int8 = 6
	typeList    int8 = 7
)

// Kafka config sources (DescribeConfigs v1+).
const (
	sourceDynamicTopic int8 = 1
	sourceStaticBroker int8 = 4
	sourceDefault      int8 = 5
)

// configDef describes one topic config.
type configDef struct {
	name     string
	typ      int8
	def      string // default value; cfgDurability's comes from the broker
	validate func(string) error
	doc      string
	// enforced is false for Kafka configs sluice accepts (so tools that set
	// them keep working) and reports, but does not act on.
	enforced bool
}

var errCompaction = errors.New("cleanup.policy=compact is not supported: sluice has no log compaction yet; use cleanup.policy=delete")

// topicConfigDefs lists every topic config sluice accepts, sorted by name.
var topicConfigDefs = sortedDefs([]configDef{
	{cfgCleanupPolicy, typeList, "delete", validateCleanupPolicy, "Only delete is supported; compact is rejected until compaction exists.", true},
	{"compression.type", typeString, "producer", oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"), "Accepted and reported; batches are stored as produced.", false},
	{"delete.retention.ms", typeLong, "86400000", longAtLeast(0), "Accepted and reported; used by compaction, which sluice does not have.", false},
	{"file.delete.delay.ms", typeLong, "60000", longAtLeast(0), "Accepted and reported; segments are deleted at once.", false},
	{"flush.messages", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(1), "Accepted and reported; use sluice.durability.", false},
	{"flush.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(0), "Accepted and reported; use sluice.durability.", false},
	{"follower.replication.throttled.replicas", typeList, "", anyValue, "Accepted and reported; sluice is a single node.", false},
	{cfgIndexInterval, typeInt, "4096", intAtLeast(0), "Bytes between entries of the sparse offset index.", true},
	{"leader.replication.throttled.replicas", typeList, "", anyValue, "Accepted and reported; sluice is a single node.", false},
	{"local.retention.bytes", typeLong, "-2", longAtLeast(-2), "Accepted and reported; sluice has no tiered storage.", false},
	{"local.retention.ms", typeLong, "-2", longAtLeast(-2), "Accepted and reported; sluice has no tiered storage.", false},
	{"max.compaction.lag.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(1), "Accepted and reported; sluice has no compaction.", false},
	{cfgMaxMessageBytes, typeInt, strconv.Itoa(defaultMaxMessage), intAtLeast(0), "Largest record batch the topic accepts, in bytes.", true},
	{"message.downconversion.enable", typeBoolean, "true", isBool, "Accepted and reported; sluice never down-converts.", false},
	{"message.format.version", typeString, "3.0-IV1", anyValue, "Accepted and reported (deprecated in Kafka); batches are always v2.", false},
	{"message.timestamp.after.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(0), "Accepted and reported; not enforced.", false},
	{"message.timestamp.before.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(0), "Accepted and reported; not enforced.", false},
	{"message.timestamp.difference.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), longAtLeast(0), "Accepted and reported; not enforced.", false},
	{cfgTimestampType, typeString, "CreateTime", oneOf("CreateTime", "LogAppendTime"), "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock.", true},
	{"min.cleanable.dirty.ratio", typeDouble, "0.5", isDouble, "Accepted and reported; sluice has no compaction.", false},
	{"min.compaction.lag.ms", typeLong, "0", longAtLeast(0), "Accepted and reported; sluice has no compaction.", false},
	{"min.insync.replicas", typeInt, "1", intAtLeast(1), "Accepted and reported; sluice is a single node.", false},
	{"preallocate", typeBoolean, "false", isBool, "Accepted and reported; segments are not preallocated.", false},
	{"remote.storage.enable", typeBoolean, "false", isFalse, "sluice has no tiered storage; only false is accepted.", false},
	{cfgRetentionBytes, typeLong, "-1", longAtLeast(-1), "Delete the oldest segments while the partition is larger than this (-1: no limit).", true},
	{cfgRetentionMs, typeLong, strconv.Itoa(defaultWeekMs), longAtLeast(-1), "Delete segments whose newest record is older than this (-1: keep forever).", true},
	{cfgSegmentBytes, typeInt, strconv.Itoa(defaultSegmentBytes), intAtLeast(14), "Roll a new segment when the active one reaches this size.", true},
	{"segment.index.bytes", typeInt, "10485760", intAtLeast(4), "Accepted and reported; sluice's indexes grow as needed.", false},
	{"segment.jitter.ms", typeLong, "0", longAtLeast(0), "Accepted and reported; not applied.", false},
	{cfgSegmentMs, typeLong, strconv.Itoa(defaultWeekMs), longAtLeast(1), "Roll a new segment when the active one is this old.", true},
	{cfgDurability, typeString, "fsync", validateDurability, "When a produce is acknowledged: fsync (after its bytes are on disk; default), interval=<ms> (flushed every <ms>), none (page cache only).", true},
	{"unclean.leader.election.enable", typeBoolean, "false", isBool, "Accepted and reported; sluice is a single node.", false},
})

func sortedDefs(d []configDef) []configDef {
	sort.Slice(d, func(i, j int) bool { return d[i].name < d[j].name })
	return d
}

// lookupConfigDef finds a topic config definition by name.
func lookupConfigDef(name string) (*configDef, bool) {
	i := sort.Search(len(topicConfigDefs), func(i int) bool { return topicConfigDefs[i].name >= name })
	if i < len(topicConfigDefs) && topicConfigDefs[i].name == name {
		return &topicConfigDefs[i], true
	}
	return nil, false
}

// validateTopicConfig checks one name=value pair.
func validateTopicConfig(name, value string) error {
	d, ok := lookupConfigDef(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	if err := d.validate(value); err != nil {
		return fmt.Errorf("invalid value %q for %s: %w", value, name, err)
	}
	return nil
}

// validateTopicConfigs checks a whole set of dynamic configs.
func validateTopicConfigs(set map[string]string) error {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := validateTopicConfig(n, set[n]); err != nil {
			return err
		}
	}
	return nil
}

func longAtLeast(min int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return errors.New("not a 64-bit integer")
		}
		if v < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func intAtLeast(min int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return errors.New("not a 32-bit integer")
		}
		if v < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(s string) error {
		for _, v := range values {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
	}
}

func anyValue(string) error { return nil }

func isBool(s string) error {
	if s != "true" && s != "false" {
		return errors.New("must be true or false")
	}
	return nil
}

func isFalse(s string) error {
	if s != "false" {
		return errors.New("only false is supported")
	}
	return nil
}

func isDouble(s string) error {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return errors.New("not a number")
	}
	return nil
}

func validateCleanupPolicy(s string) error {
	items := splitList(s)
	if len(items) == 0 {
		return errors.New("must be delete")
	}
	for _, it := range items {
		switch it {
		case "delete":
		case "compact":
			return errCompaction
		default:
			return fmt.Errorf("unknown cleanup policy %q (supported: delete)", it)
		}
	}
	return nil
}

func validateDurability(s string) error {
	_, err := parseDurability(s)
	return err
}

// parseDurability parses sluice.durability: "fsync", "none" or
// "interval=<ms>" with ms ≥ 1.
func parseDurability(s string) (log.Durability, error) {
	switch s {
	case "fsync":
		return log.Durability{Kind: log.DurabilityFsync}, nil
	case "none":
		return log.Durability{Kind: log.DurabilityNone}, nil
	}
	if ms, ok := strings.CutPrefix(s, "interval="); ok {
		v, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || v < 1 || v > math.MaxInt64/int64(time.Millisecond) {
			return log.Durability{}, errors.New("interval must be a positive number of milliseconds, as in interval=100")
		}
		return log.Durability{Kind: log.DurabilityInterval, Interval: time.Duration(v) * time.Millisecond}, nil
	}
	return log.Durability{}, errors.New("must be fsync, interval=<ms> or none")
}

// formatDurability is parseDurability's inverse.
func formatDurability(d log.Durability) string {
	switch d.Kind {
	case log.DurabilityNone:
		return "none"
	case log.DurabilityInterval:
		return "interval=" + strconv.FormatInt(d.Interval.Milliseconds(), 10)
	default:
		return "fsync"
	}
}

// splitList splits a Kafka list config ("a,b, c") into trimmed, non-empty
// items.
func splitList(s string) []string {
	var out []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// topicDefaults are the values a topic config takes when the topic does not
// set it. Only the durability default comes from the broker's configuration.
type topicDefaults struct {
	durability log.Durability
}

// defaultValue is the value of config d for a topic that does not set it,
// and where that value comes from.
func (td topicDefaults) defaultValue(d *configDef) (string, int8) {
	if d.name == cfgDurability {
		v := formatDurability(td.durability)
		if v != d.def {
			return v, sourceStaticBroker
		}
		return v, sourceDefault
	}
	return d.def, sourceDefault
}

// effective returns the value of config d under the dynamic set.
func (td topicDefaults) effective(set map[string]string, d *configDef) (string, int8) {
	if v, ok := set[d.name]; ok {
		return v, sourceDynamicTopic
	}
	return td.defaultValue(d)
}

// logConfig turns a topic's dynamic configs into the partition log's
// configuration. The set must have passed validateTopicConfigs.
func (td topicDefaults) logConfig(set map[string]string) log.Config {
	get := func(name string) string {
		d, _ := lookupConfigDef(name)
		v, _ := td.effective(set, d)
		return strings.TrimSpace(v)
	}
	num := func(name string) int64 {
		v, _ := strconv.ParseInt(get(name), 10, 64)
		return v
	}
	var c log.Config
	c.RetentionAge = time.Duration(num(cfgRetentionMs)) * time.Millisecond
	if num(cfgRetentionMs) < 0 {
		c.RetentionAge = -1
	}
	c.RetentionBytes = num(cfgRetentionBytes)
	if c.RetentionBytes < 0 {
		c.RetentionBytes = 0 // unlimited
	}
	c.SegmentBytes = num(cfgSegmentBytes)
	c.SegmentAge = time.Duration(num(cfgSegmentMs)) * time.Millisecond
	c.MaxBatchBytes = int32(num(cfgMaxMessageBytes))
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 // 0 would mean the log's default; Kafka's 0 rejects every batch
	}
	c.LogAppendTime = get(cfgTimestampType) == "LogAppendTime"
	c.IndexIntervalBytes = int32(num(cfgIndexInterval))
	c.Durability, _ = parseDurability(get(cfgDurability))
	return c
}
