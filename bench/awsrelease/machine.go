package awsrelease

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes this machine for a report: CPUs, CPU model, kernel
// and the load average now.
func Machine() []string {
	out := []string{fmt.Sprintf("nproc %d, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				out = append(out, "cpu "+strings.TrimSpace(v))
				break
			}
		}
	}
	if u, err := exec.Command("uname", "-sr").Output(); err == nil {
		out = append(out, "kernel "+strings.TrimSpace(string(u)))
	}
	return append(out, "load average at the start: "+LoadAvg())
}

func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Versions names the versions of kiln, packer (when not "") and moto for a
// report.
func Versions(kiln, packer string) ([]string, error) {
	var out []string
	if data, err := exec.Command(kiln, "version", "-o", "json").Output(); err == nil {
		var v struct{ Version, Commit, GoVersion string }
		var raw map[string]string
		if json.Unmarshal(data, &raw) == nil {
			v.Version, v.Commit, v.GoVersion = raw["version"], raw["commit"], raw["go_version"]
		}
		out = append(out, fmt.Sprintf("kiln %s (commit %s, %s)", v.Version, v.Commit, v.GoVersion))
	} else {
		return nil, fmt.Errorf("%s version: %w", kiln, err)
	}
	if data, err := exec.Command(packer, "version").Output(); packer != "" && err == nil {
		out = append(out, strings.TrimSpace(string(bytes.SplitN(data, []byte("\n"), 2)[0]))+" (Debian package, amazon-ebs builder built in)")
	}
	if data, err := exec.Command("python3", "-c", "import moto; print(moto.__version__)").Output(); err == nil {
		out = append(out, "moto "+strings.TrimSpace(string(data))+" (moto_server)")
	}
	return out, nil
}
