// Package figure draws the toolkit's standard figures from results (gonum.org/v1/plot) and
// writes each as SVG, PNG or PDF (by the file extension) with its data as CSV beside it.
//
// Every figure refuses input it would draw wrongly: no runs, a non-positive value on a log
// axis, or bits per byte (and per-token losses) from runs with different tokenizers in one plot.
package figure

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/hybridlab/hybrid/results"
)

// Panel is one plot of a figure and its share of the width.
type Panel struct {
	Plot   *plot.Plot
	Weight float64 // relative width; 0 is 1
}

// Figure is a row of panels and the data drawn in them.
type Figure struct {
	Panels []Panel
	Width  vg.Length // 0: 6 inches per unit of panel weight, at most 16
	Height vg.Length // 0: 4.5 inches

	Header []string   // CSV columns
	Rows   [][]string // CSV rows: exactly the values drawn
}

// Formats are the file extensions Save accepts.
var Formats = []string{".svg", ".png", ".pdf"}

// Save draws the figure to path (format from its extension) and writes the data to the same
// base name with .csv.
func (f *Figure) Save(path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".svg", ".png", ".pdf":
	default:
		return fmt.Errorf("figure: %s: unknown format %q, want one of %v", path, ext, Formats)
	}
	if len(f.Panels) == 0 {
		return fmt.Errorf("figure: %s: nothing to draw", path)
	}
	total := 0.0
	for _, p := range f.Panels {
		total += weight(p)
	}
	w, h := f.Width, f.Height
	if w == 0 {
		w = vg.Length(math.Min(16, 6*total)) * vg.Inch
	}
	if h == 0 {
		h = 4.5 * vg.Inch
	}
	c, err := draw.NewFormattedCanvas(w, h, ext[1:])
	if err != nil {
		return fmt.Errorf("figure: %s: %w", path, err)
	}
	dc := draw.New(c)
	x := vg.Length(0)
	for _, p := range f.Panels {
		pw := w * vg.Length(weight(p)/total)
		p.Plot.Draw(draw.Crop(dc, x, x+pw-w, 0, 0))
		x += pw
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("figure: %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return f.writeCSV(CSVPath(path))
}

// CSVPath is where Save writes a figure's data: the same base name with .csv.
func CSVPath(path string) string { return strings.TrimSuffix(path, filepath.Ext(path)) + ".csv" }

func weight(p Panel) float64 {
	if p.Weight <= 0 {
		return 1
	}
	return p.Weight
}

func (f *Figure) writeCSV(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(out)
	w.Write(f.Header)
	w.WriteAll(f.Rows)
	if err := w.Error(); err != nil {
		out.Close()
		return fmt.Errorf("figure: %s: %w", path, err)
	}
	return out.Close()
}

func (f *Figure) add(row ...any) {
	s := make([]string, len(row))
	for i, v := range row {
		switch v := v.(type) {
		case float64:
			s[i] = num(v)
		case string:
			s[i] = v
		default:
			s[i] = fmt.Sprint(v)
		}
	}
	f.Rows = append(f.Rows, s)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return fmt.Sprintf("%.10g", v)
}

// Colours: Okabe & Ito's colour-blind-safe set (Okabe and Ito 2008, "Color Universal Design").
var colours = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // bluish green
	color.RGBA{204, 121, 167, 255}, // reddish purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{0, 0, 0, 255},       // black
	color.RGBA{240, 228, 66, 255},  // yellow (last: weak on white)
}

// familyOrder fixes the colour of each architecture family across figures.
var familyOrder = []string{"transformer", "mamba", "inter", "intra", "swa", "other"}

// palette assigns colours to series names: families keep their fixed colour, other names
// take the next colour in order of first use.
type palette struct{ used map[string]int }

func (p *palette) colour(name string) color.Color {
	if p.used == nil {
		p.used = map[string]int{}
	}
	if i, ok := p.used[name]; ok {
		return colours[i%len(colours)]
	}
	i := len(p.used)
	for j, f := range familyOrder {
		if name == f {
			i = j
		}
	}
	p.used[name] = i
	return colours[i%len(colours)]
}

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.RingGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}

// newPlot makes a panel in the house style: title, labelled axes (with units in the label),
// light grid, legend at the top right.
func newPlot(title, x, y string, logX, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 12
	p.X.Label.Text, p.Y.Label.Text = x, y
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 11
		a.Tick.Label.Font.Size = 9
		a.Padding = 2
	}
	p.Title.Padding = vg.Points(6)
	if logX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	if logY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 9
	p.Legend.ThumbnailWidth = 0.3 * vg.Inch
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{225}
	g.Horizontal.Color = color.Gray{225}
	p.Add(g)
	return p
}

func lineStyle(c color.Color, dashed bool) draw.LineStyle {
	s := draw.LineStyle{Color: c, Width: vg.Points(1.5)}
	if dashed {
		s.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return s
}

// line adds a polyline with legend entry name (none when name is "").
func line(p *plot.Plot, name string, xy plotter.XYs, c color.Color, dashed bool) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.LineStyle = lineStyle(c, dashed)
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
	return nil
}

// points adds markers; with joined they are also connected by a line.
func points(p *plot.Plot, name string, xy plotter.XYs, c color.Color, shape int, joined bool) error {
	s, err := plotter.NewScatter(xy)
	if err != nil {
		return err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3), Shape: shapes[shape%len(shapes)]}
	p.Add(s)
	if joined {
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.LineStyle = lineStyle(c, false)
		p.Add(l)
		if name != "" {
			p.Legend.Add(name, l, s)
		}
		return nil
	}
	if name != "" {
		p.Legend.Add(name, s)
	}
	return nil
}

// vline draws a vertical dashed line at x spanning [lo, hi], labelled in the legend.
func vline(p *plot.Plot, name string, x, lo, hi float64) error {
	return line(p, name, plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}}, color.Gray{90}, true)
}

// positive refuses a non-positive or non-finite value bound for a log axis.
func positive(what, run string, v float64) error {
	if !results.Finite(v) || v <= 0 {
		return fmt.Errorf("run %s: %s = %g cannot go on a log axis (need a finite value > 0)", run, what, v)
	}
	return nil
}

// logTicks are powers of ten when the axis spans a decade or more; on a narrower log axis
// (losses) they are the ordinary linear ticks, which would otherwise leave it unlabelled.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	if max/min >= 10 {
		return plot.LogTicks{Prec: -1}.Ticks(min, max)
	}
	return plot.DefaultTicks{}.Ticks(min, max)
}
