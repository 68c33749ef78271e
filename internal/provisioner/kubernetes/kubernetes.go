// Package kubernetes runs runners as pods. An instance is a Pod built from
// the provisioner's pod template, with restartPolicy Never, in one
// namespace; its credential (JIT config or registration token) is in a
// per-runner Secret the pod reads through secretKeyRef, and the Secret goes
// with its pod. State comes from a watch (an informer) on the provisioner's
// labels, so a phase change reaches the scaler at once (see OnChange), and
// List and Get read the informer's cache instead of the API server.
//
// The provisioner needs, in its namespace, create/get/list/watch/delete on
// pods and secrets, nothing else (docs/kubernetes.md has the Role).
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// ErrMaxInstances: max_instances pods of this provisioner are alive already.
var ErrMaxInstances = errors.New("max_instances reached")

// Timings of the housekeeping; variables so tests can shorten them.
var (
	// unseenRecheck: a pod Create made that the watch has not shown after
	// this long is looked up directly (it may have been deleted before the
	// watch saw it).
	unseenRecheck = 30 * time.Second
	// sweepEvery and orphanSecretAge: Secrets whose pod is gone (deleted
	// from outside while the daemon was down) are deleted once older than
	// orphanSecretAge, checked every sweepEvery.
	sweepEvery      = time.Minute
	orphanSecretAge = time.Minute
)

// Provisioner launches runners as pods.
type Provisioner struct {
	name, daemonID string
	cfg            config
	client         k8s.Interface
	log            *zap.Logger
	now            func() time.Time

	informer cache.SharedIndexInformer
	stop     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	unseen   map[string]provisioner.Instance // created here, not yet shown by the watch
	creating map[string]bool                 // pod names whose Create is under way
	watchErr error                           // the informer's last list/watch error, until it lists again
	onChange []func()
}

var _ provisioner.Provisioner = (*Provisioner)(nil)

// Factory builds a kubernetes provisioner (provisioners.<name>.type: kubernetes).
func Factory(settings map[string]any, env provisioner.Env) (provisioner.Provisioner, error) {
	return New(settings, env)
}

// New validates settings, connects (lazily: an API server that is down
// only delays the first List) and starts the watch. Close stops it.
func New(settings map[string]any, env provisioner.Env) (*Provisioner, error) {
	cfg, err := parseSettings(settings, env)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("provisioner", env.Name))
	rc, ns, err := restConfig(cfg)
	if err != nil {
		return nil, &provisioner.SettingsError{Problems: []provisioner.SettingsProblem{{
			Path: "provisioners." + env.Name + ".settings.kubeconfig", Message: err.Error()}}}
	}
	if cfg.namespace == "" {
		cfg.namespace = ns
	}
	if cfg.namespace == "" {
		return nil, &provisioner.SettingsError{Problems: []provisioner.SettingsProblem{{
			Path:    "provisioners." + env.Name + ".settings.namespace",
			Message: "is required: the kubeconfig context names no namespace"}}}
	}
	rc.QPS, rc.Burst = cfg.qps, cfg.burst
	rc.UserAgent = "runnerscaler"
	rc.WarningHandler = zapWarnings{log}
	client, err := k8s.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return newWithClient(client, cfg, env, log), nil
}

func newWithClient(client k8s.Interface, cfg config, env provisioner.Env, log *zap.Logger) *Provisioner {
	p := &Provisioner{
		name: env.Name, daemonID: env.DaemonID, cfg: cfg, client: client, log: log, now: env.Clock,
		stop: make(chan struct{}), unseen: map[string]provisioner.Instance{}, creating: map[string]bool{},
	}
	if p.now == nil {
		p.now = time.Now
	}
	sel := p.selector().String()
	lw := cache.NewFilteredListWatchFromClient(client.CoreV1().RESTClient(), "pods", cfg.namespace,
		func(o *metav1.ListOptions) { o.LabelSelector = sel })
	p.informer = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	// The reflector relists and re-watches by itself after any error (an
	// API server restart, an expired resource version); the handler only
	// keeps the error for List to report and logs it once per change.
	_ = p.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		select {
		case <-p.stop: // Close ended it
			return
		default:
		}
		described := describe("watch", "pods", cfg.namespace, err)
		p.mu.Lock()
		changed := p.watchErr == nil || p.watchErr.Error() != described.Error()
		p.watchErr = described
		p.mu.Unlock()
		if changed {
			p.log.Warn("kubernetes: pod watch broken; resuming with a fresh list", zap.Error(described))
		}
	})
	_, _ = p.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.seen(obj, false) },
		UpdateFunc: func(_, obj any) { p.seen(obj, false) },
		DeleteFunc: func(obj any) { p.seen(obj, true) },
	})
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.informer.Run(p.stop)
	}()
	go func() {
		defer p.wg.Done()
		p.sweepLoop()
	}()
	return p
}

// restConfig reads the kubeconfig, or the in-cluster service account when
// there is none. It returns the namespace the context (or the account)
// names, if any.
func restConfig(cfg config) (*rest.Config, string, error) {
	if cfg.kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("no kubeconfig set and not running in a pod: %w", err)
		}
		ns, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		return rc, strings.TrimSpace(string(ns)), nil
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: cfg.kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: cfg.context})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", cfg.kubeconfig, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", cfg.kubeconfig, err)
	}
	// clientcmd answers "default" when the context names none; an
	// explicit choice is better than runners in default by accident.
	if raw, err := cc.RawConfig(); err == nil {
		name := cfg.context
		if name == "" {
			name = raw.CurrentContext
		}
		if c := raw.Contexts[name]; c == nil || c.Namespace == "" {
			ns = ""
		}
	}
	return rc, ns, nil
}

// OnChange registers fn, called (without blocking) whenever one of the
// provisioner's pods is added, changes or goes. The daemon wakes the
// scaler with it.
func (p *Provisioner) OnChange(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChange = append(p.onChange, fn)
}

// seen is the informer's callback.
func (p *Provisioner) seen(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.mu.Lock()
	delete(p.unseen, pod.Name)
	p.watchErr = nil
	fns := append([]func(){}, p.onChange...)
	p.mu.Unlock()
	if deleted {
		// Deleted from outside (or by Delete, which removed the Secret
		// already): its Secret has no more use.
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ctx, cancel := p.opContext()
			defer cancel()
			if err := p.deleteSecret(ctx, pod.Name); err != nil {
				p.log.Warn("kubernetes: Secret of a deleted pod not deleted; the sweep will retry",
					zap.String("pod", pod.Name), zap.Error(err))
			}
		}()
	}
	for _, fn := range fns {
		fn()
	}
}

// opContext bounds housekeeping calls and ends them at Close.
func (p *Provisioner) opContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (p *Provisioner) lastWatchErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watchErr
}

// synced waits until the informer has listed once.
func (p *Provisioner) synced(ctx context.Context) error {
	if p.informer.HasSynced() {
		return nil
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !p.informer.HasSynced() {
		select {
		case <-ctx.Done():
			why := p.lastWatchErr()
			if why == nil {
				why = ctx.Err()
			}
			return fmt.Errorf("kubernetes: pods in namespace %q not listed yet: %w", p.cfg.namespace, why)
		case <-p.stop:
			return errors.New("kubernetes: provisioner closed")
		case <-t.C:
		}
	}
	return nil
}

// cached returns the informer's pods.
func (p *Provisioner) cached() []*corev1.Pod {
	items := p.informer.GetStore().List()
	out := make([]*corev1.Pod, 0, len(items))
	for _, it := range items {
		if pod, ok := it.(*corev1.Pod); ok {
			out = append(out, pod)
		}
	}
	return out
}

func (p *Provisioner) cachedPod(name string) (*corev1.Pod, bool) {
	obj, ok, _ := p.informer.GetStore().GetByKey(p.cfg.namespace + "/" + name)
	if !ok {
		return nil, false
	}
	pod, ok := obj.(*corev1.Pod)
	return pod, ok
}

// List returns this provisioner's pods, from the watch's cache, plus pods
// Create made that the watch has not shown yet.
func (p *Provisioner) List(ctx context.Context) ([]provisioner.Instance, error) {
	if err := p.synced(ctx); err != nil {
		return nil, err
	}
	now := p.now()
	pods := p.cached()
	out := make([]provisioner.Instance, 0, len(pods))
	have := make(map[string]bool, len(pods))
	for _, pod := range pods {
		have[pod.Name] = true
		out = append(out, instanceOf(pod, p.cfg.bootstrapTimeout, now))
	}
	for _, in := range p.unseenNotIn(ctx, have) {
		out = append(out, in)
	}
	return out, nil
}

// unseenNotIn returns the unseen creates not in have; one unseen for
// longer than unseenRecheck is looked up directly, and forgotten if the
// API server does not have it.
func (p *Provisioner) unseenNotIn(ctx context.Context, have map[string]bool) []provisioner.Instance {
	p.mu.Lock()
	var out, stale []provisioner.Instance
	for name, in := range p.unseen {
		switch {
		case have[name]:
			delete(p.unseen, name)
		case p.now().Sub(in.CreatedAt) > unseenRecheck:
			stale = append(stale, in)
		default:
			out = append(out, in)
		}
	}
	p.mu.Unlock()
	for _, in := range stale {
		pod, err := p.client.CoreV1().Pods(p.cfg.namespace).Get(ctx, in.ID, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			p.mu.Lock()
			delete(p.unseen, in.ID)
			p.mu.Unlock()
		case err == nil && p.owns(pod.Labels):
			out = append(out, instanceOf(pod, p.cfg.bootstrapTimeout, p.now()))
		default:
			out = append(out, in) // cannot tell: still there as far as we know
		}
	}
	return out
}

// Get returns one of this provisioner's pods.
func (p *Provisioner) Get(ctx context.Context, id string) (provisioner.Instance, error) {
	if err := p.synced(ctx); err != nil {
		return provisioner.Instance{}, err
	}
	if pod, ok := p.cachedPod(id); ok {
		return instanceOf(pod, p.cfg.bootstrapTimeout, p.now()), nil
	}
	for _, in := range p.unseenNotIn(ctx, map[string]bool{}) {
		if in.ID == id {
			return in, nil
		}
	}
	return provisioner.Instance{}, fmt.Errorf("pod %s/%s: %w", p.cfg.namespace, id, provisioner.ErrNotFound)
}

func (p *Provisioner) owns(l map[string]string) bool {
	for k, v := range p.ownership() {
		if l[k] != v {
			return false
		}
	}
	return true
}

// aliveLocked counts the pods that hold a runner slot: not ended, not
// being deleted, or still being created. p.mu is held.
func (p *Provisioner) aliveLocked() int {
	n := 0
	have := map[string]bool{}
	for _, pod := range p.cached() {
		have[pod.Name] = true
		if pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	for name := range p.unseen {
		if !have[name] {
			n++
		}
	}
	return n + len(p.creating)
}

// Create makes the runner's Secret, then its pod. An error after which
// nothing is left is marked NotCreated.
func (p *Provisioner) Create(ctx context.Context, spec provisioner.Spec) (provisioner.Instance, error) {
	if spec.Registration.JITConfig == "" && spec.Registration.Token == "" {
		return provisioner.Instance{}, provisioner.Permanent(provisioner.NotCreated(
			fmt.Errorf("create runner %s: no JIT config and no registration token", spec.RunnerName)))
	}
	if err := p.synced(ctx); err != nil {
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	name := podName(spec.RunnerName)
	// The check and the claim under one lock: concurrent creates cannot
	// both take the last slot.
	p.mu.Lock()
	if p.creating[name] {
		p.mu.Unlock()
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: a create of pod %s is under way", spec.RunnerName, name))
	}
	if max := p.cfg.maxInstances; max > 0 {
		if n := p.aliveLocked(); n >= max {
			p.mu.Unlock()
			return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf(
				"create runner %s: %w (%d pods alive, max_instances %d)", spec.RunnerName, ErrMaxInstances, n, max))
		}
	}
	p.creating[name] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.creating, name)
		p.mu.Unlock()
	}()

	secrets := p.client.CoreV1().Secrets(p.cfg.namespace)
	sec := p.buildSecret(name, spec)
	_, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Left by a create whose pod never came (a crash in between): ours
		// by its labels, so replaced.
		if derr := p.deleteSecret(ctx, name); derr == nil {
			_, err = secrets.Create(ctx, sec, metav1.CreateOptions{})
		}
	}
	if err != nil {
		err = describe("create", "secrets", p.cfg.namespace, err)
		if refused(err) {
			return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
		}
		return provisioner.Instance{}, p.cleanUp(ctx, name, fmt.Errorf("create runner %s: %w", spec.RunnerName, err))
	}
	created, err := p.client.CoreV1().Pods(p.cfg.namespace).Create(ctx, p.buildPod(name, spec), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Runner names are unique, so this is a pod made under this name
		// before; it may be running a job, and is left alone with its
		// Secret.
		return provisioner.Instance{}, provisioner.NotCreated(fmt.Errorf("create runner %s: %w",
			spec.RunnerName, describe("create", "pods", p.cfg.namespace, err)))
	}
	if err != nil {
		return provisioner.Instance{}, p.cleanUp(ctx, name,
			fmt.Errorf("create runner %s: %w", spec.RunnerName, describe("create", "pods", p.cfg.namespace, err)))
	}
	in := instanceOf(created, p.cfg.bootstrapTimeout, p.now())
	if in.CreatedAt.IsZero() {
		in.CreatedAt = p.now()
	}
	p.mu.Lock()
	if _, ok := p.cachedPod(name); !ok {
		p.unseen[name] = in
	}
	p.mu.Unlock()
	p.log.Debug("kubernetes: pod created", zap.String("pod", name), zap.String("pool", spec.Pool))
	return in, nil
}

// cleanUp removes what a failed Create may have left; the error is marked
// NotCreated when that worked, so the create may be retried.
func (p *Provisioner) cleanUp(ctx context.Context, name string, err error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if derr := p.Delete(cctx, name); derr != nil {
		p.log.Warn("kubernetes: a failed create left objects behind; the sweep will retry",
			zap.String("pod", name), zap.Error(derr))
		return err
	}
	return provisioner.NotCreated(err)
}

// Delete deletes the pod (with the delete grace period: the runner gets
// SIGTERM, then SIGKILL) and its Secret. Only objects with this
// provisioner's labels are deleted, guarded by their UID.
func (p *Provisioner) Delete(ctx context.Context, id string) error {
	pods := p.client.CoreV1().Pods(p.cfg.namespace)
	var uid types.UID
	if pod, ok := p.cachedPod(id); ok {
		uid = pod.UID
	} else {
		pod, err := pods.Get(ctx, id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("delete pod %s: %w", id, describe("get", "pods", p.cfg.namespace, err))
		case !p.owns(pod.Labels):
			return fmt.Errorf("delete pod %s: not made by this provisioner: %w", id, provisioner.ErrNotFound)
		default:
			uid = pod.UID
		}
	}
	if uid != "" {
		grace := int64(p.cfg.deleteGrace.Seconds())
		err := pods.Delete(ctx, id, metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete pod %s: %w", id, describe("delete", "pods", p.cfg.namespace, err))
		}
	}
	if err := p.deleteSecret(ctx, id); err != nil {
		return fmt.Errorf("delete pod %s: %w", id, err)
	}
	p.mu.Lock()
	delete(p.unseen, id)
	p.mu.Unlock()
	return nil
}

// deleteSecret deletes pod's Secret if it is ours.
func (p *Provisioner) deleteSecret(ctx context.Context, pod string) error {
	secrets := p.client.CoreV1().Secrets(p.cfg.namespace)
	s, err := secrets.Get(ctx, secretName(pod), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", secretName(pod), describe("get", "secrets", p.cfg.namespace, err))
	}
	if !p.owns(s.Labels) {
		return nil
	}
	uid := s.UID
	err = secrets.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("secret %s: %w", s.Name, describe("delete", "secrets", p.cfg.namespace, err))
	}
	return nil
}

// sweepLoop deletes Secrets whose pod is gone: a pod deleted from outside
// while the daemon was down, a create cut short between its two objects.
func (p *Provisioner) sweepLoop() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if !p.informer.HasSynced() {
			continue
		}
		ctx, cancel := p.opContext()
		n, err := p.sweep(ctx)
		cancel()
		if err != nil {
			p.log.Warn("kubernetes: orphaned Secrets not swept", zap.Error(err))
		} else if n > 0 {
			p.log.Info("kubernetes: Secrets of gone pods deleted", zap.Int("count", n))
		}
	}
}

// sweep runs one orphaned-Secret sweep and returns how many it deleted.
func (p *Provisioner) sweep(ctx context.Context) (int, error) {
	list, err := p.client.CoreV1().Secrets(p.cfg.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: p.selector().String(), FieldSelector: fields.Everything().String()})
	if err != nil {
		return 0, describe("list", "secrets", p.cfg.namespace, err)
	}
	n := 0
	for _, s := range list.Items {
		pod := strings.TrimSuffix(s.Name, "-jit")
		if _, ok := p.cachedPod(pod); ok || p.now().Sub(s.CreationTimestamp.Time) < orphanSecretAge {
			continue
		}
		p.mu.Lock()
		_, pending := p.unseen[pod]
		busy := p.creating[pod]
		p.mu.Unlock()
		if pending || busy {
			continue
		}
		if err := p.deleteSecret(ctx, pod); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close stops the watch and waits for the housekeeping to end.
func (p *Provisioner) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
	return nil
}

// describe turns an API error into one that says what was refused; a
// Forbidden names the verb and resource the Role is missing.
func describe(verb, resource, namespace string, err error) error {
	if err == nil {
		return nil
	}
	if apierrors.IsForbidden(err) && !isAdmissionRefusal(err) {
		// The API server's message names what it refused; the informer's
		// list and watch share one error handler, so trust the message.
		var st apierrors.APIStatus
		if errors.As(err, &st) {
			if m := refusedRE.FindStringSubmatch(st.Status().Message); m != nil {
				verb, resource = m[1], m[2]
			}
		}
		return &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, err: err}
	}
	return fmt.Errorf("%s %s in namespace %q: %w", verb, resource, namespace, err)
}

// refusedRE finds the verb and resource in RBAC's "User ... cannot list
// resource "pods" ..." message.
var refusedRE = regexp.MustCompile(`cannot (\w+) resource "([^"]+)"`)

// isAdmissionRefusal: a 403 from an admission plugin (a missing service
// account, a quota) rather than from RBAC.
func isAdmissionRefusal(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	msg := st.Status().Message
	return !strings.Contains(msg, "cannot ")
}

// ForbiddenError is an RBAC refusal: the provisioner's identity lacks Verb
// on Resource in Namespace.
type ForbiddenError struct {
	Verb, Resource, Namespace string
	err                       error
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("forbidden: the provisioner may not %s %s in namespace %q; its Role needs verb %q on resource %q (see docs/kubernetes.md): %v",
		e.Verb, e.Resource, e.Namespace, e.Verb, e.Resource, e.err)
}

func (e *ForbiddenError) Unwrap() error { return e.err }

// refused: the API server answered and refused, so nothing was made.
func refused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) || apierrors.IsAlreadyExists(err)
}

// zapWarnings logs the API server's warnings (deprecations, policy
// violations in warn mode) through the daemon's logger.
type zapWarnings struct{ log *zap.Logger }

func (w zapWarnings) HandleWarningHeader(code int, agent, message string) {
	if code != 299 || message == "" {
		return
	}
	w.log.Warn("kubernetes API warning", zap.String("warning", message))
}
