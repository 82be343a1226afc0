package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
)

// testVersion is what the binaries are stamped with and the packages built from: a commit 4
// after the tag v1.2.3, as `git describe` prints it.
const (
	testVersion = "v1.2.3-4-gabcdef0"
	pkgVersion  = "1.2.3+git4.abcdef0" // what dpkg and rpm call it
)

// repo is the repository's root, from this package's directory.
const repo = "../.."

// sourceDate is the SOURCE_DATE_EPOCH the packages are built with: every file has it.
var sourceDate = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)

// file is one file a package must hold: its path, mode, and where its bytes come from (a
// file of the repository, or "" for the binary).
type file struct {
	Path   string
	Mode   string // as ls prints it
	Kind   string // "config" (kept on upgrade), "doc", or ""
	Source string
}

// wantFiles lists every file of each package, with owner root:root. /etc/fleetwatt is a
// directory of both; every other directory is the distribution's.
var wantFiles = map[string][]file{
	"fleetwatt-agent": {
		{"/etc/fleetwatt/agent.yaml", "-rw-r--r--", "config", "deploy/packaging/etc/agent.yaml"},
		{"/usr/bin/fleetwatt-agent", "-rwxr-xr-x", "", ""},
		{"/usr/lib/systemd/system/fleetwatt-agent.service", "-rw-r--r--", "", "deploy/systemd/fleetwatt-agent.service"},
		{"/usr/lib/sysusers.d/fleetwatt-agent.conf", "-rw-r--r--", "", "deploy/sysusers.d/fleetwatt-agent.conf"},
		{"/usr/lib/udev/rules.d/60-fleetwatt-hwmon.rules", "-rw-r--r--", "", "deploy/udev/60-fleetwatt-hwmon.rules"},
		{"/usr/lib/udev/rules.d/60-fleetwatt-rapl.rules", "-rw-r--r--", "", "deploy/udev/60-fleetwatt-rapl.rules"},
		{"/usr/share/doc/fleetwatt-agent/README.md", "-rw-r--r--", "doc", "README.md"},
		{"/usr/share/doc/fleetwatt-agent/agent.example.yaml", "-rw-r--r--", "doc", "agent/agent.example.yaml"},
		{"/usr/share/doc/fleetwatt-agent/agent.md", "-rw-r--r--", "doc", "docs/agent.md"},
		{"/usr/share/doc/fleetwatt-agent/examples/61-fleetwatt-ipmi.rules", "-rw-r--r--", "doc", "deploy/udev/61-fleetwatt-ipmi.rules"},
		{"/usr/share/doc/fleetwatt-agent/install.md", "-rw-r--r--", "doc", "docs/install.md"},
		{"/usr/share/doc/fleetwatt-agent/operations.md", "-rw-r--r--", "doc", "docs/operations.md"},
		{"/usr/share/doc/fleetwatt-agent/security.md", "-rw-r--r--", "doc", "docs/security.md"},
	},
	"fleetwatt-collector": {
		{"/etc/fleetwatt/collector.yaml", "-rw-r--r--", "config", "deploy/packaging/etc/collector.yaml"},
		{"/usr/bin/fleetwatt-collector", "-rwxr-xr-x", "", ""},
		{"/usr/lib/systemd/system/fleetwatt-collector.service", "-rw-r--r--", "", "deploy/systemd/fleetwatt-collector.service"},
		{"/usr/lib/sysusers.d/fleetwatt-collector.conf", "-rw-r--r--", "", "deploy/sysusers.d/fleetwatt-collector.conf"},
		{"/usr/share/doc/fleetwatt-collector/README.md", "-rw-r--r--", "doc", "README.md"},
		{"/usr/share/doc/fleetwatt-collector/collector.example.yaml", "-rw-r--r--", "doc", "collector/collector.example.yaml"},
		{"/usr/share/doc/fleetwatt-collector/install.md", "-rw-r--r--", "doc", "docs/install.md"},
		{"/usr/share/doc/fleetwatt-collector/operations.md", "-rw-r--r--", "doc", "docs/operations.md"},
		{"/usr/share/doc/fleetwatt-collector/plan.md", "-rw-r--r--", "doc", "docs/plan.md"},
		{"/usr/share/doc/fleetwatt-collector/report.md", "-rw-r--r--", "doc", "docs/report.md"},
		{"/usr/share/doc/fleetwatt-collector/schema.md", "-rw-r--r--", "doc", "docs/schema.md"},
		{"/usr/share/doc/fleetwatt-collector/security.md", "-rw-r--r--", "doc", "docs/security.md"},
	},
}

// wantUser is the system user each package's service runs as.
var wantUser = map[string]string{"fleetwatt-agent": "fleetwatt", "fleetwatt-collector": "fleetwatt-collector"}

// wantSuggests is each package's one relation: nothing is required (static binaries).
var wantSuggests = map[string][]string{"fleetwatt-agent": {"ipmitool"}, "fleetwatt-collector": nil}

// rpmArch is each GOARCH as rpm names it.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// qemu names Debian's qemu-user-static emulator for each GOARCH.
var qemu = map[string]string{"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}

// need fails the test (CI) or skips it (elsewhere) when a tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found: run `make deps` (scripts/deps.sh installs it)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// run runs a command and returns its stdout; it fails the test on an error or on anything
// on stderr, where dpkg-deb, rpm and systemd-analyze put their warnings.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	stdout, stderr := runStderr(t, name, args...)
	if stderr != "" {
		t.Fatalf("%s %s: %s%s", name, strings.Join(args, " "), stderr, stdout)
	}
	return stdout
}

// runStderr runs a command and returns its stdout and stderr; it fails the test on an error.
func runStderr(t *testing.T, name string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), stderr.String()
}

// buildBinaries builds both binaries for both architectures into dir as `make build` lays
// them out, CGO off, version stamped; the go command's cache makes a second run cheap.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, arch := range Arches {
		out := filepath.Join(dir, "linux-"+arch) + string(filepath.Separator)
		cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath",
			"-ldflags", "-s -w -X main.version="+testVersion, "-o", out, "./agent", "./collector")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build for %s: %v\n%s", arch, err, b)
		}
		// go build names them after their directories.
		for _, p := range products {
			short := strings.TrimPrefix(p.name, "fleetwatt-")
			if err := os.Rename(filepath.Join(out, short), filepath.Join(out, p.name)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPackages builds every package from real binaries and inspects each with the tools of
// its format, dpkg-deb and rpm: metadata, every file with its mode, owner, content and
// config mark, the maintainer scripts; it runs each binary from its package (arm64 under
// qemu-user), loads the packaged configuration with it, and verifies the installed tree's
// systemd units and users.
func TestPackages(t *testing.T) {
	t.Parallel()
	need(t, "dpkg-deb", "rpm", "systemd-analyze", "systemd-sysusers", "sh")
	bin := t.TempDir()
	start := time.Now()
	buildBinaries(t, bin)
	t.Logf("binaries built in %s", time.Since(start).Round(time.Millisecond))

	// The packages are made as `make packages` makes them: by this command, built without
	// the race detector `make test` adds (compressing 130 MB under it takes minutes).
	start = time.Now()
	packaging := filepath.Join(t.TempDir(), "packaging")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", packaging, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./deploy/packaging: %v\n%s", err, b)
	}
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), packaging, "--version", testVersion, "--bin", bin, "--out", out, "--repo", repo)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(sourceDate.Unix(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("packaging: %v\n%s%s", err, stderr.String(), stdout)
	}
	t.Logf("8 packages built in %s", time.Since(start).Round(time.Millisecond))
	var names []string
	for line := range strings.Lines(string(stdout)) {
		names = append(names, filepath.Base(strings.TrimSpace(line)))
	}
	wantNames := []string{
		"fleetwatt-agent_1.2.3+git4.abcdef0-1_amd64.deb",
		"fleetwatt-agent-1.2.3+git4.abcdef0-1.x86_64.rpm",
		"fleetwatt-agent_1.2.3+git4.abcdef0-1_arm64.deb",
		"fleetwatt-agent-1.2.3+git4.abcdef0-1.aarch64.rpm",
		"fleetwatt-collector_1.2.3+git4.abcdef0-1_amd64.deb",
		"fleetwatt-collector-1.2.3+git4.abcdef0-1.x86_64.rpm",
		"fleetwatt-collector_1.2.3+git4.abcdef0-1_arm64.deb",
		"fleetwatt-collector-1.2.3+git4.abcdef0-1.aarch64.rpm",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("packages written (-want +got):\n%s", diff)
	}

	for _, p := range products {
		for _, arch := range Arches {
			binary := filepath.Join(bin, "linux-"+arch, p.name)
			t.Run(p.name+"_"+arch+".deb", func(t *testing.T) {
				t.Parallel()
				pkg := filepath.Join(out, fmt.Sprintf("%s_%s-1_%s.deb", p.name, pkgVersion, arch))
				checkDeb(t, pkg, p.name, arch, binary)
			})
			t.Run(p.name+"_"+arch+".rpm", func(t *testing.T) {
				t.Parallel()
				pkg := filepath.Join(out, fmt.Sprintf("%s-%s-1.%s.rpm", p.name, pkgVersion, rpmArch[arch]))
				checkRPM(t, pkg, p.name, arch, binary)
			})
		}
	}
}

// checkDeb inspects a .deb with dpkg-deb, then installs it into a temporary root and runs
// what it installed.
func checkDeb(t *testing.T, pkg, name, arch, binary string) {
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Pre-Depends", "Suggests", "Section", "Homepage"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "--field", pkg, f))
	}
	want := map[string]string{
		"Package": name, "Version": pkgVersion + "-1", "Architecture": arch, "Depends": "", "Pre-Depends": "",
		"Suggests": strings.Join(wantSuggests[name], ", "), "Section": "admin", "Homepage": homepage,
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("control fields (-want +got):\n%s", diff)
	}

	// dpkg-deb --contents lists the data archive as tar tv does:
	// -rw-r--r-- root/root 1507 2026-01-02 03:04 ./etc/fleetwatt/agent.yaml
	var got []file
	etcDir := false
	sc := bufio.NewScanner(strings.NewReader(run(t, "dpkg-deb", "--contents", pkg)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Fatalf("dpkg-deb --contents: unexpected line %q", sc.Text())
		}
		mode, owner, path := f[0], f[1], strings.TrimPrefix(f[5], ".")
		if owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", path, owner)
		}
		if date, want := f[3]+" "+f[4], sourceDate.Local().Format("2006-01-02 15:04"); date != want {
			t.Errorf("%s dated %s, want SOURCE_DATE_EPOCH's %s", path, date, want)
		}
		if strings.HasPrefix(mode, "d") {
			etcDir = etcDir || (path == "/etc/fleetwatt/" && mode == "drwxr-xr-x")
			continue
		}
		got = append(got, file{Path: path, Mode: mode})
	}
	if !etcDir {
		t.Error("no directory /etc/fleetwatt of mode 0755")
	}
	conffiles := strings.Fields(run(t, "dpkg-deb", "--info", pkg, "conffiles"))
	for i, f := range got {
		if slices.Contains(conffiles, f.Path) {
			got[i].Kind = "config"
		}
	}
	if diff := cmp.Diff(modes(wantFiles[name], "doc"), got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	scripts := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		scripts[s] = run(t, "dpkg-deb", "--info", pkg, s)
	}
	checkScripts(t, name, scripts["postinst"], scripts["prerm"], scripts["postrm"])

	root := t.TempDir()
	run(t, "dpkg-deb", "--extract", pkg, root)
	for _, f := range wantFiles[name] {
		src := f.Source
		if src == "" {
			src = binary
		} else {
			src = filepath.Join(repo, src)
		}
		if got, want := digest(t, filepath.Join(root, f.Path)), digest(t, src); got != want {
			t.Errorf("%s: sha256 %s, want %s's %s", f.Path, got, src, want)
		}
	}
	checkPackagedBinary(t, filepath.Join(root, "usr/bin", name), name, arch)
	checkConfig(t, root, name, arch)
	checkSystemd(t, root, name)
}

// checkRPM inspects a .rpm with rpm: its header and every file's flags, owner, mode and
// SHA-256 digest.
func checkRPM(t *testing.T, pkg, name, arch, binary string) {
	query := func(format string) string { return run(t, "rpm", "--query", "--package", "--queryformat", format, pkg) }
	got := strings.Split(query("%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{OS}|%{URL}|%{SUMMARY}"), "|")
	want := []string{name, pkgVersion, "1", rpmArch[arch], "linux", homepage, ""}
	for _, p := range products {
		if p.name == name {
			want[6] = p.summary
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("name|version|release|arch|os|url|summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSuggests[name], strings.Fields(query("[%{SUGGESTNAME}\n]")), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("suggests (-want +got):\n%s", diff)
	}
	if req := strings.Fields(query("[%{REQUIRENAME}\n]")); len(req) > 0 {
		t.Errorf("requires %q, want nothing: the binaries are static", req)
	}

	// Every file: flags (c config, n noreplace, d doc), owner, mode, digest, path.
	var files []file
	digests := map[string]string{}
	dirs := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(query("[%{FILEFLAGS:fflags}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEMODES:perms}|%{FILEDIGESTS}|%{FILEMTIMES}|%{FILENAMES}\n]")))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 6 {
			t.Fatalf("rpm: unexpected line %q", sc.Text())
		}
		flags, owner, mode, sum, mtime, path := f[0], f[1], f[2], f[3], f[4], f[5]
		if owner != "root:root" {
			t.Errorf("%s is owned by %s, want root:root", path, owner)
		}
		if want := strconv.FormatInt(sourceDate.Unix(), 10); mtime != want {
			t.Errorf("%s dated %s, want SOURCE_DATE_EPOCH %s", path, mtime, want)
		}
		if strings.HasPrefix(mode, "d") {
			dirs[path] = mode
			continue
		}
		kind := map[string]string{"": "", "cn": "config", "d": "doc"}[flags]
		if _, ok := map[string]bool{"": true, "cn": true, "d": true}[flags]; !ok {
			kind = "flags " + flags
		}
		files = append(files, file{Path: path, Mode: mode, Kind: kind})
		digests[path] = sum
	}
	if diff := cmp.Diff(map[string]string{"/etc/fleetwatt": "drwxr-xr-x"}, dirs); diff != "" {
		t.Errorf("directories (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(modes(wantFiles[name], ""), files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	for _, f := range wantFiles[name] {
		src := binary
		if f.Source != "" {
			src = filepath.Join(repo, f.Source)
		}
		if got, want := digests[f.Path], digest(t, src); got != want {
			t.Errorf("%s: sha256 %s, want %s's %s", f.Path, got, src, want)
		}
	}
	checkScripts(t, name, query("%{POSTIN}"), query("%{PREUN}"), query("%{POSTUN}"))
	if prog := query("%{POSTINPROG}|%{PREUNPROG}|%{POSTUNPROG}"); prog != "/bin/sh|/bin/sh|/bin/sh" {
		t.Errorf("scriptlet interpreters %q, want /bin/sh", prog)
	}
}

// modes is want without sources, and without the doc mark where the format has none.
func modes(want []file, docMark string) []file {
	var out []file
	for _, f := range want {
		f.Source = ""
		if f.Kind == "doc" && docMark != "" {
			f.Kind = ""
		}
		out = append(out, f)
	}
	return out
}

// checkScripts checks the maintainer scripts, the same for deb and rpm: they parse, create
// the user, apply udev rules (agent), restart on upgrade, stop on removal, and no template
// text is left in them.
func checkScripts(t *testing.T, name, postinst, prerm, postrm string) {
	t.Helper()
	user, unit := wantUser[name], name+".service"
	want := map[string][]string{
		"postinstall": {
			"systemd-sysusers /usr/lib/sysusers.d/" + name + ".conf",
			"getent group " + user + " >/dev/null || groupadd --system " + user,
			"useradd --system --gid " + user + " --home-dir /var/lib/" + name + " --no-create-home",
			"adduser --system --ingroup " + user + " --home /var/lib/" + name + " --no-create-home",
			"systemctl daemon-reload",
			"systemctl try-restart " + unit,
		},
		"preremove":  {"remove | 0)", "systemctl disable --now " + unit},
		"postremove": {"purge)\n\trm -rf /var/lib/" + name + "\n", "systemctl daemon-reload"},
	}
	udev := "udevadm trigger --subsystem-match=powercap --subsystem-match=hwmon"
	if name == "fleetwatt-agent" {
		want["postinstall"] = append(want["postinstall"], udev)
	}
	for script, text := range map[string]string{"postinstall": postinst, "preremove": prerm, "postremove": postrm} {
		if !strings.HasPrefix(text, "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh:\n%s", script, text)
		}
		for _, w := range want[script] {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", script, w, text)
			}
		}
		if strings.Contains(text, "{{") || strings.Contains(text, "<no value>") {
			t.Errorf("%s has template text left:\n%s", script, text)
		}
		if name != "fleetwatt-agent" && strings.Contains(text, "udevadm") {
			t.Errorf("%s of %s runs udevadm; it ships no udev rules", script, name)
		}
		cmd := exec.CommandContext(t.Context(), "sh", "-n")
		cmd.Stdin = strings.NewReader(text)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not parse (sh -n): %v\n%s", script, err, b)
		}
	}
}

// checkPackagedBinary checks that the packaged binary is a static ELF binary for arch, and runs it:
// natively on a host of that architecture, under qemu-user elsewhere.
func checkPackagedBinary(t *testing.T, path, name, arch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		t.Errorf("%s is built for %s, want %s", path, f.Machine, elfMachines[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is not static", path)
		}
	}
	if got, want := command(t, arch, path, "version").output(t), name+" "+testVersion+"\n"; got != want {
		t.Errorf("%s version = %q, want %q", path, got, want)
	}
}

// cmd is a command to run, natively or under qemu-user.
type cmd struct{ *exec.Cmd }

func command(t *testing.T, arch, path string, args ...string) cmd {
	t.Helper()
	if arch == runtime.GOARCH {
		return cmd{exec.CommandContext(t.Context(), path, args...)}
	}
	need(t, qemu[arch])
	return cmd{exec.CommandContext(t.Context(), qemu[arch], append([]string{path}, args...)...)}
}

func (c cmd) output(t *testing.T) string {
	t.Helper()
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", c, err, stderr.String())
	}
	return string(out)
}

// checkConfig loads the packaged configuration with the packaged binary, which rejects
// unknown keys and invalid values, and checks that it turns on the disk spool (agent) or the
// write-ahead log (collector) in the unit's state directory.
func checkConfig(t *testing.T, root, name, arch string) {
	t.Helper()
	config := filepath.Join(root, "etc/fleetwatt", strings.TrimPrefix(name, "fleetwatt-")+".yaml")
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Spool struct{ Dir string } `yaml:"spool"`
		WAL   struct{ Dir string } `yaml:"wal"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	state := "/var/lib/" + unitValues(t, filepath.Join(root, "usr/lib/systemd/system", name+".service"))["StateDirectory"][0]
	bin := filepath.Join(root, "usr/bin", name)
	switch name {
	case "fleetwatt-agent":
		if want := state + "/spool"; c.Spool.Dir != want {
			t.Errorf("spool.dir = %q, want %q (in the unit's StateDirectory)", c.Spool.Dir, want)
		}
		// doctor loads and validates the configuration, then reads a fixture machine of
		// this architecture.
		var machine string
		for _, m := range fixture.Machines {
			if fixture.Arch(m) == arch {
				machine = m
				break
			}
		}
		doctor := command(t, arch, bin, "doctor", "--config", config, "--root", fixture.Root(t, machine), "--format", "json", "--window", "10ms")
		doctor.Env = []string{"PATH=", "HOME=" + t.TempDir()}
		var doc struct{ Host struct{ Arch string } }
		if err := json.Unmarshal([]byte(doctor.output(t)), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Host.Arch != arch {
			t.Errorf("doctor on %s with the packaged configuration: arch %q, want %q", machine, doc.Host.Arch, arch)
		}
	case "fleetwatt-collector":
		if want := state + "/wal"; c.WAL.Dir != want {
			t.Errorf("wal.dir = %q, want %q (in the unit's StateDirectory)", c.WAL.Dir, want)
		}
		if arch == runtime.GOARCH {
			runCollector(t, bin, config)
		}
	}
}

// runCollector starts the packaged collector with the packaged configuration (on loopback,
// its write-ahead log in a temporary directory, InfluxDB unreachable), waits until it has
// started with the log open, and stops it.
func runCollector(t *testing.T, bin, config string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "--config", config, "--wal-dir", filepath.Join(t.TempDir(), "wal"),
		"--listen", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
		"--influx-url", "http://127.0.0.1:9")
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(io.TeeReader(stderr, &log))
	started := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "fleetwatt-collector started") {
			started = true
			break
		}
	}
	if !started {
		err := c.Wait()
		t.Fatalf("the collector did not start with %s (%v):\n%s", config, err, log.String())
	}
	// The rest of the log, read to its end before Wait closes the pipe.
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&log, stderr)
		copied <- err
	}()
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Error(err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("the collector stopped with %v:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "write-ahead log open") {
		t.Errorf("the collector did not open its write-ahead log:\n%s", log.String())
	}
}

// checkSystemd verifies the installed tree as systemd would load it: systemd-sysusers
// creates the service's user from the packaged sysusers.d file, systemd-analyze verify
// loads the unit (its binary must exist) and must print nothing, and its exposure score
// must stay at 2.0 or below ("OK").
func checkSystemd(t *testing.T, root, name string) {
	t.Helper()
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	// The units the service's own depend on (multi-user.target, sysinit.target, ...), and
	// /bin/kill of ExecReload, from this host.
	entries, err := os.ReadDir("/usr/lib/systemd/system")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			copyFile(t, filepath.Join("/usr/lib/systemd/system", e.Name()), filepath.Join(unitDir, e.Name()), 0o644)
		} else if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(filepath.Join("/usr/lib/systemd/system", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(unitDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, kill, filepath.Join(root, "bin/kill"), 0o755)

	// It says what it creates on stderr.
	runStderr(t, "systemd-sysusers", "--root", root)
	user := wantUser[name]
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	var entry []string
	for line := range strings.Lines(string(passwd)) {
		if f := strings.Split(strings.TrimSpace(line), ":"); f[0] == user {
			entry = f
		}
	}
	if len(entry) != 7 || entry[5] != "/var/lib/"+name || entry[6] != "/usr/sbin/nologin" {
		t.Errorf("systemd-sysusers made passwd entry %q, want user %s, home /var/lib/%s, shell nologin:\n%s", entry, user, name, passwd)
	}
	unit := unitValues(t, filepath.Join(unitDir, name+".service"))
	if got := []string{unit["User"][0], unit["Group"][0]}; !slices.Equal(got, []string{user, user}) {
		t.Errorf("User, Group = %q, want the sysusers.d user %s", got, user)
	}

	if out := run(t, "systemd-analyze", "verify", "--root", root, name+".service"); out != "" {
		t.Errorf("systemd-analyze verify: %s", out)
	}
	run(t, "systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", "--root", root, name+".service")
}

// unitValues reads a unit file into its keys' values, in order.
func unitValues(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			values[k] = append(values[k], v)
		}
	}
	return values
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func digest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestPackageVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, version, pre, meta string
	}{
		{"v1.2.3", "1.2.3", "", ""},
		{"1.2.3", "1.2.3", "", ""},
		{"v1.2.3-rc.1", "1.2.3", "rc.1", ""},
		{"v1.2.3-4-gabcdef0", "1.2.3", "", "git4.abcdef0"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3", "", "git4.abcdef0.dirty"},
		{"v2.0.0-beta.2-11-g0123456", "2.0.0", "beta.2", "git11.0123456"},
		{"0f3adad", "0.0.0", "git.0f3adad", ""},
		{"0f3adad-dirty", "0.0.0", "git.0f3adad.dirty", ""},
		{"dev", "0.0.0", "git.dev", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			version, pre, meta, err := packageVersion(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.version, tc.pre, tc.meta}, []string{version, pre, meta}); diff != "" {
				t.Errorf("packageVersion(%q) version, pre-release, metadata (-want +got):\n%s", tc.in, diff)
			}
		})
	}
	if _, _, _, err := packageVersion(""); err == nil {
		t.Error(`packageVersion("") succeeded, want an error`)
	}
}

// TestVersionOrder checks with dpkg itself that the package versions sort as releases do.
func TestVersionOrder(t *testing.T) {
	t.Parallel()
	need(t, "dpkg")
	order := []string{"0f3adad", "v1.2.3-rc.1", "v1.2.3", "v1.2.3-4-gabcdef0", "v1.2.3-4-gabcdef0-dirty", "v1.2.4"}
	var prev string
	for _, v := range order {
		version, pre, meta, err := packageVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		deb := version
		if pre != "" {
			deb += "~" + pre
		}
		if meta != "" {
			deb += "+" + meta
		}
		deb += "-1"
		if prev != "" {
			if err := exec.CommandContext(t.Context(), "dpkg", "--compare-versions", prev, "lt", deb).Run(); err != nil {
				t.Errorf("dpkg: %s is not before %s (%s)", prev, deb, v)
			}
		}
		prev = deb
	}
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no version", []string{"--bin", t.TempDir(), "--out", t.TempDir()}, 1, "--version is empty"},
		{"unknown arch", []string{"--version", "v1.0.0", "--arch", "riscv64", "--out", t.TempDir()}, 1, `architecture "riscv64"`},
		{"no binaries", []string{"--version", "v1.0.0", "--bin", t.TempDir(), "--out", t.TempDir()}, 1, "make build makes it"},
		{"arguments", []string{"--version", "v1.0.0", "extra"}, 2, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := cli(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("cli(%q) = %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
