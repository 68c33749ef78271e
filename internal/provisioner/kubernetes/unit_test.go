package kubernetes

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

func TestSettingsListEveryProblemWithItsPath(t *testing.T) {
	_, err := parseSettings(map[string]any{
		"namespace":           "Not_A_Namespace",
		"max_instances":       -1,
		"delete_grace_period": "soon",
		"bootstrap_timeout":   "10ms",
		"pod": map[string]any{
			"image_pull_policy": "Sometimes",
			"env":               []any{map[string]any{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG", "value": "x"}},
			"labels":            map[string]any{"runnerscaler.io/pool": "x", "team": "has spaces"},
			"volume_mounts":     []any{map[string]any{"name": "work", "mountPath": "/w"}},
		},
	}, provisioner.Env{Name: "k8s"})
	var se *provisioner.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("want *SettingsError, got %v", err)
	}
	want := []string{
		"provisioners.k8s.settings.namespace",
		"provisioners.k8s.settings.max_instances",
		"provisioners.k8s.settings.delete_grace_period",
		"provisioners.k8s.settings.bootstrap_timeout",
		"provisioners.k8s.settings.pod.image",
		"provisioners.k8s.settings.pod.image_pull_policy",
		"provisioners.k8s.settings.pod.env[0].name",
		"provisioners.k8s.settings.pod.labels.runnerscaler.io/pool",
		"provisioners.k8s.settings.pod.labels.team",
		"provisioners.k8s.settings.pod.volume_mounts[0].name",
	}
	got := map[string]bool{}
	for _, p := range se.Problems {
		got[p.Path] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no problem reported at %s; got:\n%v", w, err)
		}
	}
}

func TestSettingsUnknownKeyAndKubernetesShapes(t *testing.T) {
	_, err := parseSettings(map[string]any{"pod": map[string]any{"image": "x", "tolerations": []any{map[string]any{"key": "a", "bogus": 1}}}},
		provisioner.Env{Name: "k8s"})
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("an unknown key inside a toleration must be refused, got %v", err)
	}
	c, err := parseSettings(map[string]any{"namespace": "runners", "pod": map[string]any{
		"image":         "ghcr.io/actions/actions-runner:2.321.0",
		"command":       []any{"/home/runner/run.sh"},
		"resources":     map[string]any{"requests": map[string]any{"cpu": "2", "memory": "4Gi"}},
		"tolerations":   []any{map[string]any{"key": "ci", "operator": "Exists", "effect": "NoSchedule"}},
		"node_selector": map[string]any{"kubernetes.io/arch": "amd64"},
	}}, provisioner.Env{Name: "k8s", BootstrapTimeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.pod.Resources.Requests.Memory().String(); got != "4Gi" {
		t.Errorf("memory request %s, want 4Gi", got)
	}
	if c.bootstrapTimeout != 3*time.Minute || c.deleteGrace != DefaultDeleteGracePeriod || c.qps != DefaultAPIQPS {
		t.Errorf("defaults: bootstrap %s grace %s qps %v", c.bootstrapTimeout, c.deleteGrace, c.qps)
	}
}

func testProvisioner(t *testing.T, pod PodTemplate) *Provisioner {
	t.Helper()
	return &Provisioner{name: "k8s", daemonID: "rs-0123456789abcdef", cfg: config{namespace: "runners", pod: pod, deleteGrace: 30 * time.Second}}
}

func TestPodCarriesNoCredential(t *testing.T) {
	p := testProvisioner(t, PodTemplate{Image: "img", Env: []corev1.EnvVar{{Name: "EXTRA", Value: "1"}}})
	const jit = "eyJzZWNyZXQtaml0LWNvbmZpZyI6dHJ1ZX0="
	spec := provisioner.Spec{RunnerName: "gpu-abcdef-01234567", Pool: "gpu",
		Registration: provisioner.Registration{JITConfig: secret.String(jit)}}
	pod := p.buildPod(podName(spec.RunnerName), spec)
	raw, _ := json.Marshal(pod)
	if strings.Contains(string(raw), jit) {
		t.Fatal("the JIT config is in the pod spec")
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s", pod.Spec.RestartPolicy)
	}
	var ref *corev1.SecretKeySelector
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == envJITConfig && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil || ref.Name != "gpu-abcdef-01234567-jit" || ref.Key != secretKeyJIT {
		t.Fatalf("JIT env not from the runner's Secret: %+v", ref)
	}
	sec := p.buildSecret(pod.Name, spec)
	if string(sec.Data[secretKeyJIT]) != jit {
		t.Error("the Secret does not hold the JIT config")
	}
	for _, obj := range []map[string]string{pod.Labels, sec.Labels} {
		if obj[labelDaemon] != "rs-0123456789abcdef" || obj[labelPool] != "gpu" || obj[labelRunner] != spec.RunnerName || obj[labelProvisioner] != "k8s" {
			t.Errorf("ownership labels missing: %v", obj)
		}
	}
	if *pod.Spec.AutomountServiceAccountToken {
		t.Error("a service account token is mounted into a runner pod nobody asked to give one")
	}
}

func TestTokenRegistrationEnvironment(t *testing.T) {
	p := testProvisioner(t, PodTemplate{Image: "img"})
	spec := provisioner.Spec{RunnerName: "lin-abcdef-01234567", Pool: "lin", ScopeURL: "https://github.com/octo-org",
		Labels: []string{"self-hosted", "linux"}, RunnerGroup: "ci",
		Registration: provisioner.Registration{Token: "AABBCC", Ephemeral: true}}
	pod := p.buildPod("lin-abcdef-01234567", spec)
	env := map[string]corev1.EnvVar{}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	if e := env[envToken]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Key != secretKeyToken {
		t.Errorf("token env: %+v", e)
	}
	if env[envURL].Value != spec.ScopeURL || env[envLabels].Value != "self-hosted,linux" || env[envEphemeral].Value != "true" || env[envGroup].Value != "ci" {
		t.Errorf("registration env: %+v", env)
	}
}

func TestPodPhaseToInstanceState(t *testing.T) {
	created := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	now := created.Add(time.Minute)
	mk := func(phase corev1.PodPhase, mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{labelPool: "gpu", labelRunner: "gpu-1"}}, Status: corev1.PodStatus{Phase: phase}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	deleting := metav1.NewTime(now)
	cases := []struct {
		name    string
		pod     *corev1.Pod
		timeout time.Duration
		state   provisioner.State
		errHas  string
	}{
		{"pending", mk(corev1.PodPending, nil), time.Hour, provisioner.StatePending, ""},
		{"image pull", mk(corev1.PodPending, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "runner", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		}), time.Hour, provisioner.StatePending, "ImagePullBackOff: Back-off pulling image"},
		{"unschedulable past bootstrap_timeout", mk(corev1.PodPending, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient cpu."}}
		}), 30 * time.Second, provisioner.StateFailed, "Pending after 1m0s (bootstrap_timeout 30s): Unschedulable: 0/3 nodes"},
		{"pending past timeout, no reason", mk("", nil), 30 * time.Second, provisioner.StateFailed, "no reason reported"},
		{"running", mk(corev1.PodRunning, nil), time.Hour, provisioner.StateRunning, ""},
		{"succeeded", mk(corev1.PodSucceeded, nil), time.Hour, provisioner.StateStopped, ""},
		{"oom killed", mk(corev1.PodFailed, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "runner", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}
		}), time.Hour, provisioner.StateFailed, "container runner: OOMKilled (exit code 137)"},
		{"evicted", mk(corev1.PodFailed, func(p *corev1.Pod) {
			p.Status.Reason, p.Status.Message = "Evicted", "The node was low on resource: memory."
		}), time.Hour, provisioner.StateFailed, "Evicted: The node was low on resource: memory."},
		{"unknown", mk(corev1.PodUnknown, nil), time.Hour, provisioner.StateFailed, "Unknown"},
		{"being deleted", mk(corev1.PodRunning, func(p *corev1.Pod) { p.DeletionTimestamp = &deleting }), time.Hour, provisioner.StateStopped, "being deleted"},
	}
	for _, c := range cases {
		in := instanceOf(c.pod, c.timeout, now)
		if in.State != c.state || !strings.Contains(in.LastError, c.errHas) || (c.errHas == "" && in.LastError != "") {
			t.Errorf("%s: state %s error %q; want %s with %q", c.name, in.State, in.LastError, c.state, c.errHas)
		}
		if in.Pool != "gpu" || in.RunnerName != "gpu-1" || !in.CreatedAt.Equal(created) {
			t.Errorf("%s: identity %+v", c.name, in)
		}
	}
}

func TestForbiddenNamesVerbAndResource(t *testing.T) {
	api := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
		errors.New(`User "system:serviceaccount:runners:runnerscaler" cannot create resource "pods" in API group "" in the namespace "runners"`))
	err := describe("create", "pods", "runners", api)
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Verb != "create" || fe.Resource != "pods" {
		t.Fatalf("not a ForbiddenError naming create pods: %v", err)
	}
	if !strings.Contains(err.Error(), `verb "create" on resource "pods"`) || !apierrors.IsForbidden(err) {
		t.Errorf("message: %v", err)
	}
	// A 403 from admission (no service account yet) is not an RBAC gap.
	adm := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New(`error looking up service account runners/default: serviceaccount "default" not found`))
	if errors.As(describe("create", "pods", "runners", adm), &fe) {
		t.Error("an admission refusal reported as missing RBAC")
	}
}

func TestNamesAndLabelValues(t *testing.T) {
	if got := podName("gpu-abcdef-01234567"); got != "gpu-abcdef-01234567" {
		t.Errorf("podName %s", got)
	}
	long := strings.Repeat("a", 70)
	if n := podName(long); len(n) > 63 || n == long {
		t.Errorf("long name not shortened: %s", n)
	}
	if v := labelValue("has spaces"); v == "has spaces" || len(v) > 63 {
		t.Errorf("labelValue %s", v)
	}
}

// The example in docs/kubernetes.md is a valid configuration.
func TestDocumentedExampleSettingsAreValid(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "## An example pool")
	if !ok {
		t.Fatal("no example pool section")
	}
	_, block, _ := strings.Cut(rest, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	var doc struct {
		Pools        []map[string]any `json:"pools"`
		Provisioners map[string]struct {
			Type     string         `json:"type"`
			Settings map[string]any `json:"settings"`
		} `json:"provisioners"`
	}
	if err := yaml.UnmarshalStrict([]byte(block), &doc); err != nil {
		t.Fatal(err)
	}
	pc, ok := doc.Provisioners["cluster"]
	if !ok || pc.Type != "kubernetes" {
		t.Fatalf("example has no kubernetes provisioner: %+v", doc)
	}
	// The kubeconfig path is the reader's; only it may be missing here.
	_, err = parseSettings(pc.Settings, provisioner.Env{Name: "cluster"})
	var se *provisioner.SettingsError
	if errors.As(err, &se) {
		for _, p := range se.Problems {
			if p.Path != "provisioners.cluster.settings.kubeconfig" {
				t.Errorf("documented example: %s", p)
			}
		}
	} else if err != nil {
		t.Fatal(err)
	}
}
