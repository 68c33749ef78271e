// Package kubetest runs a real kube-apiserver, backed by a real etcd, on
// loopback for one test.
//
// A real API server rather than client-go's fake clientset, because what the
// Kubernetes provisioner has to get right lives in the server: RBAC denials
// and their wording, admission (the ServiceAccount plugin), resourceVersions,
// watches that break and need a relist, status subresources. There is no
// controller-manager, scheduler or kubelet: pods stay Pending until a test
// moves them, namespaces never finish deleting, owner references collect
// nothing (tools/kube/README.md lists these pitfalls).
//
// The binaries come from tools/kube/build.sh; without them the tests skip
// (or fail, in CI, where RUNNERSCALER_REQUIRE_KUBE=1).
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeVersion is the kube-apiserver version tools/kube/build.sh builds; it
// names the cache directory the binary is looked up in.
const KubeVersion = "v1.36.3"

const (
	// etcdReadyTimeout bounds etcd's start: it is healthy in about 0.1 s
	// on tmpfs.
	etcdReadyTimeout = 20 * time.Second
	// apiserverReadyTimeout bounds kube-apiserver's start (about 3 s warm,
	// more on a loaded 2-CPU machine running tests in parallel).
	apiserverReadyTimeout = 60 * time.Second
	// startAttempts covers the race between freePorts closing its listener
	// and the child binding the port.
	startAttempts = 3
	// requestTimeout bounds each request the helpers make, so that a hung
	// server fails the test instead of hanging it until go test's -timeout.
	requestTimeout = 30 * time.Second
	// accessTimeout bounds WaitAllowed: RBAC changes take effect within
	// tens of milliseconds.
	accessTimeout = 10 * time.Second
)

// Server is one etcd and one kube-apiserver, both on 127.0.0.1, private to
// the test that started them.
type Server struct {
	creds         *credentials
	url           string
	etcdURL       string
	etcdDataBase  string // removed in cleanup; under /dev/shm when possible
	apiserverBin  string
	apiserverArgs []string
	etcdLog       string
	apiserverLog  string
	readyClient   *http.Client // readiness polls only; keeps no connections
	admin         kubernetes.Interface

	mu        sync.Mutex
	etcd      *process
	apiserver *process
	logsShown bool // a t.Fatal already carried the log tails
}

// Start launches etcd and kube-apiserver for one test and stops both in
// t.Cleanup, so a test never sees another test's objects and nothing
// outlives it.
//
// When the binaries are missing it calls t.Skip with how to get them (bash
// tools/kube/build.sh): a developer without them can still run go test
// ./.... With RUNNERSCALER_REQUIRE_KUBE=1 (CI sets it) it calls t.Fatal
// instead, so that CI cannot pass by silently skipping every Kubernetes test.
//
// The binaries are KUBE_APISERVER_BIN (default: build.sh's cache,
// ${XDG_CACHE_HOME:-$HOME/.cache}/runnerscaler/kube/v1.36.3/kube-apiserver)
// and KUBE_ETCD_BIN (default: etcd on PATH).
func Start(t testing.TB) *Server {
	t.Helper()
	apiserverBin, etcdBin := findBinaries(t)

	dir := t.TempDir()
	creds, err := newCredentials(dir)
	if err != nil {
		t.Fatalf("kubetest: credentials: %v", err)
	}
	s := &Server{
		creds:        creds,
		apiserverBin: apiserverBin,
		etcdLog:      filepath.Join(dir, "etcd.log"),
		apiserverLog: filepath.Join(dir, "kube-apiserver.log"),
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(creds.caPEM)
	s.readyClient = &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			Proxy:             nil, // only ever 127.0.0.1
		},
	}
	s.etcdDataBase = etcdDataBase(t, dir)
	t.Cleanup(func() { s.cleanup(t) })

	t0 := time.Now()
	s.startEtcd(t, etcdBin)
	etcdReady := time.Since(t0)

	ports, err := freePorts(1)
	if err != nil {
		s.fatalf(t, "kubetest: free port: %v", err)
	}
	s.url = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	s.apiserverArgs = apiserverArgs(s.etcdURL, ports[0], creds)
	t1 := time.Now()
	s.startAPIServer(t, true)
	apiReady := time.Since(t1)
	t.Logf("kubetest: etcd healthy after %v, kube-apiserver ready after %v (start-to-ready %v) on %s",
		etcdReady.Round(time.Millisecond), apiReady.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), s.url)

	s.admin, err = kubernetes.NewForConfig(s.AdminConfig())
	if err != nil {
		s.fatalf(t, "kubetest: admin clientset: %v", err)
	}
	return s
}

// findBinaries returns the two binaries, or skips (fails in CI) the test.
func findBinaries(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	var problems []string
	apiserver = os.Getenv("KUBE_APISERVER_BIN")
	if apiserver == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				problems = append(problems, fmt.Sprintf("kube-apiserver: no KUBE_APISERVER_BIN and no home directory (%v)", err))
			}
			cache = filepath.Join(home, ".cache")
		}
		apiserver = filepath.Join(cache, "runnerscaler", "kube", KubeVersion, "kube-apiserver")
	}
	if err := checkExecutable(apiserver); err != nil {
		problems = append(problems, fmt.Sprintf("kube-apiserver: %v", err))
	}
	etcd = os.Getenv("KUBE_ETCD_BIN")
	if etcd == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			problems = append(problems, "etcd: not on PATH and KUBE_ETCD_BIN not set")
		}
		etcd = p
	} else if err := checkExecutable(etcd); err != nil {
		problems = append(problems, fmt.Sprintf("etcd: %v", err))
	}
	if len(problems) == 0 {
		return apiserver, etcd
	}
	msg := "kubetest: " + strings.Join(problems, "; ") +
		`. Get them with: eval "$(bash tools/kube/build.sh)" (builds kube-apiserver ` + KubeVersion +
		` into the cache, installs Debian's etcd-server if etcd is missing)`
	if os.Getenv("RUNNERSCALER_REQUIRE_KUBE") == "1" {
		t.Fatal(msg + " [RUNNERSCALER_REQUIRE_KUBE=1: failing instead of skipping]")
	}
	t.Skip(msg)
	return "", ""
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// etcdDataBase returns a directory for etcd's data. etcd 3.4 has no
// --unsafe-no-fsync and fsyncs every write; on tmpfs (/dev/shm) that is free,
// on a disk it slows every API write. t.TempDir is the fallback. The
// directory is removed in cleanup (t.TempDir's own cleanup does not cover
// /dev/shm).
func etcdDataBase(t testing.TB, dir string) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "kubetest-etcd-"); err == nil {
			return d
		}
	}
	d := filepath.Join(dir, "etcd-data")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return d
}

// startEtcd starts etcd on fresh ports and waits until it is healthy,
// retrying when a port was taken in the meantime.
func (s *Server) startEtcd(t testing.TB, bin string) {
	t.Helper()
	env := envWithout("ETCD_")
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			s.fatalf(t, "kubetest: free ports: %v", err)
		}
		clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		// A fresh data dir per attempt: a failed attempt may have
		// initialised one for other URLs.
		dataDir := filepath.Join(s.etcdDataBase, "data-"+strconv.Itoa(attempt))
		args := []string{
			"--name", "kubetest",
			"--data-dir", dataDir,
			"--listen-client-urls", clientURL,
			"--advertise-client-urls", clientURL,
			// Explicit peer URLs: otherwise etcd binds the default
			// peer port 2380 and two tests (or a packaged etcd) collide.
			"--listen-peer-urls", peerURL,
			"--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "kubetest=" + peerURL,
			"--initial-cluster-state", "new",
			// A single member elects itself after one election timeout:
			// the default 1 s (randomised) made etcd take 0.25-1 s to
			// become healthy, 100 ms makes it about 0.1 s. With no peers
			// there is no heartbeat to miss, so short timeouts cost nothing.
			"--heartbeat-interval", "10", "--election-timeout", "100",
			// kube-apiserver's watch cache learns etcd's current revision
			// from progress notifications. etcd 3.4.23 cannot send them on
			// request (3.4.31+ can), only on this interval (default 10
			// min): without it a watch of a resource nobody has written
			// since start-up fails with "Too large resource version"
			// until something writes one.
			"--experimental-watch-progress-notify-interval", "100ms",
			// 3.4 defaults to the deprecated capnslog logger at info level.
			"--logger", "zap", "--log-level", "warn",
		}
		p, err := startProcess("etcd", bin, args, env, s.etcdLog)
		if err != nil {
			s.fatalf(t, "kubetest: %v", err)
		}
		s.mu.Lock()
		s.etcd = p
		s.mu.Unlock()
		err = waitUntil(p, etcdReadyTimeout, func() (bool, string) { return s.etcdHealthy(clientURL) })
		if err == nil {
			s.etcdURL = clientURL
			return
		}
		if p.portClash() && attempt < startAttempts {
			t.Logf("kubetest: etcd attempt %d: port taken, retrying on other ports", attempt)
			p.stop()
			_ = os.RemoveAll(dataDir)
			continue
		}
		s.fatalf(t, "kubetest: %v", err)
	}
}

func (s *Server) etcdHealthy(clientURL string) (bool, string) {
	resp, err := s.readyClient.Get(clientURL + "/health")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`),
		fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// apiserverArgs are smoke.sh's flags (tools/kube/README.md says why each),
// plus the watch termination below.
func apiserverArgs(etcdURL string, port int, creds *credentials) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + creds.certFile,
		"--tls-private-key-file=" + creds.keyFile,
		"--token-auth-file=" + creds.tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + creds.saPubFile,
		"--service-account-signing-key-file=" + creds.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// Without it a SIGTERM leaves open watches alone: net/http's
		// graceful HTTP/2 shutdown then waits for those streams up to
		// --request-timeout (60 s), so Restart and cleanup hit the SIGKILL
		// fallback whenever a test still has a watch or informer open.
		// Any positive value installs the filter that ends watches at
		// shutdown; the process then exits about 1 s after SIGTERM.
		"--shutdown-watch-termination-grace-period=2s",
	}
}

// startAPIServer starts kube-apiserver with s.apiserverArgs and waits for
// /readyz. Only the first start may retry on other ports; a restart must keep
// the URL clients were built with, so it retries on the same port.
func (s *Server) startAPIServer(t testing.TB, first bool) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := startProcess("kube-apiserver", s.apiserverBin, s.apiserverArgs, os.Environ(), s.apiserverLog)
		if err != nil {
			s.fatalf(t, "kubetest: %v", err)
		}
		s.mu.Lock()
		s.apiserver = p
		s.mu.Unlock()
		err = waitUntil(p, apiserverReadyTimeout, s.apiserverReady)
		if err == nil {
			return
		}
		if p.portClash() && attempt < startAttempts {
			p.stop()
			if first {
				ports, perr := freePorts(1)
				if perr != nil {
					s.fatalf(t, "kubetest: free port: %v", perr)
				}
				s.url = "https://127.0.0.1:" + strconv.Itoa(ports[0])
				s.setArg("--secure-port=", strconv.Itoa(ports[0]))
				t.Logf("kubetest: kube-apiserver attempt %d: port taken, retrying on %s", attempt, s.url)
			} else {
				t.Logf("kubetest: kube-apiserver restart attempt %d: port of %s taken, retrying", attempt, s.url)
			}
			continue
		}
		s.fatalf(t, "kubetest: %v", err)
	}
}

func (s *Server) setArg(prefix, value string) {
	for i, a := range s.apiserverArgs {
		if strings.HasPrefix(a, prefix) {
			s.apiserverArgs[i] = prefix + value
		}
	}
}

// apiserverReady asks /readyz as admin: anonymous access to it works too
// today, but would silently break if a test turned anonymous auth off.
func (s *Server) apiserverReady() (bool, string) {
	req, err := http.NewRequest(http.MethodGet, s.url+"/readyz", nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+s.creds.adminToken)
	resp, err := s.readyClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// fatalf fails the test with the log tails in the message: a start-up
// failure is nearly always explained by the last lines the process wrote.
func (s *Server) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	s.mu.Lock()
	s.logsShown = true
	s.mu.Unlock()
	t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), s.logTails())
}

func (s *Server) logTails() string {
	return fmt.Sprintf("--- last 40 lines of %s:\n%s\n--- last 20 lines of %s:\n%s",
		s.apiserverLog, tail(s.apiserverLog, 40), s.etcdLog, tail(s.etcdLog, 20))
}

// cleanup stops the apiserver before etcd (the other way round it would
// log etcd errors while shutting down) and removes etcd's data.
func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	api, etcd, shown := s.apiserver, s.etcd, s.logsShown
	s.mu.Unlock()
	if api != nil && api.stop() {
		t.Logf("kubetest: kube-apiserver did not exit within %v of SIGTERM: killed", stopTimeout)
	}
	if etcd != nil && etcd.stop() {
		t.Logf("kubetest: etcd did not exit within %v of SIGTERM: killed", stopTimeout)
	}
	s.readyClient.CloseIdleConnections()
	if t.Failed() && !shown {
		t.Logf("kubetest: test failed; server logs:\n%s", s.logTails())
	}
	if err := os.RemoveAll(s.etcdDataBase); err != nil {
		t.Errorf("kubetest: remove etcd data: %v", err)
	}
}

// URL is the apiserver's address, https://127.0.0.1:PORT. It does not change
// across Restart.
func (s *Server) URL() string { return s.url }

// CAData is the PEM certificate of the CA that signed the serving
// certificate, for clients configured by hand.
func (s *Server) CAData() []byte { return append([]byte(nil), s.creds.caPEM...) }

// AdminConfig returns a new config for the admin token (group
// system:masters, allowed everything by RBAC without any binding). TLS is
// verified against the test CA, as a real client would. Client-side rate
// limiting is off: the admin stands in for controllers and the kubelet and
// client-go's default 5 QPS would make tests slow, not more realistic.
func (s *Server) AdminConfig() *rest.Config {
	cfg := s.ConfigForToken(s.creds.adminToken)
	cfg.QPS = -1 // no rate limiter (only 0 means the default)
	return cfg
}

// Admin is a clientset for AdminConfig, for setting up and inspecting
// what the code under test cannot see.
func (s *Server) Admin() kubernetes.Interface { return s.admin }

// ConfigForToken returns a new config that authenticates with the bearer
// token, for code under test that takes a *rest.Config. client-go's
// defaults (rate limit included) are kept, as the code under test would get
// them.
func (s *Server) ConfigForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            s.url,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData()},
	}
}

// Restart stops kube-apiserver (SIGTERM, wait) and starts it again on the
// same port against the same etcd, returning once /readyz is 200 again. Every
// watch and connection breaks, and the new watch cache starts at etcd's
// current revision, so watches resumed from older resourceVersions get 410
// Gone: the way to test that clients relist and miss nothing.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	old := s.apiserver
	s.mu.Unlock()
	t0 := time.Now()
	if old.stop() {
		t.Logf("kubetest: kube-apiserver did not exit within %v of SIGTERM: killed", stopTimeout)
	}
	stopped := time.Since(t0)
	f, err := os.OpenFile(s.apiserverLog, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		fmt.Fprintf(f, "--- kubetest: restart at %s ---\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	s.startAPIServer(t, false)
	t.Logf("kubetest: kube-apiserver restarted: stopped in %v, ready again %v later",
		stopped.Round(time.Millisecond), (time.Since(t0) - stopped).Round(time.Millisecond))
}

func (s *Server) ctx(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), requestTimeout)
}

// CreateNamespace creates the namespace and a ServiceAccount "default" in
// it. Without a controller-manager nobody else creates that ServiceAccount,
// and the ServiceAccount admission plugin (kept on, as in real clusters)
// rejects every pod with "error looking up service account NS/default".
func (s *Server) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := s.admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create namespace %s: %v", name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := s.admin.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create service account %s/default: %v", name, err)
	}
}

// ServiceAccountToken returns a token for the ServiceAccount from the
// TokenRequest API, the way kubelets and `kubectl create token` get them,
// valid for an hour. The ServiceAccount must exist. Unlike the static admin
// token, its identity (system:serviceaccount:NS:NAME) is what RBAC
// RoleBindings in the docs name.
func (s *Server) ServiceAccountToken(t testing.TB, namespace, name string) string {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	exp := int64(time.Hour / time.Second)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}
	res, err := s.admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: token for service account %s/%s: %v", namespace, name, err)
	}
	return res.Status.Token
}

// WriteKubeconfig writes a kubeconfig to path for code under test that
// loads one (kubeconfig-path mode): the server, its CA, the bearer token and
// a current context whose namespace is namespace. Mode 0600, as kubectl
// writes them, because it holds a credential.
func (s *Server) WriteKubeconfig(t testing.TB, path, token, namespace string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: s.url, CertificateAuthorityData: s.CAData()}
	cfg.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: namespace}
	cfg.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("kubetest: write kubeconfig: %v", err)
	}
	// WriteToFile's 0600 applies only to a new file.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
}

// WaitAllowed returns once cfg's identity may do verb on resource in
// namespace ("" for cluster scope), asking the server with a
// SelfSubjectAccessReview. RBAC reads Roles and RoleBindings through an
// informer, so a binding takes effect tens of milliseconds after its create
// returns; without this wait, a test that binds and then acts is flaky.
//
// resource may name a subresource ("pods/status") and an API group
// ("deployments.apps", "deployments.apps/scale"); plain names are the core
// group. Fails the test after 10 s.
func (s *Server) WaitAllowed(t testing.TB, cfg *rest.Config, verb, resource, namespace string) {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.RateLimiter = -1, nil // polling must not wait on, or use up, a rate limiter
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatalf("kubetest: clientset: %v", err)
	}
	attrs := &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb}
	attrs.Resource, attrs.Subresource, _ = strings.Cut(resource, "/")
	attrs.Resource, attrs.Group, _ = strings.Cut(attrs.Resource, ".")

	ctx, cancel := context.WithTimeout(t.Context(), accessTimeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	last := ""
	for {
		review := &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs},
		}
		res, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case res.Status.Allowed:
			return
		default:
			last = fmt.Sprintf("denied (reason %q, evaluation error %q)", res.Status.Reason, res.Status.EvaluationError)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("kubetest: %s %s in namespace %q still not allowed after %v: %s",
					verb, resource, namespace, accessTimeout, last)
			}
			t.Fatalf("kubetest: WaitAllowed: %v", ctx.Err())
		case <-ticker.C:
		}
	}
}
