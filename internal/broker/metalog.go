package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// The metadata log and its snapshot. Names are part of the on-disk layout.
const (
	metaLogName          = "__cluster_metadata-0"
	metaSnapshotFile     = "metadata.snapshot"
	metaSnapshotMagic    = "SLMS"
	metaSnapshotVersion  = 1
	partitionMetaFile    = "partition.meta"
	partitionMetaVersion = 1
)

// metaLogConfig: metadata is kept forever (snapshots, not retention, bound
// it) and every change is fsynced before it takes effect.
var metaLogConfig = log.Config{
	SegmentBytes: 8 << 20,
	RetentionAge: -1,
	Durability:   log.Durability{Kind: log.DurabilityFsync},
}

// replayMeta loads the metadata snapshot, if any, and applies the metadata
// log after it.
func (b *Broker) replayMeta() error {
	fsys := b.store.FS()
	from := int64(0)
	if raw, ok, err := readWhole(fsys, path.Join(b.meta.Dir(), metaSnapshotFile)); err != nil {
		return fmt.Errorf("broker: read metadata snapshot: %w", err)
	} else if ok {
		covered, changes, err := decodeMetaSnapshot(raw)
		if err != nil {
			return fmt.Errorf("broker: metadata snapshot: %w", err)
		}
		for i := range changes {
			if err := b.state.apply(&changes[i]); err != nil {
				return fmt.Errorf("broker: metadata snapshot: %w", err)
			}
		}
		from = covered
	}
	if start := b.meta.LogStartOffset(); start > from {
		return fmt.Errorf("broker: metadata log starts at offset %d but the snapshot covers only up to %d", start, from)
	}
	return readBatches(b.meta, from, func(batch []byte) error {
		base, changes, err := decodeBatch(batch)
		if err != nil {
			return fmt.Errorf("broker: metadata log at offset %d: %w", base, err)
		}
		if base < from {
			return nil // in the snapshot already
		}
		for i := range changes {
			if err := b.state.apply(&changes[i]); err != nil {
				return fmt.Errorf("broker: metadata log at offset %d: %w", base+int64(i), err)
			}
		}
		b.changesSinceSnap += len(changes)
		return nil
	})
}

// readBatches calls fn with each whole batch of l from the one holding
// offset from up to the high watermark.
func readBatches(l *log.Log, from int64, fn func(batch []byte) error) error {
	var rr log.ReadResult
	defer rr.Release()
	off := max(from, l.LogStartOffset())
	var buf []byte
	for off < l.HighWatermark() {
		if err := l.Read(off, 1<<20, &rr); err != nil {
			return err
		}
		if len(rr.Regions) == 0 {
			break
		}
		next := off
		for _, r := range rr.Regions {
			if int64(cap(buf)) < r.Len {
				buf = make([]byte, r.Len)
			}
			buf = buf[:r.Len]
			if n, err := r.File.ReadAt(buf, r.Pos); n != len(buf) {
				return fmt.Errorf("read %s: %w", l.Name(), err)
			}
			for rest := buf; len(rest) > 0; {
				h, err := log.ParseHeader(rest)
				if err != nil || h.TotalSize() > int64(len(rest)) {
					return fmt.Errorf("%w: bad batch framing at offset %d", errBadBatch, next)
				}
				if err := fn(rest[:h.TotalSize()]); err != nil {
					return err
				}
				next = h.LastOffset() + 1
				rest = rest[h.TotalSize():]
			}
		}
		rr.Release()
		if next <= off {
			break
		}
		off = next
	}
	return nil
}

// chanNotifier receives a durability outcome.
type chanNotifier chan error

func (c chanNotifier) Durable(err error) { c <- err }

// waitDurable blocks until ticket t is durable.
func (b *Broker) waitDurable(t log.Ticket) error {
	done := make(chanNotifier, 1)
	b.store.WhenDurable(t, done)
	return <-done
}

// commit writes changes to the metadata log as one batch, waits until it is
// durable and applies it, then calls publish (if not nil) under mu in the
// same critical section, so readers see the change and its partitions at
// once. The caller holds adminMu (or is Open) and has checked the changes
// against the state.
func (b *Broker) commit(changes []change, publish func()) error {
	if b.closed.Load() {
		return ErrClosed
	}
	res, err := b.meta.Append(encodeBatch(changes, b.now().UnixMilli()), 0)
	if err != nil {
		return err
	}
	if err := b.waitDurable(res.Ticket); err != nil {
		return err
	}
	b.mu.Lock()
	for i := range changes {
		if err := b.state.apply(&changes[i]); err != nil {
			// The caller checked; this is a broken invariant, and the log
			// now holds a change replay will refuse.
			b.mu.Unlock()
			panic(fmt.Sprintf("broker: durable metadata change does not apply: %v", err))
		}
	}
	if publish != nil {
		publish()
	}
	b.mu.Unlock()
	b.changesSinceSnap += len(changes)
	if b.changesSinceSnap >= metaSnapshotEvery {
		if err := b.snapshotMetaLocked(); err != nil {
			b.logger.Warn("metadata snapshot failed", "err", err)
		}
	}
	return nil
}

// Metadata snapshot file (part of the on-disk format), in the metadata log's
// directory, replaced atomically:
//
//	"SLMS" version:uint16 covered:int64 batchLength:uint32 batch crc:uint32
//
// batch is a record batch v2 of change records (the same format as the
// metadata log) that rebuilds the state from empty; covered is the metadata
// log offset it reflects. crc is the CRC-32C of everything before it.
func encodeMetaSnapshot(covered int64, batch []byte) []byte {
	b := append([]byte(nil), metaSnapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, metaSnapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(covered))
	b = binary.BigEndian.AppendUint32(b, uint32(len(batch)))
	b = append(b, batch...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeMetaSnapshot(raw []byte) (int64, []change, error) {
	if len(raw) < 4+2+8+4+4 || string(raw[:4]) != metaSnapshotMagic {
		return 0, nil, fmt.Errorf("%w: bad header", errBadSnapshot)
	}
	body := raw[:len(raw)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(raw[len(raw)-4:]) {
		return 0, nil, fmt.Errorf("%w: crc mismatch", errBadSnapshot)
	}
	r := reader{b: body[4:], ok: true}
	if v := r.u16(); v != metaSnapshotVersion {
		return 0, nil, fmt.Errorf("%w: version %d", errBadSnapshot, v)
	}
	covered := int64(r.u64())
	batch := r.take(int(r.u32()))
	if !r.ok || len(r.b) != 0 {
		return 0, nil, fmt.Errorf("%w: length", errBadSnapshot)
	}
	if len(batch) == 0 {
		return covered, nil, nil
	}
	_, changes, err := decodeBatch(batch)
	return covered, changes, err
}

// snapshotMetaLocked writes a metadata snapshot covering the whole metadata
// log and then lets the log drop what the snapshot covers. The caller holds
// adminMu (so no change is in flight and every applied change is durable).
func (b *Broker) snapshotMetaLocked() error {
	covered := b.meta.NextOffset()
	b.mu.RLock()
	changes := b.state.snapshot()
	b.mu.RUnlock()
	var batch []byte
	if len(changes) > 0 {
		batch = encodeBatch(changes, b.now().UnixMilli())
	}
	if err := writeFileAtomic(b.store.FS(), b.meta.Dir(), metaSnapshotFile, encodeMetaSnapshot(covered, batch)); err != nil {
		return err
	}
	b.changesSinceSnap = 0
	if covered <= b.meta.HighWatermark() {
		if _, err := b.meta.DeleteRecords(covered); err != nil {
			return fmt.Errorf("trim metadata log: %w", err)
		}
	}
	return nil
}

// Partition meta file (part of the on-disk format), in each partition log's
// directory: version:uint8 topicID:[16]byte crc:uint32. It ties a partition
// directory to its topic ID, so a directory left behind by a deleted topic is
// never mistaken for a recreated topic's partition.
//
// It is written without fsync (saving two fsyncs per partition when a large
// topic is created): a directory that could hold another topic's data is
// one whose deletion failed in this process, where the file is still
// readable; after a crash such directories are orphans, which Open removes
// by name. A missing or damaged file is rewritten with the current ID.
func encodePartitionMeta(id [16]byte) []byte {
	b := []byte{partitionMetaVersion}
	b = append(b, id[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func readPartitionMeta(fsys vfs.FS, name string) ([16]byte, bool, error) {
	var id [16]byte
	raw, ok, err := readWhole(fsys, name)
	if err != nil || !ok {
		return id, false, err
	}
	if len(raw) != 21 || raw[0] != partitionMetaVersion || crc32.Checksum(raw[:17], castagnoli) != binary.BigEndian.Uint32(raw[17:]) {
		// Torn before its rename became durable cannot happen (it is
		// written atomically); treat damage as absent and rewrite it.
		return id, false, nil
	}
	copy(id[:], raw[1:17])
	return id, true, nil
}

// readWhole reads a small file; ok is false if it does not exist.
func readWhole(fsys vfs.FS, name string) ([]byte, bool, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, false, err
	}
	if size > 64<<20 {
		return nil, false, fmt.Errorf("%s: %d bytes is too large", name, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && int64(len(b)) != size {
		return nil, false, err
	}
	return b, true, nil
}

// writeFileAtomic writes a small file durably: temp file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(fsys vfs.FS, dir, name string, b []byte) error {
	return writeFile(fsys, dir, name, b, true)
}

// writeFile replaces a small file through a temp file and a rename; with
// sync, the contents and the rename are made durable.
func writeFile(fsys vfs.FS, dir, name string, b []byte, sync bool) error {
	tmp := path.Join(dir, name+".tmp")
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	if !sync {
		if err := f.Close(); err != nil {
			return err
		}
		return fsys.Rename(tmp, path.Join(dir, name))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, path.Join(dir, name)); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}
