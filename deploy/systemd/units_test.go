// Package systemd holds fleetwatt's systemd units; this test keeps their hardening from
// eroding. deploy/packaging's test runs systemd-analyze verify and security on the units as
// the packages install them.
package systemd

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// unit is a unit file's [Service] and [Unit] keys, each with its values in order.
type unit map[string][]string

func load(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// hardening is what both services must set: no privileges, a read-only system, no other
// users' files or processes, only the network families they use, the system-service system
// calls, a state directory for their data, and restarts after a failure.
var hardening = map[string]string{
	"Service.Type":                     "simple",
	"Service.NoNewPrivileges":          "yes",
	"Service.CapabilityBoundingSet":    "",
	"Service.AmbientCapabilities":      "",
	"Service.ProtectSystem":            "strict",
	"Service.ProtectHome":              "yes",
	"Service.PrivateTmp":               "yes",
	"Service.PrivateMounts":            "yes",
	"Service.ProtectKernelTunables":    "yes",
	"Service.ProtectKernelModules":     "yes",
	"Service.ProtectKernelLogs":        "yes",
	"Service.ProtectControlGroups":     "yes",
	"Service.ProtectClock":             "yes",
	"Service.ProtectHostname":          "yes",
	"Service.ProtectProc":              "invisible",
	"Service.RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6",
	"Service.RestrictNamespaces":       "yes",
	"Service.RestrictRealtime":         "yes",
	"Service.RestrictSUIDSGID":         "yes",
	"Service.LockPersonality":          "yes",
	"Service.RemoveIPC":                "yes",
	"Service.SystemCallArchitectures":  "native",
	"Service.SystemCallErrorNumber":    "EPERM",
	"Service.Restart":                  "on-failure",
	"Service.RestartSec":               "5s",
	"Service.StateDirectoryMode":       "0750",
	"Service.UMask":                    "0077",
	"Unit.After":                       "network-online.target",
	"Unit.Wants":                       "network-online.target",
	"Install.WantedBy":                 "multi-user.target",
	"Service.SystemCallFilter@service": "@system-service",
}

func TestHardening(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		// want adds to hardening what this service needs or may have.
		want map[string]string
		// never are keys this service must not set.
		never []string
	}{
		{
			file: "fleetwatt-agent.service",
			want: map[string]string{
				"Service.User":           "fleetwatt",
				"Service.Group":          "fleetwatt",
				"Service.ExecStart":      "/usr/bin/fleetwatt-agent --config /etc/fleetwatt/agent.yaml",
				"Service.StateDirectory": "fleetwatt-agent",
				"Service.LimitNOFILE":    "8192",
				"Service.TimeoutStopSec": "30s",
				// Devices closed but for the BMC and NVIDIA's nodes (ProtectClock would
				// otherwise close them silently, allowing only the RTC).
				"Service.DevicePolicy":                "closed",
				"Service.SystemCallFilter@privileged": "~@privileged",
			},
			// The agent reads /sys/class/powercap, /sys/class/hwmon and /proc/stat, and
			// opens /dev/ipmi0: hiding devices, /proc or /sys would blind it.
			never: []string{"Service.PrivateDevices", "Service.ProcSubset", "Service.InaccessiblePaths", "Service.TemporaryFileSystem", "Service.PrivateNetwork"},
		},
		{
			file: "fleetwatt-collector.service",
			want: map[string]string{
				"Service.User":                        "fleetwatt-collector",
				"Service.Group":                       "fleetwatt-collector",
				"Service.ExecStart":                   "/usr/bin/fleetwatt-collector --config /etc/fleetwatt/collector.yaml",
				"Service.ExecReload":                  "/bin/kill -HUP $MAINPID",
				"Service.StateDirectory":              "fleetwatt-collector",
				"Service.LimitNOFILE":                 "65536",
				"Service.TimeoutStopSec":              "45s",
				"Service.PrivateDevices":              "yes",
				"Service.ProcSubset":                  "pid",
				"Service.MemoryDenyWriteExecute":      "yes",
				"Service.SystemCallFilter@privileged": "~@privileged @resources",
			},
			never: []string{"Service.DeviceAllow", "Service.SupplementaryGroups"},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			u := load(t, tc.file)
			want := map[string]string{}
			for k, v := range hardening {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				key, _, filter := strings.Cut(k, "@")
				values := u[key]
				switch {
				case filter && !slices.Contains(values, v):
					t.Errorf("%s: no %s=%s among %q", tc.file, key, v, values)
				case !filter && len(values) != 1:
					t.Errorf("%s: %s set %d times %q, want once: %s=%s", tc.file, key, len(values), values, key, v)
				case !filter && values[0] != v:
					t.Errorf("%s: %s=%s, want %s=%s", tc.file, key, values[0], key, v)
				}
			}
			for _, k := range tc.never {
				if v, ok := u[k]; ok {
					t.Errorf("%s: %s=%q must not be set", tc.file, k, v)
				}
			}
		})
	}
}

// TestAgentDevices checks the agent's device allow list: the BMC's in-band interface and the
// NVIDIA driver's nodes, read-write (ipmitool and nvidia-smi open them so), and nothing else.
func TestAgentDevices(t *testing.T) {
	t.Parallel()
	u := load(t, "fleetwatt-agent.service")
	want := []string{"char-ipmidev rw", "char-nvidia* rw"}
	if !slices.Equal(u["Service.DeviceAllow"], want) {
		t.Errorf("DeviceAllow = %q, want %q", u["Service.DeviceAllow"], want)
	}
}
