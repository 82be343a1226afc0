package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

func ptr(v float64) *float64 { return &v }

func TestChoosePools(t *testing.T) {
	t.Parallel()
	g := func(region, arch, model, scope string) report.Group {
		return report.Group{
			Region: region, Arch: arch, CPUModel: model, Scope: scope, Hosts: 10,
			CoresPerHost: 128, AvgUtil: 0.4, IdleW: ptr(100), PeakW: ptr(400),
		}
	}
	groups := []report.Group{
		g("cn-hangzhou", "amd64", "AMD EPYC 7763", "wall"),
		g("cn-hangzhou", "amd64", "AMD EPYC 7763", "cpu-package"),
		g("cn-hangzhou", "arm64", "Ampere Altra Q80-30", "wall"),
		g("cn-hangzhou", "arm64", "Ampere Altra Max M128-30", "cpu-package"),
		g("cn-beijing", "amd64", "Intel Xeon 8380", "wall"),
	}
	from, to, err := choosePools(groups, "cn-hangzhou", "amd64", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	// The widest scope both have, and on it one model each.
	if from.Scope != "wall" || to.Scope != "wall" || to.CPUModel != "Ampere Altra Q80-30" {
		t.Errorf("pools %+v → %+v, want both on wall", from, to)
	}
	from, to, err = choosePools(groups, "cn-hangzhou", "amd64", "arm64:Ampere Altra Max M128-30")
	if err != nil {
		t.Fatal(err)
	}
	if from.Scope != "cpu-package" || to.CPUModel != "Ampere Altra Max M128-30" {
		t.Errorf("pools %+v → %+v, want the Altra Max on cpu-package", from, to)
	}
	if _, _, err := choosePools(groups, "cn-beijing", "amd64", "arm64"); err == nil ||
		!strings.Contains(err.Error(), "amd64:Intel Xeon 8380 (wall)") {
		t.Errorf("a region without an ARM pool: %v, want an error listing the pools there", err)
	}
}

func TestPlanHandlerRefusesIncompleteQuestions(t *testing.T) {
	t.Parallel()
	h := &planHandler{}
	for _, q := range []string{"", "region=cn-hangzhou&from=amd64", "region=r&from=a&to=b&share=half"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/plan?"+q, nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("GET /api/v1/plan?%s = %d %s, want 400 with a JSON error", q, rec.Code, rec.Body.String())
		}
	}
}
