package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestTuneRuntime: one P and GOGC 50 unless the environment sets GOMAXPROCS or GOGC, which
// win. Not parallel: it changes the test process's own runtime, and restores it.
func TestTuneRuntime(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	defer func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	}()
	tests := []struct {
		name      string
		env       map[string]string
		wantProcs int
		wantGC    int
	}{
		{name: "defaults", wantProcs: 1, wantGC: 50},
		{name: "GOMAXPROCS set", env: map[string]string{"GOMAXPROCS": "3"}, wantProcs: 3, wantGC: 50},
		{name: "GOGC set", env: map[string]string{"GOGC": "200"}, wantProcs: 1, wantGC: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As the runtime would have them from the environment at start.
			runtime.GOMAXPROCS(3)
			debug.SetGCPercent(200)
			tuneRuntime(func(k string) string { return tt.env[k] })
			if got := runtime.GOMAXPROCS(0); got != tt.wantProcs {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tt.wantProcs)
			}
			if got := debug.SetGCPercent(200); got != tt.wantGC {
				t.Errorf("GOGC = %d, want %d", got, tt.wantGC)
			}
		})
	}
}
