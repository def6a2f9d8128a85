package kafka

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzGroupAPIs stands in for the group coordinator's keys so that their
// request decoders are fuzzed too.
var fuzzGroupAPIs = []APIRange{
	{int16(kmsg.OffsetCommit), 0, 9}, {int16(kmsg.OffsetFetch), 0, 9}, {int16(kmsg.JoinGroup), 0, 9},
	{int16(kmsg.Heartbeat), 0, 4}, {int16(kmsg.LeaveGroup), 0, 5}, {int16(kmsg.SyncGroup), 0, 5},
	{int16(kmsg.DescribeGroups), 0, 5}, {int16(kmsg.ListGroups), 0, 5}, {int16(kmsg.DeleteGroups), 0, 2},
	{int16(kmsg.OffsetDelete), 0, 0}, {int16(kmsg.ConsumerGroupHeartbeat), 0, 1}, {int16(kmsg.ConsumerGroupDescribe), 0, 1},
}

// FuzzRequestDecode feeds a byte stream through the connection's decoding
// path: size prefixes checked against the limit, request headers v0–v2,
// the served key/version check and kmsg's body decoders. Nothing may panic,
// and a request that decodes must survive a kmsg encode/decode round trip.
// Seeds: testdata/fuzz/FuzzRequestDecode and one well-formed request per
// served key below.
func FuzzRequestDecode(f *testing.F) {
	vt := buildVersions(fuzzGroupAPIs)
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, k := range vt.apiKeys() {
		for _, v := range []int16{k.MinVersion, k.MaxVersion} {
			req := kmsg.RequestForKey(k.ApiKey)
			req.SetVersion(v)
			f.Add(fm.AppendRequest(nil, req, 1))
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		const max = 1 << 20
		for len(stream) >= 4 {
			size := int32(binary.BigEndian.Uint32(stream))
			if !frameSizeOK(size, max) {
				return // the connection would be closed
			}
			stream = stream[4:]
			if int(size) > len(stream) {
				return // a truncated frame: the read would time out
			}
			frame := stream[:size]
			stream = stream[size:]
			d, err := vt.decode(frame)
			if err != nil || d.req == nil {
				continue
			}
			again := kmsg.RequestForKey(d.h.key)
			again.SetVersion(d.h.version)
			if err := again.ReadFrom(d.req.AppendTo(nil)); err != nil {
				t.Fatalf("%s v%d: re-encoded request does not decode: %v", kmsg.NameForKey(d.h.key), d.h.version, err)
			}
		}
	})
}
