package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func listOffsetsRequest(version int16, topic string, partition int32, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.MaxNumOffsets = partition, ts, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestListOffsets(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("lo", 1)
	// Three batches at known timestamps.
	c := ts.dial()
	defer c.close()
	base := time.Now().UnixMilli() - 10_000
	for i := 0; i < 3; i++ {
		b := encodeBatch(5, []byte("x"), -1, -1, -1, base+int64(i)*1000)
		if r := c.request(produceRequest(9, -1, "lo", 0, b)).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatal("produce failed")
		}
	}
	cases := []struct {
		name       string
		version    int16
		ts         int64
		wantOffset int64
		wantTS     int64
	}{
		{"latest", 1, -1, 15, -1},
		{"earliest", 1, -2, 0, -1},
		{"earliest local", 8, -4, 0, -1},
		{"max timestamp", 7, -3, 14, base + 2000},
		{"by timestamp", 4, base + 500, 5, base + 1000},
		{"by exact timestamp", 6, base, 0, base},
		{"after the last", 2, base + 99_000, -1, -1},
		{"latest tiered", 9, -5, -1, -1},
		{"v10 latest", 10, -1, 15, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.request(listOffsetsRequest(tc.version, "lo", 0, tc.ts)).(*kmsg.ListOffsetsResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.Offset != tc.wantOffset || p.Timestamp != tc.wantTS {
				t.Fatalf("error %d offset %d ts %d, want 0 %d %d", p.ErrorCode, p.Offset, p.Timestamp, tc.wantOffset, tc.wantTS)
			}
		})
	}
	t.Run("v0 old style", func(t *testing.T) {
		for _, tc := range []struct {
			ts   int64
			want []int64
		}{{-1, []int64{15}}, {-2, []int64{0}}, {base + 99_000, []int64{}}} {
			resp := c.request(listOffsetsRequest(0, "lo", 0, tc.ts)).(*kmsg.ListOffsetsResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || len(p.OldStyleOffsets) != len(tc.want) || (len(tc.want) == 1 && p.OldStyleOffsets[0] != tc.want[0]) {
				t.Fatalf("ts %d: error %d offsets %v, want %v", tc.ts, p.ErrorCode, p.OldStyleOffsets, tc.want)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		resp := c.request(listOffsetsRequest(4, "nope", 0, -1)).(*kmsg.ListOffsetsResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != errUnknownTopicOrPartition {
			t.Fatalf("unknown topic: error %d", code)
		}
		req := listOffsetsRequest(4, "lo", 0, -1)
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = 9
		resp = c.request(req).(*kmsg.ListOffsetsResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != errUnknownLeaderEpoch {
			t.Fatalf("newer epoch: error %d", code)
		}
	})
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	ts := startServer(t)
	ts.createTopic("ep", 1)
	ts.produceN("ep", 0, 2, 3, 10)
	c := ts.dial()
	defer c.close()
	for v := int16(0); v <= 4; v++ {
		for _, tc := range []struct {
			epoch, wantEpoch int32
			wantEnd          int64
		}{{0, 0, 6}, {5, -1, -1}} {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.Version, req.ReplicaID = v, -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "ep"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, tc.epoch, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := c.request(req).(*kmsg.OffsetForLeaderEpochResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.EndOffset != tc.wantEnd || (v >= 1 && p.LeaderEpoch != tc.wantEpoch) {
				t.Fatalf("v%d epoch %d: error %d epoch %d end %d", v, tc.epoch, p.ErrorCode, p.LeaderEpoch, p.EndOffset)
			}
		}
	}
}

func TestFindCoordinator(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = v
		req.CoordinatorKey = "g1"
		req.CoordinatorKeys = []string{"g1", "g2"}
		resp := c.request(req).(*kmsg.FindCoordinatorResponse)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 0 || resp.Host != "127.0.0.1" || resp.Port != ts.srv.cfg.Port {
				t.Fatalf("v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 2 {
			t.Fatalf("v%d: %d coordinators", v, len(resp.Coordinators))
		}
		for i, co := range resp.Coordinators {
			if co.Key != req.CoordinatorKeys[i] || co.ErrorCode != 0 || co.Port != ts.srv.cfg.Port {
				t.Fatalf("v%d: %+v", v, co)
			}
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType, req.CoordinatorKey = 3, 1, "txn"
	if resp := c.request(req).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != errCoordinatorNotAvailable {
		t.Fatalf("transaction coordinator: error %d", resp.ErrorCode)
	}
}

// TestAdminPassThrough: the admin keys reach the broker at every version
// served and come back decodable.
func TestAdminPassThrough(t *testing.T) {
	ts := startServer(t)
	c := ts.dial()
	defer c.close()
	for v := int16(0); v <= 7; v++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = v
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "admin-"+string(rune('a'+v)), 2, 1
		req.Topics = append(req.Topics, tp)
		resp := c.request(req).(*kmsg.CreateTopicsResponse)
		if resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreateTopics v%d: error %d", v, resp.Topics[0].ErrorCode)
		}
	}
	bad := kmsg.NewPtrCreateTopicsRequest()
	bad.Version = 4
	tp := kmsg.NewCreateTopicsRequestTopic()
	tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "bad name!", 1, 1
	bad.Topics = append(bad.Topics, tp)
	if code := c.request(bad).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != errInvalidTopic {
		t.Fatalf("invalid topic name: error %d, want INVALID_TOPIC_EXCEPTION", code)
	}
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = v
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-a"
		req.Resources = append(req.Resources, r)
		resp := c.request(req).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs v%d: %+v", v, resp.Resources)
		}
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		if resp := c.request(req).(*kmsg.DescribeClusterResponse); resp.ErrorCode != 0 || len(resp.Brokers) != 1 {
			t.Fatalf("DescribeCluster v%d: error %d, %d brokers", v, resp.ErrorCode, len(resp.Brokers))
		}
	}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		if resp := c.request(req).(*kmsg.InitProducerIDResponse); resp.ErrorCode != 0 || resp.ProducerID < 0 {
			t.Fatalf("InitProducerID v%d: error %d id %d", v, resp.ErrorCode, resp.ProducerID)
		}
	}
	for v := int16(0); v <= 13; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("admin-a")
		req.Topics = append(req.Topics, rt)
		resp := c.request(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("Metadata v%d: %d brokers, topics %+v", v, len(resp.Brokers), resp.Topics)
		}
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = v
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "admin-b", int32(3+v)
		req.Topics = append(req.Topics, rt)
		if resp := c.request(req).(*kmsg.CreatePartitionsResponse); len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreatePartitions v%d: %+v", v, resp.Topics)
		}
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Version = v
		r := kmsg.NewAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-a"
		cfg := kmsg.NewAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("3600000")
		r.Configs = append(r.Configs, cfg)
		req.Resources = append(req.Resources, r)
		if resp := c.request(req).(*kmsg.AlterConfigsResponse); len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("AlterConfigs v%d: %+v", v, resp.Resources)
		}
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = v
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "admin-a"
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr("compact")
		r.Configs = append(r.Configs, cfg)
		req.Resources = append(req.Resources, r)
		if resp := c.request(req).(*kmsg.IncrementalAlterConfigsResponse); len(resp.Resources) != 1 || resp.Resources[0].ErrorCode == 0 {
			t.Fatalf("IncrementalAlterConfigs v%d: compact accepted: %+v", v, resp.Resources)
		}
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.Version = v
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "admin-a"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if resp := c.request(req).(*kmsg.DeleteRecordsResponse); len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("DeleteRecords v%d: %+v", v, resp.Topics)
		}
	}
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = v
		if resp := c.request(req).(*kmsg.DescribeLogDirsResponse); len(resp.Dirs) != 1 || resp.Dirs[0].ErrorCode != 0 {
			t.Fatalf("DescribeLogDirs v%d: %+v", v, resp.Dirs)
		}
	}
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		name := "admin-" + string(rune('a'+v))
		req.TopicNames = []string{name}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		resp := c.request(req).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("DeleteTopics v%d: %+v", v, resp.Topics)
		}
	}
}
