package kafka

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc starts a request. It must arrange for sl to be completed
// exactly once, either before it returns or later from another goroutine.
type handlerFunc func(c *conn, sl *slot, req kmsg.Request, h *header)

// api is one served API key.
type api struct {
	min, max int16
	handle   handlerFunc
	// keepsFrame: the handler reads the request's []byte fields only until
	// it completes the slot (or calls slot.releaseFrame, as Produce does
	// once its appends are done), so the frame buffer can be pooled again
	// after the response is written.
	keepsFrame bool
}

// brokerAPIs are the keys this package serves itself or through the
// broker. Group keys are added from Config.GroupAPIs. Version ranges are
// what is implemented and tested; see each handle_*.go.
func brokerAPIs() map[int16]api {
	return map[int16]api{
		int16(kmsg.Produce):                 {0, 13, handleProduce, true},
		int16(kmsg.Fetch):                   {0, 16, handleFetch, true},
		int16(kmsg.ListOffsets):             {0, 10, handleListOffsets, true},
		int16(kmsg.Metadata):                {0, 13, handleMetadata, true},
		int16(kmsg.FindCoordinator):         {0, 6, handleFindCoordinator, true},
		int16(kmsg.ApiVersions):             {0, 4, handleAPIVersions, true},
		int16(kmsg.CreateTopics):            {0, 7, handleCreateTopics, false},
		int16(kmsg.DeleteTopics):            {0, 6, handleDeleteTopics, true},
		int16(kmsg.DeleteRecords):           {0, 2, handleDeleteRecords, true},
		int16(kmsg.InitProducerID):          {0, 5, handleInitProducerID, true},
		int16(kmsg.OffsetForLeaderEpoch):    {0, 4, handleOffsetForLeaderEpoch, true},
		int16(kmsg.DescribeConfigs):         {0, 4, handleDescribeConfigs, false},
		int16(kmsg.AlterConfigs):            {0, 2, handleAlterConfigs, false},
		int16(kmsg.DescribeLogDirs):         {0, 4, handleDescribeLogDirs, true},
		int16(kmsg.CreatePartitions):        {0, 3, handleCreatePartitions, false},
		int16(kmsg.IncrementalAlterConfigs): {0, 1, handleIncrementalAlterConfigs, false},
		int16(kmsg.DescribeCluster):         {0, 1, handleDescribeCluster, true},
	}
}

// versionTable maps API keys to what is served.
type versionTable struct {
	apis map[int16]*api
}

func buildVersions(groups []APIRange) versionTable {
	t := versionTable{apis: map[int16]*api{}}
	for k, a := range brokerAPIs() {
		t.apis[k] = &a
	}
	for _, g := range groups {
		if _, taken := t.apis[g.Key]; taken || kmsg.RequestForKey(g.Key) == nil {
			continue
		}
		lo, hi := g.MinVersion, g.MaxVersion
		if req := kmsg.RequestForKey(g.Key); hi > req.MaxVersion() {
			hi = req.MaxVersion() // never advertise what kmsg cannot decode
		}
		if lo > hi {
			continue
		}
		t.apis[g.Key] = &api{min: lo, max: hi, handle: handleGroup}
	}
	return t
}

func (t versionTable) lookup(key int16) *api { return t.apis[key] }

func (t versionTable) supports(key, version int16) bool {
	a := t.apis[key]
	return a != nil && version >= a.min && version <= a.max
}

// apiKeys is the ApiVersions key list, sorted by key.
func (t versionTable) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(t.apis))
	for k, a := range t.apis {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
