package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
)

//go:generate go run ./gen -out .

// All returns every dashboard, in a fixed order.
func All() []*Dashboard {
	return []*Dashboard{Efficiency(), PowerCurves(), HostDetail(), CollectorHealth()}
}

// FileName is the dashboard's file in dashboards/grafana: its uid, which is also how Grafana
// keeps it apart from any other.
func FileName(d *Dashboard) string { return d.UID + ".json" }

// JSON renders d as Grafana reads it: indented, keys in a fixed order, a final newline, and
// no HTML escaping of <, > and & in the queries.
func JSON(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("render dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

// Files returns every dashboard's file name and content.
func Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, d := range All() {
		b, err := JSON(d)
		if err != nil {
			return nil, err
		}
		files[FileName(d)] = b
	}
	return files, nil
}
