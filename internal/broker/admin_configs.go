package broker

// Config APIs: DescribeConfigs (v0-v4), AlterConfigs (v0-v2, replace
// semantics) and IncrementalAlterConfigs (v0-v1: SET, DELETE, APPEND and
// SUBTRACT, the last two for list configs only), both with validate-only.
//
// Topic configs are those of topicConfigDefs; a change is durable in the
// metadata log before it is answered and applies to the partition logs at
// once. Broker configs are described (read-only, from the static
// configuration); altering any is INVALID_CONFIG. Other resource types are
// INVALID_REQUEST.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs describes topic and broker configs.
func (b *Broker) DescribeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var code int16
		var msg string
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			out.Configs, code, msg = b.describeTopicConfigs(req, &r)
		case kmsg.ConfigResourceTypeBroker:
			out.Configs, code, msg = b.describeBrokerConfigs(req, &r)
		default:
			code, msg = codeInvalidRequest, fmt.Sprintf("config resource type %d is not supported", r.ResourceType)
		}
		if code != 0 {
			out.ErrorCode, out.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

func wanted(names []string, name string) bool {
	return names == nil || slices.Contains(names, name)
}

func (b *Broker) describeTopicConfigs(req *kmsg.DescribeConfigsRequest, r *kmsg.DescribeConfigsRequestResource) ([]kmsg.DescribeConfigsResponseResourceConfig, int16, string) {
	b.mu.RLock()
	t, ok := b.state.topics[r.ResourceName]
	var set map[string]string
	if ok {
		set = t.configs
	}
	b.mu.RUnlock()
	if !ok || isInternalTopic(r.ResourceName) {
		return nil, codeUnknownTopicOrPartition, fmt.Sprintf("unknown topic %q", r.ResourceName)
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if !wanted(r.ConfigNames, d.name) {
			continue
		}
		v, src := b.defaults.effective(set, d)
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value = d.name, &v
		c.IsDefault = src != sourceDynamicTopic
		c.Source = kmsg.ConfigSource(src)
		c.ConfigType = kmsg.ConfigType(d.typ)
		if req.IncludeSynonyms {
			if src == sourceDynamicTopic {
				c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: d.name, Value: &v, Source: kmsg.ConfigSource(src)})
			}
			dv, dsrc := b.defaults.defaultValue(d)
			c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: d.name, Value: &dv, Source: kmsg.ConfigSource(dsrc)})
		}
		if req.IncludeDocumentation {
			doc := d.doc
			c.Documentation = &doc
		}
		out = append(out, c)
	}
	return out, 0, ""
}

// brokerConfigs are the broker configs DescribeConfigs reports, all
// read-only: they come from sluice's static configuration.
func (b *Broker) brokerConfigs() []struct {
	name, value string
	typ         int8
} {
	id := strconv.Itoa(int(b.cfg.NodeID))
	return []struct {
		name, value string
		typ         int8
	}{
		{"advertised.listeners", fmt.Sprintf("PLAINTEXT://%s:%d", b.cfg.Host, b.cfg.Port), typeString},
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), typeBoolean},
		{"broker.id", id, typeInt},
		{"default.replication.factor", "1", typeInt},
		{"delete.topic.enable", "true", typeBoolean},
		{"log.cleanup.policy", "delete", typeList},
		{"log.dirs", b.cfg.DataDir, typeString},
		{"log.message.timestamp.type", "CreateTime", typeString},
		{"log.retention.bytes", "-1", typeLong},
		{"log.retention.ms", strconv.Itoa(defaultWeekMs), typeLong},
		{"log.roll.ms", strconv.Itoa(defaultWeekMs), typeLong},
		{"log.segment.bytes", strconv.Itoa(defaultSegmentBytes), typeInt},
		{"message.max.bytes", strconv.Itoa(defaultMaxMessage), typeInt},
		{"min.insync.replicas", "1", typeInt},
		{"node.id", id, typeInt},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), typeInt},
		{"offsets.topic.replication.factor", "1", typeInt},
		{cfgDurability, formatDurability(b.cfg.DefaultDurability), typeString},
		{"transaction.state.log.replication.factor", "1", typeInt},
	}
}

// isThisBroker reports whether a broker resource name addresses this node
// ("" is the cluster-wide default resource).
func (b *Broker) isThisBroker(name string) bool { return name == "" || name == b.nodeName() }

func (b *Broker) describeBrokerConfigs(req *kmsg.DescribeConfigsRequest, r *kmsg.DescribeConfigsRequestResource) ([]kmsg.DescribeConfigsResponseResourceConfig, int16, string) {
	if !b.isThisBroker(r.ResourceName) {
		return nil, codeInvalidRequest, fmt.Sprintf("broker %q is not this node (%d)", r.ResourceName, b.cfg.NodeID)
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, bc := range b.brokerConfigs() {
		if !wanted(r.ConfigNames, bc.name) {
			continue
		}
		v := bc.value
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly = bc.name, &v, true
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		c.ConfigType = kmsg.ConfigType(bc.typ)
		if req.IncludeSynonyms {
			c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{{Name: bc.name, Value: &v, Source: kmsg.ConfigSourceStaticBrokerConfig}}
		}
		out = append(out, c)
	}
	return out, 0, ""
}

// configEdit computes a topic's new dynamic config set from its current one.
type configEdit func(cur map[string]string) (map[string]string, int16, string)

// alterTopicConfigs applies edit to a topic's configs: the result is
// validated and, unless validateOnly, recorded durably and applied to the
// partition logs.
func (b *Broker) alterTopicConfigs(name string, edit configEdit, validateOnly bool) (int16, string) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	t, ok := b.state.topics[name]
	if !ok || isInternalTopic(name) {
		return codeUnknownTopicOrPartition, fmt.Sprintf("unknown topic %q", name)
	}
	if b.closed.Load() {
		return codeNotLeader, "broker is shutting down"
	}
	set, code, msg := edit(maps.Clone(t.configs))
	if code != 0 {
		return code, msg
	}
	if err := validateTopicConfigs(set); err != nil {
		return codeInvalidConfig, err.Error()
	}
	if validateOnly {
		return 0, ""
	}
	id := t.id
	cfg := b.defaults.logConfig(set)
	err := b.commit([]change{{kind: changeTopicConfigs, id: id, configs: set}}, func() {
		for _, p := range b.parts[id] {
			p.log.SetConfig(cfg)
		}
	})
	if err != nil {
		return codeStorageError, err.Error()
	}
	return 0, ""
}

// alterBrokerConfigs refuses every change: broker configs are static.
func (b *Broker) alterBrokerConfigs(resource string, names []string) (int16, string) {
	if !b.isThisBroker(resource) {
		return codeInvalidRequest, fmt.Sprintf("broker %q is not this node (%d)", resource, b.cfg.NodeID)
	}
	if len(names) > 0 {
		return codeInvalidConfig, fmt.Sprintf("broker config %q cannot be changed at runtime; set it in sluice's configuration", names[0])
	}
	return 0, ""
}

// resourceKey identifies a config resource within one request.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// AlterConfigs replaces the dynamic configs of each topic resource with the
// given set: configs not listed return to their defaults.
func (b *Broker) AlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	counts := make(map[resourceKey]int)
	for _, r := range req.Resources {
		counts[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	for _, r := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var code int16
		var msg string
		switch {
		case counts[resourceKey{r.ResourceType, r.ResourceName}] > 1:
			code, msg = codeInvalidRequest, "resource appears more than once in the request"
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			code, msg = b.alterTopicConfigs(r.ResourceName, func(map[string]string) (map[string]string, int16, string) {
				set := make(map[string]string, len(r.Configs))
				for _, c := range r.Configs {
					if _, dup := set[c.Name]; dup {
						return nil, codeInvalidRequest, fmt.Sprintf("config %q appears more than once", c.Name)
					}
					if c.Value != nil {
						set[c.Name] = *c.Value
					}
				}
				return set, 0, ""
			}, req.ValidateOnly)
		case r.ResourceType == kmsg.ConfigResourceTypeBroker:
			var names []string
			for _, c := range r.Configs {
				names = append(names, c.Name)
			}
			code, msg = b.alterBrokerConfigs(r.ResourceName, names)
		default:
			code, msg = codeInvalidRequest, fmt.Sprintf("config resource type %d is not supported", r.ResourceType)
		}
		if code != 0 {
			out.ErrorCode, out.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

// IncrementalAlterConfigs edits configs: SET and DELETE for any topic
// config, APPEND and SUBTRACT for list configs (cleanup.policy).
func (b *Broker) IncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	counts := make(map[resourceKey]int)
	for _, r := range req.Resources {
		counts[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	for _, r := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var code int16
		var msg string
		switch {
		case counts[resourceKey{r.ResourceType, r.ResourceName}] > 1:
			code, msg = codeInvalidRequest, "resource appears more than once in the request"
		case r.ResourceType == kmsg.ConfigResourceTypeTopic:
			code, msg = b.alterTopicConfigs(r.ResourceName, func(set map[string]string) (map[string]string, int16, string) {
				return b.applyIncremental(set, r.Configs)
			}, req.ValidateOnly)
		case r.ResourceType == kmsg.ConfigResourceTypeBroker:
			var names []string
			for _, c := range r.Configs {
				names = append(names, c.Name)
			}
			code, msg = b.alterBrokerConfigs(r.ResourceName, names)
		default:
			code, msg = codeInvalidRequest, fmt.Sprintf("config resource type %d is not supported", r.ResourceType)
		}
		if code != 0 {
			out.ErrorCode, out.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp
}

// applyIncremental applies IncrementalAlterConfigs operations to a dynamic
// config set.
func (b *Broker) applyIncremental(set map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, int16, string) {
	if set == nil {
		set = map[string]string{}
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Name] {
			return nil, codeInvalidRequest, fmt.Sprintf("config %q appears more than once", op.Name)
		}
		seen[op.Name] = true
		d, ok := lookupConfigDef(op.Name)
		if !ok {
			return nil, codeInvalidConfig, fmt.Sprintf("unknown topic config %q", op.Name)
		}
		value := ""
		if op.Value != nil {
			value = *op.Value
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, codeInvalidRequest, fmt.Sprintf("SET of %q needs a value", op.Name)
			}
			set[op.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(set, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.typ != typeList {
				return nil, codeInvalidConfig, fmt.Sprintf("APPEND and SUBTRACT apply only to list configs; %q is not one", op.Name)
			}
			cur, _ := b.defaults.effective(set, d)
			items := splitList(cur)
			for _, it := range splitList(value) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, it) {
						items = append(items, it)
					}
				} else {
					items = slices.DeleteFunc(items, func(s string) bool { return s == it })
				}
			}
			set[op.Name] = strings.Join(items, ",")
		default:
			return nil, codeInvalidRequest, fmt.Sprintf("unknown config operation %d", op.Op)
		}
	}
	return set, 0, ""
}
