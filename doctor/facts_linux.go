package doctor

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
)

func platformFacts(f *Facts, r *reader, o *Options) {
	f.Interfaces = interfaces()
	f.Limits = limitFacts(o)
	containerFacts(f, r, o)
	cgroupFacts(f, r)
	if data, _, err := r.read("/proc/net/route"); err == nil {
		rs, _ := ParseProcNetRoute(data)
		f.Routes = append(f.Routes, rs...)
	}
	if data, _, err := r.read("/proc/net/ipv6_route"); err == nil {
		rs, _ := ParseProcNetIPv6Route(data)
		f.Routes = append(f.Routes, rs...)
	}
	for _, rt := range f.Routes {
		if rt.Default {
			f.DefaultRoute = true
		}
	}
	for _, p := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if data, _, err := r.read(p); err == nil {
			ls, _ := ParseProcNetTCP(data)
			f.Listeners = append(f.Listeners, ls...)
		}
	}
}

func containerFacts(f *Facts, r *reader, o *Options) {
	c := &f.Container
	exists := func(p string) bool { _, err := os.Stat(r.path(p)); return err == nil }
	if exists("/.dockerenv") {
		c.Markers = append(c.Markers, "/.dockerenv")
		c.Runtime = "docker"
	}
	if exists("/run/.containerenv") {
		c.Markers = append(c.Markers, "/run/.containerenv")
		c.Runtime = "podman"
	}
	if o.getenv("KUBERNETES_SERVICE_HOST") != "" {
		c.Markers = append(c.Markers, "KUBERNETES_SERVICE_HOST")
		c.Runtime = "kubernetes"
	}
	if exists("/var/run/secrets/kubernetes.io/serviceaccount") {
		c.Markers = append(c.Markers, "/var/run/secrets/kubernetes.io/serviceaccount")
		c.Runtime = "kubernetes"
	}
	if data, _, err := r.read("/proc/self/cgroup"); err == nil {
		for _, m := range []string{"kubepods", "docker", "cri-containerd-", "crio-", "libpod"} {
			if bytes.Contains(data, []byte(m)) {
				c.Markers = append(c.Markers, "/proc/self/cgroup: "+m)
				if c.Runtime == "" {
					switch m {
					case "kubepods", "cri-containerd-", "crio-":
						c.Runtime = "kubernetes"
					case "libpod":
						c.Runtime = "podman"
					default:
						c.Runtime = "docker"
					}
				}
			}
		}
	}
}

// cgroupFacts reads the CPU and memory limits of this process's cgroup
// (v2 unified, else v1 cpu and memory controllers).
func cgroupFacts(f *Facts, r *reader) {
	data, _, err := r.read("/proc/self/cgroup")
	if err != nil {
		return
	}
	paths := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			paths[""] = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	readIn := func(mount, rel, file string) ([]byte, bool) {
		for _, p := range []string{filepath.Join(mount, rel, file), filepath.Join(mount, file)} {
			if d, _, err := r.read(p); err == nil {
				return d, true
			}
		}
		return nil, false
	}
	if _, err := os.Stat(r.path("/sys/fs/cgroup/cgroup.controllers")); err == nil {
		f.Limits.Cgroup = 2
		rel := paths[""]
		if d, ok := readIn("/sys/fs/cgroup", rel, "cpu.max"); ok {
			f.Limits.CPULimit, _ = ParseCPUMax(d)
		}
		if d, ok := readIn("/sys/fs/cgroup", rel, "memory.max"); ok {
			f.Limits.MemoryLimit, _ = ParseMemMax(d)
		}
		return
	}
	if rel, ok := paths["memory"]; ok {
		f.Limits.Cgroup = 1
		if d, ok := readIn("/sys/fs/cgroup/memory", rel, "memory.limit_in_bytes"); ok {
			f.Limits.MemoryLimit, _ = ParseMemMax(d)
		}
	}
	if rel, ok := paths["cpu"]; ok {
		f.Limits.Cgroup = 1
		q, ok1 := readIn("/sys/fs/cgroup/cpu", rel, "cpu.cfs_quota_us")
		p, ok2 := readIn("/sys/fs/cgroup/cpu", rel, "cpu.cfs_period_us")
		if ok1 && ok2 {
			quota := strings.TrimSpace(string(firstLine(q)))
			if quota != "-1" {
				f.Limits.CPULimit, _ = ParseCPUMax([]byte(quota + " " + strings.TrimSpace(string(firstLine(p)))))
			}
		}
	}
}

// platformDNS reports that resolv.conf is this system's DNS configuration.
func platformDNS(*Facts, *reader, *Options) bool { return false }

// platformRoots reports that the roots are the Unix CA files.
func platformRoots(*Options) (CAFacts, *x509.CertPool, bool) { return CAFacts{}, nil, false }
