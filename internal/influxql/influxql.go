// Package influxql runs InfluxQL queries through the /query endpoint that InfluxDB 1.x, 2.x
// (with a DBRP mapping) and 3.x all serve, so reports, dashboards and tests query every version
// the same way. Writes go through influxdb-client-go's v2 API instead.
package influxql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client queries one InfluxDB server.
type Client struct {
	// URL is the server's base URL ("http://127.0.0.1:8086").
	URL string
	// Token authenticates: an API token on 2.x and 3.x, "user:password" on 1.x, "" when the
	// server has no authentication.
	Token string
	// HTTP is the client to use; nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// Series is one series of a result, as InfluxDB returns it.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Rows returns the values as maps from column name to value. Numbers are float64, the time
// column is an int64 of milliseconds since the epoch.
func (s Series) Rows() []map[string]any {
	rows := make([]map[string]any, 0, len(s.Values))
	for _, v := range s.Values {
		row := make(map[string]any, len(s.Columns))
		for i, c := range s.Columns {
			if i < len(v) {
				row[c] = v[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

type response struct {
	Results []struct {
		Series []Series `json:"series"`
		Error  string   `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// Query runs one InfluxQL statement against database db and returns its series. Timestamps come
// back as epoch milliseconds.
func (c *Client) Query(ctx context.Context, db, q string) ([]Series, error) {
	form := url.Values{"db": {db}, "q": {q}, "epoch": {"ms"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimSuffix(c.URL, "/")+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("influxql query: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Token "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxql query %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("influxql query %s: read response: %w", c.URL, err)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("influxql query %s: HTTP %d: %s", c.URL, resp.StatusCode, snippet(body))
	}
	if r.Error != "" {
		return nil, fmt.Errorf("influxql query %s: HTTP %d: %s", c.URL, resp.StatusCode, r.Error)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("influxql query %s: HTTP %d: %s", c.URL, resp.StatusCode, snippet(body))
	}
	var series []Series
	var errs []error
	for _, res := range r.Results {
		if res.Error != "" {
			errs = append(errs, errors.New(res.Error))
		}
		series = append(series, res.Series...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("influxql query: %w", err)
	}
	return series, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// QuoteIdent quotes an identifier (measurement, tag or field key) for InfluxQL.
func QuoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// QuoteString quotes a string literal (a tag value) for InfluxQL.
func QuoteString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}
