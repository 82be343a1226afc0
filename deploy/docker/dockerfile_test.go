// Package docker holds fleetwatt's container images. There is no Docker engine where the
// tests run, so this test reads the Dockerfiles as BuildKit would and checks what an image
// build depends on: a cross-compiling builder on the build platform, a static CGO-off
// binary for TARGETARCH, a distroless non-root final image whose entrypoint is the binary,
// and a build context (.dockerignore) holding every source file the binary is built from.
package docker

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// repo is the repository's root, the images' build context.
const repo = "../.."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd   string   // FROM, RUN, COPY, ... (upper case)
	Flags []string // --platform=..., --from=..., --chown=...
	Args  string   // the rest
	Line  int
}

// parse reads a Dockerfile: comments and blank lines dropped (inside continuations too, as
// BuildKit does), lines ending in a backslash joined, flags split off.
func parse(t *testing.T, file string) [][]instruction {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		fields := strings.Fields(cur.String())
		cur.Reset()
		in := instruction{Cmd: strings.ToUpper(fields[0]), Line: start}
		rest := fields[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
			in.Flags, rest = append(in.Flags, rest[0]), rest[1:]
		}
		in.Args = strings.Join(rest, " ")
		if in.Cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", file, in.Line, in.Cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends in a continuation line", file)
	}
	return stages
}

// find returns a stage's instructions of one kind.
func find(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goVersion is the go directive of go.mod, as major.minor: the builder image's tag.
func goVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// dockerignore reads the patterns of .dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The forms ignored understands; others (negation, ** inside a pattern) would need
		// BuildKit's matcher.
		if strings.HasPrefix(line, "!") || strings.Contains(strings.TrimPrefix(line, "**/"), "**") {
			t.Fatalf(".dockerignore: pattern %q is beyond this test's matcher", line)
		}
		patterns = append(patterns, line)
	}
	return patterns
}

// ignored reports whether .dockerignore's patterns leave the slash-separated path (relative
// to the context) out of the build context: a pattern matches the path or a directory above
// it; "**/" matches any number of directories.
func ignored(p string, patterns []string) bool {
	parts := strings.Split(p, "/")
	for _, pat := range patterns {
		anyDepth := strings.HasPrefix(pat, "**/")
		pat = strings.TrimPrefix(pat, "**/")
		for i := range parts {
			if i > 0 && !anyDepth {
				break
			}
			for j := i + 1; j <= len(parts); j++ {
				if ok, _ := path.Match(pat, strings.Join(parts[i:j], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestIgnored(t *testing.T) {
	t.Parallel()
	patterns := []string{".git", "bin", "**/testdata", "**/*_test.go"}
	for p, want := range map[string]bool{
		".git/config": true, "bin/linux-amd64/fleetwatt-agent": true, "agent/bin.go": false,
		"agent/internal/rapl/testdata/x": true, "agent/main_test.go": true, "agent/main.go": false,
		"internal/binary/x.go": false, "agent/bin/x": false,
	} {
		if got := ignored(p, patterns); got != want {
			t.Errorf("ignored(%q) = %v, want %v", p, got, want)
		}
	}
}

// pkg is a package the binary is built from, as go list describes it.
type pkg struct {
	ImportPath, Dir     string
	Standard            bool
	GoFiles, EmbedFiles []string
	Module              *struct{ Main bool }
}

// sources lists, relative to the repository, every file of this module that go build reads
// for the binary in dir, for GOOS=linux.
func sources(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,EmbedFiles,Module", "./"+dir)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return files
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	goVer := goVersion(t)
	patterns := dockerignore(t)
	for _, tc := range []struct {
		file, binary, pkg string
		expose            []string
		cmd               []string
	}{
		{file: "agent.Dockerfile", binary: "fleetwatt-agent", pkg: "agent"},
		{
			file: "collector.Dockerfile", binary: "fleetwatt-collector", pkg: "collector",
			expose: collectorPorts(t),
			cmd:    []string{"--wal-dir", "/var/lib/fleetwatt-collector/wal"},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			stages := parse(t, tc.file)
			if len(stages) != 2 {
				t.Fatalf("%d stages, want 2 (a builder and the final image)", len(stages))
			}
			build, final := stages[0], stages[1]

			// The builder: on the build platform, the Go of go.mod, cross-compiling.
			from := build[0]
			if want := "golang:" + goVer + " AS build"; from.Args != want || !slices.Equal(from.Flags, []string{"--platform=$BUILDPLATFORM"}) {
				t.Errorf("builder: FROM %s %s, want FROM --platform=$BUILDPLATFORM %s", from.Flags, from.Args, want)
			}
			if !slices.ContainsFunc(find(build, "ARG"), func(in instruction) bool {
				return slices.Contains(strings.Fields(in.Args), "TARGETOS") && slices.Contains(strings.Fields(in.Args), "TARGETARCH")
			}) {
				t.Error("builder: no ARG TARGETOS TARGETARCH")
			}
			builds := 0
			for _, in := range find(build, "RUN") {
				if !strings.Contains(in.Args, "go build") {
					continue
				}
				builds++
				for _, want := range []string{"CGO_ENABLED=0 ", "GOOS=$TARGETOS ", "GOARCH=$TARGETARCH ", " -trimpath ", "-o /out/" + tc.binary + " ", " ./" + tc.pkg} {
					if !strings.Contains(in.Args+" ", want) {
						t.Errorf("builder line %d: go build without %q: %s", in.Line, strings.TrimSpace(want), in.Args)
					}
				}
			}
			if builds != 1 {
				t.Errorf("builder: %d RUN go build, want 1", builds)
			}

			// The build context: every COPY source exists and is in the context, and the
			// context has every file go build reads.
			var copied []string
			for _, in := range find(build, "COPY") {
				args := strings.Fields(in.Args)
				for _, src := range args[:len(args)-1] {
					src = strings.TrimSuffix(src, "/")
					if _, err := os.Stat(filepath.Join(repo, src)); err != nil {
						t.Errorf("builder line %d: COPY %s: %v", in.Line, src, err)
					}
					if ignored(src, patterns) {
						t.Errorf("builder line %d: COPY %s, which .dockerignore leaves out", in.Line, src)
					}
					copied = append(copied, src)
				}
			}
			for _, f := range sources(t, tc.pkg) {
				if !slices.ContainsFunc(copied, func(c string) bool { return f == c || strings.HasPrefix(f, c+"/") }) {
					t.Errorf("%s builds from %s, which no COPY brings in (COPY %s)", tc.binary, f, strings.Split(f, "/")[0])
				}
				if ignored(f, patterns) {
					t.Errorf("%s builds from %s, which .dockerignore leaves out", tc.binary, f)
				}
			}

			// The final image: distroless static (no libc, no shell), a non-root user, the
			// binary as the entrypoint.
			if got := final[0].Args; got != "gcr.io/distroless/static-debian12:nonroot" {
				t.Errorf("final image FROM %s, want gcr.io/distroless/static-debian12:nonroot", got)
			}
			users := find(final, "USER")
			if len(users) != 1 || users[0].Args != "65532:65532" {
				t.Errorf("final image USER %v, want one USER 65532:65532 (distroless's nonroot)", users)
			}
			bin := "/usr/bin/" + tc.binary
			if !slices.ContainsFunc(find(final, "COPY"), func(in instruction) bool {
				return slices.Contains(in.Flags, "--from=build") && in.Args == "/out/"+tc.binary+" "+bin
			}) {
				t.Errorf("final image: no COPY --from=build /out/%s %s", tc.binary, bin)
			}
			checkExec(t, final, "ENTRYPOINT", []string{bin})
			checkExec(t, final, "CMD", tc.cmd)
			var expose []string
			for _, in := range find(final, "EXPOSE") {
				expose = append(expose, strings.Fields(in.Args)...)
			}
			if diff := cmp.Diff(tc.expose, expose); diff != "" {
				t.Errorf("EXPOSE (-want +got):\n%s", diff)
			}
			for _, stage := range stages {
				for _, in := range stage {
					if in.Cmd == "ADD" {
						t.Errorf("line %d: ADD; COPY says what it does", in.Line)
					}
					if in.Cmd == "FROM" && (strings.Contains(in.Args, ":latest") || !strings.Contains(in.Args, ":")) {
						t.Errorf("line %d: FROM %s: pin a tag", in.Line, in.Args)
					}
				}
			}
		})
	}
}

// checkExec checks that a stage has at most one cmd (ENTRYPOINT, CMD), in exec form, equal
// to want; none when want is nil.
func checkExec(t *testing.T, stage []instruction, cmd string, want []string) {
	t.Helper()
	ins := find(stage, cmd)
	if want == nil {
		if len(ins) > 0 {
			t.Errorf("final image: %s %s, want none", cmd, ins[0].Args)
		}
		return
	}
	if len(ins) != 1 {
		t.Fatalf("final image: %d %s, want 1", len(ins), cmd)
	}
	var got []string
	if err := json.Unmarshal([]byte(ins[0].Args), &got); err != nil {
		t.Fatalf("final image: %s %s is not in exec form (a JSON array; there is no shell): %v", cmd, ins[0].Args, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final image %s (-want +got):\n%s", cmd, diff)
	}
}

// collectorPorts are the ports of the collector's default listen addresses, from its
// example configuration.
func collectorPorts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "collector/collector.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OTLP   struct{ GRPC, HTTP string } `yaml:"otlp"`
		Listen string                      `yaml:"listen"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, addr := range []string{c.OTLP.GRPC, c.OTLP.HTTP, c.Listen} {
		_, port, ok := strings.Cut(addr, ":")
		if !ok {
			t.Fatalf("collector.example.yaml: address %q has no port", addr)
		}
		ports = append(ports, port)
	}
	return ports
}
