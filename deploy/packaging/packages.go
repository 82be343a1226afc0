package main

import (
	"bytes"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Arches and Formats are what Build makes by default: every product for each.
var (
	Arches  = []string{"amd64", "arm64"}
	Formats = []string{"deb", "rpm"}
)

// Options say what to package and where from.
type Options struct {
	// Version is the version as `git describe --tags --always --dirty` prints it; see
	// packageVersion for what the packages call it.
	Version string
	// Bin holds the binaries, as `make build` lays them out: Bin/linux-<arch>/<name>.
	Bin string
	// Out is the directory the packages are written to; it is created.
	Out string
	// Repo is the repository's root: units, configuration files, udev rules and docs are
	// read from it.
	Repo            string
	Arches, Formats []string
}

// product is one package: a binary and what runs it.
type product struct {
	name    string // the package, the binary, the unit and the sysusers.d file
	user    string // the system user the service runs as; its group has the same name
	comment string // the user's GECOS field
	config  string // the file under /etc/fleetwatt and deploy/packaging/etc
	example string // the fully commented example configuration, shipped as a doc
	state   string // what lives in /var/lib/<name>, for the maintainer scripts' comments
	summary string
	about   string // the description's body
	docs    []string
	udev    []string // rules under deploy/udev installed into /usr/lib/udev/rules.d
	optUdev []string // rules under deploy/udev shipped as examples, not applied
	suggest []string
}

// products are fleetwatt's two packages.
var products = []product{
	{
		name:    "fleetwatt-agent",
		user:    "fleetwatt",
		comment: "fleetwatt agent",
		config:  "agent.yaml",
		example: "agent/agent.example.yaml",
		state:   "the spool",
		summary: "fleetwatt agent: server power and CPU counters over OpenTelemetry",
		about: "Reads a server's power from RAPL, hwmon, ACPI power meters, the BMC (IPMI, " +
			"Redfish) and NVIDIA GPUs, plus CPU time, frequency and idle states, and sends " +
			"them over OTLP to a fleetwatt collector. Runs as an unprivileged user that the " +
			"shipped udev rules let read the energy counters.",
		docs:    []string{"README.md", "docs/install.md", "docs/agent.md", "docs/security.md", "docs/operations.md"},
		udev:    []string{"60-fleetwatt-rapl.rules", "60-fleetwatt-hwmon.rules"},
		optUdev: []string{"61-fleetwatt-ipmi.rules"},
		// The ipmi source runs ipmitool (or FreeIPMI's ipmi-dcmi) where the host has a BMC.
		suggest: []string{"ipmitool"},
	},
	{
		name:    "fleetwatt-collector",
		user:    "fleetwatt-collector",
		comment: "fleetwatt collector",
		config:  "collector.yaml",
		example: "collector/collector.example.yaml",
		state:   "the write-ahead log",
		summary: "fleetwatt collector: OTLP into InfluxDB, report and plan API",
		about: "Receives OTLP metrics from fleetwatt agents and any OpenTelemetry SDK or " +
			"Collector, keeps them in a write-ahead log, writes them into InfluxDB, and " +
			"answers the ARM-vs-x86 efficiency report and capacity plans over HTTP.",
		docs: []string{"README.md", "docs/install.md", "docs/operations.md", "docs/security.md", "docs/report.md", "docs/plan.md", "docs/schema.md"},
	},
}

// scripts are the maintainer scripts' templates, one set for both products.
//
//go:embed scripts/*.sh
var scripts embed.FS

const homepage = "https://github.com/fleetwatt/fleetwatt"

// Build writes a package of every product for each of opts.Arches and opts.Formats into
// opts.Out and returns their paths, in that order. Packages are compressed in parallel, one
// per CPU.
func Build(opts Options) ([]string, error) {
	version, pre, meta, err := packageVersion(opts.Version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Out, err)
	}
	tmp, err := os.MkdirTemp("", "fleetwatt-packaging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	type job struct {
		info   *nfpm.Info
		format string
	}
	var jobs []job
	for _, p := range products {
		scriptPaths, err := renderScripts(p, filepath.Join(tmp, p.name))
		if err != nil {
			return nil, err
		}
		for _, arch := range opts.Arches {
			bin := filepath.Join(opts.Bin, "linux-"+arch, p.name)
			if err := checkBinary(bin, arch); err != nil {
				return nil, err
			}
			for _, format := range opts.Formats {
				info := p.info(opts.Repo, bin, arch, format, scriptPaths)
				info.Version, info.Prerelease, info.VersionMetadata = version, pre, meta
				jobs = append(jobs, job{info, format})
			}
		}
	}

	written := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			written[i], errs[i] = write(j.info, j.format, opts.Out)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s %s %s: %w", j.info.Name, j.info.Arch, j.format, errs[i])
			}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(written, func(p string) bool { return p == "" }), errors.Join(errs...)
}

// info is the nFPM description of p's package for one architecture and format.
func (p product) info(repo, bin, arch, format string, scripts nfpm.Scripts) *nfpm.Info {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	docType := ""
	if format == "rpm" {
		docType = files.TypeRPMDoc // %doc: rpm --excludedocs leaves them out
	}
	doc := func(src, dst string) *files.Content {
		c := file(filepath.Join(repo, src), filepath.Join("/usr/share/doc", p.name, dst), 0o644)
		c.Type = docType
		return c
	}
	contents := files.Contents{
		file(bin, "/usr/bin/"+p.name, 0o755),
		{Destination: "/etc/fleetwatt", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{
			Source: filepath.Join(repo, "deploy/packaging/etc", p.config), Destination: "/etc/fleetwatt/" + p.config,
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644},
		},
		file(filepath.Join(repo, "deploy/systemd", p.name+".service"), "/usr/lib/systemd/system/"+p.name+".service", 0o644),
		file(filepath.Join(repo, "deploy/sysusers.d", p.name+".conf"), "/usr/lib/sysusers.d/"+p.name+".conf", 0o644),
		doc(p.example, filepath.Base(p.example)),
	}
	for _, r := range p.udev {
		contents = append(contents, file(filepath.Join(repo, "deploy/udev", r), "/usr/lib/udev/rules.d/"+r, 0o644))
	}
	for _, r := range p.optUdev {
		contents = append(contents, doc(filepath.Join("deploy/udev", r), filepath.Join("examples", r)))
	}
	for _, d := range p.docs {
		contents = append(contents, doc(d, filepath.Base(d)))
	}
	info := &nfpm.Info{
		Name:          p.name,
		Arch:          arch,
		Platform:      "linux",
		VersionSchema: "none", // packageVersion has split it already
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "fleetwatt maintainers <fleetwatt@users.noreply.github.com>",
		Vendor:        "fleetwatt",
		Homepage:      homepage,
		Description:   p.summary + "\n" + wrap(p.about, 72),
		Overridables: nfpm.Overridables{
			Suggests: p.suggest,
			Contents: contents,
			Scripts:  scripts,
			RPM:      nfpm.RPM{Summary: p.summary, Group: "System Environment/Daemons"},
		},
	}
	info = nfpm.WithDefaults(info)
	// With SOURCE_DATE_EPOCH set (make packages sets the last commit's time), every file
	// gets that time, not its checkout's: the same commit gives the same file metadata.
	if !info.MTime.IsZero() {
		for _, c := range info.Contents {
			c.FileInfo.MTime = info.MTime
		}
	}
	return info
}

// wrap breaks s into lines of at most width columns, at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// write packages info as format into dir and returns the file's path.
func write(info *nfpm.Info, format, dir string) (string, error) {
	var pkgr nfpm.Packager
	switch format {
	case "deb":
		pkgr = deb.Default
	case "rpm":
		pkgr = rpm.DefaultRPM
	default:
		return "", fmt.Errorf("format %q: want deb or rpm", format)
	}
	path := filepath.Join(dir, pkgr.ConventionalFileName(info))
	f, err := os.CreateTemp(dir, ".package-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// CreateTemp makes it 0600; a package is for everyone to read.
	if err := os.Chmod(f.Name(), 0o644); err != nil { //nolint:gosec // G302: see above
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// renderScripts writes p's maintainer scripts into dir.
func renderScripts(p product, dir string) (nfpm.Scripts, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nfpm.Scripts{}, err
	}
	data := map[string]any{
		"Package": p.name, "Unit": p.name + ".service", "User": p.user, "Comment": p.comment,
		"Config": p.config, "State": p.state, "Udev": len(p.udev) > 0,
	}
	render := func(name string) (string, error) {
		t, err := template.ParseFS(scripts, "scripts/"+name)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return "", fmt.Errorf("render %s for %s: %w", name, p.name, err)
		}
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, b.Bytes(), 0o755) //nolint:gosec // a shell script: executable
	}
	var s nfpm.Scripts
	var err error
	if s.PostInstall, err = render("postinstall.sh"); err != nil {
		return s, err
	}
	if s.PreRemove, err = render("preremove.sh"); err != nil {
		return s, err
	}
	s.PostRemove, err = render("postremove.sh")
	return s, err
}

// elfMachines are the ELF machine of each architecture's binaries.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkBinary refuses to package a binary built for another architecture, or a dynamically
// linked one: the packages promise static binaries with no dependencies.
func checkBinary(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("architecture %q: want amd64 or arm64", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("open %s (make build makes it): %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0)", path)
		}
	}
	return nil
}

var (
	// semverRE is a tag: v1.2.3, or v1.2.3-rc.1, a pre-release.
	semverRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?$`)
	// describeRE is `git describe` commits after a tag: v1.2.3-4-gabcdef0, maybe -dirty.
	describeRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)-(\d+)-g([0-9a-f]+)(-dirty)?$`)
	// unsafeRE is what neither dpkg nor rpm allows in a version part.
	unsafeRE = regexp.MustCompile(`[^0-9A-Za-z.]+`)
)

// packageVersion turns a version as `git describe --tags --always --dirty` prints it into
// the version, pre-release and metadata nFPM joins into a package version that sorts right
// in both dpkg and rpm: 1.2.3; 1.2.3~rc.1 before 1.2.3; 1.2.3+git4.abcdef0 (4 commits
// after v1.2.3) after it. Without a tag (a bare commit, "dev") it is 0.0.0~git.abcdef0.
func packageVersion(v string) (version, pre, meta string, err error) {
	clean := func(s string) string { return strings.Trim(unsafeRE.ReplaceAllString(s, "."), ".") }
	if m := describeRE.FindStringSubmatch(v); m != nil {
		version, pre, _, err = packageVersion(m[1])
		meta = "git" + m[2] + "." + m[3]
		if m[4] != "" {
			meta += ".dirty"
		}
		return version, pre, meta, err
	}
	if m := semverRE.FindStringSubmatch(v); m != nil {
		return m[1], clean(m[2]), "", nil
	}
	if clean(v) == "" {
		return "", "", "", errors.New("--version is empty: pass what `git describe --tags --always --dirty` prints")
	}
	return "0.0.0", "git." + clean(v), "", nil
}
