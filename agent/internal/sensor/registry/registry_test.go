package registry

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/ipmi"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/nvml"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/rapl"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// env is the environment of a fixture machine with no tools on PATH: no ipmitool, no
// nvidia-smi, no NVML library.
func env(t *testing.T, root string) Env {
	t.Helper()
	fs := sysfs.New(root)
	host, err := identity.Detect(context.Background(), fs)
	if err != nil {
		host = identity.Host{}
	}
	none := filepath.Join(t.TempDir(), "none")
	return Env{
		FS:   fs,
		Host: host,
		IPMI: ipmi.Options{Command: none},
		NVML: nvml.Options{Library: none, SMICommand: none},
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	absent := []string{semconv.SourceIPMI, semconv.SourceRedfish, semconv.SourceNVML}
	tests := []struct {
		machine     string
		disable     []string
		wantSources []string
		wantMissing []string
	}{
		{
			"intel-xeon-2s", nil,
			[]string{semconv.SourceRAPL, semconv.SourceACPI},
			append([]string{semconv.SourceHwmon}, absent...),
		},
		{
			"amd-epyc", nil,
			[]string{semconv.SourceRAPL},
			append([]string{semconv.SourceHwmon, semconv.SourceACPI}, absent...),
		},
		{
			"ampere-altra", nil,
			[]string{semconv.SourceHwmon},
			append([]string{semconv.SourceRAPL, semconv.SourceACPI}, absent...),
		},
		{
			"nvidia-grace", nil,
			[]string{semconv.SourceACPI},
			append([]string{semconv.SourceRAPL, semconv.SourceHwmon}, absent...),
		},
		// Nothing measures a VM: the model estimates it.
		{
			"vm-kvm", nil,
			[]string{semconv.SourceModel},
			append([]string{semconv.SourceRAPL, semconv.SourceHwmon, semconv.SourceACPI}, absent...),
		},
		{
			"amd-epyc",
			[]string{semconv.SourceRAPL, semconv.SourceModel},
			nil,
			append([]string{semconv.SourceRAPL, semconv.SourceHwmon, semconv.SourceACPI}, append(absent, semconv.SourceModel)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			t.Parallel()
			e := env(t, fixture.Root(t, tt.machine))
			e.Disable = tt.disable
			sources, missing := Open(context.Background(), e)
			t.Cleanup(func() { _ = Close(sources) })
			var gotSources, gotMissing []string
			for _, s := range sources {
				if s == nil || reflect.ValueOf(s).IsNil() {
					t.Fatalf("Open returned a nil source among %v", sources)
				}
				gotSources = append(gotSources, s.Name())
				if _, err := s.Read(t.Context()); err != nil {
					t.Errorf("%s: Read: %v", s.Name(), err)
				}
			}
			for _, m := range missing {
				gotMissing = append(gotMissing, m.Source)
				if !errors.Is(m.Err, sensor.ErrNotFound) && !errors.Is(m.Err, ErrDisabled) {
					t.Errorf("missing %s: %v, want an error wrapping sensor.ErrNotFound or ErrDisabled", m.Source, m.Err)
				}
			}
			if diff := cmp.Diff(tt.wantSources, gotSources); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMissing, gotMissing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}
}

// Each table entry's name is the name its source reports, or readings and the missing list
// would disagree on what a source is called.
func TestKnownNames(t *testing.T) {
	t.Parallel()
	for _, machine := range []string{"intel-xeon-2s", "ampere-altra"} {
		e := env(t, fixture.Root(t, machine))
		for _, k := range known {
			s, err := k.open(context.Background(), e)
			if err != nil {
				continue // absent here; another machine has it
			}
			if s.Name() != k.name {
				t.Errorf("known entry %q opens a source named %q", k.name, s.Name())
			}
		}
	}
}

// A failed Open must give a nil interface, not one holding a nil *Reader: callers test
// source != nil.
func TestSourceNeverTypedNil(t *testing.T) {
	t.Parallel()
	errOpen := errors.New("open failed")
	for _, tt := range []struct {
		name string
		err  error
	}{{"error", errOpen}, {"nil reader without error", nil}} {
		s, err := source[rapl.Reader]((*rapl.Reader)(nil), tt.err)
		if s != nil {
			t.Errorf("%s: source = %#v, want a nil interface", tt.name, s)
		}
		if err == nil {
			t.Errorf("%s: err = nil, want an error", tt.name)
		}
	}
}
