package bench

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
)

// The histogram's series, in drawing order, with their colours.
var histSeries = []struct {
	name  string
	color color.RGBA
}{
	{"raw TCP echo", color.RGBA{0x55, 0x55, 0x55, 0xff}},
	{"raw TCP one-way", color.RGBA{0xaa, 0xaa, 0xaa, 0xff}},
	{"Tether qos round trip", color.RGBA{0x1f, 0x77, 0xb4, 0xff}},
	{"Tether one-way", color.RGBA{0x2c, 0xa0, 0x2c, 0xff}},
	{"MQTT QoS 1, mochi-mqtt", color.RGBA{0xd6, 0x27, 0x28, 0xff}},
	{"MQTT QoS 1, mosquitto", color.RGBA{0x94, 0x67, 0xbd, 0xff}},
}

const (
	histW, histH           = 960, 540
	plotL, plotR           = 70, 700
	plotT, plotB           = 50, 480
	binsPerDecade          = 20
	histTitle              = "tether bench: latency distribution (log time, share of samples per bin)"
	histMinNs, histMaxNsLo = 1e3, 1e5
)

// drawHistogram draws the latency samples of every series as a line of
// the share of samples per log-spaced bin.
func (r *Result) drawHistogram(c *svgCanvas) {
	black := color.RGBA{0, 0, 0, 0xff}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	// The time axis: whole decades around every sample.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range histSeries {
		for _, v := range r.samples[s.name] {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = histMinNs, histMaxNsLo
	}
	d0 := math.Floor(math.Log10(max(lo, 1)))
	d1 := math.Ceil(math.Log10(max(hi, 10)))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	nb := int(d1-d0) * binsPerDecade
	shares := make([][]float64, len(histSeries))
	top := 0.0
	for i, s := range histSeries {
		ns := r.samples[s.name]
		if len(ns) == 0 {
			continue
		}
		h := make([]float64, nb)
		for _, v := range ns {
			b := int((math.Log10(max(float64(v), 1)) - d0) * binsPerDecade)
			h[min(max(b, 0), nb-1)]++
		}
		for j := range h {
			h[j] = 100 * h[j] / float64(len(ns))
			top = max(top, h[j])
		}
		shares[i] = h
	}
	top = math.Max(5, math.Ceil(top/5)*5)
	x := func(bin float64) float64 { return plotL + (plotR-plotL)*bin/float64(nb) }
	y := func(pct float64) float64 { return plotB - (plotB-plotT)*pct/top }

	c.text(histW/2, 25, histTitle, black, "middle")
	for p := 0.0; p <= top; p += 5 {
		c.line(plotL, y(p), plotR, y(p), grey, 1)
		c.text(plotL-6, y(p)+4, fmt.Sprintf("%.0f%%", p), black, "end")
	}
	for d := d0; d <= d1; d++ {
		xx := x((d - d0) * binsPerDecade)
		c.line(xx, plotT, xx, plotB, grey, 1)
		c.text(xx, plotB+18, durLabel(math.Pow(10, d)), black, "middle")
	}
	c.line(plotL, plotB, plotR, plotB, black, 1)
	c.line(plotL, plotT, plotL, plotB, black, 1)
	ly := float64(plotT + 10)
	for i, s := range histSeries {
		h := shares[i]
		if h == nil {
			continue
		}
		for j := 1; j < nb; j++ {
			c.line(x(float64(j)-0.5), y(h[j-1]), x(float64(j)+0.5), y(h[j]), s.color, 2)
		}
		d := distOf(append([]int64(nil), r.samples[s.name]...))
		c.line(plotR+20, ly-4, plotR+45, ly-4, s.color, 3)
		c.text(plotR+52, ly, s.name, black, "start")
		c.text(plotR+52, ly+15, fmt.Sprintf("p50 %s  p99 %s µs", us(d.P50), us(d.P99)), black, "start")
		ly += 40
	}
}

// durLabel names a time in nanoseconds at a decade.
func durLabel(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	}
	return fmt.Sprintf("%.0f s", ns/1e9)
}

// HistogramSVG draws the latency histogram as an SVG document.
func (r *Result) HistogramSVG() []byte {
	s := &svgCanvas{}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", histW, histH, histW, histH)
	fmt.Fprintf(&s.b, `<rect width="%d" height="%d" fill="white"/>`+"\n", histW, histH)
	r.drawHistogram(s)
	s.b.WriteString("</svg>\n")
	return s.b.Bytes()
}

// svgCanvas is what the histogram is drawn on: SVG text, which needs no
// plotting or font dependency.
type svgCanvas struct{ b bytes.Buffer }

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, w float64) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"/>`+"\n", x1, y1, x2, y2, hex(c), w)
}

// text writes t at x, y; anchor is start, middle or end.
func (s *svgCanvas) text(x, y float64, t string, c color.RGBA, anchor string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="%s">%s</text>`+"\n", x, y, hex(c), anchor, html.EscapeString(t))
}
