package main

import (
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/config"
	"github.com/fleetwatt/fleetwatt/collector/internal/convert"
	"github.com/fleetwatt/fleetwatt/collector/internal/limit"
	"github.com/fleetwatt/fleetwatt/collector/internal/pipeline"
)

// pipelineOptions turns the configuration's limits, where 0 turns a limit off, into the
// pipeline's options, where 0 means the default and a negative value turns it off.
func pipelineOptions(l config.Limits) pipeline.Options {
	orOff := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	maxPower := l.MaxPowerW
	if maxPower == 0 {
		maxPower = -1
	}
	return pipeline.Options{
		Convert:       convert.Options{MaxFuture: orOff(l.MaxFuture), MaxAge: orOff(l.MaxAge), MaxPowerW: maxPower},
		Series:        limit.Options{MaxSeries: l.MaxSeriesPerToken, Window: l.SeriesWindow},
		NoSeriesLimit: l.MaxSeriesPerToken == 0,
	}
}
