package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentStaysLean keeps the agent binary free of the collector and the InfluxDB client:
// it runs on every host of a fleet, so what it links is what every host pays for. It also
// keeps the default build static: purego (the NVML loader, behind -tags nvml_dlopen) makes a
// binary depend on the system's dynamic loader.
func TestAgentStaysLean(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/fleetwatt/fleetwatt/collector",
		"github.com/influxdata/",
		"go.opentelemetry.io/collector/",
		"github.com/ebitengine/purego",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the agent imports %s (forbidden prefix %s)", dep, f)
			}
		}
	}
}
