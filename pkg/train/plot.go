package train

import (
	"bytes"
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/lsfuse/lsfuse/pkg/safetensors"
)

// Curve files written at the end of a run.
const (
	LossPlot     = "loss.png"
	AccuracyPlot = "accuracy.png"
	MSEPlot      = "mse.png"
)

// curve is one named line of a plot over epochs.
type curve struct {
	name string
	y    func(EpochInfo) (float64, bool)
}

// writeCurves draws the run's epoch curves into dir: loss.png (train and
// validation loss), and accuracy.png (classification, tokens) or mse.png
// (regression, "regression" head). Non-finite points are left out. Files
// are written atomically.
func writeCurves(dir string, history []EpochInfo, head string) error {
	train := func(f func(Metrics) float64) func(EpochInfo) (float64, bool) {
		return func(e EpochInfo) (float64, bool) { return f(e.Train), true }
	}
	val := func(f func(Metrics) float64) func(EpochInfo) (float64, bool) {
		return func(e EpochInfo) (float64, bool) {
			if e.Val == nil {
				return 0, false
			}
			return f(*e.Val), true
		}
	}
	loss := func(m Metrics) float64 { return m.Loss }
	if err := writePlot(filepath.Join(dir, LossPlot), "Loss", "loss", history,
		curve{"train", train(loss)}, curve{"validation", val(loss)}); err != nil {
		return err
	}
	if head == "regression" {
		mse := func(m Metrics) float64 { return m.MSE }
		return writePlot(filepath.Join(dir, MSEPlot), "Mean squared error", "MSE", history,
			curve{"train", train(mse)}, curve{"validation", val(mse)})
	}
	acc := func(m Metrics) float64 { return m.Accuracy }
	return writePlot(filepath.Join(dir, AccuracyPlot), "Accuracy", "accuracy", history,
		curve{"train", train(acc)}, curve{"validation", val(acc)})
}

// writePlot draws curves against the epoch number as a 16×10 cm PNG.
func writePlot(path, title, ylabel string, history []EpochInfo, curves ...curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	// Losses fall and accuracies rise: keep the legend in the corner the
	// curves leave free.
	p.Legend.Top = ylabel != "accuracy"
	for i, c := range curves {
		var pts plotter.XYs
		for _, e := range history {
			if y, ok := c.y(e); ok && finite(y) {
				pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: y})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		line.Color = plotutil.Color(i)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(c.name, line, points)
	}
	w, err := p.WriterTo(16*vg.Centimeter, 10*vg.Centimeter, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := safetensors.WriteAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// attentionGrid adapts an AttentionMap to plotter.GridXYZ: column c is key
// c, row r is query r (drawn top to bottom).
type attentionGrid struct{ m AttentionMap }

func (g attentionGrid) Dims() (c, r int)   { return len(g.m.Cols), len(g.m.Rows) }
func (g attentionGrid) Z(c, r int) float64 { return g.m.Weights[len(g.m.Rows)-1-r][c] }
func (g attentionGrid) X(c int) float64    { return float64(c) }
func (g attentionGrid) Y(r int) float64    { return float64(r) }

// WriteAttentionPNG draws one attention map as a heat map (queries as
// rows, keys as columns, weights in [0, 1] on a fixed colour scale, so maps
// compare across samples) to path, atomically.
func WriteAttentionPNG(path, title string, m AttentionMap) error {
	if len(m.Rows) == 0 || len(m.Cols) == 0 || len(m.Weights) != len(m.Rows) {
		return fmt.Errorf("attention map %s: empty or ragged", m.Name)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "key"
	p.Y.Label.Text = "query"
	hm := plotter.NewHeatMap(attentionGrid{m}, moreland.SmoothBlueRed().Palette(64))
	hm.Min, hm.Max = 0, 1
	p.Add(hm)
	p.NominalX(m.Cols...)
	rows := make([]string, len(m.Rows))
	for i, r := range m.Rows {
		rows[len(rows)-1-i] = r
	}
	p.NominalY(rows...)
	for i, row := range m.Weights {
		for j, w := range row {
			l, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    plotter.XYs{{X: float64(j), Y: float64(len(m.Rows) - 1 - i)}},
				Labels: []string{fmt.Sprintf("%.2f", w)},
			})
			if err != nil {
				return err
			}
			p.Add(l)
		}
	}
	width := max(vg.Length(7+len(m.Cols))*vg.Centimeter, 14*vg.Centimeter)
	var buf bytes.Buffer
	wt, err := p.WriterTo(width, vg.Length(3+len(m.Rows))*vg.Centimeter+2*vg.Centimeter, "png")
	if err != nil {
		return err
	}
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	return safetensors.WriteAtomic(path, buf.Bytes())
}
