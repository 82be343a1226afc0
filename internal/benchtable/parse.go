package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Result is what the runs of one benchmark measured: every metric's value per run, in the
// order the runs came (-count gives several).
type Result struct {
	// Pkg is the package's import path, from the "pkg:" line before the benchmark.
	Pkg string
	// Name is the benchmark's full name without the GOMAXPROCS suffix:
	// "BenchmarkExport/protocol=grpc".
	Name string
	// Values holds each metric's values by unit as printed: "ns/op", "B/op", "ms-cpu/cycle".
	Values map[string][]float64
}

// Median is the median of the runs' values of metric, and whether there were any. The median,
// not the mean: one run disturbed by another process does not move it.
func (r *Result) Median(metric string) (float64, bool) {
	v := slices.Clone(r.Values[metric])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2, true
	}
	return v[len(v)/2], true
}

// Output is a parsed `go test -bench` output.
type Output struct {
	// Results by package and benchmark name, in the order they first appear.
	Results []*Result
	// Failed lists the packages whose tests or benchmarks failed ("FAIL pkg" lines) and the
	// benchmarks that failed ("--- FAIL: BenchmarkX"), as "pkg" and "pkg BenchmarkX".
	Failed []string
	// Skipped lists the benchmarks that skipped ("--- SKIP: BenchmarkX") as "pkg BenchmarkX".
	Skipped []string
}

// Find returns the result of benchmark name in package pkg, or nil.
func (o *Output) Find(pkg, name string) *Result {
	for _, r := range o.Results {
		if r.Pkg == pkg && r.Name == name {
			return r
		}
	}
	return nil
}

// procsSuffix is the "-8" the testing package appends to a benchmark's name when GOMAXPROCS
// is not 1.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// Parse reads the output of `go test -bench` (one or several packages, any -count) in the
// standard benchmark format (golang.org/design/14313-benchmark-data): a result line is the
// name, the iterations, then value-unit pairs, custom metrics of b.ReportMetric included.
// Lines that are not results (logs, PASS, ok) are skipped. A benchmark whose code printed
// between its name and its figures has them on a later line, which is joined to the name. A
// malformed result line is an error naming it.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{}
	pkg, pending := "", "" // pending: a benchmark name still waiting for its figures
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case f[0] == "pkg:" && len(f) == 2:
			pkg, pending = f[1], ""
			continue
		case f[0] == "FAIL" && len(f) >= 2:
			out.Failed = append(out.Failed, f[1])
			continue
		case len(f) >= 3 && f[0] == "---" && strings.HasPrefix(f[2], "Benchmark"):
			// A benchmark can fail before its package's header is printed: then it has no
			// package, and "FAIL pkg" follows.
			name := strings.TrimSpace(pkg + " " + trimProcs(f[2]))
			switch f[1] {
			case "FAIL:":
				out.Failed = append(out.Failed, name)
			case "SKIP:":
				out.Skipped = append(out.Skipped, name)
			}
			continue
		}
		name, figures, continued := "", f, false
		if strings.HasPrefix(f[0], "Benchmark") {
			name, figures = trimProcs(f[0]), f[1:]
		} else if pending != "" {
			name, continued = pending, true
		}
		if name == "" {
			continue
		}
		if len(figures) == 0 || !isInt(figures[0]) {
			pending = name // the name alone, or with what the benchmark printed
			continue
		}
		values, err := parseFigures(figures[1:])
		if err != nil {
			if continued {
				continue // something the benchmark printed that starts with a number
			}
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		pending = ""
		res := out.Find(pkg, name)
		if res == nil {
			res = &Result{Pkg: pkg, Name: name, Values: map[string][]float64{}}
			out.Results = append(out.Results, res)
		}
		for _, v := range values {
			res.Values[v.unit] = append(res.Values[v.unit], v.value)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

type pair struct {
	value float64
	unit  string
}

// parseFigures parses the value-unit pairs after the iterations.
func parseFigures(f []string) ([]pair, error) {
	if len(f) == 0 || len(f)%2 != 0 {
		return nil, errors.New("want name, iterations and value-unit pairs")
	}
	out := make([]pair, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", f[i], err)
		}
		out = append(out, pair{v, f[i+1]})
	}
	return out, nil
}

func trimProcs(name string) string { return procsSuffix.ReplaceAllString(name, "") }

func isInt(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0
}
