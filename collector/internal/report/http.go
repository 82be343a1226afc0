package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
)

// DefaultSince is the range of a report given neither since nor from/to.
const DefaultSince = 24 * time.Hour

// ParseRange turns the since, from and to parameters (CLI flags or query parameters) into a
// range: from/to are RFC 3339 times (to defaults to now), since a duration ending now; one
// or the other, not both. With neither, the last DefaultSince.
func ParseRange(since, from, to string, now time.Time) (time.Time, time.Time, error) {
	if since != "" && (from != "" || to != "") {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: give since or from/to, not both", ErrBadOptions)
	}
	if from == "" && to != "" {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: to without from", ErrBadOptions)
	}
	if from != "" {
		f, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: from %q: want an RFC 3339 time such as 2026-09-01T00:00:00Z", ErrBadOptions, from)
		}
		t := now
		if to != "" {
			if t, err = time.Parse(time.RFC3339, to); err != nil {
				return time.Time{}, time.Time{}, fmt.Errorf("%w: to %q: want an RFC 3339 time such as 2026-09-08T00:00:00Z", ErrBadOptions, to)
			}
		}
		if !f.Before(t) {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: from %s is not before to %s", ErrBadOptions, from, t.Format(time.RFC3339))
		}
		return f, t, nil
	}
	d := DefaultSince
	if since != "" {
		var err error
		if d, err = time.ParseDuration(since); err != nil || d <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: since %q: want a positive duration such as 24h or 720h", ErrBadOptions, since)
		}
	}
	return now.Add(-d), now, nil
}

// Handler serves GET /api/v1/report?since=|from=&to=&by=&format= (json by default). Errors
// are JSON, {"error": "..."}, with 400 for bad parameters and 502 when InfluxDB fails.
type Handler struct {
	Querier Querier
	Bucket  string
	Regions regions.Table
	Log     *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the query; 0 means 60 s.
	Timeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	q := r.URL.Query()
	from, to, err := ParseRange(q.Get("since"), q.Get("from"), q.Get("to"), now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	by, err := ParseBy(q.Get("by"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	format, err := ParseFormat(q.Get("format"), "json")
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
	rep, err := Run(ctx, h.Querier, h.Bucket, Options{From: from, To: to, By: by, Regions: h.Regions})
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ErrBadOptions) {
			status = http.StatusBadRequest
		}
		if h.Log != nil && status >= 500 {
			h.Log.Warn("report failed", "error", err)
		}
		writeError(w, status, err)
		return
	}
	var buf bytes.Buffer
	if err := Write(&buf, rep, format); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", ContentType(format))
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
