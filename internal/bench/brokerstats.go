package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/sluice-mq/sluice/internal/hist"
)

// BrokerStats is what sluice reports of a run when it stops (`sluice
// bench-broker --stats-file`): how long its commit cycles took, in
// milliseconds, so a run's report tells the disk's share of the latency
// (Sync, Write) from the rest of the broker's (Cycle beyond them).
type BrokerStats struct {
	Cycles    uint64  `json:"commit_cycles"`
	CycleP50  float64 `json:"cycle_p50_ms"`
	CycleP99  float64 `json:"cycle_p99_ms"`
	CycleP999 float64 `json:"cycle_p999_ms"`
	CycleMax  float64 `json:"cycle_max_ms"`
	WriteP99  float64 `json:"write_p99_ms"`
	WriteMax  float64 `json:"write_max_ms"`
	SyncP50   float64 `json:"fdatasync_p50_ms"`
	SyncP99   float64 `json:"fdatasync_p99_ms"`
	SyncP999  float64 `json:"fdatasync_p999_ms"`
	SyncMax   float64 `json:"fdatasync_max_ms"`
}

// NewBrokerStats summarizes commit-cycle, journal-write and fdatasync times.
func NewBrokerStats(cycle, write, sync *hist.Histogram) BrokerStats {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return BrokerStats{
		Cycles:   cycle.Count(),
		CycleP50: ms(cycle.Quantile(0.5)), CycleP99: ms(cycle.Quantile(0.99)), CycleP999: ms(cycle.Quantile(0.999)), CycleMax: ms(cycle.Max()),
		WriteP99: ms(write.Quantile(0.99)), WriteMax: ms(write.Max()),
		SyncP50: ms(sync.Quantile(0.5)), SyncP99: ms(sync.Quantile(0.99)), SyncP999: ms(sync.Quantile(0.999)), SyncMax: ms(sync.Max()),
	}
}

// WriteFile writes s as JSON to name.
func (s BrokerStats) WriteFile(name string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

func readBrokerStats(name string) (BrokerStats, error) {
	var s BrokerStats
	b, err := os.ReadFile(name)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// addTo puts the figures in a result's extras (none without cycles: a
// broker that committed nothing, or durability=none).
func (s BrokerStats) addTo(extra map[string]float64) {
	if s.Cycles == 0 {
		return
	}
	extra["commit_cycle_p99_ms"] = s.CycleP99
	extra["commit_cycle_max_ms"] = s.CycleMax
	extra["fdatasync_p50_ms"] = s.SyncP50
	extra["fdatasync_p99_ms"] = s.SyncP99
	extra["fdatasync_p999_ms"] = s.SyncP999
	extra["fdatasync_max_ms"] = s.SyncMax
	extra["journal_write_p99_ms"] = s.WriteP99
	extra["journal_write_max_ms"] = s.WriteMax
}
