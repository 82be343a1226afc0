package semconv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaDocumented keeps docs/schema.md and this package in step: every name the code
// defines appears in the document, in backquotes.
func TestSchemaDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schema.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	names := []string{
		MetricEnergy, MetricPower, MetricCPUTime, MetricCPUUtilization,
		AttrHostName, AttrHostArch, AttrHostCPUVendor, AttrHostCPUModel, AttrHostCPUFamily,
		AttrHostCPUModelID, AttrCloudRegion, AttrCloudZone, AttrDatacenter, AttrSockets,
		AttrCores, AttrLogicalCPUs, AttrSystemVendor, AttrSystemProduct, AttrAgentInterval,
		AttrHwID, AttrHwType, AttrHwName, AttrSource, AttrScope, AttrMethod, AttrCPUMode, AttrCPUNumber,
		MeasurementPower, MeasurementCPU, MeasurementHost,
		FieldEnergy, FieldEnergyTotal, FieldInterval, FieldPower, FieldBusy, FieldTotal,
		FieldUtilization, FieldSockets, FieldCores, FieldLogicalCPUs, FieldSysVendor,
		FieldProduct, FieldAgent, FieldIntervalCfg, FieldBusyTotal, FieldFrequency, FieldIdleTime,
		FieldIdleUsage, FieldIdleTimeT, FieldIdleUseT, FieldThreads, FieldNominalHz, FieldCPUCore,
		FieldVirtual, MeasurementCPUIdle, MetricCPUFrequency, MetricCPUIdleTime, MetricCPUIdleUsage,
		MetricRejected, AttrPrimary, AttrIdleState, AttrReason, AttrThreadsPerCore, AttrNominalHz,
		AttrCPUCore, AttrVirtual, TagPrimary, TagIdleState, MetricWork, MeasurementWork, FieldOps,
		FieldOpsTotal, SourceSimulator, MeasurementHostHour, MeasurementHostDay, FieldCPUInterval, FieldSamples, FieldCost, FieldCO2e,
		SourceRAPL, SourceHwmon, SourceACPI, SourceIPMI, SourceRedfish, SourceNVML, SourceModel,
		MethodMeasured, MethodEstimated, InstrumentationScope,
	}
	for _, m := range CPUModes {
		names = append(names, m, ModeField(m))
	}
	for _, s := range Scopes {
		names = append(names, string(s))
	}
	for _, m := range ResourceTags {
		names = append(names, m.Attr, m.Tag)
	}
	for _, m := range PowerTags {
		names = append(names, m.Attr, m.Tag)
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/schema.md does not mention `%s`", n)
		}
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	for _, s := range Scopes {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if s.HwType() == "" {
			t.Errorf("%s has no hw.type", s)
		}
	}
	if Scope("socket").Valid() {
		t.Error(`Scope("socket") valid, want invalid`)
	}
}
