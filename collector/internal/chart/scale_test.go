package chart

import (
	"slices"
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 3.25, []float64{0, 1, 2, 3, 4}},
		{0, 10.4, []float64{0, 2.5, 5, 7.5, 10, 12.5}},
		{0, 1320, []float64{0, 500, 1000, 1500}},
		{0, 0, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{-0.3, 0.7, []float64{-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8}},
		{0, 23000, []float64{0, 5000, 10000, 15000, 20000, 25000}},
	} {
		got, _ := niceTicks(tt.lo, tt.hi, 5)
		if len(got) != len(tt.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range got {
			if !near(got[i], tt.want[i], 1e-12) {
				t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
	}{
		{formatTick(0, 5000), "0"},
		{formatTick(25000, 5000), "25k"},
		{formatTick(12500, 2500), "12.5k"},
		{formatTick(7.5, 2.5), "7.5"},
		{formatTick(0.4, 0.2), "0.4"},
		{formatTick(3e6, 1e6), "3M"},
		{sig(3.11924), "3.12"},
		{sig(40.75), "40.8"},
		{sig(1320), "1320"},
		{sig(0.012345), "0.0123"},
		{num(-0.0001, 2), "0.00"},
		{Percent(-0.412308), "−41 %"},
		{Percent(0.05), "+5.0 %"},
		{Percent(0), "0.0 %"},
		{money(6.1249), "$6.12"},
		{money(0.4123), "$0.412"},
		{durationLiteral(10 * time.Minute), "10m"},
		{durationLiteral(2 * 24 * time.Hour), "2d"},
		{durationLiteral(30 * time.Second), "30s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		from, to string
		step     time.Duration
		first    string
		n        int
	}{
		{"2026-09-01T00:07:00Z", "2026-09-01T06:00:00Z", time.Hour, "2026-09-01T01:00:00Z", 6},
		{"2026-09-01T10:00:00Z", "2026-09-02T10:00:00Z", 6 * time.Hour, "2026-09-01T12:00:00Z", 4},
		{"2026-09-01T00:00:00Z", "2026-09-08T00:00:00Z", 24 * time.Hour, "2026-09-01T00:00:00Z", 8},
		{"2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", 7 * 24 * time.Hour, "2026-09-07T00:00:00Z", 4}, // Mondays
		{"2026-09-01T00:00:00Z", "2026-09-01T00:20:00Z", 5 * time.Minute, "2026-09-01T00:00:00Z", 5},
	} {
		ticks, step := timeTicks(at(tt.from), at(tt.to), 8)
		if step != tt.step || len(ticks) != tt.n || !ticks[0].Equal(at(tt.first)) {
			t.Errorf("%s..%s: %d ticks every %s from %s; want %d every %s from %s",
				tt.from, tt.to, len(ticks), step, ticks[0].Format(time.RFC3339), tt.n, tt.step, tt.first)
		}
		if len(ticks) > 8 {
			t.Errorf("%d ticks", len(ticks))
		}
	}
	if got := timeLabel(at("2026-09-02T00:00:00Z"), time.Hour, false); !slices.Equal(got, []string{"00:00", "Sep 2"}) {
		t.Errorf("midnight label %q", got)
	}
}

func TestBucketStep(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		span     time.Duration
		interval float64
		want     time.Duration
	}{
		{24 * time.Hour, 10, 10 * time.Minute}, // 6 min wanted, rounded up
		{2 * time.Hour, 300, 10 * time.Minute}, // 5-min readings: twice that
		{720 * time.Hour, 10, 3 * time.Hour},   // a month
		{time.Hour, 0, 30 * time.Second},       // no readings: the range decides
	} {
		if got := bucketStep(from, from.Add(tt.span), tt.interval); got != tt.want {
			t.Errorf("bucketStep(%s, %v s) = %s, want %s", tt.span, tt.interval, got, tt.want)
		}
	}
}
