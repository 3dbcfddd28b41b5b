// Package replicas holds the compose file and nginx configuration of berth on
// more than one machine (README: "More than one machine"). Its test checks
// them and the Kubernetes manifest of the same setup, which cannot be applied
// here, against what berth accepts; dockertest's TestReplicasCompose runs the
// compose file for real.
package replicas

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth/store/s3"
)

const (
	composeFile  = "compose.yaml"
	nginxConf    = "nginx.conf"
	manifestFile = "../kubernetes/berth-replicas.yaml"
)

// proxyHelp returns berth proxy --help of the berth built from this tree.
func proxyHelp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/berth-dev/berth/cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/berth: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "proxy", "--help").CombinedOutput()
	if !strings.Contains(string(out), "[$BERTH_STORE]") {
		t.Fatalf("berth proxy --help does not list its environment variables:\n%s", out)
	}
	return string(out)
}

// checkEnv checks that every BERTH_* variable names a flag of berth proxy
// and that the values berth parses are valid.
func checkEnv(t *testing.T, where string, env map[string]string, help string) {
	t.Helper()
	for k, v := range env {
		if !strings.HasPrefix(k, "BERTH_") {
			continue
		}
		if !strings.Contains(help, "[$"+k+"]") {
			t.Errorf("%s: %s is not a variable of berth proxy (see berth proxy --help)", where, k)
		}
		switch k {
		case "BERTH_STORE":
			opts, err := s3.ParseURL(v)
			if err != nil {
				t.Errorf("%s: BERTH_STORE=%s: %v", where, v, err)
			} else if opts.Bucket != "berth" || opts.CacheDir == "" {
				t.Errorf("%s: BERTH_STORE=%s: want the bucket berth and a cache= directory on a volume", where, v)
			}
		case "BERTH_LEASE":
			if !strings.HasPrefix(v, "redis://") {
				t.Errorf("%s: BERTH_LEASE=%s: want redis://HOST:PORT", where, v)
			}
		case "BERTH_DRAIN_DELAY", "BERTH_SHUTDOWN_TIMEOUT":
			if _, err := time.ParseDuration(v); err != nil {
				t.Errorf("%s: %s=%s: %v", where, k, v, err)
			}
		}
	}
	for _, k := range []string{"BERTH_UPSTREAM", "BERTH_SUMDB", "BERTH_STORE", "BERTH_LEASE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := env[k]; !ok {
			t.Errorf("%s: berth's environment lacks %s", where, k)
		}
	}
}

// TestCompose checks compose.yaml and nginx.conf: three berth replicas with
// variables berth accepts, a bucket and Redis, nginx in front of exactly
// those replicas, and images that can be replaced.
func TestCompose(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image       string
			Command     []string
			Environment map[string]string
			Healthcheck struct{ Test []string }
			DependsOn   yaml.Node `yaml:"depends_on"`
			StopGrace   string    `yaml:"stop_grace_period"`
			Volumes     []string
		}
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	help := proxyHelp(t)
	replicas := []string{"berth1", "berth2", "berth3"}
	for _, name := range []string{"minio", "bucket", "redis", "lb", "build", "berth1", "berth2", "berth3"} {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("%s: no service %s", composeFile, name)
			continue
		}
		if !regexp.MustCompile(`^\$\{BERTH_([A-Z]+_)?IMAGE:-[^}]+\}$`).MatchString(s.Image) {
			t.Errorf("%s: service %s: image %q, want ${BERTH_..._IMAGE:-upstream image} so that it can be replaced", composeFile, name, s.Image)
		}
	}
	for _, r := range replicas {
		s := c.Services[r]
		if len(s.Command) == 0 || s.Command[0] != "proxy" {
			t.Errorf("%s: %s runs %v, want berth proxy", composeFile, r, s.Command)
		}
		checkEnv(t, composeFile+": "+r, s.Environment, help)
		if !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "/readyz") {
			t.Errorf("%s: %s: health check %v, want /readyz", composeFile, r, s.Healthcheck.Test)
		}
		// The image's drain delay and shutdown timeout (1s + 3s) fit.
		if g, err := time.ParseDuration(s.StopGrace); err != nil || g <= 4*time.Second {
			t.Errorf("%s: %s: stop_grace_period %q, want more than the image's drain delay + shutdown timeout (4s)", composeFile, r, s.StopGrace)
		}
	}
	if env := c.Services["build"].Environment; env["GOPROXY"] != "http://lb:3000" {
		t.Errorf("%s: build: GOPROXY=%q, want http://lb:3000", composeFile, env["GOPROXY"])
	}

	conf, err := os.ReadFile(nginxConf)
	if err != nil {
		t.Fatal(err)
	}
	var backends []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9]+):3000\b`).FindAllStringSubmatch(string(conf), -1) {
		backends = append(backends, m[1])
	}
	if strings.Join(backends, " ") != strings.Join(replicas, " ") {
		t.Errorf("%s balances %v, want the replicas %v", nginxConf, backends, replicas)
	}
	if !regexp.MustCompile(`(?m)^\s*listen 3000;`).Match(conf) || !strings.Contains(strings.Join(c.Services["lb"].Volumes, " "), "./nginx.conf:/etc/nginx/nginx.conf") {
		t.Errorf("lb: want %s mounted as /etc/nginx/nginx.conf, listening on 3000", nginxConf)
	}
}

// k8s is the part of a Kubernetes object the test reads.
type k8s struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name   string
		Labels map[string]string
	}
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Strategy struct {
			Type          string
			RollingUpdate struct {
				MaxUnavailable *int `yaml:"maxUnavailable"`
				MaxSurge       *int `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		}
		MinAvailable *int `yaml:"minAvailable"`
		Template     struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name  string
					Image string
					Args  []string
					Env   []struct {
						Name      string
						Value     string
						ValueFrom *struct {
							SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					}
					ReadinessProbe *struct {
						HTTPGet *struct{ Path string } `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
				}
			}
		}
	}
}

// TestKubernetesManifest checks examples/kubernetes/berth-replicas.yaml,
// which is not applied to a cluster here: every document is an object with
// its apiVersion, kind and name; the berth Deployment runs three replicas
// with a rolling update that keeps them all ready, readiness on /readyz, a
// grace period longer than drain + shutdown, variables berth accepts and
// credentials from the Secret; the Service and the PodDisruptionBudget select
// its pods.
func TestKubernetesManifest(t *testing.T) {
	data, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	var objs []k8s
	selectors := map[string]map[string]string{} // Service name -> selector
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		var o k8s
		if err := node.Decode(&o); err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name: %+v", manifestFile, o)
		}
		if o.Kind == "Service" {
			var svc struct {
				Spec struct{ Selector map[string]string }
			}
			node.Decode(&svc)
			selectors[o.Metadata.Name] = svc.Spec.Selector
		}
		objs = append(objs, o)
	}
	find := func(kind, name string) *k8s {
		for i := range objs {
			if objs[i].Kind == kind && objs[i].Metadata.Name == name {
				return &objs[i]
			}
		}
		t.Fatalf("%s: no %s %s", manifestFile, kind, name)
		return nil
	}
	secret := find("Secret", "berth-s3")
	find("StatefulSet", "minio")
	find("Job", "berth-bucket")
	find("Deployment", "berth-redis")
	d := find("Deployment", "berth")
	pdb := find("PodDisruptionBudget", "berth")
	find("Service", "berth")

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("berth Deployment: replicas %s, want 3", show(d.Spec.Replicas))
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != "RollingUpdate" || ru.MaxUnavailable == nil || *ru.MaxUnavailable != 0 || ru.MaxSurge == nil || *ru.MaxSurge != 1 {
		t.Errorf("berth Deployment: strategy %s, maxUnavailable %s, maxSurge %s; want RollingUpdate, 0, 1", d.Spec.Strategy.Type, show(ru.MaxUnavailable), show(ru.MaxSurge))
	}
	pod := d.Spec.Template
	for what, sel := range map[string]map[string]string{"Deployment selector": d.Spec.Selector.MatchLabels, "Service berth": selectors["berth"], "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s selects nothing", what)
		}
		for k, v := range sel {
			if pod.Metadata.Labels[k] != v {
				t.Errorf("%s selects %s=%s, which berth's pods do not have (%v)", what, k, v, pod.Metadata.Labels)
			}
		}
	}
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable < 1 || *pdb.Spec.MinAvailable >= 3 {
		t.Errorf("PodDisruptionBudget: minAvailable %s, want 1 or 2 of 3", show(pdb.Spec.MinAvailable))
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("berth's pod has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "proxy" {
		t.Errorf("berth's container runs %v, want proxy", c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("berth's container: readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := secret.StringData[ref.Key]; ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("berth's container: %s from secret %s key %s, which the manifest does not define", e.Name, ref.Name, ref.Key)
			}
		}
	}
	checkEnv(t, manifestFile+": berth", env, proxyHelp(t))
	drain, _ := time.ParseDuration(env["BERTH_DRAIN_DELAY"])
	shutdown, _ := time.ParseDuration(env["BERTH_SHUTDOWN_TIMEOUT"])
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+shutdown || drain == 0 {
		t.Errorf("berth's pod: terminationGracePeriodSeconds %s, want more than BERTH_DRAIN_DELAY (%s) + BERTH_SHUTDOWN_TIMEOUT (%s), with a drain delay", show(g), drain, shutdown)
	}
}

// show prints an optional number.
func show(n *int) string {
	if n == nil {
		return "unset"
	}
	return strconv.Itoa(*n)
}
