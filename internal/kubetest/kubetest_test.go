package kubetest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "example.invalid/x"}},
		},
	}
}

// grantPodReaders binds a Role allowing get and list on pods to the
// ServiceAccount ns/sa.
func grantPodReaders(t *testing.T, s *Server, ns, sa string) {
	t.Helper()
	ctx := t.Context()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}
	if _, err := s.Admin().RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	if _, err := s.Admin().RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createServiceAccount(t *testing.T, s *Server, ns, name string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := s.Admin().CoreV1().ServiceAccounts(ns).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestNamespacePodPending(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := t.Context()
	s.CreateNamespace(t, "ns1")

	if _, err := s.Admin().CoreV1().ServiceAccounts("ns1").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("default ServiceAccount: %v", err)
	}
	created, err := s.Admin().CoreV1().Pods("ns1").Create(ctx, testPod("p1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if created.Status.Phase != corev1.PodPending {
		t.Errorf("created pod phase %q, want Pending", created.Status.Phase)
	}
	got, err := s.Admin().CoreV1().Pods("ns1").Get(ctx, "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodPending || got.Spec.NodeName != "" {
		t.Errorf("pod phase %q node %q, want Pending on no node", got.Status.Phase, got.Spec.NodeName)
	}
	if got.Spec.ServiceAccountName != "default" {
		t.Errorf("pod service account %q, want default (set by admission)", got.Spec.ServiceAccountName)
	}
}

func TestRBACForbiddenUntilBound(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := t.Context()
	s.CreateNamespace(t, "ns2")
	createServiceAccount(t, s, "ns2", "runner")
	cfg := s.ConfigForToken(s.ServiceAccountToken(t, "ns2", "runner"))
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	_, err = cs.CoreV1().Pods("ns2").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list pods without RBAC: err %v, want Forbidden", err)
	}
	t.Logf("without RBAC: %v", err)

	grantPodReaders(t, s, "ns2", "runner")
	s.WaitAllowed(t, cfg, "list", "pods", "ns2")
	if _, err := cs.CoreV1().Pods("ns2").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list pods after WaitAllowed: %v", err)
	}
	// Only what the Role grants: another namespace and another verb stay
	// forbidden.
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods in default: err %v, want Forbidden", err)
	}
	if _, err := cs.CoreV1().Pods("ns2").Create(ctx, testPod("p"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create pod: err %v, want Forbidden", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := t.Context()
	url := s.URL()
	s.CreateNamespace(t, "ns3")
	pods := s.Admin().CoreV1().Pods("ns3")
	before, err := pods.Create(ctx, testPod("survivor"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	s.Restart(t)

	if s.URL() != url {
		t.Errorf("URL after restart %s, want %s", s.URL(), url)
	}
	// The watch from before the restart must end: that is what Restart is
	// for. The deadline only bounds a failure.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
watch:
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				break watch
			}
			if ev.Type == watch.Error {
				t.Logf("watch error event after restart: %v", apierrors.FromObject(ev.Object))
				continue
			}
			t.Errorf("unexpected watch event %s", ev.Type)
		case <-deadline.C:
			t.Fatal("watch started before Restart still open 30 s after it")
		}
	}

	// The same clientset, built before the restart, reaches the new process.
	after, err := pods.Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod after restart: %v", err)
	}
	if after.UID != before.UID {
		t.Errorf("pod UID %s after restart, want %s", after.UID, before.UID)
	}
	if _, err := pods.Create(ctx, testPod("after"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod after restart: %v", err)
	}
}

func TestWriteKubeconfig(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := t.Context()
	s.CreateNamespace(t, "ns4")
	createServiceAccount(t, s, "ns4", "runner")
	if _, err := s.Admin().CoreV1().Pods("ns4").Create(ctx, testPod("p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grantPodReaders(t, s, "ns4", "runner")
	token := s.ServiceAccountToken(t, "ns4", "runner")
	s.WaitAllowed(t, s.ConfigForToken(token), "list", "pods", "ns4")

	path := filepath.Join(t.TempDir(), "sub", "kubeconfig")
	s.WriteKubeconfig(t, path, token, "ns4")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != s.URL() || cfg.BearerToken != token || cfg.Insecure {
		t.Errorf("config host %s token set %v insecure %v", cfg.Host, cfg.BearerToken == token, cfg.Insecure)
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{})
	ns, _, err := loader.Namespace()
	if err != nil || ns != "ns4" {
		t.Errorf("kubeconfig namespace %q (%v), want ns4", ns, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods with the kubeconfig: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "p" {
		t.Errorf("listed %d pods, want p", len(list.Items))
	}
}

// recordingTB stands in for the test handed to Start so that its Skip or
// Fatal can be observed without skipping or failing the real test.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("KUBE_APISERVER_BIN", filepath.Join(t.TempDir(), "nope"))
	for _, require := range []string{"", "1"} {
		t.Setenv("RUNNERSCALER_REQUIRE_KUBE", require)
		r := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(r)
			t.Error("Start returned without binaries")
		}()
		<-done
		got, other := r.skipped, r.fatal
		if require == "1" {
			got, other = r.fatal, r.skipped
		}
		if !strings.Contains(got, "tools/kube/build.sh") || other != "" {
			t.Errorf("RUNNERSCALER_REQUIRE_KUBE=%q: skipped %q, fatal %q", require, r.skipped, r.fatal)
		}
	}
}

// TestPortClash checks what Start's retry relies on: a child that loses the
// race for its port exits, and the log says so.
func TestPortClash(t *testing.T) {
	t.Parallel()
	apiserver, etcd := findBinaries(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	dir := t.TempDir()
	creds, err := newCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, bin string
		args      []string
	}{
		{"etcd", etcd, []string{"--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", "http://" + taken,
			"--advertise-client-urls", "http://" + taken, "--listen-peer-urls", "http://127.0.0.1:0",
			"--initial-advertise-peer-urls", "http://127.0.0.1:1", "--initial-cluster", "default=http://127.0.0.1:1"}},
		{"kube-apiserver", apiserver, apiserverArgs("http://127.0.0.1:1", l.Addr().(*net.TCPAddr).Port, creds)},
	} {
		p, err := startProcess(c.name, c.bin, c.args, envWithout("ETCD_"), filepath.Join(dir, c.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.NewTimer(30 * time.Second)
		select {
		case <-p.done:
		case <-deadline.C:
			p.stop()
			t.Fatalf("%s still running on a taken port", c.name)
		}
		deadline.Stop()
		if !p.portClash() {
			t.Errorf("%s: exit %v not recognised as a port clash; log:\n%s", c.name, p.err, tail(p.logPath, 10))
		}
	}
}

func TestEnvWithoutETCD(t *testing.T) {
	t.Setenv("ETCD_DATA_DIR", "/somewhere")
	t.Setenv("KUBETEST_OTHER", "kept")
	env := envWithout("ETCD_")
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "ETCD_") }) {
		t.Errorf("ETCD_ variable passed on: %v", env)
	}
	if !slices.Contains(env, "KUBETEST_OTHER=kept") {
		t.Errorf("other variables dropped")
	}
}
