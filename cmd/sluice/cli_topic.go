package main

// `sluice topic create|list|describe|alter|delete`, through kadm.
//
// JSON output (--json) is a stable interface; fields are only ever added.
//
// topic list --json: an array, sorted by name, of
//
//	{"name": string, "id": string ("" if the broker has no topic IDs),
//	 "partitions": int, "replication_factor": int, "internal": bool,
//	 "error": string ("" or the Kafka error name)}
//
// topic describe --json: one object
//
//	{"name": string, "id": string, "internal": bool,
//	 "partitions": [{"partition": int, "leader": int (-1: none),
//	     "leader_epoch": int, "replicas": [int], "isr": [int],
//	     "offline_replicas": [int], "start_offset": int, "end_offset": int
//	     (-1 when unknown), "error": string}],
//	 "configs": [{"name": string, "value": string|null, "source": string
//	     (Kafka's config source, e.g. "DEFAULT_CONFIG",
//	     "DYNAMIC_TOPIC_CONFIG"), "sensitive": bool}]}

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
)

func init() {
	registerCLI("topic", "create, list, describe, alter or delete topics", runTopic)
}

const (
	topicCreateSynopsis   = "topic create NAME [--partitions N] [--replication-factor N] [--config k=v ...]"
	topicListSynopsis     = "topic list [--json] [--internal]"
	topicDescribeSynopsis = "topic describe NAME [--json]"
	topicAlterSynopsis    = "topic alter NAME [--partitions N] [--config k=v ...] [--delete-config k ...]"
	topicDeleteSynopsis   = "topic delete NAME"
)

var topicSubcommands = []subcommand{
	{"create", topicCreateSynopsis, "create a topic", topicCreate},
	{"list", topicListSynopsis, "list topics", topicList},
	{"describe", topicDescribeSynopsis, "partitions, leaders, offsets and configs of a topic", topicDescribe},
	{"alter", topicAlterSynopsis, "add partitions or change configs", topicAlter},
	{"delete", topicDeleteSynopsis, "delete a topic and its data", topicDelete},
}

func runTopic(env *cliIO, args []string) int {
	return runSubcommand(env, "topic", topicSubcommands, args)
}

// oneName checks that exactly one positional argument, the topic or group
// name, was given.
func oneName(what string, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", usagef("missing %s name", what)
	case len(pos) > 1:
		return "", usagef("unexpected arguments after %s name: %s", what, strings.Join(pos[1:], " "))
	case pos[0] == "":
		return "", usagef("empty %s name", what)
	}
	return pos[0], nil
}

func topicCreate(env *cliIO, args []string) error {
	var (
		g          globalFlags
		partitions int
		rf         int
		configs    multiFlag
	)
	fs := newFlagSet(env, "topic create", topicCreateSynopsis)
	g.register(fs, env.getenv)
	fs.IntVar(&partitions, "partitions", -1, "number of partitions (-1: the broker's default)")
	fs.IntVar(&rf, "replication-factor", -1, "replicas per partition (-1: the broker's default)")
	fs.Var(&configs, "config", "topic config `key=value` (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("topic", pos)
	if err != nil {
		return err
	}
	if partitions == 0 || partitions < -1 || partitions > 1<<31-1 {
		return usagef("--partitions must be positive (or -1 for the broker default), got %d", partitions)
	}
	if rf == 0 || rf < -1 || rf > 1<<15-1 {
		return usagef("--replication-factor must be positive (or -1 for the broker default), got %d", rf)
	}
	cfg := make(map[string]*string, len(configs))
	for _, c := range configs {
		k, v, err := parseKeyValue("--config", c)
		if err != nil {
			return err
		}
		cfg[k] = &v
	}

	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), int16(rf), cfg, name)
	if err == nil {
		err = kafkaErr(resp.Err, resp.ErrMessage)
	}
	if err != nil {
		return fmt.Errorf("create topic %q: %w", name, err)
	}
	fmt.Fprintf(env.stderr, "created topic %q (partitions: %d, replication factor: %d)\n", name, resp.NumPartitions, resp.ReplicationFactor)
	return nil
}

type topicListJSON struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
	Error             string `json:"error"`
}

func topicList(env *cliIO, args []string) error {
	var (
		g        globalFlags
		asJSON   bool
		internal bool
	)
	fs := newFlagSet(env, "topic list", topicListSynopsis)
	g.register(fs, env.getenv)
	fs.BoolVar(&asJSON, "json", false, "print a JSON array")
	fs.BoolVar(&internal, "internal", false, "include internal topics")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments: %s", strings.Join(pos, " "))
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	var topics kadm.TopicDetails
	if internal {
		topics, err = adm.ListTopicsWithInternal(ctx)
	} else {
		topics, err = adm.ListTopics(ctx)
	}
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	out := make([]topicListJSON, 0, len(topics))
	for _, t := range topics.Sorted() {
		out = append(out, topicListJSON{
			Name:              t.Topic,
			ID:                topicIDString(t.ID),
			Partitions:        len(t.Partitions),
			ReplicationFactor: t.Partitions.NumReplicas(),
			Internal:          t.IsInternal,
			Error:             errName(t.Err),
		})
	}
	if asJSON {
		return writeJSON(env.stdout, out)
	}
	for _, t := range out {
		fmt.Fprintln(env.stdout, t.Name)
	}
	return nil
}

type partitionJSON struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	StartOffset     int64   `json:"start_offset"`
	EndOffset       int64   `json:"end_offset"`
	Error           string  `json:"error"`
}

type configJSON struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

type topicDescribeJSON struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"`
	Internal   bool            `json:"internal"`
	Partitions []partitionJSON `json:"partitions"`
	Configs    []configJSON    `json:"configs"`
}

func topicDescribe(env *cliIO, args []string) error {
	var (
		g      globalFlags
		asJSON bool
	)
	fs := newFlagSet(env, "topic describe", topicDescribeSynopsis)
	g.register(fs, env.getenv)
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("topic", pos)
	if err != nil {
		return err
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()

	topics, err := adm.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return fmt.Errorf("describe topic %q: %w", name, err)
	}
	t, ok := topics[name]
	if !ok {
		return fmt.Errorf("describe topic %q: not in the broker's metadata response", name)
	}
	if t.Err != nil {
		return fmt.Errorf("describe topic %q: %w", name, t.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil {
		return fmt.Errorf("list start offsets of %q: %w", name, err)
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil {
		return fmt.Errorf("list end offsets of %q: %w", name, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return fmt.Errorf("describe configs of %q: %w", name, err)
	}
	rc, err := rcs.On(name, nil)
	if err == nil {
		err = kafkaErr(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return fmt.Errorf("describe configs of %q: %w", name, err)
	}

	out := topicDescribeJSON{Name: name, ID: topicIDString(t.ID), Internal: t.IsInternal}
	for _, p := range t.Partitions.Sorted() {
		pj := partitionJSON{
			Partition:       p.Partition,
			Leader:          p.Leader,
			LeaderEpoch:     p.LeaderEpoch,
			Replicas:        nonNil(p.Replicas),
			ISR:             nonNil(p.ISR),
			OfflineReplicas: nonNil(p.OfflineReplicas),
			StartOffset:     -1,
			EndOffset:       -1,
			Error:           errName(p.Err),
		}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			pj.StartOffset = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			pj.EndOffset = o.Offset
		}
		out.Partitions = append(out.Partitions, pj)
	}
	out.Configs = make([]configJSON, 0, len(rc.Configs))
	for _, c := range rc.Configs {
		out.Configs = append(out.Configs, configJSON{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
	}
	slices.SortFunc(out.Configs, func(a, b configJSON) int { return cmp.Compare(a.Name, b.Name) })

	if asJSON {
		return writeJSON(env.stdout, out)
	}
	w := env.stdout
	fmt.Fprintf(w, "Topic: %s\n", out.Name)
	if out.ID != "" {
		fmt.Fprintf(w, "ID: %s\n", out.ID)
	}
	fmt.Fprintf(w, "Partitions: %d  Replication factor: %d  Internal: %v\n\n",
		len(out.Partitions), t.Partitions.NumReplicas(), out.Internal)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tSTART\tEND\tERROR")
	for _, p := range out.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
			joinInt32(p.Replicas), joinInt32(p.ISR), offsetText(p.StartOffset), offsetText(p.EndOffset), p.Error)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nConfigs:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range out.Configs {
		v := "<null>"
		switch {
		case c.Sensitive:
			v = "<sensitive>"
		case c.Value != nil:
			v = *c.Value
		}
		fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", c.Name, v, c.Source)
	}
	return tw.Flush()
}

func topicAlter(env *cliIO, args []string) error {
	var (
		g          globalFlags
		partitions int
		sets       multiFlag
		deletes    multiFlag
	)
	fs := newFlagSet(env, "topic alter", topicAlterSynopsis)
	g.register(fs, env.getenv)
	fs.IntVar(&partitions, "partitions", 0, "new total number of partitions (can only grow)")
	fs.Var(&sets, "config", "set topic config `key=value` (repeatable)")
	fs.Var(&deletes, "delete-config", "remove a topic config override `key` (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("topic", pos)
	if err != nil {
		return err
	}
	if partitions < 0 {
		return usagef("--partitions must be positive, got %d", partitions)
	}
	if partitions == 0 && len(sets) == 0 && len(deletes) == 0 {
		return usagef("nothing to alter: give --partitions, --config or --delete-config")
	}
	var alters []kadm.AlterConfig
	for _, c := range sets {
		k, v, err := parseKeyValue("--config", c)
		if err != nil {
			return err
		}
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range deletes {
		if k == "" || strings.Contains(k, "=") {
			return usagef("--delete-config wants a config name, got %q", k)
		}
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}

	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	if len(alters) > 0 {
		resps, err := adm.AlterTopicConfigs(ctx, alters, name)
		if err == nil {
			for _, r := range resps {
				if r.Err != nil {
					err = kafkaErr(r.Err, r.ErrMessage)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("alter configs of %q: %w", name, err)
		}
		fmt.Fprintf(env.stderr, "altered %d config(s) of topic %q\n", len(alters), name)
	}
	if partitions > 0 {
		resps, err := adm.UpdatePartitions(ctx, partitions, name)
		if err == nil {
			var r kadm.CreatePartitionsResponse
			if r, err = resps.On(name, nil); err == nil {
				err = kafkaErr(r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return fmt.Errorf("set partitions of %q to %d: %w", name, partitions, err)
		}
		fmt.Fprintf(env.stderr, "topic %q now has %d partitions\n", name, partitions)
	}
	return nil
}

func topicDelete(env *cliIO, args []string) error {
	var g globalFlags
	fs := newFlagSet(env, "topic delete", topicDeleteSynopsis)
	g.register(fs, env.getenv)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("topic", pos)
	if err != nil {
		return err
	}
	adm, cl, err := g.admin(env)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := g.opContext(env)
	defer cancel()
	resp, err := adm.DeleteTopic(ctx, name)
	if err == nil {
		err = kafkaErr(resp.Err, resp.ErrMessage)
	}
	if err != nil {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	fmt.Fprintf(env.stderr, "deleted topic %q\n", name)
	return nil
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func joinInt32(s []int32) string {
	var b strings.Builder
	for i, v := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v)
	}
	return b.String()
}

func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}
