package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

// DefaultSince is the range of a list given neither since nor from/to: a few intervals of
// a live fleet, as `status` shows by default.
const DefaultSince = 10 * time.Minute

// Handler serves GET /api/v1/hosts?since=|from=&to= as JSON (List). Errors are JSON,
// {"error": "..."}, with 400 for bad parameters and 502 when InfluxDB fails.
type Handler struct {
	Querier Querier
	Bucket  string
	Log     *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the queries; 0 means 60 s.
	Timeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	t := now()
	q := r.URL.Query()
	since := q.Get("since")
	if since == "" && q.Get("from") == "" && q.Get("to") == "" {
		since = DefaultSince.String()
	}
	from, to, err := report.ParseRange(since, q.Get("from"), q.Get("to"), t)
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
	if q.Get("to") == "" {
		to = time.Time{} // a range ending now includes what arrives while it is queried
	}
	l, err := Query(ctx, h.Querier, h.Bucket, from, to, t)
	if err != nil {
		if h.Log != nil {
			h.Log.Warn("hosts list failed", "error", err)
		}
		writeError(w, http.StatusBadGateway, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = WriteJSON(w, l)
}

// WriteJSON writes l as the API serves it and `status --format json` prints it.
func WriteJSON(w io.Writer, l *List) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil {
		return fmt.Errorf("write hosts json: %w", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
