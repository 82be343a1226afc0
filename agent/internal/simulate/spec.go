package simulate

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor/model"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// defaultYAML is the default fleet: six regions, an x86 and an ARM pool in each.
//
//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the default fleet's spec as shipped, comments and sources included, so
// that users can start their own from it.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Spec is a fleet: groups of identical hosts. docs/simulate.md documents every key.
type Spec struct {
	Groups []Group `yaml:"groups"`
}

// Group is a pool of identical hosts in one zone.
type Group struct {
	Region   string `yaml:"region"`    // cloud.region, "cn-hangzhou"
	Zone     string `yaml:"zone"`      // cloud.availability_zone, "cn-hangzhou-h"; may be empty
	Arch     string `yaml:"arch"`      // amd64 or arm64
	CPUModel string `yaml:"cpu_model"` // host.cpu.model.name
	Hosts    int    `yaml:"hosts"`     // number of hosts
	Sockets  int    `yaml:"sockets"`   // CPU packages per host
	// Cores is the number of logical CPUs per host: what /proc/stat counts and clouds sell
	// as vCPUs (an x86 core with SMT is two, an ARM core one).
	Cores int `yaml:"cores"`
	// ThreadsPerCore is the number of hardware threads per physical core; 0 means 2 on amd64
	// and 1 on arm64. Only the physical core count on the resource depends on it.
	ThreadsPerCore int `yaml:"threads_per_core,omitempty"`
	// Scope is what the simulated power sensor covers; wall when empty.
	Scope semconv.Scope `yaml:"scope"`
	// IdleW and PeakW are the power at 0 % and 100 % utilization, W, before each host's
	// part-to-part variation.
	IdleW float64 `yaml:"idle_w"`
	PeakW float64 `yaml:"peak_w"`
	// Curve is the shape of power between idle and peak; linear when empty.
	Curve       Curve       `yaml:"curve"`
	Utilization Utilization `yaml:"utilization"`
	// OpsPerCoreSecond is the work done per busy logical-CPU second, operations/s; 0 sends
	// no work.
	OpsPerCoreSecond float64 `yaml:"ops_per_core_second,omitempty"`
	// SensorNoise is the relative standard deviation of each energy reading (0.01: 1 %).
	SensorNoise float64 `yaml:"sensor_noise"`
	// UTCOffsetHours is the local time of the region, hours east of UTC; nil takes it from
	// the table of known regions (standard time, no daylight saving).
	UTCOffsetHours *float64 `yaml:"utc_offset_hours,omitempty"`
}

// Utilization describes a group's CPU load: u(t) = mean + diurnal_amplitude·cos(2π·(local
// hour − 15)/24) + noise·n(t), clamped to 0..1, n a standard normal value per minute.
type Utilization struct {
	Mean             float64 `yaml:"mean"`              // 0..1
	DiurnalAmplitude float64 `yaml:"diurnal_amplitude"` // 0..1
	Noise            float64 `yaml:"noise"`             // standard deviation, 0..0.5
}

// Curve is the power curve: a name (linear, teads) or points [utilization, power as a
// fraction of peak], rebased between idle and peak like the Teads curve.
type Curve struct {
	Name   string
	Points [][]float64
}

// UnmarshalYAML takes a name or a list of [u, fraction] pairs.
func (c *Curve) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = Curve{Name: n.Value}
		return nil
	case yaml.SequenceNode:
		var pts [][]float64
		if err := n.Decode(&pts); err != nil {
			return fmt.Errorf("line %d: curve points must be [utilization, fraction of peak] pairs: %w", n.Line, err)
		}
		*c = Curve{Points: pts}
		return nil
	}
	return fmt.Errorf("line %d: curve must be linear, teads or a list of [utilization, fraction of peak] points", n.Line)
}

// MarshalYAML writes the name or the points.
func (c Curve) MarshalYAML() (any, error) {
	if c.Points != nil {
		return c.Points, nil
	}
	return c.Name, nil
}

// String is the name, or "points" for a list.
func (c Curve) String() string {
	if c.Points != nil {
		return "points"
	}
	if c.Name == "" {
		return model.CurveLinear
	}
	return strings.ToLower(c.Name)
}

// shape returns the curve as a map of utilization 0..1 onto the share 0..1 of the span
// between idle and peak. The named curves are the power model's own.
func (c Curve) shape() (func(float64) float64, error) {
	if c.Points == nil {
		return model.Curve(c.String())
	}
	us, ys := make([]float64, len(c.Points)), make([]float64, len(c.Points))
	for i, p := range c.Points {
		if len(p) != 2 {
			return nil, fmt.Errorf("point %d: want [utilization, fraction of peak]", i)
		}
		us[i], ys[i] = p[0], p[1]
	}
	return model.PointsCurve(us, ys), nil
}

// Default returns the default fleet (default.yaml).
func Default() (Spec, error) {
	s, err := Load(bytes.NewReader(defaultYAML))
	if err != nil {
		return s, fmt.Errorf("default fleet: %w", err)
	}
	return s, nil
}

// LoadFile reads, parses and validates the spec in the file at path.
func LoadFile(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read fleet: %w", err)
	}
	s, err := Load(bytes.NewReader(b))
	if err != nil {
		return s, fmt.Errorf("fleet %s: %w", path, err)
	}
	return s, nil
}

// Load parses and validates a spec. Unknown keys are errors.
func Load(r io.Reader) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return s, errors.New("empty fleet spec: want groups: [...]")
		}
		return s, err
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// Archs a group may have, as host.arch spells them.
var archs = []string{"amd64", "arm64"}

// hostScopes are the scopes a simulated sensor may cover: those that stand for a whole host.
var hostScopes = []semconv.Scope{
	semconv.ScopeWall, semconv.ScopeNodeDC, semconv.ScopePlatform, semconv.ScopeCPUPackage,
	semconv.ScopeEstimatedHost,
}

// Validate returns every problem of the spec, each prefixed by its YAML path
// ("groups[3].peak_w: ...").
func (s *Spec) Validate() error {
	var errs []error
	if len(s.Groups) == 0 {
		errs = append(errs, errors.New("groups: no groups: a fleet needs at least one"))
	}
	for i := range s.Groups {
		errs = append(errs, s.Groups[i].validate(fmt.Sprintf("groups[%d]", i))...)
	}
	return errors.Join(errs...)
}

func (g *Group) validate(path string) []error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, a...)))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if g.Region == "" {
		add("region", "required (a cloud region such as cn-hangzhou)")
	} else if _, ok := g.utcOffset(); !ok {
		add("utc_offset_hours", "region %q is not in the table of known regions: set utc_offset_hours (hours east of UTC, e.g. 8)", g.Region)
	}
	if g.UTCOffsetHours != nil && (!finite(*g.UTCOffsetHours) || math.Abs(*g.UTCOffsetHours) > 14) {
		add("utc_offset_hours", "%v is not an offset from UTC (-14..14 hours)", *g.UTCOffsetHours)
	}
	if !slices.Contains(archs, g.Arch) {
		add("arch", "%q: want amd64 or arm64 (as host.arch spells them)", g.Arch)
	}
	if strings.TrimSpace(g.CPUModel) == "" {
		add("cpu_model", "required (e.g. Ampere Altra Q80-30)")
	}
	if g.Hosts < 1 || g.Hosts > 100_000 {
		add("hosts", "%d: want 1 to 100000", g.Hosts)
	}
	if g.Sockets < 1 || g.Sockets > 16 {
		add("sockets", "%d: want 1 to 16", g.Sockets)
	}
	if g.Cores < 1 || g.Cores > 1<<14 {
		add("cores", "%d: want the logical CPUs per host, 1 to 16384", g.Cores)
	}
	if g.ThreadsPerCore < 0 || g.ThreadsPerCore > 8 {
		add("threads_per_core", "%d: want 1 to 8, or 0 for the architecture's usual", g.ThreadsPerCore)
	} else if g.Cores > 0 && g.Sockets > 0 && g.Cores%(g.Sockets*g.threadsPerCore()) != 0 {
		add("cores", "%d logical CPUs do not divide into %d sockets of %d-thread cores", g.Cores, g.Sockets, g.threadsPerCore())
	}
	if g.Scope != "" && !slices.Contains(hostScopes, g.Scope) {
		add("scope", "%q: want one that covers a host: wall, node-dc, platform, cpu-package or estimated-host", g.Scope)
	}
	if !finite(g.IdleW) || g.IdleW <= 0 {
		add("idle_w", "%v: want the power at 0 %% utilization, W > 0", g.IdleW)
	}
	if !finite(g.PeakW) || g.PeakW <= 0 || g.PeakW > 100_000 {
		add("peak_w", "%v: want the power at 100 %% utilization, 0 < W <= 100000", g.PeakW)
	} else if g.PeakW <= g.IdleW {
		add("peak_w", "%v W is not above idle_w %v W", g.PeakW, g.IdleW)
	}
	errs = append(errs, g.Curve.validate(path+".curve")...)
	u := g.Utilization
	if !finite(u.Mean) || u.Mean < 0 || u.Mean > 1 {
		add("utilization.mean", "%v: want 0 to 1", u.Mean)
	}
	if !finite(u.DiurnalAmplitude) || u.DiurnalAmplitude < 0 || u.DiurnalAmplitude > 1 {
		add("utilization.diurnal_amplitude", "%v: want 0 to 1", u.DiurnalAmplitude)
	}
	if !finite(u.Noise) || u.Noise < 0 || u.Noise > 0.5 {
		add("utilization.noise", "%v: want a standard deviation of 0 to 0.5", u.Noise)
	}
	if !finite(g.OpsPerCoreSecond) || g.OpsPerCoreSecond < 0 {
		add("ops_per_core_second", "%v: want operations per busy logical-CPU second >= 0", g.OpsPerCoreSecond)
	}
	if !finite(g.SensorNoise) || g.SensorNoise < 0 || g.SensorNoise > 0.5 {
		add("sensor_noise", "%v: want a relative standard deviation of 0 to 0.5", g.SensorNoise)
	}
	return errs
}

func (c Curve) validate(path string) []error {
	if c.Points == nil {
		if _, err := model.Curve(c.String()); err != nil {
			return []error{fmt.Errorf("%s: %q: want linear, teads or a list of [utilization, fraction of peak] points", path, c.Name)}
		}
		return nil
	}
	var errs []error
	if len(c.Points) < 2 {
		errs = append(errs, fmt.Errorf("%s: want at least two points, at utilization 0 and 1 (got %d)", path, len(c.Points)))
	}
	for i, p := range c.Points {
		at := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case len(p) != 2:
			errs = append(errs, fmt.Errorf("%s: %v: want [utilization, fraction of peak]", at, p))
			continue
		case math.IsNaN(p[0]) || p[0] < 0 || p[0] > 1:
			errs = append(errs, fmt.Errorf("%s: utilization %v: want 0 to 1", at, p[0]))
		case math.IsNaN(p[1]) || math.IsInf(p[1], 0) || p[1] < 0:
			errs = append(errs, fmt.Errorf("%s: fraction of peak %v: want >= 0", at, p[1]))
		}
		if i == 0 || len(c.Points[i-1]) != 2 {
			continue
		}
		if prev := c.Points[i-1]; p[0] <= prev[0] {
			errs = append(errs, fmt.Errorf("%s: utilization %v does not rise from the point before (%v)", at, p[0], prev[0]))
		} else if p[1] < prev[1] {
			errs = append(errs, fmt.Errorf("%s: power %v falls from the point before (%v): a power curve never falls", at, p[1], prev[1]))
		}
	}
	if n := len(c.Points); n >= 2 && len(c.Points[0]) == 2 && len(c.Points[n-1]) == 2 {
		first, last := c.Points[0], c.Points[n-1]
		if first[0] != 0 || last[0] != 1 {
			errs = append(errs, fmt.Errorf("%s: the points must start at utilization 0 and end at 1 (they span %v to %v)", path, first[0], last[0]))
		}
		if last[1] <= first[1] {
			errs = append(errs, fmt.Errorf("%s: power at utilization 1 (%v) must be above power at 0 (%v)", path, last[1], first[1]))
		}
	}
	return errs
}

// threadsPerCore is the group's SMT width: as configured, else 2 on amd64 (SMT on, as
// clouds sell x86 vCPUs) and 1 on arm64 (no ARM server CPU has SMT so far).
func (g *Group) threadsPerCore() int {
	switch {
	case g.ThreadsPerCore > 0:
		return g.ThreadsPerCore
	case g.Arch == "amd64":
		return 2
	default:
		return 1
	}
}

// scope is the group's scope, wall when empty.
func (g *Group) scope() semconv.Scope {
	if g.Scope == "" {
		return semconv.ScopeWall
	}
	return g.Scope
}

// utcOffset is the region's offset from UTC in hours: the configured one, else the table's.
func (g *Group) utcOffset() (float64, bool) {
	if g.UTCOffsetHours != nil {
		return *g.UTCOffsetHours, true
	}
	if h, ok := regionOffsets[g.Region]; ok {
		return h, true
	}
	if strings.HasPrefix(g.Region, "cn-") { // every region in mainland China and Hong Kong
		return 8, true
	}
	return 0, false
}

// regionOffsets are the standard-time UTC offsets, in hours, of cloud regions outside
// China (all of China, Hong Kong included, is UTC+8). Daylight saving time is ignored: it
// moves the afternoon peak by an hour for half the year, which the simulation does not need.
var regionOffsets = map[string]float64{
	"us-west-1":      -8,  // Silicon Valley
	"us-east-1":      -5,  // Virginia
	"ap-southeast-1": 8,   // Singapore
	"ap-southeast-3": 8,   // Kuala Lumpur
	"ap-southeast-5": 7,   // Jakarta
	"ap-southeast-6": 8,   // Manila
	"ap-southeast-7": 7,   // Bangkok
	"ap-northeast-1": 9,   // Tokyo
	"ap-northeast-2": 9,   // Seoul
	"ap-south-1":     5.5, // Mumbai
	"eu-central-1":   1,   // Frankfurt
	"eu-west-1":      0,   // London
	"me-east-1":      4,   // Dubai
	"me-central-1":   3,   // Riyadh
}
