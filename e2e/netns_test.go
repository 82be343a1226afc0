package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needNetns checks that this process may make network namespaces (root and iproute2's ip).
// Outside CI a test that needs them is skipped without; in CI (CI=true) it fails, since CI
// runs as root on a machine with iproute2.
func needNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "network namespaces need root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "network namespaces need iproute2's ip: apt-get install iproute2"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip("skipping: " + why)
}

// ip runs iproute2's ip with args and fails the test on error.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// suffix returns a random suffix that makes this run's namespaces and links its own.
func suffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNetns makes a network namespace with its loopback up, deleted at cleanup (with every
// link in it). Processes in it must be stopped before: register them after it.
func newNetns(t *testing.T, name string) string {
	t.Helper()
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", name, err, out)
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// link is a veth pair between two namespaces, each end with an address of a /30.
type link struct {
	nsA, devA, addrA string
	nsB, devB, addrB string
}

// newLink makes the veth pair devA (in nsA, addrA) – devB (in nsB, addrB), prefix /30, both
// ends up. It is made inside the namespaces: nothing appears in this one, even for a moment.
func newLink(t *testing.T, nsA, devA, addrA, nsB, devB, addrB string) *link {
	t.Helper()
	ip(t, "-n", nsA, "link", "add", devA, "type", "veth", "peer", "name", devB, "netns", nsB)
	ip(t, "-n", nsA, "addr", "add", addrA+"/30", "dev", devA)
	ip(t, "-n", nsB, "addr", "add", addrB+"/30", "dev", devB)
	l := &link{nsA, devA, addrA, nsB, devB, addrB}
	l.set(t, "up")
	return l
}

// set takes both ends up or down.
func (l *link) set(t *testing.T, state string) {
	t.Helper()
	ip(t, "-n", l.nsA, "link", "set", l.devA, state)
	ip(t, "-n", l.nsB, "link", "set", l.devB, state)
}

// nsClient returns an HTTP client whose connections are made inside the network namespace
// ns: the test reaches servers that listen only there, without any route from here.
func nsClient(ns string, tr *http.Transport) *http.Client {
	if tr == nil {
		tr = &http.Transport{}
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialIn(ctx, ns, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// dialIn connects to addr from inside the network namespace ns: on a thread of its own it
// enters ns, makes the socket (a socket stays in the namespace it was made in) and returns.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is the one whose namespace changes: lock it, and unlock it only once
		// it is back in this namespace. If it cannot go back, the goroutine ends locked and
		// the Go runtime destroys the thread instead of reusing it.
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer back.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("enter network namespace %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if rerr := setns(back); rerr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{nil, errors.Join(err, fmt.Errorf("leave network namespace %s: %w", ns, rerr))}
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func setns(f *os.File) error {
	if _, _, errno := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
		return errno
	}
	return nil
}
