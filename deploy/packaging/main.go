// Command packaging builds fleetwatt's Linux packages, .deb and .rpm for amd64 and arm64, of
// fleetwatt-agent and fleetwatt-collector, from the binaries `make build` leaves in bin/:
//
//	go run ./deploy/packaging --version v1.2.3 --bin bin --out dist
//
// It uses nFPM (github.com/goreleaser/nfpm) as a library, so packaging needs neither dpkg nor
// rpmbuild; what goes into each package is the table in packages.go, and docs/install.md says
// what it means for an operator.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs the command line args and returns the process's exit code.
func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := Options{}
	var arches, formats string
	fs.StringVar(&opts.Version, "version", "", "version, as `git describe` gives it (v1.2.3, v1.2.3-4-gabcdef0-dirty, abcdef0)")
	fs.StringVar(&opts.Bin, "bin", "bin", "`directory` holding linux-<arch>/fleetwatt-{agent,collector} (make build)")
	fs.StringVar(&opts.Out, "out", "dist", "`directory` the packages are written to")
	fs.StringVar(&opts.Repo, "repo", ".", "the repository's root `directory` (units, configs, docs)")
	fs.StringVar(&arches, "arch", strings.Join(Arches, ","), "architectures, comma-separated")
	fs.StringVar(&formats, "format", strings.Join(Formats, ","), "package formats, comma-separated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "packaging: unexpected arguments %q\n", fs.Args())
		return 2
	}
	opts.Arches = strings.Split(arches, ",")
	opts.Formats = strings.Split(formats, ",")
	written, err := Build(opts)
	for _, p := range written {
		fmt.Fprintln(stdout, p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "packaging: %v\n", err)
		return 1
	}
	return 0
}
