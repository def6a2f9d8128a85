package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/vfs"
)

func TestCreateTopicsErrors(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "exists", 1, nil)
	createTopic(t, b, "dotted.name", 1, nil)
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		topic kmsg.CreateTopicsRequestTopic
		code  int16
	}{
		{"ok", kmsg.CreateTopicsRequestTopic{Topic: "fresh", NumPartitions: 2, ReplicationFactor: 1}, 0},
		{"defaults", kmsg.CreateTopicsRequestTopic{Topic: "fresh2", NumPartitions: -1, ReplicationFactor: -1}, 0},
		{"exists", kmsg.CreateTopicsRequestTopic{Topic: "exists", NumPartitions: 1, ReplicationFactor: 1}, codeTopicAlreadyExists},
		{"collides", kmsg.CreateTopicsRequestTopic{Topic: "dotted_name", NumPartitions: 1, ReplicationFactor: 1}, codeInvalidTopic},
		{"bad name", kmsg.CreateTopicsRequestTopic{Topic: "bad/name", NumPartitions: 1, ReplicationFactor: 1}, codeInvalidTopic},
		{"internal", kmsg.CreateTopicsRequestTopic{Topic: "__consumer_offsets", NumPartitions: 1, ReplicationFactor: 1}, codeInvalidTopic},
		{"zero partitions", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 0, ReplicationFactor: 1}, codeInvalidPartitions},
		{"too many partitions", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: maxPartitions + 1, ReplicationFactor: 1}, codeInvalidPartitions},
		{"rf 3", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 1, ReplicationFactor: 3}, codeInvalidReplicationFactor},
		{"rf 0", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 1, ReplicationFactor: 0}, codeInvalidReplicationFactor},
		{"compact", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: str("compact")}}}, codeInvalidConfig},
		{"unknown config", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.forever", Value: str("1")}}}, codeInvalidConfig},
		{"assignment ok", kmsg.CreateTopicsRequestTopic{Topic: "assigned", NumPartitions: -1, ReplicationFactor: -1,
			ReplicaAssignment: []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}, {Partition: 1, Replicas: []int32{1}}}}, 0},
		{"assignment other node", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: -1, ReplicationFactor: -1,
			ReplicaAssignment: []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{2}}}}, codeInvalidReplicaAssignment},
		{"assignment with count", kmsg.CreateTopicsRequestTopic{Topic: "z", NumPartitions: 1, ReplicationFactor: -1,
			ReplicaAssignment: []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}}, codeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 7
			req.Topics = []kmsg.CreateTopicsRequestTopic{tt.topic}
			got := b.CreateTopics(ctx, req).Topics[0]
			if got.ErrorCode != tt.code {
				t.Fatalf("code %d (%s), want %d", got.ErrorCode, deref(got.ErrorMessage), tt.code)
			}
			if tt.code != 0 && (got.ErrorMessage == nil || *got.ErrorMessage == "") {
				t.Fatal("error without a message")
			}
			if tt.code == 0 {
				n, id, ok := b.TopicPartitions(tt.topic.Topic)
				if !ok || n != got.NumPartitions || id != got.TopicID || len(got.Configs) != len(topicConfigDefs) {
					t.Fatalf("created topic: n=%d ok=%v resp=%+v", n, ok, got)
				}
			}
		})
	}
	if n, _, _ := b.TopicPartitions("assigned"); n != 2 {
		t.Fatalf("assigned topic has %d partitions", n)
	}
}

func TestCreateTopicsValidateOnlyAndDuplicates(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	req.ValidateOnly = true
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "a", NumPartitions: 1, ReplicationFactor: 1}}
	if got := b.CreateTopics(ctx, req).Topics[0]; got.ErrorCode != 0 || got.TopicID != ([16]byte{}) {
		t.Fatalf("validate-only: %+v", got)
	}
	if _, _, ok := b.TopicPartitions("a"); ok {
		t.Fatal("validate-only created the topic")
	}
	req.ValidateOnly = false
	req.Topics = append(req.Topics, req.Topics[0])
	for _, rt := range b.CreateTopics(ctx, req).Topics {
		if rt.ErrorCode != codeInvalidRequest {
			t.Fatalf("duplicate in request: code %d", rt.ErrorCode)
		}
	}
}

func TestDeleteRecreate(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	id1 := createTopic(t, b, "t", 2, nil)
	produce(t, b, mustPartition(t, b, "t", 0), batch(5, -1, -1, -1))
	old := mustPartition(t, b, "t", 0)

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 3
	del.TopicNames = []string{"t", "missing", "__consumer_offsets"}
	resp := b.DeleteTopics(ctx, del)
	if codes := []int16{resp.Topics[0].ErrorCode, resp.Topics[1].ErrorCode, resp.Topics[2].ErrorCode}; codes[0] != 0 ||
		codes[1] != codeUnknownTopicOrPartition || codes[2] != codeUnknownTopicOrPartition {
		t.Fatalf("delete codes %v", codes)
	}
	if _, code := b.Partition("t", 0); code != codeUnknownTopicOrPartition {
		t.Fatalf("deleted topic lookup: code %d", code)
	}
	if _, code := b.PartitionByID(id1, 0); code != codeUnknownTopicID {
		t.Fatalf("deleted topic lookup by ID: code %d", code)
	}
	if _, code, _ := old.Produce(batch(1, -1, -1, -1)); code != codeNotLeader {
		t.Fatalf("produce to a deleted partition: code %d", code)
	}

	id2 := createTopic(t, b, "t", 1, nil)
	if id2 == id1 {
		t.Fatal("recreated topic reuses the topic ID")
	}
	if next := mustPartition(t, b, "t", 0).Log().NextOffset(); next != 0 {
		t.Fatalf("recreated topic has old data: next offset %d", next)
	}
	closeBroker(t, b)

	b = openBroker(t, fs)
	defer closeBroker(t, b)
	n, id, ok := b.TopicPartitions("t")
	if !ok || n != 1 || id != id2 {
		t.Fatalf("after reopen: n=%d id=%x ok=%v", n, id, ok)
	}
	for _, name := range b.Store().Names() {
		if name == "t-1" {
			t.Fatal("log of the deleted topic's partition 1 survived")
		}
	}
}

func TestDeleteTopicsByID(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	id := createTopic(t, b, "byid", 1, nil)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	name := "byid"
	req.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}, {TopicID: [16]byte{42}}, {Topic: &name, TopicID: id}}
	resp := b.DeleteTopics(ctx, req)
	if resp.Topics[0].ErrorCode != 0 || deref(resp.Topics[0].Topic) != "byid" ||
		resp.Topics[1].ErrorCode != codeUnknownTopicID || resp.Topics[2].ErrorCode != codeInvalidRequest {
		t.Fatalf("resp %+v", resp.Topics)
	}
	if _, ok := b.TopicName(id); ok {
		t.Fatal("topic still known by ID")
	}
}

func TestCreatePartitions(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	createTopic(t, b, "grow", 2, nil)
	tests := []struct {
		name  string
		topic kmsg.CreatePartitionsRequestTopic
		only  bool
		code  int16
		want  int32
	}{
		{"validate only", kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 4}, true, 0, 2},
		{"shrink", kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 1}, false, codeInvalidPartitions, 2},
		{"same", kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 2}, false, codeInvalidPartitions, 2},
		{"unknown", kmsg.CreatePartitionsRequestTopic{Topic: "nope", Count: 4}, false, codeUnknownTopicOrPartition, 2},
		{"bad assignment", kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 3,
			Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{5}}}}, false, codeInvalidReplicaAssignment, 2},
		{"grow", kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 5}, false, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Version = 3
			req.ValidateOnly = tt.only
			req.Topics = []kmsg.CreatePartitionsRequestTopic{tt.topic}
			if got := b.CreatePartitions(ctx, req).Topics[0]; got.ErrorCode != tt.code {
				t.Fatalf("code %d (%s), want %d", got.ErrorCode, deref(got.ErrorMessage), tt.code)
			}
			if n, _, _ := b.TopicPartitions("grow"); n != tt.want {
				t.Fatalf("%d partitions, want %d", n, tt.want)
			}
		})
	}
	produce(t, b, mustPartition(t, b, "grow", 4), batch(2, -1, -1, -1))
	closeBroker(t, b)
	b = openBroker(t, fs)
	defer closeBroker(t, b)
	if n, _, _ := b.TopicPartitions("grow"); n != 5 {
		t.Fatalf("after reopen: %d partitions", n)
	}
	if next := mustPartition(t, b, "grow", 4).Log().NextOffset(); next != 2 {
		t.Fatalf("partition 4 next offset %d", next)
	}
}

func TestMetadataAllVersions(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	id := createTopic(t, b, "known", 2, nil)
	for v := int16(0); v <= (&kmsg.MetadataRequest{}).MaxVersion(); v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		req.AllowAutoTopicCreation = false
		known, bad, internal := "known", "bad name", "__consumer_offsets"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &known}, {Topic: &bad}, {Topic: &internal}}
		resp := b.Metadata(ctx, req)
		if resp.Version != v || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Port != 9092 {
			t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
		}
		if resp.ControllerID != 1 || resp.ClusterID == nil || len(*resp.ClusterID) != 22 {
			t.Fatalf("v%d: controller %d cluster %v", v, resp.ControllerID, deref(resp.ClusterID))
		}
		tp := resp.Topics[0]
		if tp.ErrorCode != 0 || tp.TopicID != id || len(tp.Partitions) != 2 || tp.Partitions[1].Leader != 1 ||
			tp.Partitions[1].LeaderEpoch != 0 || tp.AuthorizedOperations != opsNotRequested {
			t.Fatalf("v%d: topic %+v", v, tp)
		}
		if resp.Topics[1].ErrorCode != codeInvalidTopic || resp.Topics[2].ErrorCode != codeUnknownTopicOrPartition {
			t.Fatalf("v%d: codes %d %d", v, resp.Topics[1].ErrorCode, resp.Topics[2].ErrorCode)
		}
		if v >= 8 {
			req.IncludeTopicAuthorizedOperations = true
			if ops := b.Metadata(ctx, req).Topics[0].AuthorizedOperations; ops != topicOps {
				t.Fatalf("v%d: requested topic operations %x", v, ops)
			}
		}
		// The response must encode at its version.
		if enc := resp.AppendTo(nil); len(enc) == 0 {
			t.Fatalf("v%d: empty encoding", v)
		}
		// v0 with no topics and v1+ with null topics list everything.
		all := kmsg.NewPtrMetadataRequest()
		all.Version = v
		if v == 0 {
			all.Topics = []kmsg.MetadataRequestTopic{}
		}
		if got := b.Metadata(ctx, all).Topics; len(got) != 1 || deref(got[0].Topic) != "known" {
			t.Fatalf("v%d: all topics = %+v", v, got)
		}
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	tests := []struct {
		version int16
		allow   bool
		topic   string
		code    int16
	}{
		{1, false, "old-client", 0}, // before v4 the request always allows it
		{4, false, "not-allowed", codeUnknownTopicOrPartition},
		{12, true, "new-client", 0},
		{12, true, "__internal", codeUnknownTopicOrPartition},
		{12, true, "bad!name", codeInvalidTopic},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.AllowAutoTopicCreation = tt.version, tt.allow
		name := tt.topic
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		got := b.Metadata(ctx, req).Topics[0]
		if got.ErrorCode != tt.code {
			t.Fatalf("%s v%d: code %d, want %d", tt.topic, tt.version, got.ErrorCode, tt.code)
		}
		if tt.code == 0 && (len(got.Partitions) != 1 || got.Partitions[0].ErrorCode != 0) {
			t.Fatalf("%s: partitions %+v", tt.topic, got.Partitions)
		}
	}
	// By topic ID (v10+).
	_, id, _ := b.TopicPartitions("new-client")
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}, {TopicID: [16]byte{1}}}
	resp := b.Metadata(ctx, req)
	if deref(resp.Topics[0].Topic) != "new-client" || resp.Topics[1].ErrorCode != codeUnknownTopicID {
		t.Fatalf("by ID: %+v", resp.Topics)
	}
}

func TestDescribeClusterAndLogDirs(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "d", 2, nil)
	produce(t, b, mustPartition(t, b, "d", 1), batch(4, -1, -1, -1))

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version = 1
	dc.EndpointType = 1
	resp := b.DescribeCluster(ctx, dc)
	if resp.ErrorCode != 0 || len(resp.Brokers) != 1 || resp.ControllerID != 1 || len(resp.ClusterID) != 22 {
		t.Fatalf("describe cluster %+v", resp)
	}
	dc.EndpointType = 2
	if code := b.DescribeCluster(ctx, dc).ErrorCode; code != codeUnsupportedEndpointType {
		t.Fatalf("controllers endpoint: code %d", code)
	}

	dl := kmsg.NewPtrDescribeLogDirsRequest()
	dl.Version = 4
	dirs := b.DescribeLogDirs(ctx, dl).Dirs
	if len(dirs) != 1 || dirs[0].Dir != "/data" || len(dirs[0].Topics) != 1 || len(dirs[0].Topics[0].Partitions) != 2 ||
		dirs[0].Topics[0].Partitions[1].Size == 0 {
		t.Fatalf("log dirs %+v", dirs)
	}
}

func TestDeleteRecords(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "dr", 1, nil)
	produce(t, b, mustPartition(t, b, "dr", 0), batch(10, -1, -1, -1))
	tests := []struct {
		offset int64
		code   int16
		low    int64
	}{
		{4, 0, 4},
		{11, codeOffsetOutOfRange, -1},
		{-1, 0, 10},
	}
	for _, tt := range tests {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.Version = 2
		req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "dr", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: tt.offset}}}}
		got := b.DeleteRecords(ctx, req).Topics[0].Partitions[0]
		if got.ErrorCode != tt.code || got.LowWatermark != tt.low {
			t.Fatalf("offset %d: %+v", tt.offset, got)
		}
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "dr", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 3, Offset: 0}}}}
	if code := b.DeleteRecords(ctx, req).Topics[0].Partitions[0].ErrorCode; code != codeUnknownTopicOrPartition {
		t.Fatalf("unknown partition: code %d", code)
	}
}

func TestErrorMessagesAreClear(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	v := "compact"
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "c", NumPartitions: 1, ReplicationFactor: 1,
		Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: &v}}}}
	msg := deref(b.CreateTopics(ctx, req).Topics[0].ErrorMessage)
	if !strings.Contains(msg, "compaction") {
		t.Fatalf("message %q does not explain compaction", msg)
	}
}
