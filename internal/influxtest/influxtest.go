// Package influxtest starts a real InfluxDB server (influxd 1.8.10, installed by `make tools`)
// for a test: on free loopback ports, with its own temporary directories and Flux enabled, a
// database created, and the server stopped when the test ends.
//
// The binary is found in $FLEETWATT_INFLUXD, then in the project's .tools/bin, then on PATH.
// Without it a test is skipped, except under CI=true, where it fails and says to run
// `make tools`: CI never passes by skipping the real database.
package influxtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatt/fleetwatt/internal/influxql"
)

// Version is the InfluxDB release `make tools` installs and the tests run against.
const Version = "v1.8.10"

// Server is a running influxd.
type Server struct {
	// URL is the HTTP API's base URL, "http://127.0.0.1:PORT".
	URL string
	// Database is the database created for the test.
	Database string
	// Dir holds the server's data, config and log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	log  string
	http *http.Client // nil: the default
}

// Options change where and how StartWith runs influxd; the zero value is what Start does.
type Options struct {
	// Host is the address influxd binds its HTTP API and its RPC service to; "" means
	// 127.0.0.1.
	Host string
	// HTTPPort and RPCPort are its ports; 0 means a port free on this machine's loopback. In
	// another network namespace, where that says nothing, name them.
	HTTPPort, RPCPort int
	// Wrap goes before the influxd command line: {"ip", "netns", "exec", "NS"} runs it in the
	// network namespace NS (ip execs influxd, so stopping it stops influxd).
	Wrap []string
	// HTTP is how the Server reaches influxd: for its readiness check, creating the
	// database, and Client. nil means the default client; a test whose influxd runs in
	// another network namespace passes one that dials there.
	HTTP *http.Client
}

// Bucket is the database as the v2 write API names it on 1.8: "db/rp".
func (s *Server) Bucket() string { return s.Database + "/autogen" }

// Client returns an InfluxQL client for the server.
func (s *Server) Client() *influxql.Client { return &influxql.Client{URL: s.URL, HTTP: s.http} }

// Query runs an InfluxQL statement against the test's database and fails the test on error.
func (s *Server) Query(t testing.TB, q string) []influxql.Series {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	series, err := s.Client().Query(ctx, s.Database, q)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return series
}

// Binary finds influxd, or says how to install it.
func Binary() (string, error) {
	if p := os.Getenv("FLEETWATT_INFLUXD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("FLEETWATT_INFLUXD=%s: %w", p, err)
		}
		return p, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "bin", "influxd")
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	if p, err := exec.LookPath("influxd"); err == nil {
		return p, nil
	}
	return "", errors.New("influxd " + Version + " not found: run `make tools` (installs it into .tools/bin, about two minutes once) or set FLEETWATT_INFLUXD")
}

// Start starts influxd for t with a database named "fleetwatt", and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with opts.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	s, err := start(bin, t.TempDir(), "fleetwatt", opts)
	if err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop influxd: %v", err)
		}
	})
	return s
}

// StartDir starts influxd with its data under dir, outside of a test (the demo uses it).
func StartDir(dir, database string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return start(bin, dir, database, Options{})
}

const config = `reporting-disabled = true
bind-address = "%s"
[meta]
  dir = "%s/meta"
  logging-enabled = false
[data]
  dir = "%s/data"
  wal-dir = "%s/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
[http]
  bind-address = "%s"
  log-enabled = false
  flux-enabled = true
`

func start(bin, dir, database string, opts Options) (*Server, error) {
	host := cmp.Or(opts.Host, "127.0.0.1")
	httpPort, rpcPort := opts.HTTPPort, opts.RPCPort
	var err error
	if httpPort == 0 {
		if httpPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if rpcPort == 0 {
		if rpcPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	httpAddr := net.JoinHostPort(host, strconv.Itoa(httpPort))
	rpcAddr := net.JoinHostPort(host, strconv.Itoa(rpcPort))
	cfg := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, config, rpcAddr, dir, dir, dir, httpAddr), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "influxd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := append(slices.Clone(opts.Wrap), bin, "run", "-config", cfg)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{
		URL:      "http://" + httpAddr,
		Database: database,
		Dir:      dir,
		cmd:      cmd,
		done:     make(chan struct{}),
		log:      logPath,
		http:     opts.HTTP,
	}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	if err := s.waitReady(60 * time.Second); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%w\ninfluxd log:\n%s", err, s.logTail())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().Query(ctx, "", "CREATE DATABASE "+influxql.QuoteIdent(database)); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("create database %s: %w", database, err)
	}
	return s, nil
}

// waitReady polls /ping until the server answers 204.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	if s.http != nil {
		hc.Transport = s.http.Transport
	}
	for {
		select {
		case <-s.done:
			return errors.New("influxd exited during start-up")
		default:
		}
		resp, err := hc.Get(s.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("influxd did not answer %s/ping within %s", s.URL, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server: SIGTERM, then SIGKILL after 10 s.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("influxd did not stop within 10s of SIGTERM; killed")
	}
}

// Kill stops the server abruptly, as a crash or an outage would.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
