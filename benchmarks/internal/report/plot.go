package report

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette gives each series its colour, in the order series appear.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// WritePlot draws, for each tool and path, the delivered rate against the
// offered rate (log-log, with the line of no loss) above the loss in
// percent, and writes it to w as a PNG.
func WritePlot(w io.Writer, r *Run) error {
	top, bottom := plot.New(), plot.New()
	top.Title.Text = "Delivered against offered load"
	top.Y.Label.Text = "delivered events/s"
	bottom.Title.Text = "Loss"
	bottom.Y.Label.Text = "lost %"
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Label.Text = "offered events/s"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
	}
	top.Y.Scale = plot.LogScale{}
	top.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Bottom right: below the line of no loss, where no point goes.
	top.Legend.Top, top.Legend.Left = false, false
	bottom.Y.Min = 0

	lo, hi := 0.0, 0.0
	n := 0
	for _, path := range r.Paths() {
		for _, tool := range r.Tools(path) {
			var delivered, loss plotter.XYs
			steps := r.stepsOf(path, tool)
			for _, s := range steps {
				// Log axes cannot show 0: a step that delivered nothing sits at 1.
				delivered = append(delivered, plotter.XY{X: max(s.Offered, 1), Y: max(s.DeliveredRate, 1)})
				loss = append(loss, plotter.XY{X: max(s.Offered, 1), Y: max(s.LossPercent(), 0)})
				if lo == 0 || s.Offered < lo {
					lo = s.Offered
				}
				hi = max(hi, s.Offered, s.DeliveredRate)
			}
			if len(steps) == 0 {
				continue
			}
			name := fmt.Sprintf("%s (%s)", tool, path)
			c := palette[n%len(palette)]
			n++
			for _, series := range []struct {
				p   *plot.Plot
				xys plotter.XYs
			}{{top, delivered}, {bottom, loss}} {
				l, pts, err := plotter.NewLinePoints(series.xys)
				if err != nil {
					return err
				}
				l.Color, pts.Color = c, c
				pts.Shape = draw.CircleGlyph{}
				series.p.Add(l, pts)
				if series.p == top {
					top.Legend.Add(name, l, pts)
				}
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("no step to plot")
	}
	// The line of no loss: delivered = offered.
	ref, err := plotter.NewLine(plotter.XYs{{X: max(lo, 1), Y: max(lo, 1)}, {X: max(hi, 2), Y: max(hi, 2)}})
	if err != nil {
		return err
	}
	ref.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	ref.Color = color.Gray{Y: 0x80}
	top.Add(ref)
	top.Legend.Add("delivered = offered", ref)

	img := vgimg.New(vg.Points(720), vg.Points(860))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 6 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// stepsOf returns a tool's steps on a path by offered rate, profiled ones left out.
func (r *Run) stepsOf(path, tool string) []Step {
	var steps []Step
	for _, s := range r.Steps {
		if s.Path == path && s.Tool == tool && !s.Profiled {
			steps = append(steps, s)
		}
	}
	slices.SortFunc(steps, func(a, b Step) int { return cmp.Compare(a.Offered, b.Offered) })
	return steps
}
