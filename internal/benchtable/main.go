// Command benchtable runs the project's benchmarks and prints one table of the figures that
// matter, against their targets and against the figures recorded in bench/baseline.json,
// with a verdict: `make bench` runs it. A figure more than its tolerance (20 %) worse than
// the recorded one, a benchmark that is missing or failed, makes the exit status 1; with
// -strict, so does a target not met.
//
// Usage (from the repository root):
//
//	go run ./internal/benchtable                     every benchmark of ./..., then the table
//	go run ./internal/benchtable -only '^agent\.'    only the rows whose ID matches, and their benchmarks
//	go run ./internal/benchtable -input bench.txt    the table of a saved `go test -bench` output
//	go run ./internal/benchtable -record -machine "..."   record the figures as the new baseline
//
// The rows, their benchmarks, targets and directions are declared in rows.go; how to read
// and reproduce the table is in docs/performance.md.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		baselinePath = fs.String("baseline", "bench/baseline.json", "recorded figures `file`")
		input        = fs.String("input", "", "parse this saved `go test -bench` output (- for stdin) instead of running the benchmarks")
		pkgs         = fs.String("pkgs", "./...", "packages to benchmark, space-separated (ignored with -only)")
		bench        = fs.String("bench", ".", "-bench `regexp` of go test (ignored with -only)")
		count        = fs.Int("count", 1, "runs of each benchmark; the table shows the median")
		only         = fs.String("only", "", "only the rows whose ID matches this `regexp`, running only their benchmarks")
		record       = fs.Bool("record", false, "write the measured figures into the baseline file")
		machine      = fs.String("machine", "", "describes the machine when recording (default: CPU, cores and kernel)")
		strict       = fs.Bool("strict", false, "a target not met fails too")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rows, selected := Rows, func(Row) bool { return true }
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "benchtable: -only: %v\n", err)
			return 2
		}
		selected = func(r Row) bool { return re.MatchString(r.ID) }
		if *pkgs, *bench = runFor(rows, selected); *pkgs == "" {
			fmt.Fprintf(stderr, "benchtable: -only %q selects no row with a benchmark\n", *only)
			return 2
		}
	}
	base, err := LoadBaseline(*baselinePath)
	if err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 2
	}

	var raw []byte
	var runErr error
	if *input != "" {
		raw, err = readInput(*input)
	} else {
		raw, runErr = runBenchmarks(strings.Fields(*pkgs), *bench, *count, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 2
	}
	out, err := Parse(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 2
	}
	if runErr != nil {
		out.Failed = append(out.Failed, "go test: "+runErr.Error())
	}
	lines, verdict := Evaluate(rows, out, base, selected)
	fmt.Fprintln(stdout)
	Print(stdout, lines, verdict, base, *baselinePath, *strict)

	if *record {
		desc := *machine
		if desc == "" {
			desc = describeMachine(raw)
		}
		rec := Record(base, lines, desc, time.Now().Format(time.DateOnly))
		if err := rec.Save(*baselinePath); err != nil {
			fmt.Fprintf(stderr, "benchtable: record: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "recorded the measured figures into %s\n", *baselinePath)
	}
	if !verdict.OK(*strict) {
		return 1
	}
	return 0
}

// runFor returns the packages and the -bench pattern that run the selected rows'
// benchmarks: their top-level names, all of their sub-benchmarks.
func runFor(rows []Row, selected func(Row) bool) (pkgs, bench string) {
	var ps, names []string
	for _, r := range rows {
		if r.Bench == "" || !selected(r) {
			continue
		}
		if !slices.Contains(ps, r.Pkg) {
			ps = append(ps, r.Pkg)
		}
		top, _, _ := strings.Cut(r.Bench, "/")
		if q := regexp.QuoteMeta(top); !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	if len(ps) == 0 {
		return "", ""
	}
	return strings.Join(ps, " "), "^(" + strings.Join(names, "|") + ")$"
}

// runBenchmarks runs go test's benchmarks, showing their output on progress as it comes, and
// returns it. The environment passes through: FLEETWATT_INFLUXD, FLEETWATT_BENCH_AGENT_TIME.
func runBenchmarks(pkgs []string, bench string, count int, progress io.Writer) ([]byte, error) {
	args := append([]string{"test", "-run", "^$", "-bench", bench, "-benchmem", "-count", fmt.Sprint(count)}, pkgs...)
	fmt.Fprintf(progress, "go %s\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, progress)
	cmd.Stderr = progress
	err := cmd.Run()
	return buf.Bytes(), err
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// describeMachine names the machine from the benchmark output's cpu: line, the number of
// CPUs and the kernel.
func describeMachine(raw []byte) string {
	cpu := "unknown CPU"
	for line := range strings.Lines(string(raw)) {
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
			break
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs, %s, %s/%s, %s", cpu, runtime.NumCPU(), kernel, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
