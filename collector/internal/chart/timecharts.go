package chart

import (
	"fmt"
	"strings"
	"time"
)

func timeLine(ts TimeSeries, scale float64) []XY {
	pts := make([]XY, len(ts.Points))
	for i, p := range ts.Points {
		pts[i] = XY{float64(p.T.Unix()), p.V * scale}
	}
	return pts
}

func timeAxis(from, to time.Time) Axis {
	return Axis{Label: "time (UTC)", Time: true, Fixed: true, Min: float64(from.Unix()), Max: float64(to.Unix())}
}

// gapOf breaks a series' line where a bucket or more is missing.
func gapOf(step time.Duration) float64 { return 1.5 * step.Seconds() }

// Power draws the fleet's power per region over time (FleetPower's series).
func Power(series []TimeSeries, step time.Duration, from, to time.Time, region string) *Drawing {
	title := "Fleet power per region"
	if region != "" {
		title = "Fleet power in " + region
	}
	l := Lines{
		Name: NamePower, Title: title,
		Subtitle: fmt.Sprintf("%s; per %s: the sum of every host's primary power reading", rangeText(from, to), stepText(step)),
		X:        timeAxis(from, to),
		Y:        Axis{Label: "power (W)", FromZero: true},
		Footnote: "Primary reading: a host's widest measured scope from its best source (docs/schema.md), IT power before PUE.",
	}
	var desc []string
	for i, s := range series {
		l.Series = append(l.Series, Line{Name: s.Name, Color: paletteColor(i), Points: timeLine(s, 1), Gap: gapOf(step)})
		desc = append(desc, fmt.Sprintf("%s: mean %s W over %d buckets.", s.Name, sig(mean(s)), len(s.Points)))
	}
	l.Desc = strings.Join(desc, " ")
	if l.Desc == "" {
		l.Desc = "No primary power readings in this range."
	}
	return l.Drawing()
}

// Host draws one host's power per scope and source, and its CPU utilization on the right axis.
func Host(host string, hs HostSeries, from, to time.Time) *Drawing {
	l := Lines{
		Name: NameHost, Title: "Host " + host + ": power and CPU utilization",
		Subtitle: fmt.Sprintf("%s; per %s, each scope and source on its own (they overlap: never add them)", rangeText(from, to), stepText(hs.Step)),
		X:        timeAxis(from, to),
		Y:        Axis{Label: "power (W)", FromZero: true},
		Footnote: "Scopes nest: wall > platform > cpu-package > cpu-core (docs/schema.md). Utilization: busy CPU time / all CPU time.",
	}
	var desc []string
	for i, s := range hs.Power {
		l.Series = append(l.Series, Line{Name: s.Name + " (W)", Color: paletteColor(i), Points: timeLine(s, 1), Gap: gapOf(hs.Step)})
		desc = append(desc, fmt.Sprintf("%s: mean %s W.", s.Name, sig(mean(s))))
	}
	if len(hs.Util.Points) > 0 {
		l.Y2 = &Axis{Label: "CPU utilization (%)", Fixed: true, Min: 0, Max: 100}
		l.Series = append(l.Series, Line{
			Name: "CPU utilization (%)", Color: grey, Dash: true, Right: true,
			Points: timeLine(hs.Util, 100), Gap: gapOf(hs.Step),
		})
		desc = append(desc, fmt.Sprintf("CPU utilization: mean %s %%.", sig(100*mean(hs.Util))))
	}
	l.Desc = strings.Join(desc, " ")
	if l.Desc == "" {
		l.Desc = "No readings of this host in this range."
	}
	return l.Drawing()
}

func mean(s TimeSeries) float64 {
	if len(s.Points) == 0 {
		return 0
	}
	sum := 0.0
	for _, p := range s.Points {
		sum += p.V
	}
	return sum / float64(len(s.Points))
}

func stepText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return plural(int(d/time.Second), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
