package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatt/fleetwatt/collector/internal/plan"
	"github.com/fleetwatt/fleetwatt/collector/internal/regions"
	"github.com/fleetwatt/fleetwatt/collector/internal/report"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

const planUsage = `Usage: fleetwatt-collector plan --region REGION --from POOL --to POOL [flags]

Answers the capacity planner's question for one region: move --share of the load of one pool
of hosts (--from) to another (--to), planned at --target-util on the new hosts; how many hosts
go and come, and what that saves a year in kWh, USD and t CO2e with the region's price, grid
carbon intensity and PUE. The pools' sizes, utilization and fitted power curves come from the
efficiency report over the range (--since, or --from-time/--to-time), on a scope both pools
share. A pool is an arch (amd64, arm64) or arch:cpu model ("arm64:Ampere Altra Q80-30") when a
region has several models of one arch. docs/plan.md defines every number.

Flags:
`

// planQuery is a planning question as the CLI and the API take it.
type planQuery struct {
	Region, From, To  string
	Share, TargetUtil float64
	Basis             string
	Since, FromTime   string
	ToTime            string
}

// runPlan reads the pools from the report over the query's range and computes the plan.
func runPlan(ctx context.Context, q report.Querier, bucket string, factors regions.Table, pq planQuery, now time.Time) (plan.Result, error) {
	f, t, err := report.ParseRange(pq.Since, pq.FromTime, pq.ToTime, now)
	if err != nil {
		return plan.Result{}, err
	}
	rep, err := report.Run(ctx, q, bucket, report.Options{
		From: f, To: t, Regions: factors,
		By: []string{report.KeyRegion, report.KeyArch, report.KeyCPUModel, report.KeyScope},
	})
	if err != nil {
		return plan.Result{}, err
	}
	from, to, err := choosePools(rep.Groups, pq.Region, pq.From, pq.To)
	if err != nil {
		return plan.Result{}, err
	}
	fac, ok := factors.Get(pq.Region)
	if !ok {
		return plan.Result{}, fmt.Errorf("%w: no price, carbon or PUE for region %q: add it with --regions", report.ErrBadOptions, pq.Region)
	}
	res, err := plan.Compute(plan.Request{
		Region: pq.Region, From: from, To: to, Share: pq.Share, TargetUtil: pq.TargetUtil, Basis: pq.Basis,
	}, fac)
	if err != nil {
		return plan.Result{}, fmt.Errorf("%w: %w", errBadQuestion, err)
	}
	return res, nil
}

// errBadQuestion marks a planning question that cannot be answered as asked.
var errBadQuestion = errors.New("bad question")

// choosePools finds the groups of the two pools in region on the widest scope both have.
func choosePools(groups []report.Group, region, from, to string) (plan.Pool, plan.Pool, error) {
	match := func(pool string) []report.Group {
		arch, model, _ := strings.Cut(pool, ":")
		var out []report.Group
		for _, g := range groups {
			if g.Region == region && g.Arch == arch && (model == "" || g.CPUModel == model) {
				out = append(out, g)
			}
		}
		return out
	}
	fs, ts := match(from), match(to)
	if len(fs) == 0 || len(ts) == 0 {
		return plan.Pool{}, plan.Pool{}, fmt.Errorf("%w: region %q has no pool %q or %q in the range; pools there: %s",
			report.ErrBadOptions, region, from, to, poolNames(groups, region))
	}
	for _, scope := range semconv.Scopes { // widest first
		f, okF := oneModel(fs, string(scope))
		t, okT := oneModel(ts, string(scope))
		if okF && okT {
			return pool(f), pool(t), nil
		}
	}
	return plan.Pool{}, plan.Pool{}, fmt.Errorf("%w: %q and %q have no scope in common with one CPU model each "+
		"(name the model: arch:model); pools there: %s", report.ErrBadOptions, from, to, poolNames(groups, region))
}

// oneModel returns the group of scope when exactly one model has it.
func oneModel(gs []report.Group, scope string) (report.Group, bool) {
	var found []report.Group
	for _, g := range gs {
		if g.Scope == scope && g.IdleW != nil && g.PeakW != nil {
			found = append(found, g)
		}
	}
	if len(found) != 1 {
		return report.Group{}, false
	}
	return found[0], true
}

func pool(g report.Group) plan.Pool {
	p := plan.Pool{
		Region: g.Region, Arch: g.Arch, CPUModel: g.CPUModel, Scope: g.Scope, Hosts: g.Hosts,
		CoresPerHost: g.CoresPerHost, AvgUtil: g.AvgUtil, IdleW: *g.IdleW, PeakW: *g.PeakW,
	}
	if g.OpsPerSecond != nil && g.BusyCores > 0 && g.HostsWithWork == g.Hosts {
		p.OpsPerCoreSecond = *g.OpsPerSecond / g.BusyCores
	}
	return p
}

func poolNames(groups []report.Group, region string) string {
	var names []string
	for _, g := range groups {
		if g.Region == region {
			names = append(names, fmt.Sprintf("%s:%s (%s)", g.Arch, g.CPUModel, g.Scope))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func writePlan(w io.Writer, r plan.Result, format string) error {
	switch format {
	case "json":
		return r.WriteJSON(w)
	case "markdown":
		return r.WriteMarkdown(w)
	default:
		return r.WriteTable(w)
	}
}

func planCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newSubcommand("plan", planUsage, stderr)
	fs := cmd.fs
	var pq planQuery
	fs.StringVar(&pq.Region, "region", "", "the region, e.g. cn-hangzhou (required)")
	fs.StringVar(&pq.From, "from", "", `the pool giving up load: arch or "arch:cpu model" (required)`)
	fs.StringVar(&pq.To, "to", "", `the pool taking it: arch or "arch:cpu model" (required)`)
	fs.Float64Var(&pq.Share, "share", 0.5, "share of the --from pool's load to move, 0..1")
	fs.Float64Var(&pq.TargetUtil, "target-util", 0.6, "utilization the moved load is planned at on the new hosts, 0..1")
	fs.StringVar(&pq.Basis, "basis", plan.BasisCores, "cores (busy CPU-seconds) or work (operations, when both pools report it)")
	fs.StringVar(&pq.Since, "since", "", "the range the pools are measured over, ending now (default 24h)")
	fs.StringVar(&pq.FromTime, "from-time", "", "start of the range, RFC 3339")
	fs.StringVar(&pq.ToTime, "to-time", "", "end of the range, RFC 3339 (default now)")
	format := fs.String("format", "table", "table, json or markdown")
	cmd.regionsFlag()
	if code, done := cmd.parse(args); done {
		return code
	}
	fail := cmd.fail
	switch {
	case pq.Region == "" || pq.From == "" || pq.To == "":
		return fail(2, errors.New("--region, --from and --to are required (see --help)"))
	case !slices.Contains([]string{"table", "json", "markdown"}, *format):
		return fail(2, fmt.Errorf("--format %q: want table, json or markdown", *format))
	}
	cfg, token, err := cmd.config()
	if err != nil {
		return fail(2, err)
	}
	factors, err := regions.Load(cfg.RegionsFile)
	if err != nil {
		return fail(2, err)
	}
	qctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	res, err := runPlan(qctx, &influxql.Client{URL: cfg.Influx.URL, Token: token, HTTP: noTimeout()},
		cfg.Influx.Bucket, factors, pq, time.Now())
	if err != nil {
		code := 1
		if errors.Is(err, report.ErrBadOptions) || errors.Is(err, errBadQuestion) {
			code = 2
		}
		return fail(code, err)
	}
	if err := writePlan(stdout, res, *format); err != nil {
		return fail(1, err)
	}
	return 0
}

// planHandler serves GET /api/v1/plan?region=&from=&to=&share=&target_util=&basis=&since=
// (or from_time/to_time), JSON: the plan, or {"error": ...} with 400 for a bad question and
// 502 when InfluxDB fails.
type planHandler struct {
	q       report.Querier
	bucket  string
	factors regions.Table
}

func (h *planHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	pq := planQuery{
		Region: v.Get("region"), From: v.Get("from"), To: v.Get("to"), Basis: v.Get("basis"),
		Since: v.Get("since"), FromTime: v.Get("from_time"), ToTime: v.Get("to_time"), Share: 0.5, TargetUtil: 0.6,
	}
	for name, dst := range map[string]*float64{"share": &pq.Share, "target_util": &pq.TargetUtil} {
		if s := v.Get(name); s != "" {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				apiError(w, http.StatusBadRequest, fmt.Errorf("%s %q: want a number", name, s))
				return
			}
			*dst = x
		}
	}
	if pq.Region == "" || pq.From == "" || pq.To == "" {
		apiError(w, http.StatusBadRequest, errors.New("region, from and to are required"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	res, err := runPlan(ctx, h.q, h.bucket, h.factors, pq, time.Now())
	switch {
	case errors.Is(err, report.ErrBadOptions) || errors.Is(err, errBadQuestion):
		apiError(w, http.StatusBadRequest, err)
		return
	case err != nil:
		apiError(w, http.StatusBadGateway, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = res.WriteJSON(w)
}

func apiError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
