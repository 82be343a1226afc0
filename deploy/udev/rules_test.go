// Package udev holds the udev rules that give the agent's group read access to the energy
// counters (docs/install.md, "Least privilege"). This test parses them as udev does, checks
// that they name the group the agent's package creates, and runs the hwmon rule's shell
// command on a tree laid out like /sys.
package udev

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// pair is one KEY op "value" of a rule.
type pair struct{ Key, Op, Value string }

var pairRE = regexp.MustCompile(`^\s*([A-Z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)`)

// rules reads a rules file into its rules, each a list of pairs.
func rules(t *testing.T, file string) [][]pair {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]pair
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var rule []pair
		for rest := line; strings.TrimSpace(rest) != ""; {
			m := pairRE.FindStringSubmatchIndex(rest)
			if m == nil {
				t.Fatalf("%s: cannot parse %q", file, rest)
			}
			rule = append(rule, pair{rest[m[2]:m[3]], rest[m[4]:m[5]], rest[m[6]:m[7]]})
			rest = rest[m[1]:]
		}
		out = append(out, rule)
	}
	return out
}

// agentGroup is the group deploy/sysusers.d/fleetwatt-agent.conf creates: the user's own.
func agentGroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../sysusers.d/fleetwatt-agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "u" {
			return f[1]
		}
	}
	t.Fatal("fleetwatt-agent.conf creates no user")
	return ""
}

// match is the keys a rule matches on, with their values.
func match(rule []pair) map[string]string {
	m := map[string]string{}
	for _, p := range rule {
		if p.Op == "==" {
			m[p.Key] = p.Value
		}
	}
	return m
}

// runs is a rule's RUN programs.
func runs(rule []pair) []string {
	var out []string
	for _, p := range rule {
		if p.Key == "RUN" && p.Op == "+=" {
			out = append(out, p.Value)
		}
	}
	return out
}

func TestRules(t *testing.T) {
	t.Parallel()
	group := agentGroup(t)
	for _, tc := range []struct {
		file  string
		match map[string]string
		runs  []string
		set   map[string]string
	}{
		{
			file:  "60-fleetwatt-rapl.rules",
			match: map[string]string{"SUBSYSTEM": "powercap", "ACTION": "add|change", "TEST": "energy_uj"},
			runs:  []string{"/bin/chgrp " + group + " /sys%p/energy_uj", "/bin/chmod g+r /sys%p/energy_uj"},
		},
		{
			file:  "60-fleetwatt-hwmon.rules",
			match: map[string]string{"SUBSYSTEM": "hwmon", "ACTION": "add|change"},
		},
		{
			file:  "61-fleetwatt-ipmi.rules",
			match: map[string]string{"SUBSYSTEM": "ipmi", "KERNEL": "ipmi[0-9]*"},
			set:   map[string]string{"GROUP": group, "MODE": "0660"},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			rs := rules(t, tc.file)
			if len(rs) != 1 {
				t.Fatalf("%d rules, want 1", len(rs))
			}
			if diff := cmp.Diff(tc.match, match(rs[0])); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
			if tc.runs != nil {
				if diff := cmp.Diff(tc.runs, runs(rs[0])); diff != "" {
					t.Errorf("RUN (-want +got):\n%s", diff)
				}
			}
			set := map[string]string{}
			for _, p := range rs[0] {
				if p.Op == "=" {
					set[p.Key] = p.Value
				}
			}
			if diff := cmp.Diff(tc.set, set, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("assignments (-want +got):\n%s", diff)
			}
			for _, r := range runs(rs[0]) {
				// udev runs RUN without a shell and without PATH: the program is absolute
				// and exists (/bin is /usr/bin on merged-/usr systems, and coreutils' own
				// directory on the others).
				prog := strings.Fields(r)[0]
				if !filepath.IsAbs(prog) {
					t.Errorf("RUN %q: %s is not an absolute path", r, prog)
				}
				if _, err := exec.LookPath(prog); err != nil {
					t.Errorf("RUN %q: %v", r, err)
				}
				// udev substitutes %x and $name in RUN: only %p (the device path) and $$
				// (a literal $) may appear.
				if rest := strings.NewReplacer("%p", "", "$$", "").Replace(r); strings.ContainsAny(rest, "%$") {
					t.Errorf("RUN %q: a %% or $ udev would substitute", r)
				}
				if !strings.Contains(r, group) && !strings.HasPrefix(r, "/bin/chmod") {
					t.Errorf("RUN %q does not name group %s", r, group)
				}
			}
		})
	}
}

// TestHwmonRun runs the hwmon rule's command as udev would for a chip whose driver makes
// its power attributes root-only, with udev's substitutions made (%p, $$) and the group
// replaced by this test's own, since the agent's group need not exist here: power and
// energy attributes, beside the chip and under device/, become group-readable; nothing else
// changes.
func TestHwmonRun(t *testing.T) {
	t.Parallel()
	rs := rules(t, "60-fleetwatt-hwmon.rules")
	cmds := runs(rs[0])
	if len(cmds) != 1 {
		t.Fatalf("%d RUN, want 1", len(cmds))
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	sys := t.TempDir()
	dev := "/devices/platform/APMC0D29:00/hwmon/hwmon3"
	files := map[string]os.FileMode{
		"power1_input": 0o400, "power2_input": 0o400, "power1_average": 0o400, "energy1_input": 0o400,
		"device/power1_average": 0o400, "temp1_input": 0o400, "name": 0o444, "power1_label": 0o400,
	}
	for f, mode := range files {
		p := filepath.Join(sys, dev, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("1\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	cmd := strings.NewReplacer("/sys%p", filepath.Join(sys, dev), "$$", "$", " "+agentGroup(t)+" ", " "+g.Name+" ").Replace(cmds[0])
	// udev splits the command line at spaces, keeping single-quoted strings whole.
	prog, rest, _ := strings.Cut(cmd, " ")
	args := strings.Fields(strings.SplitN(rest, "'", 2)[0])
	args = append(args, strings.TrimSuffix(strings.SplitN(rest, "'", 2)[1], "'"))
	if b, err := exec.CommandContext(t.Context(), prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", prog, args, err, b)
	}
	got := map[string]os.FileMode{}
	for f := range files {
		st, err := os.Stat(filepath.Join(sys, dev, f))
		if err != nil {
			t.Fatal(err)
		}
		got[f] = st.Mode().Perm()
	}
	want := map[string]os.FileMode{
		"power1_input": 0o440, "power2_input": 0o440, "power1_average": 0o440, "energy1_input": 0o440,
		"device/power1_average": 0o440, "temp1_input": 0o400, "name": 0o444, "power1_label": 0o400,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("modes after the rule ran (-want +got):\n%s", diff)
	}
}
