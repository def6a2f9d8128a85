package group

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-mq/sluice/internal/log"
	"github.com/sluice-mq/sluice/internal/vfs"
)

// loadResult is what a rebalance storm measured.
type loadResult struct {
	rebalance  time.Duration   // until every member of every group was synced
	heartbeats []time.Duration // latencies of heartbeats sent afterwards
}

// rebalanceStorm starts groups*members classic members at once on a
// coordinator over a real offsets log, waits until every group has synced
// one generation with all its members, then heartbeats for hbFor and
// records heartbeat latencies. Any unexpected error code fails.
func rebalanceStorm(tb testing.TB, groups, members int, hbEvery, hbFor time.Duration) loadResult {
	store, err := log.OpenStore(vfs.OS{}, tb.TempDir(), log.StoreOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	c, err := New(Config{Store: store, InitialRebalanceDelay: 500 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		mu       sync.Mutex
		firstErr error
		lat      []time.Duration
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	start := time.Now()
	var synced, wg sync.WaitGroup
	synced.Add(groups * members)
	allSynced := make(chan struct{})
	go func() { synced.Wait(); close(allSynced) }()
	for g := 0; g < groups; g++ {
		for m := 0; m < members; m++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				group := fmt.Sprintf("load-%d", g)
				first := true
				var id string
				for ctx.Err() == nil {
					jr := joinReq(group, id, "")
					jr.Protocols[0].Metadata = []byte(fmt.Sprint(m))
					resp, err := c.Handle(ctx, jr)
					if err != nil {
						fail(err)
						return
					}
					join := resp.(*kmsg.JoinGroupResponse)
					switch join.ErrorCode {
					case kerr.MemberIDRequired.Code:
						id = join.MemberID
						continue
					case 0:
					default:
						fail(fmt.Errorf("%s join: %v", group, kerr.ErrorForCode(join.ErrorCode)))
						return
					}
					id = join.MemberID
					sr := kmsg.NewPtrSyncGroupRequest()
					sr.Version = 3
					sr.Group, sr.MemberID, sr.Generation = group, id, join.Generation
					for _, o := range join.Members {
						sr.GroupAssignment = append(sr.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: o.MemberID, MemberAssignment: o.ProtocolMetadata})
					}
					resp, err = c.Handle(ctx, sr)
					if err != nil {
						fail(err)
						return
					}
					if code := resp.(*kmsg.SyncGroupResponse).ErrorCode; code == kerr.RebalanceInProgress.Code {
						continue
					} else if code != 0 {
						fail(fmt.Errorf("%s sync: %v", group, kerr.ErrorForCode(code)))
						return
					}
					if first {
						first = false
						synced.Done()
					}
					// Heartbeat until told to rejoin or the run ends.
					select {
					case <-allSynced:
					case <-ctx.Done():
						return
					}
					deadline := time.Now().Add(hbFor)
					rejoin := false
					for !rejoin && time.Now().Before(deadline) && ctx.Err() == nil {
						hb := kmsg.NewPtrHeartbeatRequest()
						hb.Group, hb.MemberID, hb.Generation = group, id, join.Generation
						t0 := time.Now()
						resp, err := c.Handle(ctx, hb)
						d := time.Since(t0)
						if err != nil {
							fail(err)
							return
						}
						switch code := resp.(*kmsg.HeartbeatResponse).ErrorCode; code {
						case 0:
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
						case kerr.RebalanceInProgress.Code:
							rejoin = true
						default:
							fail(fmt.Errorf("%s heartbeat: %v", group, kerr.ErrorForCode(code)))
							return
						}
						time.Sleep(hbEvery) // the client's heartbeat interval
					}
					if !rejoin {
						return
					}
				}
			}()
		}
	}
	var res loadResult
	select {
	case <-allSynced:
		res.rebalance = time.Since(start)
	case <-ctx.Done():
	}
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		tb.Fatal(firstErr)
	}
	if res.rebalance == 0 {
		tb.Fatal("the groups never all synced")
	}
	res.heartbeats = lat
	return res
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestRebalanceStorm: many groups rebalancing at once all complete without
// an error (a smaller run of the benchmark below).
func TestRebalanceStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("load")
	}
	res := rebalanceStorm(t, 50, 5, 50*time.Millisecond, 300*time.Millisecond)
	if len(res.heartbeats) == 0 {
		t.Fatal("no heartbeats answered")
	}
	t.Logf("50 groups x 5 members: synced in %v; %d heartbeats, p50 %v p99 %v",
		res.rebalance, len(res.heartbeats), percentile(res.heartbeats, 0.5), percentile(res.heartbeats, 0.99))
}

// BenchmarkRebalanceStorm/groups=500/members=5: issue 4's load test. Reports
// the time until all 2,500 members are synced and the heartbeat latency
// percentiles while every member heartbeats every 100ms.
func BenchmarkRebalanceStorm(b *testing.B) {
	for _, g := range []int{500} {
		b.Run(fmt.Sprintf("groups=%d/members=5", g), func(b *testing.B) {
			for range b.N {
				res := rebalanceStorm(b, g, 5, 100*time.Millisecond, 2*time.Second)
				b.ReportMetric(float64(res.rebalance.Milliseconds()), "rebalance-ms")
				b.ReportMetric(float64(percentile(res.heartbeats, 0.5).Microseconds()), "hb-p50-µs")
				b.ReportMetric(float64(percentile(res.heartbeats, 0.99).Microseconds()), "hb-p99-µs")
				b.ReportMetric(float64(len(res.heartbeats)), "heartbeats")
			}
		})
	}
}

// BenchmarkOffsetCommit/groups=64: durable commits (answered after fsync)
// from 64 concurrent groups sharing the log's group commit.
func BenchmarkOffsetCommit(b *testing.B) {
	store, err := log.OpenStore(vfs.OS{}, b.TempDir(), log.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	c, err := New(Config{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("groups=64", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32) // 64 committers on 2 cores
		var next sync.Mutex
		n := 0
		b.RunParallel(func(pb *testing.PB) {
			next.Lock()
			group := fmt.Sprintf("bench-%d", n)
			n++
			next.Unlock()
			ctx := context.Background()
			for i := int64(0); pb.Next(); i++ {
				resp, err := c.Handle(ctx, commitReq(group, "", -1, "t", map[int32]int64{0: i}))
				if err != nil || resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode != 0 {
					b.Error("commit failed")
					return
				}
			}
		})
	})
}
