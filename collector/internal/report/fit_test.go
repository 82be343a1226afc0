package report

import (
	"math"
	"testing"
)

// sumsOf builds the fit's sums from (u, P) samples.
func sumsOf(us, ps []float64) CurveSums {
	var s CurveSums
	for i, u := range us {
		p := ps[i]
		s.N++
		s.U += u
		s.UU += u * u
		s.UUU += u * u * u
		s.UUUU += u * u * u * u
		s.P += p
		s.UP += u * p
		s.UUP += u * u * p
		s.PP += p * p
	}
	return s
}

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.9g, want %.9g (±%g)", name, got, want, tol)
	}
}

func TestFitCurve(t *testing.T) {
	t.Parallel()
	spread := func(n int, lo, hi float64) []float64 {
		us := make([]float64, n)
		for i := range us {
			// A diurnal-like spread: sinusoidal between lo and hi.
			us[i] = lo + (hi-lo)*(0.5+0.5*math.Sin(2*math.Pi*float64(i)/float64(n)))
		}
		return us
	}
	apply := func(us []float64, f func(float64) float64) []float64 {
		ps := make([]float64, len(us))
		for i, u := range us {
			ps[i] = f(u)
		}
		return ps
	}
	linear := func(u float64) float64 { return 54 + 86*u }
	concave := func(u float64) float64 { return 120 + 400*(2*u-u*u) }
	tests := []struct {
		name       string
		us         []float64
		f          func(float64) float64
		kind       FitKind
		c0, c1, c2 float64
	}{
		{"linear data, quadratic fit exact", spread(360, 0.1, 0.7), linear, FitQuadratic, 54, 86, 0},
		{"concave data, quadratic fit exact", spread(360, 0.05, 0.9), concave, FitQuadratic, 120, 800, -400},
		{"narrow spread: linear", spread(360, 0.30, 0.40), linear, FitLinear, 54, 86, 0},
		{"two values of u: linear", []float64{0.2, 0.6, 0.2, 0.6, 0.2, 0.6, 0.2, 0.6, 0.2, 0.6, 0.2, 0.6}, linear, FitLinear, 54, 86, 0},
		{"few samples: linear", []float64{0.1, 0.5, 0.9}, linear, FitLinear, 54, 86, 0},
		{"constant u: none", []float64{0.3, 0.3, 0.3, 0.3}, linear, FitNone, 0, 0, 0},
		{"almost constant u: none", spread(100, 0.300, 0.310), linear, FitNone, 0, 0, 0},
		{"one sample: none", []float64{0.5}, linear, FitNone, 0, 0, 0},
		{"no samples: none", nil, linear, FitNone, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := FitCurve(sumsOf(tt.us, apply(tt.us, tt.f)))
			if c.Kind != tt.kind {
				t.Fatalf("kind = %s, want %s (sd_u %.4f)", c.Kind, tt.kind, c.SDU)
			}
			if c.Kind == FitNone {
				return
			}
			near(t, "c0", c.C0, tt.c0, 1e-6)
			near(t, "c1", c.C1, tt.c1, 1e-6)
			near(t, "c2", c.C2, tt.c2, 1e-6)
			near(t, "rmse", c.RMSE, 0, 1e-3)
		})
	}
}

func TestFitCurveRejectsNonFinite(t *testing.T) {
	t.Parallel()
	s := sumsOf([]float64{0.1, 0.5, 0.9}, []float64{1, 2, 3})
	s.UP = math.NaN()
	if c := FitCurve(s); c.Valid() {
		t.Errorf("fit of NaN sums = %+v, want none", c)
	}
}

// TestFitCurveNoisy: with 1 % noise the quadratic fit of a linear host stays within 3 % at
// both ends, and the linear fit is the least-squares line (its RMSE is the noise's).
func TestFitCurveNoisy(t *testing.T) {
	t.Parallel()
	var us, ps []float64
	x := uint64(1)
	for i := range 720 {
		u := 0.35 + 0.2*math.Sin(2*math.Pi*float64(i)/360)
		x = x*6364136223846793005 + 1442695040888963407
		noise := (float64(x>>11)/(1<<53) - 0.5) * 2 * 0.01 // ±1 %
		us = append(us, u)
		ps = append(ps, (54+86*u)*(1+noise))
	}
	c := FitCurve(sumsOf(us, ps))
	if c.Kind != FitQuadratic {
		t.Fatalf("kind %s", c.Kind)
	}
	near(t, "idle", c.At(0), 54, 54*0.03)
	near(t, "peak", c.At(1), 140, 140*0.03)
}
