package registry

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/rapl"
	"github.com/fleetwatt/fleetwatt/agent/internal/sysfs"
	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		root        func(t *testing.T) string
		wantSources []string
		wantMissing []string // each wraps sensor.ErrNotFound
	}{
		{
			name:        "intel-xeon-2s",
			root:        func(t *testing.T) string { return fixture.Root(t, "intel-xeon-2s") },
			wantSources: []string{semconv.SourceRAPL, semconv.SourceHwmon},
		},
		{
			name:        "amd-epyc",
			root:        func(t *testing.T) string { return fixture.Root(t, "amd-epyc") },
			wantSources: []string{semconv.SourceRAPL},
			wantMissing: []string{semconv.SourceHwmon},
		},
		{
			name:        "nothing",
			root:        func(t *testing.T) string { return t.TempDir() },
			wantMissing: []string{semconv.SourceRAPL, semconv.SourceHwmon},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sources, missing := Open(sysfs.New(tt.root(t)))
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
				if !errors.Is(m.Err, sensor.ErrNotFound) {
					t.Errorf("missing %s: %v, want an error wrapping sensor.ErrNotFound", m.Source, m.Err)
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
	root := sysfs.New(fixture.Root(t, "intel-xeon-2s"))
	for _, k := range known {
		s, err := k.open(root)
		if err != nil {
			t.Errorf("%s: %v", k.name, err)
			continue
		}
		if s.Name() != k.name {
			t.Errorf("known entry %q opens a source named %q", k.name, s.Name())
		}
	}
}

// A failed Open must give a nil interface, not one holding a nil *Reader: callers test
// source != nil.
func TestSourceNeverTypedNil(t *testing.T) {
	t.Parallel()
	errOpen := errors.New("open failed")
	tests := []struct {
		name    string
		open    func(sysfs.FS) (*rapl.Reader, error)
		wantErr bool
	}{
		{"error", func(sysfs.FS) (*rapl.Reader, error) { return nil, errOpen }, true},
		{"nil reader without error", func(sysfs.FS) (*rapl.Reader, error) { return nil, nil }, true},
	}
	for _, tt := range tests {
		s, err := source(tt.open)(sysfs.New(t.TempDir()))
		if s != nil {
			t.Errorf("%s: source = %#v, want a nil interface", tt.name, s)
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want an error: %t", tt.name, err, tt.wantErr)
		}
	}
}
