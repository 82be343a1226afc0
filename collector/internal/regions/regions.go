// Package regions holds what turns a region's energy into money and carbon: electricity price,
// grid carbon intensity (location-based, direct emissions, as the SCI specification asks) and
// PUE. The shipped table (regions.csv) gives the source and year of every figure, marks
// estimates as such, and can be overridden per region by a file of the same shape.
package regions

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

//go:embed regions.csv
var shipped string

// Factors are one region's figures.
type Factors struct {
	Region string `json:"region"`
	Name   string `json:"name"`
	// PriceUSDPerKWh is the electricity price, USD/kWh.
	PriceUSDPerKWh float64 `json:"price_usd_per_kwh"`
	PriceYear      int     `json:"price_year"`
	PriceSource    string  `json:"price_source"`
	// GridGCO2ePerKWh is the grid's carbon intensity, gCO2e/kWh.
	GridGCO2ePerKWh float64 `json:"grid_gco2e_per_kwh"`
	GridYear        int     `json:"grid_year"`
	GridSource      string  `json:"grid_source"`
	// PUE is the data centre's power usage effectiveness (facility energy / IT energy).
	PUE       float64 `json:"pue"`
	PUESource string  `json:"pue_source"`
}

// USDPerKWh is the cost of one kWh of IT energy, facility overhead included.
func (f Factors) USDPerKWh() float64 { return f.PriceUSDPerKWh * f.PUE }

// KgCO2ePerKWh is the carbon of one kWh of IT energy, facility overhead included.
func (f Factors) KgCO2ePerKWh() float64 { return f.GridGCO2ePerKWh * f.PUE / 1000 }

// Table is the factors of every known region.
type Table struct {
	byRegion map[string]Factors
}

// Load returns the shipped table, with the regions of the CSV file at override (same columns;
// "" for none) replacing or adding to it.
func Load(override string) (Table, error) {
	t, err := parse(strings.NewReader(shipped))
	if err != nil {
		return Table{}, fmt.Errorf("shipped regions.csv: %w", err)
	}
	if override == "" {
		return t, nil
	}
	f, err := os.Open(override)
	if err != nil {
		return Table{}, fmt.Errorf("region factors: %w", err)
	}
	defer f.Close()
	extra, err := parse(f)
	if err != nil {
		return Table{}, fmt.Errorf("region factors %s: %w", override, err)
	}
	for r, fa := range extra.byRegion {
		t.byRegion[r] = fa
	}
	return t, nil
}

// Get returns region's factors.
func (t Table) Get(region string) (Factors, bool) {
	f, ok := t.byRegion[region]
	return f, ok
}

// Regions lists the regions, sorted.
func (t Table) Regions() []string {
	rs := make([]string, 0, len(t.byRegion))
	for r := range t.byRegion {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

var header = []string{
	"region", "name", "price_usd_per_kwh", "price_year", "price_source",
	"grid_gco2e_per_kwh", "grid_year", "grid_source", "pue", "pue_source",
}

func parse(r io.Reader) (Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	head, err := cr.Read()
	if err != nil {
		return Table{}, fmt.Errorf("read header: %w", err)
	}
	if !slices.Equal(head, header) {
		return Table{}, fmt.Errorf("header %q: want %q", strings.Join(head, ","), strings.Join(header, ","))
	}
	t := Table{byRegion: make(map[string]Factors)}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return Table{}, err
		}
		f, err := record(rec)
		if err != nil {
			return Table{}, fmt.Errorf("line %d (%s): %w", line, rec[0], err)
		}
		t.byRegion[f.Region] = f
	}
}

func record(rec []string) (Factors, error) {
	f := Factors{Region: rec[0], Name: rec[1], PriceSource: rec[4], GridSource: rec[7], PUESource: rec[9]}
	var errs []error
	num := func(col int, dst *float64, what string) {
		v, err := strconv.ParseFloat(rec[col], 64)
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a positive number", what, rec[col]))
		}
		*dst = v
	}
	year := func(col int, dst *int, what string) {
		v, err := strconv.Atoi(rec[col])
		if err != nil || v < 1990 || v > 2100 {
			errs = append(errs, fmt.Errorf("%s %q: want a year", what, rec[col]))
		}
		*dst = v
	}
	num(2, &f.PriceUSDPerKWh, "price_usd_per_kwh")
	year(3, &f.PriceYear, "price_year")
	num(5, &f.GridGCO2ePerKWh, "grid_gco2e_per_kwh")
	year(6, &f.GridYear, "grid_year")
	num(8, &f.PUE, "pue")
	if f.PUE < 1 {
		errs = append(errs, fmt.Errorf("pue %v: cannot be below 1", f.PUE))
	}
	if f.Region == "" || f.PriceSource == "" || f.GridSource == "" || f.PUESource == "" {
		errs = append(errs, errors.New("region and every source column are required"))
	}
	return f, errors.Join(errs...)
}
