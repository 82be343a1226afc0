package chart

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// linear maps a domain [d0, d1] onto a range [r0, r1] of user units.
type linear struct{ d0, d1, r0, r1 float64 }

func (s linear) at(v float64) float64 {
	if s.d1 == s.d0 {
		return s.r0
	}
	return s.r0 + (v-s.d0)/(s.d1-s.d0)*(s.r1-s.r0)
}

// niceTicks returns about n ticks at a 1, 2, 2.5 or 5 × 10^k step that cover [lo, hi], the
// first at or below lo and the last at or above hi, and the step.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if !(hi > lo) {
		switch {
		case lo == 0:
			hi = 1
		case lo > 0:
			lo, hi = 0, lo
		default:
			hi = 0
		}
	}
	raw := (hi - lo) / float64(max(n, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	first := math.Floor(lo/step + 1e-9)
	last := math.Ceil(hi/step - 1e-9)
	ticks := make([]float64, 0, int(last-first)+1)
	for i := first; i <= last; i++ {
		ticks = append(ticks, cleanZero(i*step))
	}
	return ticks, step
}

func cleanZero(v float64) float64 {
	if v == 0 {
		return 0 // no "-0"
	}
	return v
}

// decimals is how many decimals show a multiple of step exactly.
func decimals(step float64) int {
	d := 0
	for s := step; d < 6 && math.Abs(s-math.Round(s)) > 1e-9*math.Max(1, math.Abs(s)); s *= 10 {
		d++
	}
	return d
}

// formatTick writes a tick value of a step-spaced axis: thousands with a k, millions with an M.
func formatTick(v, step float64) string {
	if v == 0 {
		return "0"
	}
	switch top := math.Max(math.Abs(v), step); {
	case top >= 1e6:
		return num(v/1e6, decimals(step/1e6)) + "M"
	case top >= 1e4:
		return num(v/1e3, decimals(step/1e3)) + "k"
	}
	return num(v, decimals(step))
}

// num formats v with prec decimals, never as "-0".
func num(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		return strings.TrimPrefix(s, "-")
	}
	return s
}

// sig formats v with about three significant digits (for labels: 0.0123, 1.23, 123, 12345).
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0 || a >= 100:
		return num(v, 0)
	case a >= 10:
		return num(v, 1)
	case a >= 1:
		return num(v, 2)
	}
	return num(v, min(6, 2-int(math.Floor(math.Log10(a)))))
}

// timeSteps are the tick and bucket spacings of time axes.
var timeSteps = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour,
	7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// stepAtLeast is the smallest of timeSteps of at least d (the largest if none is).
func stepAtLeast(d time.Duration) time.Duration {
	for _, s := range timeSteps {
		if s >= d {
			return s
		}
	}
	return timeSteps[len(timeSteps)-1]
}

// timeTicks returns at most n ticks in [from, to] on round UTC times, and their spacing: steps
// under a day divide the day from midnight, weeks start on Mondays.
func timeTicks(from, to time.Time, n int) ([]time.Time, time.Duration) {
	step := stepAtLeast(to.Sub(from) / time.Duration(max(n, 1)))
	for to.Sub(from)/step >= time.Duration(n) && step < timeSteps[len(timeSteps)-1] {
		step = stepAtLeast(step + 1)
	}
	// Epoch day 0 was a Thursday: weeks are counted from Monday 1970-01-05.
	var offset time.Duration
	if step >= 7*24*time.Hour {
		offset = 4 * 24 * time.Hour
	}
	base := time.Unix(0, 0).UTC().Add(offset)
	k := from.Sub(base) / step
	t := base.Add(k * step)
	if t.Before(from) {
		t = t.Add(step)
	}
	var ticks []time.Time
	for ; !t.After(to); t = t.Add(step) {
		ticks = append(ticks, t)
	}
	return ticks, step
}

// timeLabel is a time tick's label in UTC: the time of day under a day's step, with the date
// beneath at midnight and on the first tick; the date alone otherwise.
func timeLabel(t time.Time, step time.Duration, first bool) []string {
	t = t.UTC()
	if step >= 24*time.Hour {
		return []string{t.Format("Jan 2")}
	}
	layout := "15:04"
	if step < time.Minute {
		layout = "15:04:05"
	}
	if first || (t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0) {
		return []string{t.Format(layout), t.Format("Jan 2")}
	}
	return []string{t.Format(layout)}
}
