// Package test renders the auditrelay Helm chart with Helm's own engine for
// the example values files and checks the objects it makes. It is a module
// of its own so that the main module does not carry Helm's dependencies;
// run it with `cd deploy/helm/test && go test ./...`.
package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../auditrelay"
	examplesDir = "../examples"
	repoRoot    = "../../.."
	namespace   = "security"
	release     = "auditrelay"
	metricsPort = 9464
)

// objects are the rendered manifests, decoded.
type objects struct {
	kinds           []string
	deployment      *appsv1.Deployment
	secrets         map[string]*corev1.Secret
	configMaps      []*corev1.ConfigMap
	pvcs            []*corev1.PersistentVolumeClaim
	services        []*corev1.Service
	serviceMonitors []serviceMonitor
}

// serviceMonitor is the part of a monitoring.coreos.com/v1 ServiceMonitor
// the test reads.
type serviceMonitor struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// values reads and merges values files as `helm -f a -f b` does: maps merge
// key by key, a later file's other values replace an earlier one's.
func values(t *testing.T, files ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join(examplesDir, f))
		if err != nil {
			t.Fatal(err)
		}
		out = merge(out, v)
	}
	return out
}

func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = merge(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// render renders the chart as `helm template` would for an install.
func render(t *testing.T, vals map[string]any) (objects, error) {
	t.Helper()
	c := loadChart(t)
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: release, Namespace: namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return objects{}, err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return objects{}, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	o := objects{secrets: map[string]*corev1.Secret{}}
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			o.kinds = append(o.kinds, meta.Kind)
			var into any
			var after func()
			switch meta.Kind {
			case "Deployment":
				if o.deployment != nil {
					t.Fatalf("two Deployments")
				}
				o.deployment = &appsv1.Deployment{}
				into = o.deployment
			case "Secret":
				s := &corev1.Secret{}
				into = s
				after = func() { o.secrets[s.Name] = s }
			case "ConfigMap":
				m := &corev1.ConfigMap{}
				o.configMaps = append(o.configMaps, m)
				into = m
			case "PersistentVolumeClaim":
				p := &corev1.PersistentVolumeClaim{}
				o.pvcs = append(o.pvcs, p)
				into = p
			case "Service":
				s := &corev1.Service{}
				o.services = append(o.services, s)
				into = s
			case "ServiceAccount":
				into = &corev1.ServiceAccount{}
			case "ServiceMonitor":
				o.serviceMonitors = append(o.serviceMonitors, serviceMonitor{})
				into = &o.serviceMonitors[len(o.serviceMonitors)-1]
				if err := yaml.Unmarshal([]byte(doc), into); err != nil {
					t.Fatalf("%s: %v\n%s", name, err, doc)
				}
				continue
			default:
				t.Fatalf("%s: unexpected kind %q", name, meta.Kind)
			}
			// Strict: a field Kubernetes does not know is a template bug.
			if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			if after != nil {
				after()
			}
		}
	}
	sort.Strings(o.kinds)
	return o, nil
}

// TestChart renders the chart for each example and checks the objects,
// and that auditrelay accepts the configuration file the chart writes.
func TestChart(t *testing.T) {
	bin := buildAuditrelay(t)
	for _, c := range []struct {
		name     string
		files    []string
		kinds    []string
		replicas int32
		strategy appsv1.DeploymentStrategyType
		postgres bool
		pvc      bool
		secret   string // the Secret the configuration comes from
		env      map[string]corev1.SecretKeySelector
	}{
		{
			name: "bbolt", files: []string{"bbolt.yaml"},
			kinds:    []string{"Deployment", "PersistentVolumeClaim", "Secret", "Service", "ServiceAccount"},
			replicas: 1, strategy: appsv1.RecreateDeploymentStrategyType, pvc: true, secret: release,
			env: map[string]corev1.SecretKeySelector{
				"PINGONE_CLIENT_SECRET": secretKey("auditrelay-credentials", "pingone-client-secret"),
				"SPLUNK_HEC_TOKEN":      secretKey("auditrelay-credentials", "splunk-hec-token"),
			},
		},
		{
			name: "postgres", files: []string{"bbolt.yaml", "postgres.yaml"},
			kinds:    []string{"Deployment", "Secret", "Service", "ServiceAccount"},
			replicas: 3, strategy: appsv1.RollingUpdateDeploymentStrategyType, postgres: true, secret: release,
			env: map[string]corev1.SecretKeySelector{
				"AUDITRELAY_POSTGRES_DSN": secretKey("auditrelay-postgres", "postgres-dsn"),
				"PINGONE_CLIENT_SECRET":   secretKey("auditrelay-credentials", "pingone-client-secret"),
				"SPLUNK_HEC_TOKEN":        secretKey("auditrelay-credentials", "splunk-hec-token"),
			},
		},
		{
			name: "servicemonitor", files: []string{"bbolt.yaml", "servicemonitor.yaml"},
			kinds:    []string{"Deployment", "PersistentVolumeClaim", "Secret", "Service", "ServiceAccount", "ServiceMonitor"},
			replicas: 1, strategy: appsv1.RecreateDeploymentStrategyType, pvc: true, secret: release,
			env: map[string]corev1.SecretKeySelector{
				"PINGONE_CLIENT_SECRET": secretKey("auditrelay-credentials", "pingone-client-secret"),
				"SPLUNK_HEC_TOKEN":      secretKey("auditrelay-credentials", "splunk-hec-token"),
			},
		},
		{
			name: "existing-secret", files: []string{"existing-secret.yaml"},
			kinds:    []string{"Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"},
			replicas: 1, strategy: appsv1.RecreateDeploymentStrategyType, pvc: true, secret: "auditrelay-config",
			env: map[string]corev1.SecretKeySelector{},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			vals := values(t, c.files...)
			lintChart(t, vals)
			o, err := render(t, vals)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.kinds, o.kinds); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
			d := o.deployment
			if d == nil {
				t.Fatal("no Deployment")
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != c.replicas {
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, c.replicas)
			}
			if d.Spec.Strategy.Type != c.strategy {
				t.Errorf("strategy %q, want %q", d.Spec.Strategy.Type, c.strategy)
			}
			pod := d.Spec.Template.Spec
			checkSecurity(t, pod)
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			ctr := pod.Containers[0]
			checkProbes(t, ctr)
			if diff := cmp.Diff([]string{"run", "--config", "/etc/auditrelay/auditrelay.yaml"}, ctr.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 15 {
				t.Errorf("terminationGracePeriodSeconds %v, want at least 15 to release leases", pod.TerminationGracePeriodSeconds)
			}

			// Every variable comes from a Secret: none carries a value.
			env := map[string]corev1.SecretKeySelector{}
			for _, e := range ctr.Env {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("env %s is not from a Secret: %+v", e.Name, e)
					continue
				}
				env[e.Name] = *e.ValueFrom.SecretKeyRef
			}
			if diff := cmp.Diff(c.env, env); diff != "" {
				t.Errorf("env from secrets (-want +got):\n%s", diff)
			}

			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			mounts := map[string]string{}
			for _, m := range ctr.VolumeMounts {
				mounts[m.Name] = m.MountPath
			}
			if diff := cmp.Diff(map[string]string{"config": "/etc/auditrelay", "data": "/data"}, mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if s := vols["config"].Secret; s == nil || s.SecretName != c.secret {
				t.Errorf("config volume %+v, want from Secret %s", vols["config"], c.secret)
			}
			data := vols["data"]
			if c.pvc {
				if len(o.pvcs) != 1 || data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != o.pvcs[0].Name {
					t.Errorf("data volume %+v, claims %d: want the chart's claim", data, len(o.pvcs))
				} else if got := o.pvcs[0].Spec.AccessModes; !cmp.Equal(got, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
					t.Errorf("claim access modes %v", got)
				}
			} else if data.EmptyDir == nil || data.PersistentVolumeClaim != nil {
				t.Errorf("data volume %+v, want an emptyDir", data)
			}

			if len(o.configMaps) != 0 {
				t.Errorf("%d ConfigMaps: the configuration belongs in a Secret", len(o.configMaps))
			}
			if c.secret == release {
				s := o.secrets[release]
				if s == nil {
					t.Fatalf("no Secret %s; secrets %v", release, o.secrets)
				}
				checkConfig(t, bin, s.StringData["auditrelay.yaml"], c.postgres)
				if want := "checksum/config"; d.Spec.Template.Annotations[want] == "" {
					t.Errorf("no %s annotation: a changed configuration would not restart the pod", want)
				}
			}

			if len(o.services) != 1 {
				t.Fatalf("%d Services", len(o.services))
			}
			svc := o.services[0]
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != metricsPort {
				t.Errorf("service ports %+v", svc.Spec.Ports)
			}
			if !cmp.Equal(svc.Spec.Selector, d.Spec.Selector.MatchLabels) || !cmp.Equal(d.Spec.Selector.MatchLabels, subset(d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)) {
				t.Errorf("service selector %v, deployment selector %v, pod labels %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			}
			for _, m := range o.serviceMonitors {
				if !cmp.Equal(m.Spec.Selector.MatchLabels, subset(svc.Labels, m.Spec.Selector.MatchLabels)) {
					t.Errorf("ServiceMonitor selects %v, the Service has %v", m.Spec.Selector.MatchLabels, svc.Labels)
				}
				if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != "metrics" || m.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor endpoints %+v", m.Spec.Endpoints)
				}
				if m.Metadata.Labels["release"] != "prometheus" {
					t.Errorf("ServiceMonitor labels %v lack servicemonitor.yaml's release: prometheus", m.Metadata.Labels)
				}
			}
		})
	}
}

// TestChartRefuses checks the values the chart refuses, with the reason.
func TestChartRefuses(t *testing.T) {
	base := values(t, "bbolt.yaml")
	for _, c := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no configuration", map[string]any{}, "set config"},
		{"both", merge(base, map[string]any{"existingSecret": "x"}), "not both"},
		{"postgres without a DSN", merge(base, map[string]any{"store": map[string]any{"postgres": map[string]any{"enabled": true}}}), "dsnSecret.name"},
		{"a store block", merge(base, map[string]any{"config": map[string]any{"store": map[string]any{}}}), "store.postgres.enabled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("render: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func secretKey(name, key string) corev1.SecretKeySelector {
	return corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}
}

// subset returns the entries of m whose keys are in keys.
func subset(m, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// lintChart runs Helm's linter, as `helm lint` does, and fails on any
// warning or error.
func lintChart(t *testing.T, vals map[string]any) {
	t.Helper()
	l := lint.All(chartDir, vals, namespace, false)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

func checkSecurity(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	ps := pod.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", ps)
	} else if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile %+v, want RuntimeDefault", ps.SeccompProfile)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not use")
	}
	for _, c := range pod.Containers {
		s := c.SecurityContext
		if s == nil || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem ||
			s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
			s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
			t.Errorf("container %s securityContext %+v: want a read-only root, no privilege escalation, non-root", c.Name, s)
			continue
		}
		if s.Capabilities == nil || !cmp.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) > 0 {
			t.Errorf("container %s capabilities %+v, want ALL dropped and none added", c.Name, s.Capabilities)
		}
	}
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	var port *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "metrics" {
			port = &c.Ports[i]
		}
	}
	if port == nil || port.ContainerPort != metricsPort {
		t.Fatalf("container ports %+v, want metrics on %d", c.Ports, metricsPort)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", p.name)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port.String() != "metrics" {
			t.Errorf("%s probe GET %s on port %s, want %s on metrics", p.name, g.Path, g.Port.String(), p.path)
		}
	}
}

// secretKeyRE finds the keys of the configuration that hold credentials.
var secretKeyRE = regexp.MustCompile(`(?i)secret|token|password|dsn|api_key|intake_key`)

// checkConfig reads the configuration file the chart writes: the chart's
// settings are there, every credential is a reference, and auditrelay
// validate accepts it.
func checkConfig(t *testing.T, bin, text string, postgres bool) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("auditrelay.yaml: %v\n%s", err, text)
	}
	if cfg["data_dir"] != "/data" || cfg["metrics_listen"] != ":9464" {
		t.Errorf("data_dir %v, metrics_listen %v, want /data and :9464", cfg["data_dir"], cfg["metrics_listen"])
	}
	store, _ := cfg["store"].(map[string]any)
	if postgres {
		pg, _ := store["postgres"].(map[string]any)
		if pg["dsn"] != "${env:AUDITRELAY_POSTGRES_DSN}" || pg["lease_ttl"] != "15s" {
			t.Errorf("store.postgres %v", pg)
		}
	} else if store != nil {
		t.Errorf("store %v, want none: the embedded store", store)
	}
	walk(cfg, "", func(path string, v any) {
		s, ok := v.(string)
		if ok && secretKeyRE.MatchString(path[strings.LastIndex(path, ".")+1:]) &&
			!strings.HasPrefix(s, "${env:") && !strings.HasPrefix(s, "${file:") {
			t.Errorf("%s holds a value, not a ${env:} or ${file:} reference", path)
		}
	})

	path := filepath.Join(t.TempDir(), "auditrelay.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "--config", path)
	cmd.Env = os.Environ()
	for _, m := range regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(text, -1) {
		v := "example-" + m[1]
		if m[1] == "AUDITRELAY_POSTGRES_DSN" {
			v = "postgres://auditrelay@db.example:5432/auditrelay?sslmode=verify-full"
		}
		cmd.Env = append(cmd.Env, m[1]+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("auditrelay validate of the rendered configuration: %v\n%s\n%s", err, out, text)
	}
}

func walk(v any, path string, f func(string, any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			walk(e, path+"."+k, f)
		}
	case []any:
		for i, e := range v {
			walk(e, path+"["+strconv.Itoa(i)+"]", f)
		}
	default:
		f(path, v)
	}
}

// buildAuditrelay builds the main module's binary for validate.
func buildAuditrelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "auditrelay")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/auditrelay")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/auditrelay: %v\n%s", err, out)
	}
	return bin
}
