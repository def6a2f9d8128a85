package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// mountTmpfs mounts a tmpfs of sizeMiB on a fresh directory and unmounts it
// when the test ends. Without root or mount permission the test is skipped
// loudly, except in CI (CI=true, run as root by .ci/run), where it fails.
func mountTmpfs(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	var why string
	denied := false // the machine forbids mounts (a container without the capability)
	if os.Geteuid() != 0 {
		why = "not root"
	} else if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMiB), "tmpfs", dir).CombinedOutput(); err != nil {
		why = fmt.Sprintf("mount -t tmpfs: %v: %s", err, bytes.TrimSpace(out))
		o := strings.ToLower(string(out))
		denied = strings.Contains(o, "permission denied") || strings.Contains(o, "not permitted")
	}
	if why != "" {
		msg := "disk-full test needs a small tmpfs: " + why
		// In CI (root, by .ci/run) a failed mount is a failure, unless the
		// machine itself forbids mounting; that is said loudly, as a skip.
		if isCI() && !denied {
			t.Fatal(msg + " (CI=true requires it; .ci/run runs as root)")
		}
		t.Skip("SKIPPING: " + msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

type ackedRecord struct {
	topic  string
	offset int64
	value  []byte
}

// TestDiskFull: a broker whose data directory is on a 64 MiB tmpfs is
// produced to until the disk is full. Clients must get KAFKA_STORAGE_ERROR,
// the broker must stay up and answer, every acknowledged record must stay
// readable (before and after a restart), and produce must succeed again,
// without a restart, once space is freed (a filler file deleted, then a
// topic deleted). Both storage modes: the journal as the log (the
// default) and segment files.
func TestDiskFull(t *testing.T) {
	t.Run("journal-log", func(t *testing.T) { diskFull(t, true) })
	t.Run("segment-files", func(t *testing.T) { diskFull(t, false) })
}

func diskFull(t *testing.T, journalLog bool) {
	mnt := mountTmpfs(t, 64)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{0xa5}, 24<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, filepath.Join(mnt, "data"), fmt.Sprintf("--journal-log=%v", journalLog))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1), kgo.ProducerLinger(0),
		kgo.MetadataMinAge(50*time.Millisecond), // a storage error makes franz-go refresh metadata first
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	for _, topic := range []string{"keep", "ballast"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	cancel()

	var acked []ackedRecord
	n := 0
	rng := rand.NewChaCha8([32]byte{1})
	produce := func(topic string) error {
		n++
		v := make([]byte, 64<<10) // random: incompressible
		rng.Read(v)
		copy(v, fmt.Sprintf("%s-%08d-", topic, n))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v})
		r, err := res.First()
		if err == nil {
			acked = append(acked, ackedRecord{topic, r.Offset, v})
		}
		return err
	}

	// Fill the disk: 64 KiB records, alternately to both topics, until
	// produce fails several times in a row. 200 MiB is far more than fits.
	storageErrs, inARow := 0, 0
	for i := 0; inARow < 4; i++ {
		if i > 3200 {
			t.Fatalf("produced %d records of 64 KiB to a 64 MiB disk without a storage error", i)
		}
		err := produce([]string{"keep", "ballast"}[i%2])
		switch {
		case err == nil:
			inARow = 0
		case errors.Is(err, kerr.KafkaStorageError):
			storageErrs++
			inARow++
		default:
			t.Fatalf("produce %d: %v, want KAFKA_STORAGE_ERROR or success", i, err)
		}
	}
	t.Logf("disk full after %d acknowledged records; %d produce requests got KAFKA_STORAGE_ERROR; %.1f MiB free", len(acked), storageErrs, freeMiB(t, mnt))
	if b.exited() {
		t.Fatalf("broker exited on a full disk:\n%s", b.log.String())
	}
	if len(acked) < 100 {
		t.Fatalf("only %d records acknowledged before the disk filled", len(acked))
	}
	checkReadable(t, b.addr, acked, "on the full disk")

	// Free space with the filler file: produce works again, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	before := len(acked)
	retryProduce(t, produce, "keep", "after removing the filler file")
	for i := 0; i < 50; i++ {
		if err := produce("keep"); err != nil {
			t.Fatalf("produce after freeing 24 MiB: %v", err)
		}
	}
	t.Logf("after freeing 24 MiB: %d more records acknowledged", len(acked)-before)

	// Another process fills the disk while the journal has space reserved
	// (fallocate, 16 MiB at a time). With segment files, the segment write
	// fails at once. With the journal log, the journal's reserved space is
	// all a record needs: produce goes on until that runs out (at most
	// 16 MiB of 64 KiB records, plus the current file's rest), then fails.
	hog := filepath.Join(mnt, "hog")
	f, err := os.Create(hog)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	f.Close()
	t.Logf("disk filled by another file: %.1f MiB free", freeMiB(t, mnt))
	intoReserved := 0
	for inARow = 0; inARow < 4; {
		err := produce("keep")
		switch {
		case err == nil && journalLog && intoReserved < 2*(16<<20)/(64<<10):
			intoReserved++
		case errors.Is(err, kerr.KafkaStorageError):
			inARow++
		default:
			t.Fatalf("produce with the disk filled by another file (after %d into reserved space): %v, want KAFKA_STORAGE_ERROR", intoReserved, err)
		}
	}
	t.Logf("with the disk filled by another file: %d records acknowledged into the journal's reserved space, then KAFKA_STORAGE_ERROR", intoReserved)
	if err := os.Remove(hog); err != nil {
		t.Fatal(err)
	}
	retryProduce(t, produce, "keep", "after removing the other file")
	checkReadable(t, b.addr, acked, "after the disk was filled by another file")

	// Fill again (the topic to delete), then free space by deleting it.
	for inARow = 0; inARow < 4; {
		if err := produce("ballast"); err == nil {
			inARow = 0
		} else if errors.Is(err, kerr.KafkaStorageError) {
			inARow++
		} else {
			t.Fatalf("produce: %v", err)
		}
	}
	t.Logf("disk full again: %.1f MiB free", freeMiB(t, mnt))
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	resp, err := adm.DeleteTopics(ctx, "ballast")
	cancel()
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete topic ballast on a full disk: %v", err)
	}
	kept := acked[:0:0]
	for _, r := range acked {
		if r.topic != "ballast" {
			kept = append(kept, r)
		}
	}
	acked = kept
	t.Logf("topic ballast deleted: %.1f MiB free", freeMiB(t, mnt))
	retryProduce(t, produce, "keep", "after deleting topic ballast")
	checkReadable(t, b.addr, acked, "after freeing space")

	// Nothing corrupted on disk: a restart recovers every acknowledged record.
	b.stop()
	b.start()
	checkReadable(t, b.addr, acked, "after a restart")
	if strings.Contains(b.log.String(), "panic") {
		t.Fatalf("broker log mentions a panic:\n%s", b.log.String())
	}
	t.Logf("%d acknowledged records readable after the restart", len(acked))
	kinds := map[string]int{}
	for _, line := range strings.Split(b.log.String(), "\n") {
		if _, e, ok := strings.Cut(line, `msg="produce failed"`); ok {
			if _, e, ok = strings.Cut(e, "err="); ok {
				kinds[regexp.MustCompile(`/\S*/`).ReplaceAllString(e, ".../")]++
			}
		}
	}
	for k, n := range kinds {
		t.Logf("broker logged %d× %s", n, k)
	}
}

func freeMiB(t *testing.T, dir string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return float64(st.Bavail*uint64(st.Bsize)) / (1 << 20)
}

// retryProduce produces to topic until it succeeds (space freed is seen by
// the next append, but a client may have one failed attempt in flight).
func retryProduce(t *testing.T, produce func(string) error, topic, when string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := produce(topic)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("produce still failing %s: %v", when, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkReadable reads every topic of acked back from the start and checks
// each acknowledged record is at its offset with its value.
func checkReadable(t *testing.T, addr string, acked []ackedRecord, when string) {
	t.Helper()
	want := map[string]map[int64][]byte{}
	for _, r := range acked {
		if want[r.topic] == nil {
			want[r.topic] = map[int64][]byte{}
		}
		want[r.topic][r.offset] = r.value
	}
	for topic, offs := range want {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		found := 0
		for found < len(offs) && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil {
					t.Errorf("%s: fetch %s: %v", when, topic, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if v, ok := offs[r.Offset]; ok {
					if !bytes.Equal(v, r.Value) {
						t.Errorf("%s: %s offset %d has a different value than acknowledged", when, topic, r.Offset)
					}
					found++
				}
			})
		}
		cancel()
		cl.Close()
		if t.Failed() {
			t.FailNow()
		}
		if found != len(offs) {
			t.Fatalf("%s: %s: %d of %d acknowledged records readable", when, topic, found, len(offs))
		}
	}
}
