package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/runnerscaler/runnerscaler/internal/kubetest"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// These tests run the provisioner against a real kube-apiserver (see
// internal/kubetest), with the permissions docs/kubernetes.md grants and
// nothing more. There is no kubelet: the tests set pod phases through the
// status subresource, as admin.

const ns = "runners"

// cluster is an API server with the documented RBAC applied.
type cluster struct {
	srv   *kubetest.Server
	admin k8s.Interface
	dir   string
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	srv := kubetest.Start(t)
	srv.Apply(t, kubetest.ManifestFromMarkdown(t, filepath.Join("..", "..", "..", "docs", "kubernetes.md"), "rbac-manifest"))
	return &cluster{srv: srv, admin: srv.Admin(), dir: t.TempDir()}
}

// kubeconfig writes a kubeconfig for service account sa's token.
func (c *cluster) kubeconfig(t testing.TB, sa string) string {
	t.Helper()
	token := c.srv.ServiceAccountToken(t, ns, sa)
	path := filepath.Join(c.dir, sa+".kubeconfig")
	c.srv.WriteKubeconfig(t, path, token, ns)
	// RBAC takes effect a moment after a binding is made; wait for what
	// each account is granted.
	for _, verb := range map[string][]string{"runnerscaler": {"create", "list", "watch", "delete"}, "short": {"list"}}[sa] {
		c.srv.WaitAllowed(t, c.srv.ConfigForToken(token), verb, "pods", ns)
	}
	return path
}

// testClock is a clock the test moves forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type running struct {
	*Provisioner
	clock   *testClock
	changes chan struct{}
}

// start builds the provisioner the way the daemon does, from settings.
func (c *cluster) start(t testing.TB, sa, daemonID string, extra map[string]any) running {
	t.Helper()
	settings := map[string]any{
		"kubeconfig": c.kubeconfig(t, sa),
		"pod":        map[string]any{"image": "ghcr.io/actions/actions-runner:2.321.0", "command": []any{"/home/runner/run.sh"}},
	}
	for k, v := range extra {
		settings[k] = v
	}
	clock := &testClock{}
	p, err := New(settings, provisioner.Env{Name: "cluster", DaemonID: daemonID, Logger: zaptest.NewLogger(t), Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	r := running{Provisioner: p, clock: clock, changes: make(chan struct{}, 1)}
	p.OnChange(func() {
		select {
		case r.changes <- struct{}{}:
		default:
		}
	})
	return r
}

func spec(name, jit string) provisioner.Spec {
	return provisioner.Spec{RunnerName: name, Pool: "k8s-linux", Labels: []string{"self-hosted", "linux"},
		Registration: provisioner.Registration{JITConfig: secret.String(jit)}}
}

func (c *cluster) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setStatus is the stand-in kubelet: it sets the pod's status.
func (c *cluster) setStatus(t *testing.T, name string, mut func(*corev1.PodStatus)) {
	t.Helper()
	ctx := c.ctx(t)
	pod, err := c.admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mut(&pod.Status)
	if _, err := c.admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitState polls Get until the instance is in state (and its LastError
// contains errHas), with a deadline.
func waitState(t *testing.T, p running, id string, state provisioner.State, errHas string) provisioner.Instance {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last provisioner.Instance
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.Get(context.Background(), id)
		if lastErr == nil && last.State == state && strings.Contains(last.LastError, errHas) {
			return last
		}
		select {
		case <-p.changes:
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("instance %s: want %s (%q), last %+v err %v", id, state, errHas, last, lastErr)
	return last
}

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	var err error
	eventually(t, what+" gone", func() bool {
		err = get()
		return apierrors.IsNotFound(err) || errors.Is(err, provisioner.ErrNotFound)
	})
}

func TestCreatePhasesDelete(t *testing.T) {
	c := newCluster(t)
	p := c.start(t, "runnerscaler", "rs-00112233aabbcc", nil)
	ctx := c.ctx(t)
	const jit = "eyJ0aGUtaml0LWNvbmZpZyI6InNlY3JldCJ9"
	in, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000001", jit))
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "k8s-linux-aabbcc-00000001" || in.State != provisioner.StatePending || in.Pool != "k8s-linux" {
		t.Fatalf("created %+v", in)
	}
	// At once in List, watch or not.
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != in.ID {
		t.Fatalf("list right after create: %+v %v", list, err)
	}

	pod, err := c.admin.CoreV1().Pods(ns).Get(ctx, in.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.admin.CoreV1().Secrets(ns).Get(ctx, in.ID+"-jit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for what, l := range map[string]map[string]string{"pod": pod.Labels, "secret": sec.Labels} {
		if l[labelDaemon] != "rs-00112233aabbcc" || l[labelPool] != "k8s-linux" || l[labelRunner] != in.ID || l[labelManagedBy] != managedByValue {
			t.Errorf("%s labels: %v", what, l)
		}
	}
	raw, _ := json.Marshal(pod)
	if strings.Contains(string(raw), jit) {
		t.Fatal("the JIT config is in the pod as stored by the API server")
	}
	if string(sec.Data[secretKeyJIT]) != jit {
		t.Fatal("the Secret does not hold the JIT config")
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || pod.Spec.Containers[0].Image != "ghcr.io/actions/actions-runner:2.321.0" {
		t.Errorf("pod spec: %+v", pod.Spec)
	}

	c.setStatus(t, in.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, Image: "x", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull access denied"}}}}
	})
	waitState(t, p, in.ID, provisioner.StatePending, "ErrImagePull: pull access denied")
	c.setStatus(t, in.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, Image: "x", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	})
	waitState(t, p, in.ID, provisioner.StateRunning, "")
	c.setStatus(t, in.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, Image: "x",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}
	})
	waitState(t, p, in.ID, provisioner.StateStopped, "")

	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "pod", func() error { _, err := c.admin.CoreV1().Pods(ns).Get(ctx, in.ID, metav1.GetOptions{}); return err })
	waitGone(t, "secret", func() error {
		_, err := c.admin.CoreV1().Secrets(ns).Get(ctx, in.ID+"-jit", metav1.GetOptions{})
		return err
	})
	waitGone(t, "instance", func() error { _, err := p.Get(ctx, in.ID); return err })
	if err := p.Delete(ctx, in.ID); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
}

func TestFailuresCarryTheirReason(t *testing.T) {
	c := newCluster(t)
	p := c.start(t, "runnerscaler", "rs-00112233aabbcc", map[string]any{"bootstrap_timeout": "2m"})
	ctx := c.ctx(t)
	oom, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000001", "jit-1"))
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000002", "jit-2"))
	if err != nil {
		t.Fatal(err)
	}
	c.setStatus(t, oom.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, Image: "x",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}
	})
	waitState(t, p, oom.ID, provisioner.StateFailed, "OOMKilled (exit code 137)")
	c.setStatus(t, stuck.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient cpu."}}
	})
	waitState(t, p, stuck.ID, provisioner.StatePending, "Unschedulable")
	p.clock.advance(3 * time.Minute)
	waitState(t, p, stuck.ID, provisioner.StateFailed, "(bootstrap_timeout 2m0s): Unschedulable: 0/3 nodes are available")

	// Deleted from outside: the instance goes, and so does its Secret.
	if err := c.admin.CoreV1().Pods(ns).Delete(ctx, oom.ID, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "instance deleted from outside", func() error { _, err := p.Get(ctx, oom.ID); return err })
	waitGone(t, "secret of a pod deleted from outside", func() error {
		_, err := c.admin.CoreV1().Secrets(ns).Get(ctx, oom.ID+"-jit", metav1.GetOptions{})
		return err
	})
}

func TestForeignObjectsUntouched(t *testing.T) {
	c := newCluster(t)
	ours := c.start(t, "runnerscaler", "rs-00112233aabbcc", nil)
	other := c.start(t, "runnerscaler", "rs-99887766554433", nil)
	ctx := c.ctx(t)
	mine, err := ours.Create(ctx, spec("k8s-linux-aabbcc-00000001", "jit-1"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.Create(ctx, spec("k8s-linux-554433-00000001", "jit-2"))
	if err != nil {
		t.Fatal(err)
	}
	// A pod somebody made by hand, with a name like ours and some of our labels.
	foreign := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s-linux-aabbcc-00000099", Labels: map[string]string{labelManagedBy: managedByValue, labelPool: "k8s-linux"}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "x", Image: "busybox"}}},
	}
	if _, err := c.admin.CoreV1().Pods(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod of ours made after the foreign one: once the watch has shown
	// it, it has shown everything before it that it would ever show.
	later, err := ours.Create(ctx, spec("k8s-linux-aabbcc-00000002", "jit-3"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the later pod in the watch's cache", func() bool {
		_, ok := ours.cachedPod(later.ID)
		return ok
	})
	list, err := ours.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID == list[1].ID || (list[0].ID != mine.ID && list[0].ID != later.ID) || (list[1].ID != mine.ID && list[1].ID != later.ID) {
		t.Fatalf("list shows what is not ours: %+v", list)
	}
	if err := ours.Delete(ctx, foreign.Name); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("delete of a foreign pod: %v, want ErrNotFound", err)
	}
	if err := ours.Delete(ctx, theirs.ID); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("delete of another daemon's pod: %v, want ErrNotFound", err)
	}
	for _, name := range []string{foreign.Name, theirs.ID} {
		if _, err := c.admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s touched: %v", name, err)
		}
	}
	if _, err := c.admin.CoreV1().Secrets(ns).Get(ctx, theirs.ID+"-jit", metav1.GetOptions{}); err != nil {
		t.Errorf("the other daemon's Secret touched: %v", err)
	}
	// The sweep of orphaned Secrets leaves the other daemon's alone too,
	// however old, and deletes ours whose pod is gone.
	orphan := ours.buildSecret("k8s-linux-aabbcc-00000042", spec("k8s-linux-aabbcc-00000042", "jit-3"))
	if _, err := c.admin.CoreV1().Secrets(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ours.clock.advance(2 * orphanSecretAge)
	n, err := ours.sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}
	if _, err := c.admin.CoreV1().Secrets(ns).Get(ctx, orphan.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("orphaned Secret still there: %v", err)
	}
	if _, err := c.admin.CoreV1().Secrets(ns).Get(ctx, mine.ID+"-jit", metav1.GetOptions{}); err != nil {
		t.Errorf("the Secret of a live pod swept: %v", err)
	}
}

func TestWatchResumesAfterAPIServerRestart(t *testing.T) {
	c := newCluster(t)
	p := c.start(t, "runnerscaler", "rs-00112233aabbcc", nil)
	ctx := c.ctx(t)
	var ids []string
	for i := 1; i <= 3; i++ {
		in, err := p.Create(ctx, spec(fmt.Sprintf("k8s-linux-aabbcc-0000000%d", i), "jit"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	for _, id := range ids {
		waitState(t, p, id, provisioner.StatePending, "")
	}
	c.srv.Restart(t)
	// Changes made at once, before the informer has re-established its
	// watch (it backs off after the connection drops).
	c.setStatus(t, ids[0], func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning })
	if err := c.admin.CoreV1().Pods(ns).Delete(ctx, ids[1], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.setStatus(t, ids[2], func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.Reason, s.Message = "Evicted", "The node was low on resource: memory."
	})
	after, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000004", "jit"))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, ids[0], provisioner.StateRunning, "")
	waitGone(t, "pod deleted during the outage", func() error { _, err := p.Get(ctx, ids[1]); return err })
	waitState(t, p, ids[2], provisioner.StateFailed, "Evicted")
	waitState(t, p, after.ID, provisioner.StatePending, "")
	list, err := p.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("list after the restart: %+v %v", list, err)
	}
}

func TestMissingPermissionNamesVerbAndResource(t *testing.T) {
	c := newCluster(t)
	ctx := c.ctx(t)
	// An account whose Role lacks create on pods (everything else as documented).
	if _, err := c.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "short"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "short"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
	}}
	if _, err := c.admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "short"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "short"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "short", Namespace: ns}}}
	if _, err := c.admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := c.start(t, "short", "rs-00112233aabbcc", nil)
	_, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000001", "jit"))
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Verb != "create" || fe.Resource != "pods" {
		t.Fatalf("create without the permission: %v", err)
	}
	if !strings.Contains(err.Error(), `its Role needs verb "create" on resource "pods"`) || !provisioner.IsNotCreated(err) {
		t.Errorf("error: %v", err)
	}
	// Nothing left behind: the Secret made first was deleted.
	secrets, err := c.admin.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: labelManagedBy + "=" + managedByValue})
	if err != nil || len(secrets.Items) != 0 {
		t.Fatalf("left behind: %d Secrets (%v)", len(secrets.Items), err)
	}

	// An account that may not list pods: List says so instead of hanging.
	if _, err := c.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "blind"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	blind := c.start(t, "blind", "rs-00112233aabbcc", nil)
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = blind.List(lctx)
	if !errors.As(err, &fe) || fe.Verb != "list" || !strings.Contains(err.Error(), `cannot list resource "pods"`) {
		t.Fatalf("list without the permission: %v", err)
	}
}

// BenchmarkCreateToRunning measures Create until the provisioner reports
// the pod Running, with a stand-in kubelet that marks every new pod Running
// as soon as its watch shows it.
func BenchmarkCreateToRunning(b *testing.B) {
	c := newCluster(b)
	p := c.start(b, "runnerscaler", "rs-bench", nil)
	admin := c.admin
	// The watch is open before the first create, so no pod is missed.
	w, err := admin.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		standInKubelet(context.Background(), admin, w, stop)
	}()
	defer func() { close(stop); wg.Wait() }()
	ctx := context.Background()
	var samples []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		in, err := p.Create(ctx, spec(fmt.Sprintf("k8s-linux-bench-%08d", i), "jit"))
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := p.Get(ctx, in.ID)
			if err == nil && got.State == provisioner.StateRunning {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("pod %s not Running after 10s: %+v %v", in.ID, got, err)
			}
			select {
			case <-p.changes:
			case <-time.After(time.Second):
			}
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(median(samples).Microseconds())/1000, "median-ms")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	return s[len(s)/2]
}

// standInKubelet marks every pending pod w shows Running, until stop
// closes.
func standInKubelet(ctx context.Context, admin k8s.Interface, w watch.Interface, stop <-chan struct{}) {
	defer w.Stop()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
				continue
			}
			pod.Status.Phase = corev1.PodRunning
			_, _ = admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		}
	}
}

func TestMaxInstancesHoldsUnderConcurrentCreates(t *testing.T) {
	c := newCluster(t)
	p := c.start(t, "runnerscaler", "rs-00112233aabbcc", map[string]any{"max_instances": 3})
	ctx := c.ctx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var made []string
	refused := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := p.Create(ctx, spec(fmt.Sprintf("k8s-linux-aabbcc-0000001%d", i), "jit"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made = append(made, in.ID)
			case errors.Is(err, ErrMaxInstances) && provisioner.IsNotCreated(err):
				refused++
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(made) != 3 || refused != 3 {
		t.Fatalf("%d created, %d refused; want 3 and 3", len(made), refused)
	}
	pods, err := c.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("%d pods in the namespace (%v), want 3", len(pods.Items), err)
	}
	// A runner that ended frees its slot.
	c.setStatus(t, made[0], func(s *corev1.PodStatus) { s.Phase = corev1.PodSucceeded })
	waitState(t, p, made[0], provisioner.StateStopped, "")
	if _, err := p.Create(ctx, spec("k8s-linux-aabbcc-00000020", "jit")); err != nil {
		t.Fatalf("create after a runner ended: %v", err)
	}
}
