package regions

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShipped: the six regions of the motivating cloud are there, with sourced figures.
func TestShipped(t *testing.T) {
	t.Parallel()
	tab, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"cn-beijing", "cn-hangzhou", "cn-qingdao", "cn-hongkong", "cn-shenzhen", "us-west-1"} {
		f, ok := tab.Get(r)
		if !ok {
			t.Errorf("%s missing", r)
			continue
		}
		if f.PriceUSDPerKWh <= 0 || f.GridGCO2ePerKWh <= 0 || f.PUE < 1 {
			t.Errorf("%s: %+v", r, f)
		}
	}
	hz, _ := tab.Get("cn-hangzhou")
	// 0.09 $/kWh × PUE 1.3; 561.7 g/kWh × 1.3.
	if got := hz.USDPerKWh(); math.Abs(got-0.117) > 1e-12 {
		t.Errorf("Hangzhou USD per IT kWh = %v", got)
	}
	if got := hz.KgCO2ePerKWh(); math.Abs(got-0.73021) > 1e-12 {
		t.Errorf("Hangzhou kg per IT kWh = %v", got)
	}
}

func TestOverride(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "regions.csv")
	csv := strings.Join(header, ",") + "\ncn-hangzhou,Hangzhou,0.07,2026,our contract,530,2024,provincial factor,1.2,measured\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := tab.Get("cn-hangzhou"); f.PriceUSDPerKWh != 0.07 || f.PUE != 1.2 || f.PriceSource != "our contract" {
		t.Errorf("override not applied: %+v", f)
	}
	if _, ok := tab.Get("cn-beijing"); !ok {
		t.Error("override dropped the other regions")
	}
}

func TestBadFileSaysWhere(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "regions.csv")
	csv := strings.Join(header, ",") + "\nx,X,cheap,2026,s,1,2024,s,0.9,s\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	for _, want := range []string{"line 2", "price_usd_per_kwh", "pue"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v, want it to mention %q", err, want)
		}
	}
}
