package local

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// daemonSecretEnv is set in the test process (the "daemon"); no runner may
// ever see it.
const (
	daemonSecretEnv = "RUNNERSCALER_TEST_DAEMON_SECRET"
	daemonSecret    = "daemon-secret-value-7f3a"
)

// scalerBin is the scaler binary TestMain builds, which the simulator's
// runner packages exec as `scaler sim-runner`.
var scalerBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	pollInterval = 20 * time.Millisecond
	if runtime.GOOS != "linux" {
		return m.Run() // the process tests (linux only) need no scaler binary
	}
	os.Setenv(daemonSecretEnv, daemonSecret)
	dir, err := os.MkdirTemp("", "local-provisioner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // run_as_user runs it too
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	scalerBin = filepath.Join(dir, "scaler")
	build := exec.Command("go", "build", "-o", scalerBin, "github.com/runnerscaler/runnerscaler/cmd/scaler")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build scaler:", err)
		return 1
	}
	return m.Run()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logs is a zap logger whose entries the test can search.
type logs struct {
	*observer.ObservedLogs
	logger *zap.Logger
}

func newLogs() logs {
	core, obs := observer.New(zap.DebugLevel)
	return logs{ObservedLogs: obs, logger: zap.New(core)}
}

// assertNoSecret fails if any log entry (message or field) holds s.
func (l logs) assertNoSecret(t *testing.T, s string) {
	t.Helper()
	if s == "" {
		t.Fatal("empty secret")
	}
	for _, e := range l.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, s) {
			t.Errorf("a log entry holds a secret: %s", e.Message)
		}
	}
}

func (l logs) has(msg string) bool { return l.FilterMessage(msg).Len() > 0 }

// fakeApp serves a runner application tarball built by the test.
type fakeApp struct {
	srv       *httptest.Server
	mu        sync.Mutex
	apps      []provisioner.RunnerApplication
	data      map[string][]byte
	listErr   error
	downloads atomic.Int64
	lists     atomic.Int64
}

func newFakeApp(t *testing.T) *fakeApp {
	f := &fakeApp{data: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.downloads.Add(1)
		f.mu.Lock()
		b, ok := f.data[strings.TrimPrefix(r.URL.Path, "/pkg/")]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// publish makes a build with the given files the one listed for this host.
func (f *fakeApp) publish(filename string, archive []byte) {
	sum := sha256.Sum256(archive)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[filename] = archive
	f.apps = []provisioner.RunnerApplication{
		{OS: "osx", Architecture: "arm64", Filename: "other.tar.gz", DownloadURL: f.srv.URL + "/pkg/other.tar.gz", SHA256: strings.Repeat("0", 64)},
		{OS: hostOS(), Architecture: hostArch(), Filename: filename, DownloadURL: f.srv.URL + "/pkg/" + filename, SHA256: hex.EncodeToString(sum[:])},
	}
}

func (f *fakeApp) setListErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

func (f *fakeApp) RunnerApplications(ctx context.Context) ([]provisioner.RunnerApplication, error) {
	f.lists.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]provisioner.RunnerApplication(nil), f.apps...), nil
}

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o755
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scriptApp is a runner application whose run.sh is script.
func scriptApp(t *testing.T, script string) []byte {
	return makeTarGz(t,
		tarEntry{name: "bin/", typ: tar.TypeDir},
		tarEntry{name: "run.sh", body: "#!/bin/sh\n" + script},
		tarEntry{name: "config.sh", body: "#!/bin/sh\necho configured \"$@\"\n"},
		tarEntry{name: "bin/Runner.Listener", body: "#!/bin/sh\nexit 0\n"},
	)
}

// testEnv is a provisioner.Env on a fresh state directory.
func testEnv(t *testing.T, name string, d provisioner.RunnerDownloads, l logs) provisioner.Env {
	return provisioner.Env{Name: name, DaemonID: "daemon-test", StateDir: t.TempDir(), Downloads: d, Logger: l.logger}
}

// newProvisioner builds a provisioner and, at the end of the test, deletes
// every instance it still has and closes it.
func newProvisioner(t *testing.T, settings map[string]any, env provisioner.Env) *Provisioner {
	t.Helper()
	p, err := New(settings, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { cleanup(t, p) })
	return p
}

func cleanup(t *testing.T, p *Provisioner) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if insts, err := p.List(ctx); err == nil {
		for _, in := range insts {
			if err := p.Delete(ctx, in.ID); err != nil {
				t.Errorf("cleanup: delete %s: %v", in.ID, err)
			}
		}
	}
	_ = p.Close()
}

// jitSpec is a JIT spec with a made-up config (for runners that are not
// the simulator's).
func jitSpec(name, jit string) provisioner.Spec {
	return provisioner.Spec{
		RunnerName: name, Pool: "pool-a", Labels: []string{"self-hosted"}, ScopeURL: "https://github.com/octo-org",
		Registration: provisioner.Registration{JITConfig: secret.String(jit)},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// get returns an instance, failing the test on error.
func get(t *testing.T, p *Provisioner, id string) provisioner.Instance {
	t.Helper()
	in, err := p.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return in
}

func stateIs(p *Provisioner, id string, want provisioner.State) func() bool {
	return func() bool {
		in, err := p.Get(context.Background(), id)
		return err == nil && in.State == want
	}
}
