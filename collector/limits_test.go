package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/limit"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
)

func TestPipelineOptions(t *testing.T) {
	t.Parallel()
	ignore := cmpopts.IgnoreFields(convert.Options{}, "Now", "Admit")
	def := pipelineOptions(config.DefaultConfig().Limits)
	want := pipeline.Options{
		Convert: convert.Options{MaxFuture: convert.DefaultMaxFuture, MaxAge: convert.DefaultMaxAge, MaxPowerW: convert.DefaultMaxPowerW},
		Series:  limit.Options{MaxSeries: limit.DefaultMaxSeries, Window: limit.DefaultWindow},
	}
	if diff := cmp.Diff(want, def, ignore, cmpopts.IgnoreFields(limit.Options{}, "Now")); diff != "" {
		t.Errorf("default limits (-want +got):\n%s", diff)
	}
	off := pipelineOptions(config.Limits{})
	want = pipeline.Options{Convert: convert.Options{MaxFuture: -1, MaxAge: -1, MaxPowerW: -1}, NoSeriesLimit: true}
	if diff := cmp.Diff(want, off, ignore, cmpopts.IgnoreFields(limit.Options{}, "Now")); diff != "" {
		t.Errorf("limits off (-want +got):\n%s", diff)
	}
}
