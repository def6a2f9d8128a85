package broker

import (
	"path"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestStalePartitionDirectory: a partition directory whose partition.meta
// names another topic ID (an earlier topic of the same name whose removal
// failed) is removed, never served as the new topic's data.
func TestStalePartitionDirectory(t *testing.T) {
	b := openBroker(t, vfs.NewMem())
	defer closeBroker(t, b)
	createTopic(t, b, "t", 1, nil)
	produce(t, b, mustPartition(t, b, "t", 0), batch(4, -1, -1, -1))
	newer := &topicMeta{name: "t", id: [16]byte{0xaa}, partitions: 1}
	p, err := b.openPartition(newer, 0, b.defaults.logConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	if next := p.Log().NextOffset(); next != 0 {
		t.Fatalf("stale data served: next offset %d", next)
	}
	id, ok, err := readPartitionMeta(b.store.FS(), path.Join(p.Log().Dir(), partitionMetaFile))
	if err != nil || !ok || id != newer.id {
		t.Fatalf("partition.meta %x ok=%v err=%v", id, ok, err)
	}
}

// TestProducerSnapshotIgnoredWhenUnusable: a damaged snapshot, or one that
// covers more than the log holds, is ignored and the state rebuilt from the
// whole log.
func TestProducerSnapshotIgnoredWhenUnusable(t *testing.T) {
	tests := []struct {
		name string
		file func(good []byte) []byte
	}{
		{"damaged", func(good []byte) []byte { b := append([]byte(nil), good...); b[10] ^= 1; return b }},
		{"beyond log end", func([]byte) []byte {
			tbl := newProducerTable()
			tbl.update(ptr(hdr(5, 0, 100, 1, 500)), 0) // a batch the log never kept
			return tbl.encode(1000)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			b := openBroker(t, fs)
			createTopic(t, b, "s", 1, nil)
			p := mustPartition(t, b, "s", 0)
			runSteps(t, b, p, []step{{"a", batch(2, 5, 0, 0), 0, 0}, {"b", batch(2, 5, 0, 2), 0, 2}})
			closeBroker(t, b)
			snap := path.Join("/data", "s-0", producerSnapshotFile)
			good, ok, err := readWhole(fs, snap)
			if err != nil || !ok {
				t.Fatalf("no snapshot after close: %v", err)
			}
			if err := writeFileAtomic(fs, path.Dir(snap), producerSnapshotFile, tt.file(good)); err != nil {
				t.Fatal(err)
			}
			b = openBroker(t, fs)
			defer closeBroker(t, b)
			runSteps(t, b, mustPartition(t, b, "s", 0), []step{
				{"retry", batch(2, 5, 0, 2), 0, 2},
				{"gap", batch(2, 5, 0, 9), codeOutOfOrderSequence, 0},
				{"next", batch(2, 5, 0, 4), 0, 4},
			})
		})
	}
}

// TestCorruptMetadataSnapshotFailsOpen: metadata is never guessed: a
// damaged snapshot stops Open with an error instead of serving a partial
// topic list.
func TestCorruptMetadataSnapshotFailsOpen(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, fs)
	createTopic(t, b, "m", 1, nil)
	closeBroker(t, b)
	name := path.Join("/data", metaLogName, metaSnapshotFile)
	raw, ok, err := readWhole(fs, name)
	if err != nil || !ok {
		t.Fatalf("no metadata snapshot after close: %v", err)
	}
	raw[len(raw)/2] ^= 0x10
	if err := writeFileAtomic(fs, path.Dir(name), metaSnapshotFile, raw); err != nil {
		t.Fatal(err)
	}
	if b, err := Open(testConfig(fs)); err == nil {
		b.Close()
		t.Fatal("Open succeeded with a damaged metadata snapshot")
	}
}

// TestDeleteLongTopicNameThenReopen: the longest legal topic name must not
// make a later Open fail, even where its partition directory cannot be
// renamed for removal (a 255-byte name plus a suffix is too long for the
// OS).
func TestDeleteLongTopicNameThenReopen(t *testing.T) {
	cfg := testConfig(vfs.OS{})
	cfg.DataDir = t.TempDir()
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("x", maxTopicNameLength)
	createTopic(t, b, name, 1, nil)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{name}
	if code := b.DeleteTopics(ctx, req).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("delete: code %d", code)
	}
	closeBroker(t, b)
	b, err = Open(cfg)
	if err != nil {
		t.Fatalf("reopen after deleting a long-named topic: %v", err)
	}
	defer closeBroker(t, b)
	if _, _, ok := b.TopicPartitions(name); ok {
		t.Fatal("deleted topic is back")
	}
}
