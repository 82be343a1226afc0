// Package redfish reads a server's power from its BMC over Redfish (HTTPS and JSON): the
// wall power (W) or energy (kWh, reported as a µJ counter) of each chassis, and the input
// (wall) and output (node-dc) power (W) of each power supply.
//
// Open walks /redfish/v1 → Chassis → each chassis once and plans what Read fetches, so a
// Read costs one GET per power resource (EnvironmentMetrics or Power, and each supply's
// PowerSupplyMetrics). Per chassis it prefers the current schema (PowerSubsystem,
// EnvironmentMetrics, Redfish 2020.4 and later) and falls back to the deprecated Power
// resource that older BMCs have; when a chassis has both, the two describe the same
// sensors and only the current one is read.
//
// Each chassis gives at most one wall series, since the agent sums readings of one scope
// and every candidate measures the same AC input: the energy counter
// (EnvironmentMetrics.EnergykWh), else the chassis power (EnvironmentMetrics.PowerWatts or
// Power.PowerControl[0].PowerConsumedWatts), else the power supplies' input power. The
// chassis-level numbers come first because they are what the BMC itself calls the
// chassis's consumption and they still count a supply whose own input reading is null;
// the counter comes before power because it integrates every sample the BMC takes, so the
// energy of an interval does not depend on when the agent happened to read. Power supply
// output is DC after conversion losses, a different scope (node-dc), and is always reported.
//
// BMCs refresh these values every 1 to 60 s: iDRAC updates PowerConsumedWatts about once a
// minute and it behaves as a one-minute average (kepler#644), others every few seconds.
//
// Authentication is HTTP Basic on every request rather than a Redfish session: every BMC
// supports it, nothing has to be logged out, and an agent that dies cannot leak one of
// the few sessions a BMC allows (iDRAC and iLO allow a handful and keep an abandoned one
// for up to 30 minutes). The price, a password check per request, is small at one Read per
// interval.
package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/agent/internal/sensor"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// DefaultTimeout bounds one HTTP request when Options.Timeout is 0. BMCs answer in 0.1–2 s,
// and slower under load from other management tools.
const DefaultTimeout = 10 * time.Second

// Options configures Open.
type Options struct {
	// URL is the BMC's address, "https://10.0.0.5" or "https://bmc.example.com:8443".
	// Plain http is refused, since Basic authentication would send the password in clear.
	URL string
	// CredentialsFile holds the BMC user and password in the format ReadCredentials
	// describes. Open reads it when Username is empty; the 401 error names it.
	CredentialsFile string
	// Username and Password authenticate to the BMC; the caller usually fills them from
	// CredentialsFile with ReadCredentials.
	Username, Password string
	// CAFile is a PEM file with the CA certificates that sign the BMC's certificate (for a
	// self-signed one, the certificate itself). Empty means the system's roots.
	CAFile string
	// Insecure skips verification of the BMC's certificate. It is a last resort: anyone on
	// the management network can then read the BMC password. Prefer CAFile.
	Insecure bool
	// Timeout bounds one HTTP request; 0 means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient replaces the client Open builds from CAFile and Insecure (tests).
	HTTPClient *http.Client
}

// Reader reads the power resources Open found. Its plan does not change after Open, so
// Read may be called from several goroutines.
type Reader struct {
	client  *http.Client
	base    *url.URL
	user    string
	pass    string
	credSrc string // where the credentials came from, for the 401 error
	timeout time.Duration
	chassis []chassisPlan
}

var (
	_ sensor.Source    = (*Reader)(nil)
	_ sensor.Describer = (*Reader)(nil)
)

// wallSource is where a chassis's wall reading comes from.
type wallSource int

const (
	wallNone           wallSource = iota
	wallEnergy                    // EnvironmentMetrics.EnergykWh, a counter
	wallEnvPower                  // EnvironmentMetrics.PowerWatts
	wallSupplyInput               // PowerSupplyMetrics.InputPowerWatts of each supply
	wallPowerControl              // Power.PowerControl[0].PowerConsumedWatts
	wallLegacySupplyIn            // Power.PowerSupplies[].PowerInputWatts
)

func (w wallSource) String() string {
	switch w {
	case wallEnergy:
		return "EnvironmentMetrics energy"
	case wallEnvPower:
		return "EnvironmentMetrics power"
	case wallSupplyInput:
		return "power supply input"
	case wallPowerControl:
		return "Power PowerControl"
	case wallLegacySupplyIn:
		return "Power power supply input"
	}
	return "no wall reading"
}

// chassisPlan is what Read fetches for one chassis.
type chassisPlan struct {
	id, name string
	wall     wallSource
	envURL   string       // EnvironmentMetrics, when wall comes from it
	supplies []supplyPlan // current schema: supplies with a Metrics resource
	powerURL string       // deprecated Power resource; "" when the current schema is read
	maxW     float64      // plausibility bound of the chassis's wall power, W; 0 if unknown
	legacy   bool         // read powerURL rather than envURL and supplies
}

type supplyPlan struct {
	id, name   string
	metricsURL string
	capacityW  float64 // rated output, W; 0 when unknown
}

// minEfficiency bounds a supply's input from its rated output: 80 PLUS certification, which
// server supplies carry, requires at least 80 % efficiency from 20 % to full load, so at
// full output the input is at most capacity / 0.8. Below 20 % load the efficiency can be
// lower, but the input is then far below the bound.
const minEfficiency = 0.8

// Open connects to the BMC, walks its chassis and plans which resources Read fetches. It
// returns an error wrapping sensor.ErrNotFound, with the reason, when the service has no
// chassis with a power reading, and a clear error for wrong credentials (naming the
// credentials file), a certificate that does not verify, or a BMC it cannot reach.
func Open(ctx context.Context, opts Options) (*Reader, error) {
	base, err := parseBaseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	r := &Reader{base: base, user: opts.Username, pass: opts.Password, timeout: opts.Timeout}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	switch {
	case opts.Username != "":
		r.credSrc = "the configured username and password"
		if opts.CredentialsFile != "" {
			r.credSrc = opts.CredentialsFile
		}
	case opts.CredentialsFile != "":
		if r.user, r.pass, err = ReadCredentials(opts.CredentialsFile); err != nil {
			return nil, err
		}
		r.credSrc = opts.CredentialsFile
	default:
		r.credSrc = "no credentials (set a credentials file)"
	}
	if r.client, err = newHTTPClient(opts); err != nil {
		return nil, err
	}

	root, err := get(ctx, r, "/redfish/v1", parseServiceRoot)
	if errors.Is(err, errHTTPNotFound) {
		return nil, fmt.Errorf("%w: %s is not a Redfish service: %w", sensor.ErrNotFound, base, err)
	}
	if err != nil {
		return nil, err
	}
	if root.Chassis == nil || root.Chassis.ID == "" {
		return nil, fmt.Errorf("%w: %s/redfish/v1 has no Chassis collection", sensor.ErrNotFound, base)
	}
	members, err := get(ctx, r, root.Chassis.ID, parseCollection)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool) // resources already planned: some BMCs link one from several chassis
	var reasons []string
	for _, m := range members.Members {
		p, err := r.planChassis(ctx, m.ID, seen)
		if err != nil {
			return nil, err
		}
		if p.wall == wallNone && len(p.supplies) == 0 && !p.legacy {
			// Nothing in either schema had a reading.
			reasons = append(reasons, fmt.Sprintf("chassis %s: no power reading", p.id))
			continue
		}
		r.chassis = append(r.chassis, p)
	}
	if len(r.chassis) == 0 {
		if len(reasons) == 0 {
			reasons = []string{"the Chassis collection is empty"}
		}
		return nil, fmt.Errorf("%w: no power resource (PowerSubsystem, EnvironmentMetrics or Power) "+
			"with a reading on %s: %s", sensor.ErrNotFound, base, strings.Join(reasons, "; "))
	}
	return r, nil
}

// Name is semconv.SourceRedfish.
func (r *Reader) Name() string { return semconv.SourceRedfish }

// Info describes the source for doctor: the service and, per chassis, where its readings
// come from.
func (r *Reader) Info() sensor.Info {
	parts := make([]string, len(r.chassis))
	for i, c := range r.chassis {
		parts[i] = fmt.Sprintf("chassis %s: wall from %s, %d power supplies", c.id, c.wall, len(c.supplies))
		if c.legacy {
			parts[i] = fmt.Sprintf("chassis %s: wall from %s (deprecated Power resource)", c.id, c.wall)
		}
	}
	return sensor.Info{
		Detail: r.base.String() + "/redfish/v1 (" + strings.Join(parts, "; ") + ")",
		// The slowest common refresh, iDRAC's minute, so that its values are not taken
		// for stale.
		Cadence: time.Minute,
		Needs:   "BMC credentials (a read-only user is enough)",
	}
}

// Close closes the connections the Reader keeps open to the BMC.
func (r *Reader) Close() error {
	r.client.CloseIdleConnections()
	return nil
}

// Read fetches the planned resources of every chassis. A chassis or supply whose resource
// fails does not hide the others: their readings are returned with the errors joined.
func (r *Reader) Read(ctx context.Context) ([]sensor.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var readings []sensor.Reading
	var errs []error
	for _, c := range r.chassis {
		var rs []sensor.Reading
		var err error
		if c.legacy {
			rs, err = r.readLegacy(ctx, c)
		} else {
			rs, err = r.readCurrent(ctx, c)
		}
		readings = append(readings, rs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("read chassis %s: %w", c.id, err))
		}
	}
	return readings, errors.Join(errs...)
}

// planChassis reads the chassis at ref and decides where its readings come from.
func (r *Reader) planChassis(ctx context.Context, ref string, seen map[string]bool) (chassisPlan, error) {
	c, err := get(ctx, r, ref, parseChassis)
	if err != nil {
		return chassisPlan{}, err
	}
	p := chassisPlan{id: c.ID, name: c.Name}
	if p.id == "" {
		p.id = path.Base(strings.TrimSuffix(ref, "/"))
	}

	var env environmentMetrics
	if l := c.EnvironmentMetrics; l != nil && l.ID != "" && !seen[l.ID] {
		env, err = get(ctx, r, l.ID, parseEnvironmentMetrics)
		if err != nil && !errors.Is(err, errHTTPNotFound) {
			return p, err
		}
		seen[l.ID] = true
		p.envURL = l.ID
	}
	var anyInput, anyOutput bool
	if l := c.PowerSubsystem; l != nil && l.ID != "" {
		p.supplies, anyInput, anyOutput, err = r.planSupplies(ctx, l.ID, seen)
		if err != nil {
			return p, err
		}
	}
	capacity := 0.0
	for _, s := range p.supplies {
		if s.capacityW <= 0 {
			capacity = 0
			break
		}
		capacity += s.capacityW
	}
	p.maxW = capacity / minEfficiency

	switch {
	case env.EnergykWh != nil && (env.EnergykWh.LifetimeReading != nil || env.EnergykWh.Reading != nil):
		p.wall = wallEnergy
	case env.PowerWatts != nil && validWatts(env.PowerWatts.Reading):
		p.wall = wallEnvPower
	case anyInput:
		p.wall = wallSupplyInput
	}
	if p.wall != wallEnergy && p.wall != wallEnvPower {
		p.envURL = ""
	}
	if p.wall != wallNone || anyOutput {
		return p, nil
	}
	p.supplies = nil

	// Nothing in the current schema: the deprecated Power resource.
	if l := c.Power; l != nil && l.ID != "" && !seen[l.ID] {
		pw, err := get(ctx, r, l.ID, parsePower)
		if errors.Is(err, errHTTPNotFound) {
			return p, nil
		}
		if err != nil {
			return p, err
		}
		seen[l.ID] = true
		p.powerURL, p.legacy = l.ID, true
		p.wall = legacyWall(pw)
		if p.wall == wallNone && !hasLegacyOutput(pw) {
			p.powerURL, p.legacy = "", false
		}
	}
	return p, nil
}

// planSupplies lists the power supplies of a PowerSubsystem that have a metrics resource.
// It reports whether any of them has an input and an output power reading now.
func (r *Reader) planSupplies(ctx context.Context, ref string, seen map[string]bool) (
	plans []supplyPlan, anyInput, anyOutput bool, err error,
) {
	sub, err := get(ctx, r, ref, parsePowerSubsystem)
	if errors.Is(err, errHTTPNotFound) || (err == nil && (sub.PowerSupplies == nil || sub.PowerSupplies.ID == "")) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	members, err := get(ctx, r, sub.PowerSupplies.ID, parseCollection)
	if err != nil {
		return nil, false, false, err
	}
	for _, member := range members.Members {
		s, err := get(ctx, r, member.ID, parsePowerSupply)
		if errors.Is(err, errHTTPNotFound) {
			continue
		}
		if err != nil {
			return nil, false, false, err
		}
		// An empty bay has no metrics; one that is filled later is found by the next Open.
		if s.Status.State == "Absent" || s.Metrics == nil || s.Metrics.ID == "" || seen[s.Metrics.ID] {
			continue
		}
		m, err := get(ctx, r, s.Metrics.ID, parsePowerSupplyMetrics)
		if errors.Is(err, errHTTPNotFound) {
			continue
		}
		if err != nil {
			return nil, false, false, err
		}
		seen[s.Metrics.ID] = true
		p := supplyPlan{id: s.ID, name: s.Name, metricsURL: s.Metrics.ID}
		if p.id == "" {
			p.id = path.Base(strings.TrimSuffix(member.ID, "/"))
		}
		if s.PowerCapacityWatts != nil && *s.PowerCapacityWatts > 0 {
			p.capacityW = *s.PowerCapacityWatts
		}
		if m.InputPowerWatts != nil && validWatts(m.InputPowerWatts.Reading) {
			anyInput = true
		}
		if m.OutputPowerWatts != nil && validWatts(m.OutputPowerWatts.Reading) {
			anyOutput = true
		}
		// A supply without a reading now is kept: a BMC fills PSU sensors some seconds
		// after it boots.
		plans = append(plans, p)
	}
	return plans, anyInput, anyOutput, nil
}

// legacyWall picks the wall reading of a deprecated Power resource. Only PowerControl[0]
// is read: it is the chassis's total on every BMC, and the later members some BMCs add
// (Lenovo XCC's CPU and memory subsystems) are parts of it that would be summed twice.
func legacyWall(pw power) wallSource {
	if len(pw.PowerControl) > 0 {
		pc := pw.PowerControl[0]
		if validWatts(pc.PowerConsumedWatts) ||
			(pc.PowerMetrics != nil && validWatts(pc.PowerMetrics.AverageConsumedWatts)) {
			return wallPowerControl
		}
	}
	for _, s := range pw.PowerSupplies {
		if validWatts(s.PowerInputWatts) {
			return wallLegacySupplyIn
		}
	}
	return wallNone
}

func hasLegacyOutput(pw power) bool {
	for _, s := range pw.PowerSupplies {
		if validWatts(s.PowerOutputWatts) {
			return true
		}
	}
	return false
}

// readCurrent reads a chassis planned on the current schema.
func (r *Reader) readCurrent(ctx context.Context, c chassisPlan) ([]sensor.Reading, error) {
	var readings []sensor.Reading
	var errs []error
	prefix := "chassis-" + c.id
	if c.envURL != "" {
		env, err := get(ctx, r, c.envURL, parseEnvironmentMetrics)
		switch {
		case err != nil:
			errs = append(errs, err)
		case c.wall == wallEnergy:
			rd, err := energyReading(env.EnergykWh)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.envURL, err))
				break
			}
			rd.ID, rd.Name = prefix+"/energy", c.name
			readings = append(readings, rd)
		case c.wall == wallEnvPower && env.PowerWatts != nil && validWatts(env.PowerWatts.Reading):
			readings = append(readings, sensor.Reading{
				ID: prefix + "/power", Name: c.name, Source: semconv.SourceRedfish,
				Scope: semconv.ScopeWall, PowerW: *env.PowerWatts.Reading, MaxW: c.maxW,
			})
		}
	}
	for _, s := range c.supplies {
		m, err := get(ctx, r, s.metricsURL, parsePowerSupplyMetrics)
		if err != nil {
			errs = append(errs, fmt.Errorf("power supply %s: %w", s.id, err))
			continue
		}
		if c.wall == wallSupplyInput && m.InputPowerWatts != nil && validWatts(m.InputPowerWatts.Reading) {
			readings = append(readings, supplyReading(prefix, s.id, s.name, "input",
				*m.InputPowerWatts.Reading, s.capacityW))
		}
		if m.OutputPowerWatts != nil && validWatts(m.OutputPowerWatts.Reading) {
			readings = append(readings, supplyReading(prefix, s.id, s.name, "output",
				*m.OutputPowerWatts.Reading, s.capacityW))
		}
	}
	return readings, errors.Join(errs...)
}

// readLegacy reads a chassis planned on the deprecated Power resource.
func (r *Reader) readLegacy(ctx context.Context, c chassisPlan) ([]sensor.Reading, error) {
	pw, err := get(ctx, r, c.powerURL, parsePower)
	if err != nil {
		return nil, err
	}
	prefix := "chassis-" + c.id
	var readings []sensor.Reading
	capacity := 0.0
	for _, s := range pw.PowerSupplies {
		if s.Status.State == "Absent" {
			continue
		}
		if s.PowerCapacityWatts == nil || *s.PowerCapacityWatts <= 0 {
			capacity = 0
			break
		}
		capacity += *s.PowerCapacityWatts
	}
	if c.wall == wallPowerControl && len(pw.PowerControl) > 0 {
		pc := pw.PowerControl[0]
		rd := sensor.Reading{
			// The same ID as EnvironmentMetrics.PowerWatts: a firmware update that moves
			// the chassis to the current schema continues the series.
			ID: prefix + "/power", Name: pc.Name, Source: semconv.SourceRedfish,
			Scope: semconv.ScopeWall, MaxW: capacity / minEfficiency,
		}
		switch {
		case validWatts(pc.PowerConsumedWatts):
			rd.PowerW = *pc.PowerConsumedWatts
		case pc.PowerMetrics != nil && validWatts(pc.PowerMetrics.AverageConsumedWatts):
			// Only the average: it covers the last IntervalInMin minutes.
			rd.PowerW = *pc.PowerMetrics.AverageConsumedWatts
			if iv := pc.PowerMetrics.IntervalInMin; iv != nil && *iv > 0 && *iv <= 24*60 {
				rd.Averaged = time.Duration(*iv * float64(time.Minute))
			}
		}
		if rd.PowerW > 0 {
			if rd.Name == "" {
				rd.Name = c.name
			}
			readings = append(readings, rd)
		}
	}
	for i, s := range pw.PowerSupplies {
		if s.Status.State == "Absent" {
			continue
		}
		id := s.MemberID
		if id == "" {
			id = strconv.Itoa(i)
		}
		capW := 0.0
		if s.PowerCapacityWatts != nil && *s.PowerCapacityWatts > 0 {
			capW = *s.PowerCapacityWatts
		}
		if c.wall == wallLegacySupplyIn && validWatts(s.PowerInputWatts) {
			readings = append(readings, supplyReading(prefix, id, s.Name, "input", *s.PowerInputWatts, capW))
		}
		// LastPowerOutputWatts is not read: Power v1.6 deprecated it for PowerOutputWatts,
		// and BMCs do not agree on what it measures.
		if validWatts(s.PowerOutputWatts) {
			readings = append(readings, supplyReading(prefix, id, s.Name, "output", *s.PowerOutputWatts, capW))
		}
	}
	return readings, nil
}

// supplyReading makes the reading of a supply's input (wall) or output (node-dc) power.
func supplyReading(prefix, id, name, side string, watts, capacityW float64) sensor.Reading {
	rd := sensor.Reading{
		ID: prefix + "/psu-" + id + "/" + side, Name: name, Source: semconv.SourceRedfish,
		Scope: semconv.ScopeNodeDC, PowerW: watts, MaxW: capacityW,
	}
	if side == "input" {
		rd.Scope, rd.MaxW = semconv.ScopeWall, capacityW/minEfficiency
	}
	return rd
}

// energyReading makes the counter reading of an EnergykWh excerpt, preferring
// LifetimeReading, which a ResetMetrics action does not reset.
func energyReading(e *energyExcerpt) (sensor.Reading, error) {
	if e == nil || (e.LifetimeReading == nil && e.Reading == nil) {
		return sensor.Reading{}, errors.New("no energy reading")
	}
	n := e.Reading
	if e.LifetimeReading != nil {
		n = e.LifetimeReading
	}
	uj, err := kWhToUJ(*n)
	if err != nil {
		return sensor.Reading{}, err
	}
	// MaxUJ stays 0: Redfish defines no wrap-around, so a decrease is a reset.
	return sensor.Reading{
		Source: semconv.SourceRedfish, Scope: semconv.ScopeWall, Counter: true, EnergyUJ: uj,
	}, nil
}

// parseBaseURL checks the BMC's URL: https, a host, no credentials and nothing after it.
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("parse BMC URL %q: %w", s, err)
	case u.Scheme != "https":
		return nil, fmt.Errorf("BMC URL %q: want https://host[:port] (Basic authentication over "+
			"plain http would send the password in clear)", s)
	case u.Host == "":
		return nil, fmt.Errorf("BMC URL %q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("BMC URL %s: credentials belong in the credentials file, not the URL",
			u.Redacted())
	case (u.Path != "" && u.Path != "/redfish/v1") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("BMC URL %q: want only https://host[:port]", s)
	}
	u.Path = ""
	return u, nil
}

// newHTTPClient builds the client for opts, unless opts brings its own.
func newHTTPClient(opts Options) (*http.Client, error) {
	if opts.HTTPClient != nil {
		return opts.HTTPClient, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA file %s: no PEM certificate in it", opts.CAFile)
		}
		conf.RootCAs = pool
	}
	if opts.Insecure {
		conf.InsecureSkipVerify = true //nolint:gosec // G402: opt-in, documented as a last resort
	}
	return &http.Client{Transport: &http.Transport{
		// No proxy: a BMC sits on the management network, and an HTTPS_PROXY set for the
		// agent's exports must not carry BMC passwords elsewhere.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: DefaultTimeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}}, nil
}

// Errors of a GET that callers of get branch on.
var (
	errHTTPNotFound = errors.New("404 Not Found")
	errUnauthorized = errors.New("401 Unauthorized")
)

// get fetches the resource at ref (an @odata.id, a path on the BMC) and parses it.
func get[T any](ctx context.Context, r *Reader, ref string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	u, err := r.resolve(ref)
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return zero, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return zero, r.transportError(ctx, u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return zero, fmt.Errorf("GET %s: %w: the BMC rejected the credentials from %s",
			u, errUnauthorized, r.credSrc)
	case resp.StatusCode == http.StatusForbidden:
		return zero, fmt.Errorf("GET %s: 403 Forbidden: the BMC user from %s may not read it "+
			"(give it the ReadOnly role)", u, r.credSrc)
	case resp.StatusCode == http.StatusNotFound:
		return zero, fmt.Errorf("GET %s: %w", u, errHTTPNotFound)
	case resp.StatusCode != http.StatusOK:
		return zero, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	v, err := parse(resp.Body)
	if err != nil {
		return zero, fmt.Errorf("GET %s: %w", u, err)
	}
	return v, nil
}

// resolve turns an @odata.id into a URL on the BMC. A link to another host (a PDU outlet,
// another BMC) is refused: the BMC's credentials must not go there.
func (r *Reader) resolve(ref string) (string, error) {
	ru, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("resolve link %q: %w", ref, err)
	}
	u := r.base.ResolveReference(ru)
	if u.Scheme != r.base.Scheme || u.Host != r.base.Host {
		return "", fmt.Errorf("resolve link %q: it leaves the BMC %s", ref, r.base.Host)
	}
	u.Fragment = ""
	return u.String(), nil
}

// transportError explains a failed request: a certificate that does not verify, a BMC that
// cannot be reached, a timeout.
func (r *Reader) transportError(ctx context.Context, u string, err error) error {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		opErr    *net.OpError
		dnsErr   *net.DNSError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return fmt.Errorf("GET %s: verify the BMC's TLS certificate: %w: give the CA that signed it "+
			"(for a self-signed certificate, the certificate itself) with --ca-file", u, err)
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("GET %s: no answer within %s: %w", u, r.timeout, err)
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return fmt.Errorf("GET %s: BMC unreachable: %w: check the URL and that this host can "+
			"reach the BMC's management network", u, err)
	}
	return fmt.Errorf("GET %s: %w", u, err)
}
