package report

import "math"

// FitKind says which power curve a host's sums allowed.
type FitKind string

// Fit kinds, from the richest.
const (
	FitQuadratic FitKind = "quadratic" // P(u) = c0 + c1·u + c2·u²
	FitLinear    FitKind = "linear"    // P(u) = c0 + c1·u
	FitNone      FitKind = "none"      // too few samples or too little spread in u
)

// Conditioning thresholds of the fit (docs/report.md, "The power curve").
const (
	// MinLinearSamples and MinLinearSpread: a slope needs two samples and a standard deviation
	// of u of at least 1 percentage point; below that, P(0) and P(1) are extrapolations far
	// beyond the data and are not reported.
	MinLinearSamples = 2
	MinLinearSpread  = 0.01
	// MinQuadSamples, MinQuadSpread and MinQuadShape: a curvature needs ten samples, a
	// standard deviation of u of at least 5 points, and a distribution of u that is not
	// concentrated on two values: the determinant k4 − k3² − 1 of the standardized normal
	// equations (k3, k4: skewness and kurtosis of u) at least MinQuadShape. It is 0 for
	// a two-valued u, 0.8 for a uniform one, 0.5 for a sinusoidal (diurnal) one.
	MinQuadSamples = 10
	MinQuadSpread  = 0.05
	MinQuadShape   = 0.05
)

// Curve is a fitted power curve, W as a function of utilization 0..1.
type Curve struct {
	Kind       FitKind
	C0, C1, C2 float64 // W, W, W
	N          float64 // samples
	MeanU      float64 // mean utilization of the samples
	SDU        float64 // standard deviation of the utilization
	RMSE       float64 // residual root mean square, W
}

// At returns the fitted power at utilization u, W.
func (c Curve) At(u float64) float64 { return c.C0 + c.C1*u + c.C2*u*u }

// Valid reports whether the curve was fitted.
func (c Curve) Valid() bool { return c.Kind != FitNone }

// CurveSums are the sums a least-squares fit of P on u needs (the host_1h fields).
type CurveSums struct {
	N, U, UU, UUU, UUUU float64 // samples, Σu, Σu², Σu³, Σu⁴
	P, UP, UUP, PP      float64 // ΣP, ΣuP, Σu²P, ΣP²
}

// FitCurve fits P(u) by least squares from sums: quadratic when the samples allow it (see
// the Min* constants), else linear, else none. It works in standardized utilization
// x = (u − ū)/σ, where the normal equations have the closed form
//
//	a + c = p0,  b + k3·c = p1,  a + k3·b + k4·c = p2
//
// (p0, p1, p2 the means of P, xP, x²P; k3, k4 the means of x³, x⁴), so
// c = (p2 − p0 − k3·p1) / (k4 − k3² − 1), and converts back to coefficients in u.
// It never divides by zero: every divisor is checked against a threshold first.
func FitCurve(s CurveSums) Curve {
	c := Curve{Kind: FitNone, N: s.N}
	if s.N < MinLinearSamples || !finite(s.N, s.U, s.UU, s.UUU, s.UUUU, s.P, s.UP, s.UUP, s.PP) {
		return c
	}
	n := s.N
	m := s.U / n
	m2, m3, m4 := s.UU/n, s.UUU/n, s.UUUU/n
	variance := m2 - m*m
	if variance <= 0 {
		return c
	}
	sd := math.Sqrt(variance)
	c.MeanU, c.SDU = m, sd
	if sd < MinLinearSpread {
		return c
	}
	// Central moments of u, then standardized.
	mu3 := m3 - 3*m*m2 + 2*m*m*m
	mu4 := m4 - 4*m*m3 + 6*m*m*m2 - 3*m*m*m*m
	k3 := mu3 / (sd * sd * sd)
	k4 := mu4 / (variance * variance)
	p0 := s.P / n
	p1 := (s.UP - m*s.P) / n / sd
	p2 := (s.UUP - 2*m*s.UP + m*m*s.P) / n / variance

	a, b, q := p0, p1, 0.0
	c.Kind = FitLinear
	if shape := k4 - k3*k3 - 1; n >= MinQuadSamples && sd >= MinQuadSpread && shape >= MinQuadShape {
		q = (p2 - p0 - k3*p1) / shape
		a, b = p0-q, p1-k3*q
		c.Kind = FitQuadratic
	}
	// P = a + b·x + q·x², x = (u − m)/sd.
	c.C2 = q / variance
	c.C1 = b/sd - 2*q*m/variance
	c.C0 = a - b*m/sd + q*m*m/variance
	if c.Kind == FitQuadratic && (c.At(0) <= 0 || c.At(1) <= 0) {
		// A curvature that takes the curve below zero at an end is an artefact of the
		// sample's range: fall back to the straight line.
		c.C2, c.C1, c.C0 = 0, p1/sd, p0-p1*m/sd
		c.Kind = FitLinear
	}
	// Residual sum of squares: ΣP² − Σ P̂·P for least-squares coefficients.
	sse := s.PP - (c.C0*s.P + c.C1*s.UP + c.C2*s.UUP)
	c.RMSE = math.Sqrt(max(sse, 0) / n)
	return c
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
