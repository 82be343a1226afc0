// Command gen writes fleetwatt's Grafana dashboards (package dashboards/grafana) as JSON
// files: `make dashboards`, or `go run ./dashboards/grafana/gen` from the repository root.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/fleetwatt/fleetwatt/dashboards/grafana"
)

func main() {
	out := flag.String("out", filepath.Join("dashboards", "grafana"), "directory to write the dashboards' JSON files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := grafana.Files()
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}
