package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateCommandLine checks the simulate subcommand's flags, help and fleet errors.
func TestSimulateCommandLine(t *testing.T) {
	t.Parallel()
	badFleet := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(badFleet, []byte("groups:\n  - {region: cn-hangzhou, arch: sparc}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{
			name: "help", args: []string{"simulate", "--help"}, code: 0,
			stderr: []string{
				"logical CPUs", "ops per joule is the architecture-neutral measure", "-backfill duration",
				"default 10s live, 5m with --backfill", "-concurrency", "-seed", "-fleet file", "retried with backoff and never dropped",
			},
		},
		{
			name: "print the default fleet", args: []string{"simulate", "--print-fleet"}, code: 0,
			stdout: []string{"groups:", "region: us-west-1", "cpu_model: NVIDIA Grace CPU Superchip"},
		},
		{
			name: "bad fleet", args: []string{"simulate", "--fleet", badFleet}, code: 2,
			stderr: []string{"groups[0].arch: \"sparc\"", "groups[0].cpu_model: required", "groups[0].peak_w"},
		},
		{name: "unknown flag", args: []string{"simulate", "--fleeet", "x"}, code: 2, stderr: []string{"flag provided but not defined: -fleeet"}},
		{name: "stray argument", args: []string{"simulate", "now"}, code: 2, stderr: []string{"unexpected arguments"}},
		{name: "bad protocol", args: []string{"simulate", "--protocol", "udp"}, code: 2, stderr: []string{`--protocol "udp"`}},
		{name: "top-level usage names it", args: []string{"--help"}, code: 0, stderr: []string{"fleetwatt-agent simulate [flags]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := mainErr(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
