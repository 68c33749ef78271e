package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/runnerscaler/runnerscaler/internal/kubetest"
)

// kubeletNS is the namespace docs/kubernetes.md's RBAC manifest makes.
const kubeletNS = "runners"

// standInKubelet plays the kubelet for the runner pods of one namespace:
// when a pod appears it reads the JIT config from the Secret the pod's
// ACTIONS_RUNNER_INPUT_JITCONFIG refers to, starts `scaler sim-runner`
// with it and marks the pod Running; when the runner exits it marks the
// pod Succeeded (exit 0) or Failed; when the pod is deleted it stops the
// runner. It uses the admin identity: it is the node, not the provisioner.
type standInKubelet struct {
	admin  k8s.Interface
	dir    string // runner processes run in dir/<pod>, so signalRunnersUnder finds them
	env    []string
	logf   func(string, ...any)
	mu     sync.Mutex
	procs  map[string]*exec.Cmd // pod name -> its runner
	seen   map[string]bool
	spec   []string // pod specs (JSON) as the kubelet saw them, for the leak check
	jits   []string
	errs   []string
	starts int
	wg     sync.WaitGroup
}

func (k *standInKubelet) fail(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errs = append(k.errs, fmt.Sprintf(format, args...))
}

// run watches until ctx ends, re-watching when a watch closes; it returns
// when every runner it started has exited.
func (k *standInKubelet) run(ctx context.Context) {
	defer k.wg.Wait()
	for ctx.Err() == nil {
		w, err := k.admin.CoreV1().Pods(kubeletNS).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		k.consume(ctx, w)
		w.Stop()
	}
	k.mu.Lock()
	for _, cmd := range k.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	k.mu.Unlock()
}

func (k *standInKubelet) consume(ctx context.Context, w watch.Interface) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			switch {
			case ev.Type == watch.Deleted || pod.DeletionTimestamp != nil:
				k.mu.Lock()
				if cmd := k.procs[pod.Name]; cmd != nil {
					_ = cmd.Process.Signal(syscall.SIGTERM)
				}
				k.mu.Unlock()
			case pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "":
				k.mu.Lock()
				fresh := !k.seen[pod.Name]
				k.seen[pod.Name] = true
				k.mu.Unlock()
				if fresh {
					// Pods start in parallel, as a kubelet's pod workers
					// do: one at a time would time this stand-in, not
					// the scaler.
					k.wg.Add(1)
					go func() {
						defer k.wg.Done()
						k.start(ctx, pod)
					}()
				}
			}
		}
	}
}

// start runs the pod's runner and sets the pod Running.
func (k *standInKubelet) start(ctx context.Context, pod *corev1.Pod) {
	raw, _ := json.Marshal(pod)
	k.mu.Lock()
	k.spec = append(k.spec, string(raw))
	k.mu.Unlock()
	var ref *corev1.SecretKeySelector
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "ACTIONS_RUNNER_INPUT_JITCONFIG" && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil {
		k.fail("pod %s has no ACTIONS_RUNNER_INPUT_JITCONFIG from a Secret", pod.Name)
		return
	}
	sec, err := k.admin.CoreV1().Secrets(kubeletNS).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		k.fail("pod %s: Secret %s: %v", pod.Name, ref.Name, err)
		return
	}
	jit := string(sec.Data[ref.Key])
	dir := filepath.Join(k.dir, pod.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		k.fail("%v", err)
		return
	}
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "sim-runner")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), k.env...), "ACTIONS_RUNNER_INPUT_JITCONFIG="+jit)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		k.fail("pod %s: start runner: %v", pod.Name, err)
		return
	}
	k.mu.Lock()
	k.procs[pod.Name] = cmd
	k.jits = append(k.jits, jit)
	k.starts++
	k.mu.Unlock()
	k.setPhase(ctx, pod.Name, corev1.PodRunning, nil)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		err := cmd.Wait()
		k.mu.Lock()
		delete(k.procs, pod.Name)
		k.mu.Unlock()
		phase, term := corev1.PodSucceeded, &corev1.ContainerStateTerminated{Reason: "Completed"}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			phase, term = corev1.PodFailed, &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: int32(exit.ExitCode())}
			k.logf("stand-in kubelet: runner of pod %s exited: %v\n%s", pod.Name, err, out.String())
		}
		k.setPhase(context.WithoutCancel(ctx), pod.Name, phase, term)
	}()
}

// setPhase writes the pod's status; a pod deleted meanwhile is fine.
func (k *standInKubelet) setPhase(ctx context.Context, name string, phase corev1.PodPhase, term *corev1.ContainerStateTerminated) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for cctx.Err() == nil {
		pod, err := k.admin.CoreV1().Pods(kubeletNS).Get(cctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if err != nil {
			continue
		}
		pod.Status.Phase = phase
		st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		if term != nil {
			st = corev1.ContainerState{Terminated: term}
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "runner", Image: pod.Spec.Containers[0].Image,
			Ready: phase == corev1.PodRunning, State: st}}
		_, err = k.admin.CoreV1().Pods(kubeletNS).UpdateStatus(cctx, pod, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return
		}
	}
	k.fail("pod %s: phase %s not set", name, phase)
}

// TestE2EKubernetesBurst: a pool on the kubernetes provisioner, against a
// real kube-apiserver, with exactly the RBAC docs/kubernetes.md grants. A
// burst of 20 jobs completes on runners the stand-in kubelet starts from
// the pods' Secrets; afterwards no pod and no Secret is left, and no JIT
// config was ever in a pod spec.
func TestE2EKubernetesBurst(t *testing.T) {
	kube := kubetest.Start(t)
	kube.Apply(t, kubetest.ManifestFromMarkdown(t, filepath.Join("..", "..", "docs", "kubernetes.md"), "rbac-manifest"))
	token := kube.ServiceAccountToken(t, kubeletNS, "runnerscaler")
	for _, verb := range []string{"create", "list", "watch", "delete"} {
		for _, res := range []string{"pods", "secrets"} {
			kube.WaitAllowed(t, kube.ConfigForToken(token), verb, res, kubeletNS)
		}
	}

	e := newLCEnv(t, lcSetup{
		seed: 90,
		pools: `  - name: kube
    scope: {org: octo-org}
    labels: [kube]
    max_runners: 20
    provisioner: cluster`,
		lifecycle: `  reconcile_interval: 2s
  bootstrap_timeout: 60s
  offline_timeout: 10s
  confirm_interval: 100ms
  removal_settle: 300ms
  orphan_grace: 5s`,
		provisioners: `  cluster:
    type: kubernetes
    settings:
      kubeconfig: DIR/kubeconfig
      delete_grace_period: 5s
      pod:
        image: ghcr.io/actions/actions-runner:2.321.0
        command: [/home/runner/run.sh]
        resources:
          requests: {cpu: 100m, memory: 256Mi}`,
	})
	kube.WriteKubeconfig(t, filepath.Join(e.dir, "kubeconfig"), token, kubeletNS)

	kctx, stopKubelet := context.WithCancel(context.Background())
	kl := &standInKubelet{
		admin: kube.Admin(), dir: filepath.Join(e.dir, "kubelet"), logf: t.Logf,
		env:   []string{execMainEnv + "=1", "GORACE=atexit_sleep_ms=0", "SCALER_SIM_URL=" + e.base},
		procs: map[string]*exec.Cmd{}, seen: map[string]bool{},
	}
	kubeletDone := make(chan struct{})
	go func() {
		defer close(kubeletDone)
		kl.run(kctx)
	}()
	t.Cleanup(func() { stopKubelet(); <-kubeletDone })

	d := e.startDaemon("scaler run")
	const sumSeries = `runnerscaler_runner_startup_duration_seconds_sum{pool="kube",provisioner="cluster"}`
	const countSeries = `runnerscaler_runner_startup_duration_seconds_count{pool="kube",provisioner="cluster"}`
	// One job alone first: create -> Running without a burst's contention.
	one := e.submit("octo-org/app", []string{"kube"}, 1, 100)
	e.checkSucceeded(e.waitJobs(one, 30*time.Second, &d), one, []string{"kube"})
	sum1, err1 := e.metric(sumSeries)
	count1, err2 := e.metric(countSeries)
	if err1 != nil || err2 != nil || count1 != 1 {
		t.Fatalf("startup metric after one job: %v %v count %v", err1, err2, count1)
	}
	t.Logf("create -> pod Running in the scaler, one job alone: %.1f ms", 1000*sum1)

	smp := startLCSampler(t, e.base, "kube")
	burst := time.Now()
	ids := e.submit("octo-org/app", []string{"kube"}, 20, 300)
	js := e.waitJobs(ids, 90*time.Second, &d)
	t.Logf("20-job burst completed in %s", time.Since(burst).Round(time.Millisecond))
	e.checkSucceeded(js, ids, []string{"kube"})

	ctx := context.Background()
	admin := kube.Admin()
	var pods, secrets int
	waitUntil(t, "no pods and no Secrets left in the namespace", 30*time.Second, func() bool {
		pl, err1 := admin.CoreV1().Pods(kubeletNS).List(ctx, metav1.ListOptions{})
		sl, err2 := admin.CoreV1().Secrets(kubeletNS).List(ctx, metav1.ListOptions{})
		if err1 != nil || err2 != nil {
			return false
		}
		pods, secrets = len(pl.Items), len(sl.Items)
		return pods == 0 && secrets == 0
	}, func() string { return fmt.Sprintf("%d pods, %d Secrets", pods, secrets) })
	e.waitNothingLeft(20*time.Second, "kube")
	smp.check(t, map[string]int{"kube": 20})

	kl.mu.Lock()
	starts, errs := kl.starts, append([]string(nil), kl.errs...)
	for _, spec := range kl.spec {
		for _, jit := range kl.jits {
			if strings.Contains(spec, jit) {
				t.Errorf("a JIT config is in a pod spec")
			}
		}
	}
	kl.mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("stand-in kubelet: %s", strings.Join(errs, "\n"))
	}
	if starts < len(ids)+len(one) {
		t.Errorf("%d runner pods started for %d jobs", starts, len(ids)+len(one))
	}
	sum, err1 := e.metric(sumSeries)
	count, err2 := e.metric(countSeries)
	if err1 != nil || err2 != nil || count <= count1 {
		t.Errorf("startup metric: %v %v count %v", err1, err2, count)
	} else {
		t.Logf("create -> pod Running in the scaler over the burst: %v runners, mean %.1f ms (runnerscaler_runner_startup_duration_seconds)",
			count-count1, 1000*(sum-sum1)/(count-count1))
	}
	t.Logf("runner pods started by the stand-in kubelet: %d", starts)
	e.stop(d)
	// client-go logs through klog; everything the daemon printed must
	// still be its own structured (JSON) log.
	for _, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("daemon wrote a line that is not a JSON log record: %q", line)
		}
	}
}
