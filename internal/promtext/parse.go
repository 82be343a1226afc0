package promtext

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Family is a metric family read back by Parse.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample
}

// Sample is one sample line.
type Sample struct {
	Name   string
	Labels map[string]string // nil without labels
	Value  float64
}

// Parse reads an exposition strictly, as this package writes it: every family has a # HELP
// line followed by its # TYPE line and then its samples, no other comments, no blank lines,
// no timestamps, no repeated family or series, only the escapes the format defines, and
// histograms whose buckets are ascending and cumulative, ending with le="+Inf" equal to
// _count, with a _sum. Families come back in the order they appear.
func Parse(r io.Reader) ([]Family, error) {
	var (
		fams   []Family
		seen   = map[string]bool{}
		series = map[string]bool{}
		cur    *Family
		lineNo int
	)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			if line != "" {
				return nil, fmt.Errorf("line %d: no newline at the end", lineNo+1)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read exposition: %w", err)
		}
		lineNo++
		line = strings.TrimSuffix(line, "\n")
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", lineNo, line, fmt.Sprintf(format, a...))
		}
		switch {
		case line == "":
			return nil, fail("blank line")
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if !ok || !validName(name, true) {
				return nil, fail("bad metric name")
			}
			if seen[name] {
				return nil, fail("family %s repeated", name)
			}
			text, err := unescape(help, false)
			if err != nil {
				return nil, fail("%v", err)
			}
			seen[name] = true
			fams = append(fams, Family{Name: name, Help: text})
			cur = &fams[len(fams)-1]
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if cur == nil || cur.Name != name || cur.Type != "" || len(cur.Samples) > 0 {
				return nil, fail("TYPE must follow the HELP line of the same family")
			}
			switch t := Type(typ); t {
			case Counter, Gauge, Histogram:
				cur.Type = t
			default:
				return nil, fail("type %q", typ)
			}
		case strings.HasPrefix(line, "#"):
			return nil, fail("unexpected comment")
		default:
			if cur == nil || cur.Type == "" {
				return nil, fail("sample before its family's HELP and TYPE")
			}
			s, err := parseSample(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			if !belongs(cur, s.Name) {
				return nil, fail("sample %s outside family %s", s.Name, cur.Name)
			}
			key := seriesKey(s)
			if series[key] {
				return nil, fail("series repeated")
			}
			series[key] = true
			cur.Samples = append(cur.Samples, s)
		}
	}
	for i := range fams {
		f := &fams[i]
		if f.Type == "" {
			return nil, fmt.Errorf("family %s: no TYPE line", f.Name)
		}
		if len(f.Samples) == 0 {
			return nil, fmt.Errorf("family %s: no samples", f.Name)
		}
		if f.Type == Histogram {
			if err := checkHistogram(f); err != nil {
				return nil, fmt.Errorf("histogram %s: %w", f.Name, err)
			}
		}
	}
	return fams, nil
}

func belongs(f *Family, name string) bool {
	if f.Type != Histogram {
		return name == f.Name
	}
	return name == f.Name+"_bucket" || name == f.Name+"_sum" || name == f.Name+"_count"
}

func seriesKey(s Sample) string {
	var b strings.Builder
	b.WriteString(s.Name)
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		b.WriteString("\xff" + k + "\xff" + s.Labels[k])
	}
	return b.String()
}

func parseSample(line string) (Sample, error) {
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return Sample{}, errors.New("no value")
	}
	s := Sample{Name: line[:end]}
	if !validName(s.Name, true) {
		return Sample{}, errors.New("bad metric name")
	}
	rest := line[end:]
	if rest[0] == '{' {
		var err error
		if s.Labels, rest, err = parseLabels(rest[1:]); err != nil {
			return Sample{}, err
		}
	}
	if !strings.HasPrefix(rest, " ") {
		return Sample{}, errors.New("want one space before the value")
	}
	v, err := parseValue(rest[1:])
	if err != nil {
		return Sample{}, err
	}
	s.Value = v
	return s, nil
}

// parseLabels parses name="value",... up to and including the closing brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return nil, "", errors.New(`label without ="`)
		}
		name := s[:eq]
		if !validName(name, false) {
			return nil, "", fmt.Errorf("bad label name %q", name)
		}
		if _, dup := labels[name]; dup {
			return nil, "", fmt.Errorf("label %s repeated", name)
		}
		s = s[eq+2:]
		// The value ends at the first quote not escaped.
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				i++
			}
		}
		if i >= len(s) {
			return nil, "", errors.New("label value not closed")
		}
		v, err := unescape(s[:i], true)
		if err != nil {
			return nil, "", err
		}
		labels[name] = v
		s = s[i+1:]
		switch {
		case strings.HasPrefix(s, "}"):
			return labels, s[1:], nil
		case strings.HasPrefix(s, ","):
			s = s[1:]
		default:
			return nil, "", errors.New("want , or } after a label")
		}
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	if s == "" || strings.ContainsAny(s, " infINFxX_") {
		return 0, fmt.Errorf("bad value %q (timestamps are not written)", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

// unescape undoes \\ and \n, and \" in label values; any other backslash is an error.
func unescape(s string, quote bool) (string, error) {
	if !strings.Contains(s, `\`) {
		if quote && strings.Contains(s, `"`) {
			return "", errors.New(`unescaped " in a label value`)
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' && quote {
			return "", errors.New(`unescaped " in a label value`)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch {
		case i == len(s):
			return "", errors.New("trailing backslash")
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && quote:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf(`escape \%c`, s[i])
		}
	}
	return b.String(), nil
}

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (colon && c == ':') ||
			(i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// checkHistogram checks each series of a histogram family: buckets with ascending le ending
// at +Inf, cumulative counts, _count equal to the +Inf bucket, and a _sum.
func checkHistogram(f *Family) error {
	type group struct {
		les, counts []float64
		sum, count  *float64
	}
	groups := map[string]*group{}
	var order []string
	for _, s := range f.Samples {
		rest := maps.Clone(s.Labels)
		le, hasLE := rest["le"]
		delete(rest, "le")
		key := seriesKey(Sample{Labels: rest})
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
			order = append(order, key)
		}
		v := s.Value
		switch strings.TrimPrefix(s.Name, f.Name) {
		case "_bucket":
			if !hasLE {
				return errors.New("bucket without le")
			}
			bound, err := parseValue(le)
			if err != nil || math.IsNaN(bound) {
				return fmt.Errorf("bucket le %q", le)
			}
			g.les, g.counts = append(g.les, bound), append(g.counts, v)
		case "_sum":
			if hasLE {
				return errors.New("_sum with le")
			}
			g.sum = &v
		case "_count":
			if hasLE {
				return errors.New("_count with le")
			}
			g.count = &v
		}
	}
	for _, key := range order {
		g := groups[key]
		switch {
		case len(g.les) == 0:
			return errors.New("no buckets")
		case !sort.Float64sAreSorted(g.les) || len(slices.Compact(slices.Clone(g.les))) != len(g.les):
			return errors.New("bucket bounds not strictly ascending")
		case !math.IsInf(g.les[len(g.les)-1], 1):
			return errors.New(`no le="+Inf" bucket`)
		case !sort.Float64sAreSorted(g.counts):
			return errors.New("bucket counts not cumulative")
		case g.sum == nil:
			return errors.New("no _sum")
		case g.count == nil:
			return errors.New("no _count")
		case *g.count != g.counts[len(g.counts)-1]:
			return fmt.Errorf("_count %v is not the +Inf bucket's %v", *g.count, g.counts[len(g.counts)-1])
		}
	}
	return nil
}

// Lint checks fleetwatt's naming rules on parsed families: every name starts with prefix,
// counters end in _total and are neither negative nor NaN.
func Lint(fams []Family, prefix string) error {
	var errs []error
	for _, f := range fams {
		if !strings.HasPrefix(f.Name, prefix) {
			errs = append(errs, fmt.Errorf("%s: want the prefix %s", f.Name, prefix))
		}
		if f.Help == "" {
			errs = append(errs, fmt.Errorf("%s: empty HELP", f.Name))
		}
		if f.Type != Counter {
			continue
		}
		if !strings.HasSuffix(f.Name, "_total") {
			errs = append(errs, fmt.Errorf("%s: a counter's name ends in _total", f.Name))
		}
		for _, s := range f.Samples {
			if s.Value < 0 || math.IsNaN(s.Value) {
				errs = append(errs, fmt.Errorf("%s: counter value %v", f.Name, s.Value))
			}
		}
	}
	return errors.Join(errs...)
}

// Find returns the family called name, or nil.
func Find(fams []Family, name string) *Family {
	for i := range fams {
		if fams[i].Name == name {
			return &fams[i]
		}
	}
	return nil
}

// Value returns the value of the sample of f named f.Name (or name, for a histogram's parts)
// whose labels are exactly labels (name, value pairs); ok is false when there is none.
func (f *Family) Value(labels ...string) (v float64, ok bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, s := range f.Samples {
		if s.Name == f.Name && maps.Equal(s.Labels, want) {
			return s.Value, true
		}
	}
	return 0, false
}
