package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

// ErrNotFound marks a chart or a host that does not exist; the API answers 404.
var ErrNotFound = errors.New("not found")

// Request says which chart to draw, over which range.
type Request struct {
	// Name is one of Names.
	Name     string
	From, To time.Time
	// Region, when set, keeps that region's hosts only.
	Region string
	// Host is the host of the host chart.
	Host string
}

// Source draws charts from InfluxDB: the report's charts from the hourly rollups, the time
// series from the raw power and cpu measurements.
type Source struct {
	Querier report.Querier
	Bucket  string
	Regions regions.Table
}

// Draw draws the chart req names. Errors wrap report.ErrBadOptions for a request that
// cannot be answered as asked and ErrNotFound for an unknown chart or host.
func (s Source) Draw(ctx context.Context, req Request) (*Drawing, error) {
	if !req.From.Before(req.To) {
		return nil, fmt.Errorf("%w: from %s is not before to %s", report.ErrBadOptions,
			req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	switch req.Name {
	case NamePower:
		series, step, err := FleetPower(ctx, s.Querier, s.Bucket, req.From, req.To, req.Region)
		if err != nil {
			return nil, err
		}
		return Power(series, step, req.From, req.To, req.Region), nil
	case NameHost:
		if req.Host == "" {
			return nil, fmt.Errorf("%w: the host chart needs host=NAME", report.ErrBadOptions)
		}
		hs, err := HostPower(ctx, s.Querier, s.Bucket, req.Host, req.From, req.To)
		if err != nil {
			return nil, err
		}
		return Host(req.Host, hs, req.From, req.To), nil
	}
	if !slices.Contains(ReportNames, req.Name) {
		return nil, fmt.Errorf("%w: chart %q: want one of %s", ErrNotFound, req.Name, strings.Join(Names, ", "))
	}
	rep, err := s.Report(ctx, req.From, req.To, req.Region)
	if err != nil {
		return nil, err
	}
	return FromReport(req.Name, rep)
}

// Report is report.Run grouped by the default keys, keeping region's hosts only when region
// is set: what the report's charts are drawn from.
func (s Source) Report(ctx context.Context, from, to time.Time, region string) (*report.Report, error) {
	from, to = report.Range(from, to)
	rows, err := report.Fetch(ctx, s.Querier, s.Bucket, from, to)
	if err != nil {
		return nil, err
	}
	if region != "" {
		rows = slices.DeleteFunc(rows, func(r report.HostRow) bool { return r.Region != region })
	}
	return report.Build(rows, report.Options{From: from, To: to, Regions: s.Regions})
}

// Handler serves GET /api/v1/charts/{file}, file being <name>.svg or <name>.png with name one
// of Names, over since= or from=&to= (as the report API), optionally region=; the host chart
// needs host=. Errors are JSON, {"error": "..."}: 400 for bad parameters, 404 for an unknown
// chart or host, 502 when InfluxDB fails.
type Handler struct {
	Querier report.Querier
	Bucket  string
	Regions regions.Table
	Log     *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the queries; 0 means 60 s.
	Timeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if file == "" {
		file = path.Base(r.URL.Path)
	}
	name, ext, _ := strings.Cut(file, ".")
	if ext != "svg" && ext != "png" {
		writeError(w, http.StatusNotFound, fmt.Errorf("chart %q: want <name>.svg or <name>.png, name one of %s", file, strings.Join(Names, ", ")))
		return
	}
	if !slices.Contains(Names, name) {
		writeError(w, http.StatusNotFound, fmt.Errorf("chart %q: want one of %s", name, strings.Join(Names, ", ")))
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	q := r.URL.Query()
	from, to, err := report.ParseRange(q.Get("since"), q.Get("from"), q.Get("to"), now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	src := Source{Querier: h.Querier, Bucket: h.Bucket, Regions: h.Regions}
	d, err := src.Draw(ctx, Request{Name: name, From: from, To: to, Region: q.Get("region"), Host: q.Get("host")})
	if err != nil {
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, report.ErrBadOptions):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		}
		if h.Log != nil && status >= 500 {
			h.Log.Warn("chart failed", "chart", name, "error", err)
		}
		writeError(w, status, err)
		return
	}
	var buf bytes.Buffer
	contentType := "image/svg+xml"
	if ext == "png" {
		contentType = "image/png"
		err = WritePNG(&buf, d)
	} else {
		err = WriteSVG(&buf, d)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
