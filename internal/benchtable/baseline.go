package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
)

// Baseline is bench/baseline.json: the figures recorded on the reference machine, by row ID,
// in each row's unit.
type Baseline struct {
	// Machine describes where the figures were measured: CPU, cores, kernel, and whether it
	// was quiet.
	Machine string `json:"machine"`
	// Recorded is when, as a date ("2026-11-26").
	Recorded string `json:"recorded"`
	// Note says anything else a reader needs: what was noisy, what to re-measure.
	Note    string             `json:"note,omitempty"`
	Figures map[string]float64 `json:"figures"`
}

// LoadBaseline reads path; a missing file is an empty baseline, to be recorded.
func LoadBaseline(path string) (Baseline, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Baseline{Figures: map[string]float64{}}, nil
	}
	if err != nil {
		return Baseline{}, err
	}
	var base Baseline
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&base); err != nil {
		return Baseline{}, fmt.Errorf("%s: %w", path, err)
	}
	if base.Figures == nil {
		base.Figures = map[string]float64{}
	}
	return base, nil
}

// Record returns base with the measured figures of lines in place of the recorded ones;
// rows not measured keep theirs.
func Record(base Baseline, lines []Line, machine, date string) Baseline {
	out := Baseline{Machine: machine, Recorded: date, Note: base.Note, Figures: maps.Clone(base.Figures)}
	if out.Figures == nil {
		out.Figures = map[string]float64{}
	}
	for _, l := range lines {
		if l.Status == Measured {
			out.Figures[l.Row.ID] = roundSignificant(l.Figure, 4)
		}
	}
	return out
}

// roundSignificant rounds v to n significant digits: a recorded figure is no more precise
// than a measurement.
func roundSignificant(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	scale := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// Save writes base to path, indented, keys sorted (encoding/json sorts map keys).
func (b Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
