package chart

import (
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/report"
)

func ptr(v float64) *float64 { return &v }

// testReport is a report as report.Build writes one: two regions compared (one with
// intervals), groups of three CPU models at two scopes, a region without factors.
func testReport() *report.Report {
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	return &report.Report{
		From: from, To: from.Add(168 * time.Hour), Hours: 168, By: report.DefaultBy,
		Groups: []report.Group{
			{
				Region: "cn-beijing", Arch: "amd64", CPUModel: "Intel Xeon Platinum 8592+", Scope: "wall", Hosts: 3, HostsFitted: 3,
				AvgUtil: 0.3, IdleW: ptr(250), P50W: ptr(580), PeakW: ptr(900), CostUSD: ptr(120.5), CarbonKgCO2e: ptr(910),
			},
			{
				Region: "cn-hangzhou", Arch: "amd64", CPUModel: "AMD EPYC 9754", Scope: "wall", Hosts: 4, HostsFitted: 4,
				AvgUtil: 0.475, IdleW: ptr(119), P50W: ptr(375), PeakW: ptr(667), CostUSD: ptr(210.25), CarbonKgCO2e: ptr(1320),
			},
			{
				Region: "cn-hangzhou", Arch: "arm64", CPUModel: "Ampere Altra Q80-30", Scope: "wall", Hosts: 2, HostsFitted: 2,
				AvgUtil: 0.325, IdleW: ptr(55), P50W: ptr(98.5), PeakW: ptr(142), CostUSD: ptr(40.75), CarbonKgCO2e: ptr(255),
			},
			{
				Region: "cn-shenzhen", Arch: "arm64", CPUModel: "Ampere Altra Q80-30", Scope: "wall", Hosts: 6, HostsFitted: 6,
				AvgUtil: 0.4, IdleW: ptr(57), P50W: ptr(101), PeakW: ptr(146), CostUSD: ptr(95), CarbonKgCO2e: ptr(610),
			},
			{
				Region: "cn-shenzhen", Arch: "amd64", CPUModel: "AMD EPYC 9754", Scope: "wall", Hosts: 2, HostsFitted: 2,
				AvgUtil: 0.45, IdleW: ptr(121), P50W: ptr(380), PeakW: ptr(660), CostUSD: ptr(130), CarbonKgCO2e: ptr(800),
			},
			{
				Region: "cn-shenzhen", Arch: "amd64", CPUModel: "AMD EPYC 9754", Scope: "cpu-package", Hosts: 1, HostsFitted: 1,
				AvgUtil: 0.45, IdleW: ptr(80), P50W: ptr(250), PeakW: ptr(420), CostUSD: ptr(30), CarbonKgCO2e: ptr(190),
			},
			{Region: "mars-north-1", Arch: "arm64", CPUModel: "Ampere One A192-32X", Scope: "wall", Hosts: 1},
		},
		Comparisons: []report.Comparison{
			{
				Region: "cn-beijing", Scope: "", ARMModels: []string{}, X86Models: []string{},
				Note: "no common power scope: ARM hosts have cpu-package, x86 hosts have wall",
			},
			{
				Region: "cn-hangzhou", Scope: "wall", ARMHosts: 2, X86Hosts: 4, ARMModels: []string{"Ampere Altra Q80-30"},
				X86Models: []string{"AMD EPYC 9754"}, AtUtil: ptr(0.475),
				WPerBusyCore:          &report.Delta{ARM: 2.53487, X86: 3.11924, RelDiff: -0.187345, CI95: &[2]float64{-0.20456, -0.169922}, Resamples: 2000},
				USDPerBusyCoreYear:    &report.Delta{ARM: 2.59982, X86: 3.19916, RelDiff: -0.187345, CI95: &[2]float64{-0.20456, -0.169922}, Resamples: 2000},
				KgCO2ePerBusyCoreYear: &report.Delta{ARM: 16.2257, X86: 19.9663, RelDiff: -0.187345, CI95: &[2]float64{-0.20456, -0.169922}, Resamples: 2000},
			},
			{
				Region: "cn-shenzhen", Scope: "wall", ARMHosts: 6, X86Hosts: 2, ARMModels: []string{"Ampere Altra Q80-30"},
				X86Models: []string{"AMD EPYC 9754"}, AtUtil: ptr(0.45),
				WPerBusyCore:          &report.Delta{ARM: 1.91, X86: 3.25, RelDiff: -0.412308, CI95: &[2]float64{-0.44, -0.38}, Resamples: 2000},
				USDPerBusyCoreYear:    &report.Delta{ARM: 6.12, X86: 10.4122, RelDiff: -0.412308, CI95: &[2]float64{-0.44, -0.38}, Resamples: 2000},
				KgCO2ePerBusyCoreYear: &report.Delta{ARM: 40.1, X86: 68.2258, RelDiff: -0.412308, CI95: &[2]float64{-0.44, -0.38}, Resamples: 2000},
			},
		},
		Notes: []string{"1 host has too few samples or too little spread in utilization for a power curve"},
	}
}
