package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// TestCommitsSurvivePowerLoss: writers commit increasing offsets to several
// groups concurrently; power fails at a random moment (unsynced writes
// dropped, the last one possibly torn). After recovery every partition's
// offset is at least the last one acknowledged to a writer, and never one
// that was not committed.
func TestCommitsSurvivePowerLoss(t *testing.T) {
	for round := range 8 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		mem := vfs.NewMem()
		s, err := log.OpenStore(mem, "/data", log.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Store: s, Clock: newManualClock(), compactAbove: 40})
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			acked = map[string]int64{} // "group/partition" -> last acknowledged offset
		)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				group := fmt.Sprintf("g%d", w)
				for i := int64(1); ctx.Err() == nil; i++ {
					resp, err := c.Handle(ctx, commitReq(group, "", -1, "t", map[int32]int64{0: i, 1: i}))
					if err != nil || resp == nil {
						return
					}
					r := resp.(*kmsg.OffsetCommitResponse)
					if r.Topics[0].Partitions[0].ErrorCode != 0 {
						continue // unavailable at the crash
					}
					mu.Lock()
					acked[group+"/0"], acked[group+"/1"] = i, i
					mu.Unlock()
				}
			}()
		}
		waitFor(t, "some commits", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) == 8
		})
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // let the writers run a random while
		mu.Lock()
		want := map[string]int64{}
		for k, v := range acked {
			want[k] = v
		}
		if round%2 == 0 {
			mem.CrashDropUnsynced()
		} else {
			mem.Crash(rng) // may keep or tear some unsynced writes
		}
		mu.Unlock()
		cancel()
		c.Close()
		wg.Wait()
		s.Abandon()

		mem = mem.Restart()
		s, err = log.OpenStore(mem, "/data", log.StoreOptions{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		c, err = New(Config{Store: s, Clock: newManualClock()})
		if err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		for w := range 4 {
			group := fmt.Sprintf("g%d", w)
			got := fetchOffsets(t, c, group, "t", 0, 1)
			for p := int32(0); p < 2; p++ {
				if got[p] < want[fmt.Sprintf("%s/%d", group, p)] {
					t.Fatalf("round %d: %s partition %d recovered %d, acknowledged %d", round, group, p, got[p], want[fmt.Sprintf("%s/%d", group, p)])
				}
			}
		}
		c.Close()
		s.Close()
	}
}
