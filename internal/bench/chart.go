package bench

import (
	"fmt"
	"image/color"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteChart draws the run as a PNG: produce throughput per target (left)
// and the latency percentiles per target at each fixed rate (right), the
// runs that failed left out.
func WriteChart(r *Report, path string) error {
	tp := plot.New()
	tp.Title.Text = "(a) produce throughput, MB/s"
	var names []string
	var vals plotter.Values
	for _, x := range r.Results {
		// Loopback TCP (GB/s) would flatten every other bar; it is in the
		// table.
		if x.Workload == WThroughput && x.Error == "" && x.Target != "ceiling-tcp" {
			names = append(names, x.Target)
			vals = append(vals, x.MBps)
		}
	}
	if len(vals) > 0 {
		bars, err := plotter.NewBarChart(vals, vg.Points(18))
		if err != nil {
			return err
		}
		tp.Add(bars)
		tp.NominalX(names...)
		tp.X.Tick.Label.Rotation = 0.6
		tp.X.Tick.Label.XAlign = draw.XRight
	}
	lp := plot.New()
	lp.Title.Text = "(b) end-to-end latency, ms (p50, p99, p99.9, max)"
	type key struct {
		rate   float64
		target string
	}
	var keys []key
	byKey := map[key]*Latency{}
	for _, x := range r.Results {
		if x.Workload == WLatency && x.Error == "" && x.Latency != nil {
			k := key{x.RateMBps, x.Target}
			keys = append(keys, k)
			byKey[k] = x.Latency
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].rate < keys[j].rate })
	if len(keys) > 0 {
		labels := make([]string, len(keys))
		for i, k := range keys {
			labels[i] = fmt.Sprintf("%s@%.0f", k.target, k.rate)
		}
		pcts := []struct {
			name string
			get  func(*Latency) float64
		}{
			{"p50", func(l *Latency) float64 { return l.P50ms }},
			{"p99", func(l *Latency) float64 { return l.P99ms }},
			{"p99.9", func(l *Latency) float64 { return l.P999ms }},
			{"max", func(l *Latency) float64 { return l.MaxMs }},
		}
		w := vg.Points(5)
		for i, pc := range pcts {
			v := make(plotter.Values, len(keys))
			for j, k := range keys {
				v[j] = pc.get(byKey[k])
			}
			b, err := plotter.NewBarChart(v, w)
			if err != nil {
				return err
			}
			b.Offset = w * vg.Length(i-len(pcts)/2)
			b.Color = []colorRGBA{{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255}, {R: 214, G: 39, B: 40, A: 255}}[i]
			b.LineStyle.Width = 0
			lp.Add(b)
			lp.Legend.Add(pc.name, b)
		}
		lp.Legend.Top = true
		lp.Legend.Left = true
		lp.X.Min, lp.X.Max = -0.6, float64(len(keys))-0.4
		lp.NominalX(labels...)
		lp.X.Tick.Label.Rotation = 0.6
		lp.X.Tick.Label.XAlign = draw.XRight
	}
	const width, height = 14 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadY: vg.Inch / 8, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{tp, lp}}, tiles, dc)
	tp.Draw(canvases[0][0])
	lp.Draw(canvases[0][1])
	f, err := createFile(path)
	if err != nil {
		return err
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type colorRGBA = color.RGBA

func createFile(path string) (*os.File, error) { return os.Create(path) }
