package kubernetes

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/fleetwatt/fleetwatt/internal/fixture"
	"github.com/fleetwatt/fleetwatt/internal/influxql"
	"github.com/fleetwatt/fleetwatt/internal/influxtest"
	"github.com/fleetwatt/fleetwatt/internal/tlstest"
)

// TestOverlaysRun starts, for every overlay, the real collector and the real agent exactly as
// their pods would: the containers' arguments and environment (the downward API's values
// filled in), every volume laid out where it is mounted (the ConfigMap's file, the Secrets'
// keys as docs/kubernetes.md creates them, the host's /sys and /proc from a fixture machine),
// below a temporary directory that stands for the container's root. Only the addresses change:
// the collector listens on free loopback ports and writes a test InfluxDB, the agent sends to
// it. Then it checks what the deployment promises: the probes' paths answer 200; the agent
// finds the host's power meter through its mounts, and the data of its first interval (10 s)
// arrives in InfluxDB under the overlay's region and the node's name and zone, through TLS
// and the region-bound token; both stop cleanly on SIGTERM within their pods' grace periods,
// the agent having sent everything and read every file without error.
func TestOverlaysRun(t *testing.T) {
	agentBin, collectorBin := binary(t, agentName), binary(t, collectorName)
	influx := influxtest.Start(t)
	ca := tlstest.NewCA(t, "fleetwatt-kubernetes")
	server := ca.Server(t, "fleetwatt-collector")
	// All at once, whatever -parallel says: each mostly waits for the agent's first interval.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, region := range overlayRegions {
		wg.Go(func() {
			t.Run(region, func(t *testing.T) { runOverlay(t, region, agentBin, collectorBin, influx, ca, server) })
		})
	}
}

// runOverlay runs one overlay's collector and agent; see TestOverlaysRun.
func runOverlay(t *testing.T, region, agentBin, collectorBin string, influx *influxtest.Server, ca *tlstest.CA, server tlstest.Pair) {
	m := build(t, filepath.Join("overlays", region), region)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := influx.Client().Query(ctx, "", "CREATE DATABASE "+influxql.QuoteIdent(region)); err != nil {
		t.Fatal(err)
	}

	token := randomToken(t)
	sum := sha256.Sum256([]byte(token))
	secrets := map[string]map[string][]byte{
		"fleetwatt-collector-tls": {"tls.crt": readFile(t, server.CertFile), "tls.key": readFile(t, server.KeyFile)},
		"fleetwatt-collector-auth": {"tokens.yaml": fmt.Appendf(nil,
			"tokens:\n  - name: %s-agents\n    sha256: %s\n    regions: [%s]\n", region, hex.EncodeToString(sum[:]), region)},
		// InfluxDB 1.8 without authentication ignores the token.
		"fleetwatt-influx": {"token": []byte("test:test\n")},
		"fleetwatt-agent":  {"token": []byte(token), "ca.crt": readFile(t, ca.CertFile)},
	}

	coll := startCollector(t, m, collectorBin, secrets, influx, region)
	checkProbes(t, m, coll, ca.Pool)

	node, zone := "node-"+region, region+"-a"
	agent, agentRoot := startAgent(t, m, agentBin, secrets, coll.grpc, node, zone)
	// What the agent sent at its first interval (10 s), through the collector's log,
	// in InfluxDB: its tags, and readings of the host's power meter.
	want := map[string][]string{"region": {region}, "host": {node}, "zone": {zone}}
	src := fixtureMachines[runtime.GOARCH].source
	var got map[string][]string
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		got = tagValues(ctx, t, influx, region, "region", "host", "zone", "source")
		sources := got["source"]
		delete(got, "source")
		if cmp.Equal(want, got) && slices.Contains(sources, src) || time.Now().After(deadline) {
			if !slices.Contains(sources, src) {
				t.Errorf("InfluxDB holds readings of the sources %v, want %s's among them", sources, src)
			}
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags of the agent's data in InfluxDB (-want +got):\n%s", diff)
	}

	if st, err := os.Stat(filepath.Join(agentRoot, "var/lib/fleetwatt-agent/spool")); err != nil || !st.IsDir() {
		t.Errorf("the agent's spool is not on its hostPath volume: %v", err)
	}
	// The sizing: what each used is within what its pod asks for.
	checkMemory(t, agent, m.agent.Spec.Template.Spec.Containers[0].Resources)
	checkMemory(t, coll.process, m.collector.Spec.Template.Spec.Containers[0].Resources)
	stopAgent(t, m, agent)
	coll.stop(t, time.Duration(*m.collector.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second)
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// podEnv gives a container's environment as the kubelet would for a pod on node in zone:
// the downward API's fields this test knows, and literal values.
func podEnv(t *testing.T, c *corev1.Container, node, zone string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = node
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.labels['"+zoneLabel+"']":
			env[e.Name] = zone
		default:
			t.Fatalf("environment variable %s: a source this test cannot fill: %+v", e.Name, e.ValueFrom)
		}
	}
	return env
}

// containerArgs expands $(VAR) in a container's arguments as the kubelet does, and puts every
// absolute path below root, the directory standing for the container's filesystem.
func containerArgs(c *corev1.Container, env map[string]string, root string) []string {
	var out []string
	for _, a := range c.Args {
		a = envRef.ReplaceAllStringFunc(a, func(ref string) string { return env[ref[2:len(ref)-1]] })
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(value, "/") {
			a = name + "=" + filepath.Join(root, value)
		}
		out = append(out, a)
	}
	return out
}

// layOut creates every volume a container mounts below root, where it is mounted: a
// ConfigMap's keys from the build, a Secret's from secrets, a hostPath's from hostPath (a
// directory it returns, linked at the mount point), and an empty directory for a volume claim
// or an emptyDir. File modes follow the volume's defaultMode.
func layOut(t *testing.T, m *manifests, spec *corev1.PodSpec, c *corev1.Container, root string,
	secrets map[string]map[string][]byte, hostPath func(string) string,
) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		dst := filepath.Join(root, vm.MountPath)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		var v *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == vm.Name {
				v = &spec.Volumes[i]
			}
		}
		switch {
		case v == nil || v.EmptyDir != nil: // a volume claim template, or scratch space
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case v.HostPath != nil:
			if err := os.Symlink(hostPath(v.HostPath.Path), dst); err != nil {
				t.Fatal(err)
			}
		case v.ConfigMap != nil:
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			project(t, dst, data, v.ConfigMap.Items, v.ConfigMap.DefaultMode, "ConfigMap "+cm.Name)
		case v.Secret != nil:
			data, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: Secret %s is not one docs/kubernetes.md creates", v.Name, v.Secret.SecretName)
			}
			project(t, dst, data, v.Secret.Items, v.Secret.DefaultMode, "Secret "+v.Secret.SecretName)
		default:
			t.Fatalf("volume %s: a kind this test cannot lay out: %+v", v.Name, v.VolumeSource)
		}
	}
}

// project writes a ConfigMap's or Secret's keys into dir as the kubelet does: every key, or
// the items' keys at the items' paths.
func project(t *testing.T, dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32, what string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode)
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			t.Fatalf("%s has no key %s", what, it.Key)
		}
		if err := os.WriteFile(filepath.Join(dir, it.Path), b, perm); err != nil {
			t.Fatal(err)
		}
	}
}

// chrootConfig rewrites a YAML file's absolute paths (every string value starting with /) to
// lie below root.
func chrootConfig(t *testing.T, file, root string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, file), &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				if v := n.Content[i]; v.Kind == yaml.ScalarNode && strings.HasPrefix(v.Value, "/") {
					v.Value = filepath.Join(root, v.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	// Kubernetes makes ConfigMap files read-only; the test process wrote it.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// collector is a running collector and its addresses.
type collector struct {
	*process
	grpc, listen string
}

// startCollector runs the collector as the StatefulSet's pod does, on loopback ports and
// writing to influx's database region.
func startCollector(t *testing.T, m *manifests, bin string, secrets map[string]map[string][]byte, influx *influxtest.Server, region string) *collector {
	t.Helper()
	spec := &m.collector.Spec.Template.Spec
	c := &spec.Containers[0]
	root := t.TempDir()
	layOut(t, m, spec, c, root, secrets, func(p string) string {
		t.Fatalf("the collector mounts the host's %s", p)
		return ""
	})
	args := containerArgs(c, podEnv(t, c, "node-0", ""), root)
	for _, a := range args {
		if file, ok := strings.CutPrefix(a, "--config="); ok {
			chrootConfig(t, file, root)
		}
	}
	args = append(args, "--otlp-grpc=127.0.0.1:0", "--otlp-http=127.0.0.1:0", "--listen=127.0.0.1:0",
		"--influx-url="+influx.URL, "--influx-bucket="+region+"/autogen")
	p := start(t, bin, args...)
	started := p.waitLog(t, "fleetwatt-collector started", 30*time.Second)
	coll := &collector{process: p}
	coll.grpc, _ = started["otlp_grpc"].(string)
	coll.listen, _ = started["listen"].(string)
	if _, _, err := net.SplitHostPort(coll.grpc); err != nil {
		t.Fatalf("collector's start line gives otlp_grpc %q: %v", coll.grpc, err)
	}
	return coll
}

// checkProbes runs the StatefulSet's probes against the collector as the kubelet does:
// an HTTP GET of the probe's path, over TLS when the probe's scheme says so (the kubelet does
// not verify the certificate; this test does), 200 being success.
func checkProbes(t *testing.T, m *manifests, coll *collector, pool *x509.CertPool) {
	t.Helper()
	c := &m.collector.Spec.Template.Spec.Containers[0]
	_, port, err := net.SplitHostPort(coll.listen)
	if err != nil {
		t.Fatalf("collector listen address %q: %v", coll.listen, err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		g := probe.HTTPGet
		u := url.URL{Scheme: strings.ToLower(string(g.Scheme)), Host: net.JoinHostPort("localhost", port), Path: g.Path}
		var status int
		var body []byte
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := hc.Get(u.String())
			if err == nil {
				status = resp.StatusCode
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if status == http.StatusOK || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("probe GET %s: %v", u.String(), err)
				}
				break
			}
		}
		if status != http.StatusOK {
			t.Errorf("probe GET %s: HTTP %d %s, want 200", u.String(), status, bytes.TrimSpace(body))
		}
	}
}

// fixtureMachines are the fixture machines the agent reads as its host, by the architecture
// the test runs on (identity follows the machine the binary runs on), with the power source
// each offers.
var fixtureMachines = map[string]struct{ name, source string }{
	"amd64": {"intel-xeon-2s", "rapl"},
	"arm64": {"ampere-altra", "hwmon"},
}

// startAgent runs the agent as the DaemonSet's pod does on node in zone, reading the fixture
// machine of this architecture as the host's /sys and /proc, sending to the collector at
// grpcAddr. It returns the process and the directory standing for the container's root.
func startAgent(t *testing.T, m *manifests, bin string, secrets map[string]map[string][]byte, grpcAddr, node, zone string) (*process, string) {
	t.Helper()
	spec := &m.agent.Spec.Template.Spec
	c := &spec.Containers[0]
	machine, ok := fixtureMachines[runtime.GOARCH]
	if !ok {
		t.Fatalf("no fixture machine for %s", runtime.GOARCH)
	}
	host := fixture.Root(t, machine.name)
	root := t.TempDir()
	layOut(t, m, spec, c, root, secrets, func(p string) string {
		switch p {
		case "/sys", "/proc":
			return filepath.Join(host, p)
		default: // the node's own directory, empty on a new node
			d := filepath.Join(t.TempDir(), p)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}
	})
	args := containerArgs(c, podEnv(t, c, node, zone), root)
	_, port, _ := net.SplitHostPort(grpcAddr)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--endpoint="); ok {
			u, err := url.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			u.Host = net.JoinHostPort("localhost", port) // the test certificate's name
			args[i] = "--endpoint=" + u.String()
		}
	}
	p := start(t, bin, args...)
	starting := p.waitLog(t, "fleetwatt-agent starting", 30*time.Second)
	if starting["host"] != node || starting["region"] != m.region {
		t.Errorf("agent starts as host %v in region %v, want %s in %s", starting["host"], starting["region"], node, m.region)
	}
	// The host's power meter, found through the pod's mounts.
	p.waitLog(t, "power source found", 30*time.Second, "source", machine.source)
	return p, root
}

// stopAgent stops the agent with SIGTERM, as the kubelet stops a pod, and checks that it
// exits within the pod's grace period having sent everything, kept nothing back and read
// every file it opened.
func stopAgent(t *testing.T, m *manifests, p *process) {
	t.Helper()
	p.stop(t, time.Duration(*m.agent.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second)
	stopped := p.findLog(t, "fleetwatt-agent stopped")
	if sent, _ := stopped["sent_batches"].(float64); sent < 1 ||
		stopped["spooled_batches"] != 0.0 || stopped["failed_exports"] != 0.0 || stopped["read_errors"] != 0.0 {
		t.Errorf("agent stopped with %v; want every batch sent, none failed or spooled, no read error", stopped)
	}
}

// checkMemory checks that a process's peak resident memory so far is within its container's
// memory request.
func checkMemory(t *testing.T, p *process, r corev1.ResourceRequirements) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				t.Fatalf("%s: VmHWM %q: %v", p.name, v, err)
			}
		}
	}
	req := r.Requests[corev1.ResourceMemory]
	if kib == 0 || kib<<10 > req.Value() {
		t.Errorf("%s: peak resident memory %d KiB, its pod requests %s", p.name, kib, req.String())
	}
}

// tagValues returns the values of each tag key in database db.
func tagValues(ctx context.Context, t *testing.T, s *influxtest.Server, db string, keys ...string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, k := range keys {
		series, err := s.Client().Query(ctx, db, "SHOW TAG VALUES WITH KEY = "+influxql.QuoteIdent(k))
		if err != nil {
			t.Fatal(err)
		}
		for _, sr := range series {
			for _, row := range sr.Rows() {
				if v, ok := row["value"].(string); ok && !slices.Contains(got[k], v) {
					got[k] = append(got[k], v)
				}
			}
		}
		slices.Sort(got[k])
	}
	return got
}

// process is a started binary; its output is kept for the failure message and its log lines.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	// exited is closed once the process has exited, err then being what Wait returned.
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: filepath.Base(bin), cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = []string{} // nothing from the test's environment: the pod has only what it sets
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s %s\n%s", p.name, strings.Join(args, " "), p.out)
		}
	})
	return p
}

// stop sends SIGTERM and waits up to grace for a clean exit, as the kubelet does before it
// kills.
func (p *process) stop(t *testing.T, grace time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%s exited after SIGTERM: %v", p.name, p.err)
		}
	case <-time.After(grace):
		t.Errorf("%s still runs %s after SIGTERM: the kubelet would kill it", p.name, grace)
	}
}

// logLines decodes the process's JSON log lines.
func (p *process) logLines() []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(p.out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// findLog returns the first log line with message msg, failing without one.
func (p *process) findLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, l := range p.logLines() {
		if l["msg"] == msg {
			return l
		}
	}
	t.Fatalf("%s logged no %q (JSON log lines expected: --log-format json / log.format json)", p.name, msg)
	return nil
}

// waitLog waits until the process logs msg, with the attributes given as key, value pairs,
// and returns that line.
func (p *process) waitLog(t *testing.T, msg string, timeout time.Duration, attrs ...string) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
	lines:
		for _, l := range p.logLines() {
			if l["msg"] != msg {
				continue
			}
			for i := 0; i+1 < len(attrs); i += 2 {
				if l[attrs[i]] != attrs[i+1] {
					continue lines
				}
			}
			return l
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before logging %q %v", p.name, p.err, msg, attrs)
		case <-deadline:
			t.Fatalf("%s logged no %q %v in %s", p.name, msg, attrs, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
