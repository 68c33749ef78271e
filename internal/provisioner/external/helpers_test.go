package external

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

const testDaemonID = "daemon-7f3a"

// A JIT config looks like base64 (with "/", "+" and "="); the token has
// characters JSON escapes.
const (
	testJIT   = "eyJ.ZmFrZS1qaXQtY29uZmln/c2VjcmV0+payload=="
	testToken = "AABBCC<tok&en>DDEEFF"
)

func examplePlugin(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", "provisioner-fake.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("example plugin %s missing or not executable: %v", p, err)
	}
	return p
}

// script writes an executable /bin/sh script and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTest builds a provisioner named "test" with an observed debug logger.
func newTest(t *testing.T, settings map[string]any) (*Provisioner, *observer.ObservedLogs) {
	t.Helper()
	return newTestDaemon(t, settings, testDaemonID)
}

func newTestDaemon(t *testing.T, settings map[string]any, daemonID string) (*Provisioner, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	p, err := New(settings, provisioner.Env{Name: "test", DaemonID: daemonID, Logger: zap.New(core)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, logs
}

func jitSpec(name string) provisioner.Spec {
	return provisioner.Spec{
		RunnerName:   name,
		Pool:         "linux-x64",
		Labels:       []string{"self-hosted", "linux"},
		RunnerGroup:  "Default",
		ScopeURL:     "https://github.com/octo-org",
		Registration: provisioner.Registration{JITConfig: secret.String(testJIT)},
	}
}

func tokenSpec(name string) provisioner.Spec {
	s := jitSpec(name)
	s.Registration = provisioner.Registration{Token: secret.String(testToken), Ephemeral: true}
	return s
}

// assertNoSecret fails when any form of a test secret appears in text.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, sec := range []string{testJIT, testToken} {
		for _, form := range secretForms(sec) {
			if strings.Contains(text, form) {
				t.Errorf("%s contains a secret (%q): %s", what, form, text)
			}
		}
		// Also any 12-byte piece of it.
		for i := 0; i+12 <= len(sec); i++ {
			if strings.Contains(text, sec[i:i+12]) {
				t.Errorf("%s contains a piece of a secret (%q): %s", what, sec[i:i+12], text)
				break
			}
		}
	}
}

// assertLogsClean checks every log entry, message and fields, for secrets.
func assertLogsClean(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		var b strings.Builder
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		assertNoSecret(t, "log entry", b.String())
	}
}

// recorder captures the pids of the plugins started (via
// Provisioner.onStart), and whether each led its own process group when it
// started.
type recorder struct {
	mu      sync.Mutex
	pids    []int
	leaders []bool
}

func (r *recorder) add(pid int) {
	_, pgrp, ok := procStat(pid)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pids = append(r.pids, pid)
	r.leaders = append(r.leaders, ok && pgrp == pid)
}

// leader reports whether the i-th plugin started led its own process group.
func (r *recorder) leader(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaders[i]
}

func (r *recorder) all() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.pids...)
}

// liveInGroup lists the processes of process group pgid that are alive (not
// zombies), from /proc.
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			live = append(live, pid)
		}
	}
	return live
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}

// eventually waits for cond, which depends on the kernel finishing a process
// exit we already caused (SIGKILL delivered, pipes closed), for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 5s: %s", what)
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
}

func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
}

func settingsErrorPaths(t *testing.T, err error) map[string]string {
	t.Helper()
	var se *provisioner.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("want *provisioner.SettingsError, got %T: %v", err, err)
	}
	m := map[string]string{}
	for _, p := range se.Problems {
		m[p.Path] = p.Message
	}
	return m
}
