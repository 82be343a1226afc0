// Package kubernetes tests fleetwatt's Kubernetes manifests: the kustomize base and one overlay
// per region under overlays/. Each is built with kustomize's own library, every object is
// decoded strictly into its Kubernetes API type, and what the deployment depends on is checked
// against the real binaries: the flags they accept, their default ports, the files their
// configuration names, and (run_test.go) a collector and an agent started exactly as the pods
// start them. docs/kubernetes.md explains the choices checked here.
package kubernetes

import (
	"encoding/csv"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	k8syaml "sigs.k8s.io/yaml"
)

// The names the manifests use, and the documentation promises.
const (
	agentNS       = "fleetwatt-agent"
	collectorNS   = "fleetwatt"
	agentName     = "fleetwatt-agent"
	collectorName = "fleetwatt-collector"
	headlessName  = "fleetwatt-collector-headless"
	configMapName = "fleetwatt-collector-config" // + kustomize's content hash
	regionLabel   = "fleetwatt/region"
	zoneLabel     = "topology.kubernetes.io/zone"
	docPath       = "../../docs/kubernetes.md"
	regionsCSV    = "../../collector/internal/regions/regions.csv"
)

// overlayRegions are the regions with an overlay: the six of the demo fleet.
var overlayRegions = []string{"cn-beijing", "cn-hangzhou", "cn-qingdao", "cn-hongkong", "cn-shenzhen", "us-west-1"}

// secretRef is a key of a Secret the pods mount, which the operator creates.
type secretRef struct{ Namespace, Name, Key string }

// wantSecrets are the Secrets' keys the pods read, all created outside kustomize (docs/kubernetes.md,
// "Secrets") so that `kubectl apply -k` never overwrites a credential with a placeholder.
var wantSecrets = []secretRef{
	{agentNS, "fleetwatt-agent", "ca.crt"},
	{agentNS, "fleetwatt-agent", "token"},
	{collectorNS, "fleetwatt-collector-auth", "tokens.yaml"},
	{collectorNS, "fleetwatt-collector-tls", "tls.crt"},
	{collectorNS, "fleetwatt-collector-tls", "tls.key"},
	{collectorNS, "fleetwatt-influx", "token"},
}

// binDir holds the binaries the tests build, once per package run.
var binDir string

// buildBinaries builds fleetwatt-agent and fleetwatt-collector into binDir, once.
var buildBinaries = sync.OnceValue(func() error {
	for name, pkg := range map[string]string{
		agentName:     "github.com/fleetwatt/fleetwatt/agent",
		collectorName: "github.com/fleetwatt/fleetwatt/collector",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
})

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetwatt-kubernetes-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of a built binary (agentName or collectorName).
func binary(t *testing.T, name string) string {
	t.Helper()
	if err := buildBinaries(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

// helpFlag matches a flag's line in the output of a Go flag set's PrintDefaults.
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)\b(.*(?:\n    .*)*)`)

// helpDefault is a flag's quoted default in its help text.
var helpDefault = regexp.MustCompile(`\(default "([^"]*)"\)`)

// flagsOf runs `name [command] --help` and returns every flag it lists, with its quoted
// default ("" when there is none).
func flagsOf(t *testing.T, name string, command ...string) map[string]string {
	t.Helper()
	out, err := exec.Command(binary(t, name), append(command, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", name, strings.Join(command, " "), err, out)
	}
	flags := map[string]string{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		def := ""
		if d := helpDefault.FindStringSubmatch(m[2]); d != nil {
			def = d[1]
		}
		flags[m[1]] = def
	}
	if len(flags) < 3 {
		t.Fatalf("%s --help lists %d flags; the parser no longer reads its format:\n%s", name, len(flags), out)
	}
	return flags
}

// manifests is one kustomization's output, every object decoded into its API type.
type manifests struct {
	dir    string
	region string // the overlay's region; "" for the base
	ids    []string
	objs   []metav1.Object

	namespaces map[string]*corev1.Namespace
	services   map[string]*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	agent      *appsv1.DaemonSet
	collector  *appsv1.StatefulSet
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler

	// secrets are the Secrets' keys the pods read, as the checks find them.
	secrets []secretRef
}

// kinds are the objects a kustomization may produce: apiVersion and a new value of the type
// it decodes into. Any other kind fails the test.
var kinds = map[string]struct {
	apiVersion string
	new        func() metav1.Object
}{
	"Namespace":               {"v1", func() metav1.Object { return new(corev1.Namespace) }},
	"ServiceAccount":          {"v1", func() metav1.Object { return new(corev1.ServiceAccount) }},
	"ConfigMap":               {"v1", func() metav1.Object { return new(corev1.ConfigMap) }},
	"Secret":                  {"v1", func() metav1.Object { return new(corev1.Secret) }},
	"Service":                 {"v1", func() metav1.Object { return new(corev1.Service) }},
	"PersistentVolumeClaim":   {"v1", func() metav1.Object { return new(corev1.PersistentVolumeClaim) }},
	"DaemonSet":               {"apps/v1", func() metav1.Object { return new(appsv1.DaemonSet) }},
	"Deployment":              {"apps/v1", func() metav1.Object { return new(appsv1.Deployment) }},
	"StatefulSet":             {"apps/v1", func() metav1.Object { return new(appsv1.StatefulSet) }},
	"PodDisruptionBudget":     {"policy/v1", func() metav1.Object { return new(policyv1.PodDisruptionBudget) }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() metav1.Object { return new(autoscalingv2.HorizontalPodAutoscaler) }},
}

// build runs kustomize on dir and decodes every object strictly: an unknown kind, an unknown
// or duplicated field, or a value of the wrong type fails.
func build(t *testing.T, dir, region string) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := &manifests{
		dir: dir, region: region,
		namespaces: map[string]*corev1.Namespace{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{},
	}
	for _, r := range rm.Resources() {
		kind, apiVersion := r.GetKind(), r.GetApiVersion()
		id := fmt.Sprintf("%s %s/%s", kind, r.GetNamespace(), r.GetName())
		k, ok := kinds[kind]
		if !ok {
			t.Errorf("%s: kind %s is not one this test knows", dir, id)
			continue
		}
		if apiVersion != k.apiVersion {
			t.Errorf("%s: %s has apiVersion %s, want %s", dir, id, apiVersion, k.apiVersion)
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, id, err)
		}
		obj := k.new()
		if err := k8syaml.UnmarshalStrict(y, obj); err != nil {
			t.Errorf("%s: %s does not decode strictly into its API type: %v\n%s", dir, id, err, y)
			continue
		}
		m.ids = append(m.ids, id)
		m.objs = append(m.objs, obj)
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *appsv1.DaemonSet:
			m.agent = o
		case *appsv1.StatefulSet:
			m.collector = o
		case *policyv1.PodDisruptionBudget:
			m.pdb = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpa = o
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// kustomizations lists the base and every overlay, with its region.
func kustomizations(t *testing.T) []struct{ dir, region string } {
	t.Helper()
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.IsDir() {
			got = append(got, e.Name())
		}
	}
	want := slices.Clone(overlayRegions)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overlays/ holds other regions than the six of the fleet (-want +got):\n%s", diff)
	}
	list := []struct{ dir, region string }{{"base", ""}}
	for _, r := range got {
		list = append(list, struct{ dir, region string }{filepath.Join("overlays", r), r})
	}
	return list
}

// knownRegions reads the regions the collector has factors for.
func knownRegions(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(regionsCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", regionsCSV, err)
	}
	if len(rows) < 2 || rows[0][0] != "region" {
		t.Fatalf("%s: want a header starting with region, then rows", regionsCSV)
	}
	regions := map[string]bool{}
	for _, row := range rows[1:] {
		regions[row[0]] = true
	}
	return regions
}

// TestKustomizations builds the base and every overlay and checks what a working deployment
// depends on.
func TestKustomizations(t *testing.T) {
	agentFlags, collectorFlags := flagsOf(t, agentName), flagsOf(t, collectorName)
	statusFlags := flagsOf(t, collectorName, "status")
	regions := knownRegions(t)
	for _, k := range kustomizations(t) {
		t.Run(k.dir, func(t *testing.T) {
			t.Parallel()
			m := build(t, k.dir, k.region)
			checkObjects(t, m)
			checkAgent(t, m, agentFlags, regions)
			checkCollector(t, m, collectorFlags, statusFlags)
			checkSecrets(t, m)
		})
	}
}

// checkObjects checks the set of objects, their namespaces, labels and images.
func checkObjects(t *testing.T, m *manifests) {
	t.Helper()
	want := []string{
		"ConfigMap fleetwatt/fleetwatt-collector-config-<hash>",
		"DaemonSet fleetwatt-agent/fleetwatt-agent",
		"HorizontalPodAutoscaler fleetwatt/fleetwatt-collector",
		"Namespace /fleetwatt",
		"Namespace /fleetwatt-agent",
		"PodDisruptionBudget fleetwatt/fleetwatt-collector",
		"Service fleetwatt/fleetwatt-collector",
		"Service fleetwatt/fleetwatt-collector-headless",
		"ServiceAccount fleetwatt-agent/fleetwatt-agent",
		"ServiceAccount fleetwatt/fleetwatt-collector",
		"StatefulSet fleetwatt/fleetwatt-collector",
	}
	hash := regexp.MustCompile(`^(ConfigMap fleetwatt/` + configMapName + `)-[a-z0-9]{10}$`)
	var got []string
	for _, id := range m.ids {
		got = append(got, hash.ReplaceAllString(id, "$1-<hash>"))
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: objects (-want +got):\n%s", m.dir, diff)
	}

	for i, o := range m.objs {
		if _, isNS := o.(*corev1.Namespace); !isNS {
			if ns := o.GetNamespace(); m.namespaces[ns] == nil {
				t.Errorf("%s: %s is in namespace %q, which the build does not create", m.dir, m.ids[i], ns)
			}
		}
		if m.region != "" && o.GetLabels()[regionLabel] != m.region {
			t.Errorf("%s: %s: label %s=%q, want %q", m.dir, m.ids[i], regionLabel, o.GetLabels()[regionLabel], m.region)
		}
	}
	// Pod Security: the collector meets "restricted"; the agent's hostPath volumes need
	// "privileged" (baseline refuses hostPath), which only its own namespace allows.
	for ns, level := range map[string]string{collectorNS: "restricted", agentNS: "privileged"} {
		if n := m.namespaces[ns]; n == nil || n.Labels["pod-security.kubernetes.io/enforce"] != level {
			t.Errorf("%s: namespace %s must enforce Pod Security %q", m.dir, ns, level)
		}
	}

	for _, w := range []struct {
		name string
		tpl  *corev1.PodTemplateSpec
		sel  *metav1.LabelSelector
	}{{agentName, &m.agent.Spec.Template, m.agent.Spec.Selector}, {collectorName, &m.collector.Spec.Template, m.collector.Spec.Selector}} {
		if m.region != "" && w.tpl.Labels[regionLabel] != m.region {
			t.Errorf("%s: %s pods: label %s=%q, want %q", m.dir, w.name, regionLabel, w.tpl.Labels[regionLabel], m.region)
		}
		if _, inSelector := w.sel.MatchLabels[regionLabel]; inSelector {
			t.Errorf("%s: %s: the region label must stay out of the selector, which cannot change once applied", m.dir, w.name)
		}
		if !selects(t, w.sel, w.tpl.Labels) {
			t.Errorf("%s: %s: selector %v does not select its own pods %v", m.dir, w.name, w.sel.MatchLabels, w.tpl.Labels)
		}
		if len(w.tpl.Spec.Containers) != 1 {
			t.Fatalf("%s: %s: %d containers, want 1", m.dir, w.name, len(w.tpl.Spec.Containers))
		}
		c := w.tpl.Spec.Containers[0]
		if want := []string{"/usr/bin/" + w.name}; !slices.Equal(c.Command, want) {
			t.Errorf("%s: %s: command %q, want %q", m.dir, w.name, c.Command, want)
		}
		repo, tag := splitImage(c.Image)
		if repo != "ghcr.io/fleetwatt/"+w.name {
			t.Errorf("%s: %s: image %q, want ghcr.io/fleetwatt/%s", m.dir, w.name, c.Image, w.name)
		}
		if m.region != "" && (tag == "" || tag == "latest") {
			t.Errorf("%s: %s: image %q is not pinned to a release (images: newTag in the overlay)", m.dir, w.name, c.Image)
		}
		checkResources(t, m.dir+": "+w.name, c.Resources)
		if w.tpl.Spec.AutomountServiceAccountToken == nil || *w.tpl.Spec.AutomountServiceAccountToken {
			t.Errorf("%s: %s: automountServiceAccountToken must be false: it never calls the Kubernetes API", m.dir, w.name)
		}
		if w.tpl.Spec.HostNetwork || w.tpl.Spec.HostPID || w.tpl.Spec.HostIPC {
			t.Errorf("%s: %s: host network, PID or IPC namespace shared; it needs none", m.dir, w.name)
		}
		if !seccompRuntimeDefault(w.tpl.Spec.SecurityContext, c.SecurityContext) {
			t.Errorf("%s: %s: seccompProfile RuntimeDefault missing", m.dir, w.name)
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: %s: no securityContext", m.dir, w.name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
			sc.Privileged != nil && *sc.Privileged,
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}),
			sc.Capabilities != nil && len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: %s: securityContext must drop ALL capabilities, add none, forbid privilege escalation and keep the root filesystem read-only: %+v", m.dir, w.name, sc)
		}
	}
}

// splitImage splits an image reference into repository and tag ("" without one; the digest
// when pinned by one).
func splitImage(image string) (repo, tag string) {
	if i := strings.LastIndex(image, "@"); i >= 0 {
		return image[:i], image[i+1:]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

func seccompRuntimeDefault(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	if c != nil && c.SeccompProfile != nil {
		return c.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	}
	return pod != nil && pod.SeccompProfile != nil && pod.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
}

// checkResources checks that a container asks for CPU and memory (the scheduler's and the
// HorizontalPodAutoscaler's basis) and is bounded in memory.
func checkResources(t *testing.T, who string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := r.Requests[name]; !ok || q.Sign() <= 0 {
			t.Errorf("%s: no %s request", who, name)
		}
	}
	req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
	if lim.Sign() <= 0 || lim.Cmp(req) < 0 {
		t.Errorf("%s: memory limit %s must be set and at least the request %s", who, lim.String(), req.String())
	}
}

// args parses a container's arguments: each "--name=value", name a flag of the binary
// (known, from its --help), none twice.
func args(t *testing.T, who string, list []string, known map[string]string) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, a := range list {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("%s: argument %q: want --name=value", who, a)
			continue
		}
		if _, ok := known[name]; !ok {
			t.Errorf("%s: --%s is not a flag of the binary (its --help lists %s)", who, name, strings.Join(sortedKeys(known), ", "))
		}
		if _, dup := flags[name]; dup {
			t.Errorf("%s: --%s given twice", who, name)
		}
		flags[name] = value
	}
	return flags
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envRef is a reference to a container's environment variable in its arguments, which the
// kubelet expands.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// envFieldRefs checks that every $(VAR) in a container's arguments is one of its environment
// variables (the kubelet leaves an unknown one as it is) and returns each variable's downward
// API field path.
func envFieldRefs(t *testing.T, who string, c *corev1.Container) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
		} else {
			fields[e.Name] = ""
		}
	}
	for _, a := range c.Args {
		for _, ref := range envRef.FindAllStringSubmatch(a, -1) {
			if _, ok := fields[ref[1]]; !ok {
				t.Errorf("%s: argument %q uses $(%s), which the container does not define", who, a, ref[1])
			}
		}
	}
	return fields
}

// fieldFrom returns the downward API field a flag's value "$(VAR)" comes from.
func fieldFrom(value string, fields map[string]string) string {
	m := envRef.FindStringSubmatch(value)
	if m == nil || m[0] != value {
		return ""
	}
	return fields[m[1]]
}

// fileSource is where a file a container reads comes from: the volume mounted at the longest
// mount path holding it.
type fileSource struct {
	mount corev1.VolumeMount
	// volume is the pod's volume; nil for a StatefulSet's volume claim template, in claim.
	volume *corev1.Volume
	claim  *corev1.PersistentVolumeClaim
	rel    string // the file's path inside the volume
}

func sourceOf(t *testing.T, who, file string, spec *corev1.PodSpec, c *corev1.Container, claims []corev1.PersistentVolumeClaim) fileSource {
	t.Helper()
	var src fileSource
	found := false
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || !path.IsAbs(file) {
			continue
		}
		if !found || len(vm.MountPath) > len(src.mount.MountPath) {
			src, found = fileSource{mount: vm, rel: rel}, true
		}
	}
	if !found {
		t.Fatalf("%s: %s is on no volume: the container's root filesystem is read-only and holds no configuration", who, file)
	}
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == src.mount.Name {
			src.volume = &spec.Volumes[i]
		}
	}
	for i := range claims {
		if claims[i].Name == src.mount.Name {
			src.claim = &claims[i]
		}
	}
	if src.volume == nil && src.claim == nil {
		t.Fatalf("%s: mount %s names volume %q, which the pod does not have", who, src.mount.MountPath, src.mount.Name)
	}
	return src
}

// secretKey returns the Secret and key a file comes from, failing when it comes from
// anything else or from no key of it.
func secretKey(t *testing.T, who, file string, src fileSource) (name, key string) {
	t.Helper()
	if src.volume == nil || src.volume.Secret == nil {
		t.Fatalf("%s: %s must come from a Secret", who, file)
	}
	s := src.volume.Secret
	if len(s.Items) == 0 {
		return s.SecretName, src.rel
	}
	for _, it := range s.Items {
		if it.Path == src.rel {
			return s.SecretName, it.Key
		}
	}
	t.Fatalf("%s: %s: Secret %s projects no item at %s", who, file, s.SecretName, src.rel)
	return "", ""
}

// checkAgent checks the DaemonSet against the agent's flags and the host it reads.
func checkAgent(t *testing.T, m *manifests, known map[string]string, regions map[string]bool) {
	t.Helper()
	ds := m.agent
	spec := &ds.Spec.Template.Spec
	c := &spec.Containers[0]
	who := m.dir + ": agent"
	flags := args(t, who, c.Args, known)
	fields := envFieldRefs(t, who, c)

	// --root: the host's /sys and /proc, read-only, where the agent looks for them.
	root := flags["root"]
	if root == "" || root == "/" {
		t.Errorf("%s: --root=%q: the agent must read the host's /sys and /proc, mounted below a root of their own", who, root)
	}
	for _, dir := range []string{"sys", "proc"} {
		src := sourceOf(t, who, path.Join(root, dir), spec, c, nil)
		hp := src.volume.HostPath
		if hp == nil || hp.Path != "/"+dir || src.rel != "." {
			t.Errorf("%s: %s/%s must be the host's /%s (a hostPath volume mounted there); got %+v", who, root, dir, dir, src.volume.VolumeSource)
		}
		if hp != nil && (hp.Type == nil || *hp.Type != corev1.HostPathDirectory) {
			t.Errorf("%s: hostPath /%s: type must be Directory, never created by the kubelet", who, dir)
		}
		if !src.mount.ReadOnly {
			t.Errorf("%s: the host's /%s must be mounted read-only", who, dir)
		}
		if src.mount.RecursiveReadOnly == nil || *src.mount.RecursiveReadOnly != corev1.RecursiveReadOnlyIfPossible {
			t.Errorf("%s: the host's /%s: recursiveReadOnly IfPossible keeps the mounts below it read-only too", who, dir)
		}
	}

	// The node's name and zone from the downward API, the region from the overlay.
	if f := fieldFrom(flags["host-name"], fields); f != "spec.nodeName" {
		t.Errorf("%s: --host-name=%q must be $(VAR) of the downward API's spec.nodeName (got field %q)", who, flags["host-name"], f)
	}
	if f := fieldFrom(flags["zone"], fields); f != "metadata.labels['"+zoneLabel+"']" {
		t.Errorf("%s: --zone=%q must be $(VAR) of the pod's %s label (got field %q)", who, flags["zone"], zoneLabel, f)
	}
	switch region, ok := flags["region"]; {
	case m.region == "" && ok:
		t.Errorf("%s: the base sets --region=%s; only overlays may", who, region)
	case m.region != "" && region != m.region:
		t.Errorf("%s: --region=%q, want the overlay's region %q", who, region, m.region)
	case m.region != "" && !regions[region]:
		t.Errorf("%s: --region=%q is not a region of %s", who, region, regionsCSV)
	}

	// The collector: over TLS, to the Service's OTLP/gRPC port, with a token and a CA from the
	// Secret.
	if p := flags["protocol"]; p != "" && p != "grpc" {
		t.Errorf("%s: --protocol=%s; the endpoint is the gRPC port", who, p)
	}
	checkEndpoint(t, m, flags["endpoint"], "otlp-grpc")
	for _, f := range []string{"token-file", "tls-ca"} {
		if flags[f] == "" {
			t.Errorf("%s: --%s missing: agents send a bearer token, over TLS", who, f)
			continue
		}
		src := sourceOf(t, who, flags[f], spec, c, nil)
		name, key := secretKey(t, who, flags[f], src)
		m.secrets = append(m.secrets, secretRef{ds.Namespace, name, key})
	}

	// The spool: on the node's disk, so a restarted pod sends what it kept.
	spool := flags["spool-dir"]
	if spool == "" {
		t.Errorf("%s: no --spool-dir: an outage of the collector would lose what a restarted pod held", who)
	} else {
		src := sourceOf(t, who, spool, spec, c, nil)
		hp := src.volume.HostPath
		if hp == nil || hp.Path != "/var/lib/fleetwatt-agent" || src.mount.ReadOnly {
			t.Errorf("%s: --spool-dir=%s must be on a writable hostPath volume of /var/lib/fleetwatt-agent, which outlives the pod; got %+v", who, spool, src.volume.VolumeSource)
		}
	}

	// Every node, whatever its taints.
	everywhere := false
	for _, tol := range spec.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == "" {
			everywhere = true
		}
	}
	if !everywhere {
		t.Errorf("%s: no toleration {operator: Exists}: nodes with taints would have no agent", who)
	}

	// Small: it runs beside every workload.
	req := c.Resources.Requests
	if cpu := req[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("50m")) > 0 {
		t.Errorf("%s: CPU request %s: an agent reading a few files every 10 s needs far less than 50m", who, cpu.String())
	}
	if mem := req[corev1.ResourceMemory]; mem.Cmp(resource.MustParse("64Mi")) > 0 {
		t.Errorf("%s: memory request %s is over 64Mi", who, mem.String())
	}

	// uid 0 for the root-only RAPL counters, with no capability; only where the host's root
	// is root (no user namespace), else the counters read as someone else's.
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("%s: runAsUser must be 0: RAPL's energy_uj is mode 0400, owner root", who)
	}
	if spec.HostUsers != nil && !*spec.HostUsers {
		t.Errorf("%s: hostUsers false maps uid 0 to an unprivileged host uid, which cannot read RAPL", who)
	}
	if spec.PriorityClassName != "" && spec.PriorityClassName != "system-node-critical" {
		t.Errorf("%s: priorityClassName %q", who, spec.PriorityClassName)
	}
}

// checkEndpoint checks that an agent's --endpoint names the collector's Service in the
// collector's namespace, on the Service port that leads to the container port named port.
func checkEndpoint(t *testing.T, m *manifests, endpoint, port string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		t.Errorf("%s: agent --endpoint=%q: want https://: the agent refuses to send its token over http://", m.dir, endpoint)
		return
	}
	svcName, ns, ok := strings.Cut(strings.TrimSuffix(u.Hostname(), ".cluster.local"), ".")
	ns = strings.TrimSuffix(ns, ".svc")
	svc := m.services[svcName]
	if !ok || svc == nil || svc.Namespace != ns || !strings.HasSuffix(u.Hostname(), ".svc") && !strings.HasSuffix(u.Hostname(), ".svc.cluster.local") {
		t.Errorf("%s: agent --endpoint=%q: want <service>.<namespace>.svc of a Service in the build", m.dir, endpoint)
		return
	}
	if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, m.collector.Spec.Template.Labels) {
		t.Errorf("%s: Service %s does not select the collector's pods", m.dir, svcName)
	}
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == u.Port() {
			if p.TargetPort.String() != port {
				t.Errorf("%s: agent --endpoint=%q: Service port %d leads to %q, want the collector's %s", m.dir, endpoint, p.Port, p.TargetPort.String(), port)
			}
			return
		}
	}
	t.Errorf("%s: agent --endpoint=%q: Service %s has no port %s", m.dir, endpoint, svcName, u.Port())
}

// collectorConfig is what the test reads of the collector's configuration file (the
// collector itself reads it strictly in run_test.go).
type collectorConfig struct {
	Influx struct {
		URL       string `yaml:"url"`
		Bucket    string `yaml:"bucket"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"influx"`
	OTLP struct {
		GRPC string `yaml:"grpc"`
		HTTP string `yaml:"http"`
	} `yaml:"otlp"`
	Listen string `yaml:"listen"`
	WAL    struct {
		Dir        string `yaml:"dir"`
		MaxBytes   int64  `yaml:"max_bytes"`
		DeadLetter string `yaml:"dead_letter"`
	} `yaml:"wal"`
	TLS struct {
		CertFile     string `yaml:"cert_file"`
		KeyFile      string `yaml:"key_file"`
		ClientCAFile string `yaml:"client_ca_file"`
	} `yaml:"tls"`
	Auth struct {
		TokensFile string `yaml:"tokens_file"`
	} `yaml:"auth"`
}

// defaultWALBytes is wal.max_bytes when the file leaves it out (collector.example.yaml).
const defaultWALBytes = 8 << 30

// effectiveConfig is the collector's configuration as the pod runs it: its --help defaults,
// then the ConfigMap's file, then the flags.
func effectiveConfig(t *testing.T, m *manifests, flags, defaults map[string]string) collectorConfig {
	t.Helper()
	spec := &m.collector.Spec.Template.Spec
	c := &spec.Containers[0]
	var cfg collectorConfig
	cfg.Influx.URL, cfg.Influx.Bucket = defaults["influx-url"], defaults["influx-bucket"]
	cfg.OTLP.GRPC, cfg.OTLP.HTTP, cfg.Listen = defaults["otlp-grpc"], defaults["otlp-http"], defaults["listen"]
	cfg.WAL.MaxBytes = defaultWALBytes
	if file := flags["config"]; file != "" {
		src := sourceOf(t, m.dir+": collector", file, spec, c, nil)
		if src.volume.ConfigMap == nil {
			t.Fatalf("%s: collector --config=%s is not from a ConfigMap", m.dir, file)
		}
		cm := m.configMaps[src.volume.ConfigMap.Name]
		if cm == nil {
			t.Fatalf("%s: collector volume %s names ConfigMap %s, which the build does not have (kustomize renames generated ones)", m.dir, src.volume.Name, src.volume.ConfigMap.Name)
		}
		if cm.Namespace != m.collector.Namespace {
			t.Fatalf("%s: ConfigMap %s is in %s, the collector in %s", m.dir, cm.Name, cm.Namespace, m.collector.Namespace)
		}
		data, ok := cm.Data[src.rel]
		if !ok {
			t.Fatalf("%s: collector --config=%s: ConfigMap %s has no key %s", m.dir, file, cm.Name, src.rel)
		}
		if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
			t.Fatalf("%s: %s: %v", m.dir, file, err)
		}
	}
	for flag, dst := range map[string]*string{
		"influx-url": &cfg.Influx.URL, "influx-bucket": &cfg.Influx.Bucket, "influx-token-file": &cfg.Influx.TokenFile,
		"otlp-grpc": &cfg.OTLP.GRPC, "otlp-http": &cfg.OTLP.HTTP, "listen": &cfg.Listen, "wal-dir": &cfg.WAL.Dir,
		"tls-cert": &cfg.TLS.CertFile, "tls-key": &cfg.TLS.KeyFile, "tls-client-ca": &cfg.TLS.ClientCAFile,
		"auth-tokens-file": &cfg.Auth.TokensFile,
	} {
		if v, ok := flags[flag]; ok {
			*dst = v
		}
	}
	return cfg
}

// checkCollector checks the StatefulSet, its Services, probes, volumes, the
// PodDisruptionBudget and the HorizontalPodAutoscaler against the collector's flags and
// configuration.
func checkCollector(t *testing.T, m *manifests, known, status map[string]string) {
	t.Helper()
	ss := m.collector
	spec := &ss.Spec.Template.Spec
	c := &spec.Containers[0]
	who := m.dir + ": collector"
	flags := args(t, who, c.Args, known)
	// docs/kubernetes.md runs `fleetwatt-collector status` with the pod's arguments.
	args(t, who+" status", c.Args, status)
	envFieldRefs(t, who, c)
	cfg := effectiveConfig(t, m, flags, known)

	// InfluxDB: each region its own, named in its overlay.
	u, err := url.Parse(cfg.Influx.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		t.Errorf("%s: influx url %q: want http(s)://host", who, cfg.Influx.URL)
	case m.region != "" && !strings.Contains(u.Host, m.region):
		t.Errorf("%s: influx url %q does not name the overlay's region %s: copied from another overlay?", who, cfg.Influx.URL, m.region)
	}
	if m.region != "" && (flags["influx-url"] == "" || flags["influx-bucket"] == "") {
		t.Errorf("%s: the overlay must set --influx-url and --influx-bucket", who)
	}
	if strings.TrimSpace(cfg.Influx.Bucket) == "" {
		t.Errorf("%s: no influx bucket", who)
	}

	// Ports: the collector's defaults, exposed under the names the Services use.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, l := range []struct{ name, flag, addr string }{
		{"otlp-grpc", "otlp-grpc", cfg.OTLP.GRPC}, {"otlp-http", "otlp-http", cfg.OTLP.HTTP}, {"http", "listen", cfg.Listen},
	} {
		if l.addr != known[l.flag] {
			t.Errorf("%s: %s listens on %q, not the collector's default %q: the ports below assume the defaults", who, l.flag, l.addr, known[l.flag])
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			t.Errorf("%s: %s %q: %v", who, l.flag, l.addr, err)
			continue
		}
		if strconv.Itoa(int(ports[l.name])) != port {
			t.Errorf("%s: container port %s is %d, the collector listens on %s", who, l.name, ports[l.name], port)
		}
	}
	for _, name := range []string{collectorName, headlessName} {
		svc := m.services[name]
		if svc == nil {
			t.Errorf("%s: no Service %s", m.dir, name)
			continue
		}
		if svc.Namespace != ss.Namespace || !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, ss.Spec.Template.Labels) {
			t.Errorf("%s: Service %s does not select the collector's pods", m.dir, name)
		}
		exposed := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			if n, ok := ports[p.TargetPort.String()]; !ok || p.Port != n {
				t.Errorf("%s: Service %s port %d targets %q; want the container port of that name and number", m.dir, name, p.Port, p.TargetPort.String())
			}
			exposed[p.TargetPort.String()] = true
		}
		if len(exposed) != len(ports) {
			t.Errorf("%s: Service %s exposes %v of the collector's ports %v", m.dir, name, sortedKeys(exposed), sortedKeys(ports))
		}
	}
	if h := m.services[headlessName]; h == nil || h.Spec.ClusterIP != corev1.ClusterIPNone || ss.Spec.ServiceName != headlessName {
		t.Errorf("%s: the StatefulSet's serviceName must be the headless Service %s", m.dir, headlessName)
	}

	// Probes: the collector's own paths, on its listener, over TLS when it serves TLS.
	scheme := corev1.URISchemeHTTP
	if cfg.TLS.CertFile != "" {
		scheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s probe (HTTP GET %s)", who, p.kind, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port.String() != "http" || g.Scheme != scheme {
			t.Errorf("%s: %s probe %s %s on port %s, want %s %s on port http", who, p.kind, g.Scheme, g.Path, g.Port.String(), scheme, p.path)
		}
	}

	// The write-ahead log: on the replica's own volume, writable, with the dead-letter file,
	// which defaults to the log's parent directory.
	if cfg.WAL.Dir == "" {
		t.Errorf("%s: no wal.dir: exports would be acknowledged only once InfluxDB has them", who)
	} else {
		dead := cfg.WAL.DeadLetter
		if dead == "" {
			dead = path.Join(path.Dir(path.Clean(cfg.WAL.Dir)), "dead-letter.jsonl")
		}
		for _, f := range []string{cfg.WAL.Dir, dead} {
			src := sourceOf(t, who, f, spec, c, ss.Spec.VolumeClaimTemplates)
			if src.claim == nil || src.mount.ReadOnly {
				t.Errorf("%s: %s must be on a writable volume claim template (each replica its own log)", who, f)
				continue
			}
			if !slices.Equal(src.claim.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
				t.Errorf("%s: claim %s: access modes %v, want [ReadWriteOnce]", who, src.claim.Name, src.claim.Spec.AccessModes)
			}
			size := src.claim.Spec.Resources.Requests[corev1.ResourceStorage]
			if size.CmpInt64(cfg.WAL.MaxBytes) <= 0 {
				t.Errorf("%s: claim %s of %s holds no more than wal.max_bytes %d: no room for the dead-letter file", who, src.claim.Name, size.String(), cfg.WAL.MaxBytes)
			}
		}
	}
	if p := ss.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("%s: a replica scaled away must keep its volume (whenScaled: Retain): its log may hold undrained exports", who)
	}

	// Files the configuration names: from the Secrets docs/kubernetes.md creates.
	for key, file := range map[string]string{
		"tls.cert_file": cfg.TLS.CertFile, "tls.key_file": cfg.TLS.KeyFile,
		"auth.tokens_file": cfg.Auth.TokensFile, "influx.token_file": cfg.Influx.TokenFile,
	} {
		if file == "" {
			t.Errorf("%s: %s is empty", who, key)
			continue
		}
		src := sourceOf(t, who, file, spec, c, nil)
		name, skey := secretKey(t, who, file, src)
		m.secrets = append(m.secrets, secretRef{ss.Namespace, name, skey})
		// Non-root reads the Secret's files through fsGroup.
		if mode := src.volume.Secret.DefaultMode; mode == nil || *mode&0o040 == 0 || spec.SecurityContext.FSGroup == nil {
			t.Errorf("%s: %s: the Secret's files must be group-readable with fsGroup set, or uid %v cannot read them", who, key, spec.SecurityContext.RunAsUser)
		}
	}

	// Pod Security "restricted".
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: must run as a non-root uid", who)
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil && v.Secret == nil && v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Projected == nil && v.DownwardAPI == nil {
			t.Errorf("%s: volume %s is of a kind Pod Security \"restricted\" refuses", who, v.Name)
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 60 {
		t.Errorf("%s: terminationGracePeriodSeconds %v: the receivers get 30 s to finish, then the drainer 30 s", who, g)
	}

	// Replicas: the autoscaler's, at least two, never reset by an apply.
	if ss.Spec.Replicas != nil {
		t.Errorf("%s: spec.replicas is set: every apply would reset the autoscaler's count", who)
	}
	h := m.hpa
	if ref := h.Spec.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "StatefulSet" || ref.Name != ss.Name || h.Namespace != ss.Namespace {
		t.Errorf("%s: HorizontalPodAutoscaler targets %+v, want the StatefulSet %s", m.dir, ref, ss.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		t.Errorf("%s: HorizontalPodAutoscaler replicas %v..%d: want at least 2", m.dir, h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	cpu := false
	for _, mt := range h.Spec.Metrics {
		cpu = cpu || mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil &&
			mt.Resource.Name == corev1.ResourceCPU && mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType
	}
	if !cpu {
		t.Errorf("%s: HorizontalPodAutoscaler does not scale on CPU utilization", m.dir)
	}
	if p := m.pdb; p.Namespace != ss.Namespace || !selects(t, p.Spec.Selector, ss.Spec.Template.Labels) {
		t.Errorf("%s: PodDisruptionBudget does not cover the collector's pods", m.dir)
	} else if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("%s: PodDisruptionBudget maxUnavailable %v, want 1", m.dir, p.Spec.MaxUnavailable)
	}
}

// checkSecrets checks that the build makes no Secret (a placeholder would overwrite the real
// one at every apply) and that the documentation creates every key the pods mount.
func checkSecrets(t *testing.T, m *manifests) {
	t.Helper()
	for _, id := range m.ids {
		if strings.HasPrefix(id, "Secret ") {
			t.Errorf("%s: the build makes %s; Secrets are created outside kustomize (docs/kubernetes.md)", m.dir, id)
		}
	}
	got := slices.Clone(m.secrets)
	slices.SortFunc(got, func(a, b secretRef) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.Key, b.Namespace+"/"+b.Name+"/"+b.Key)
	})
	if diff := cmp.Diff(wantSecrets, got); diff != "" {
		t.Errorf("%s: the Secrets' keys the pods read (-documented +read):\n%s", m.dir, diff)
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range wantSecrets {
		// kubectl -n NS create secret generic NAME --from-file=KEY=...; or, for a certificate
		// and key, create secret tls NAME --cert --key.
		generic := regexp.MustCompile(`kubectl -n ` + regexp.QuoteMeta(s.Namespace) + ` create secret generic ` +
			regexp.QuoteMeta(s.Name) + ` [^\n]*(?:\\\n[^\n]*)*--from-file=` + regexp.QuoteMeta(s.Key) + `=`)
		tls := regexp.MustCompile(`kubectl -n ` + regexp.QuoteMeta(s.Namespace) + ` create secret tls ` + regexp.QuoteMeta(s.Name) + ` `)
		isTLS := s.Key == "tls.crt" || s.Key == "tls.key"
		if !generic.Match(doc) && (!isTLS || !tls.Match(doc)) {
			t.Errorf("%s does not show how to create Secret %s/%s key %s", docPath, s.Namespace, s.Name, s.Key)
		}
	}
}
