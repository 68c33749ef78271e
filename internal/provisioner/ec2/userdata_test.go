package ec2

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRunnerTarball is a runner application whose run.sh and config.sh
// record their environment, arguments and their parents' command lines.
func fakeRunnerTarball(t *testing.T) []byte {
	t.Helper()
	files := map[string]string{
		"run.sh": `#!/bin/bash
out="$RS_TEST_OUT"
printf '%s' "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" >"$out/run-jit"
printf '%s' "${ACTIONS_RUNNER_INPUT_TOKEN:-}" >"$out/run-token"
tr '\0' ' ' </proc/$$/cmdline >"$out/run-cmdline"
tr '\0' ' ' </proc/$PPID/cmdline >"$out/parent-cmdline"
ls -A >"$out/run-files"
`,
		"config.sh": `#!/bin/bash
out="$RS_TEST_OUT"
printf '%s' "${ACTIONS_RUNNER_INPUT_TOKEN:-}" >"$out/config-token"
printf '%s\n' "$@" >"$out/config-args"
tr '\0' ' ' </proc/$$/cmdline >"$out/config-cmdline"
`,
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// toolPath builds a PATH holding only what the bootstrap script may use,
// with jq or python3 as the JSON reader.
func toolPath(t *testing.T, jsonTool string) string {
	t.Helper()
	dir := t.TempDir()
	tools := []string{"bash", "curl", "mktemp", "rm", "tr", "mkdir", "sha256sum", "tar", "gzip", "cat", "id", "ls"}
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("bootstrap script test needs %s", tool)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	switch jsonTool {
	case "jq":
		p, err := exec.LookPath("jq")
		if err != nil {
			t.Skip("no jq")
		}
		_ = os.Symlink(p, filepath.Join(dir, "jq"))
	case "python3":
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			t.Skip("no python3")
		}
		_ = os.Symlink(strings.TrimSpace(string(out)), filepath.Join(dir, "python3"))
	}
	return dir
}

type scriptRun struct {
	out, runnerDir string
	output         string
	err            error
}

func (r scriptRun) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.out, name))
	if err != nil {
		t.Fatalf("%s: %v (script output:\n%s)", name, err, r.output)
	}
	return string(b)
}

// runBootstrap renders the user data for a bundle and runs it with bash.
func runBootstrap(t *testing.T, jsonTool string, b Bundle, tarball []byte) (scriptRun, *RegistrationServer, string) {
	t.Helper()
	path := toolPath(t, jsonTool)
	pkg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(tarball) }))
	t.Cleanup(pkg.Close)
	regs := NewRegistrationServer()
	reg := httptest.NewServer(regs)
	t.Cleanup(reg.Close)
	if b.PackageURL == "" {
		b.PackageURL = pkg.URL + "/actions-runner-linux-x64.tar.gz"
	}
	token, err := regs.Offer(b, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	run := scriptRun{out: t.TempDir(), runnerDir: filepath.Join(t.TempDir(), "actions-runner")}
	script, err := renderUserData(userData{
		RegistrationURL: reg.URL + RegistrationPath,
		Token:           token.Reveal(),
		RunnerDir:       run.runnerDir,
		RunnerUser:      "", // stay the test's user
		Shutdown:        false,
	})
	if err != nil {
		t.Fatal(err)
	}
	// cloud-init runs user data from a file, as here.
	file := filepath.Join(t.TempDir(), "part-001")
	if err := os.WriteFile(file, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(path, "bash"), file)
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir(), "RS_TEST_OUT=" + run.out, "TMPDIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	run.output, run.err = string(out), err
	return run, regs, token.Reveal()
}

func TestBootstrapScriptJIT(t *testing.T) {
	for _, tool := range []string{"jq", "python3"} {
		t.Run(tool, func(t *testing.T) {
			tarball := fakeRunnerTarball(t)
			sum := sha256.Sum256(tarball)
			b := Bundle{RunnerName: "r-1", Pool: "p", Labels: []string{"linux"}, URL: "https://github.com/o",
				JITConfig: "eyJKSVQiOiJzZWNyZXQifQ==", PackageSHA256: hex.EncodeToString(sum[:])}
			run, regs, token := runBootstrap(t, tool, b, tarball)
			if run.err != nil {
				t.Fatalf("bootstrap failed: %v\n%s", run.err, run.output)
			}
			if got := run.file(t, "run-jit"); got != "eyJKSVQiOiJzZWNyZXQifQ==" {
				t.Errorf("run.sh got JIT config %q", got)
			}
			for _, f := range []string{"run-cmdline", "parent-cmdline"} {
				if c := run.file(t, f); strings.Contains(c, "eyJKSVQi") || strings.Contains(c, token) {
					t.Errorf("a secret is in argv (%s): %s", f, c)
				}
			}
			if files := run.file(t, "run-files"); strings.Contains(files, ".runnerscaler-secret") {
				t.Errorf("the secret file outlived the start: %s", files)
			}
			if strings.Contains(run.output, "eyJKSVQi") || strings.Contains(run.output, token) {
				t.Errorf("a secret is in the bootstrap output:\n%s", run.output)
			}
			if n := regs.Outstanding(); n != 0 {
				t.Errorf("bundle not fetched (%d outstanding)", n)
			}
		})
	}
}

func TestBootstrapScriptToken(t *testing.T) {
	tarball := fakeRunnerTarball(t)
	sum := sha256.Sum256(tarball)
	b := Bundle{RunnerName: "r-2", Pool: "p", Labels: []string{"linux", "x64"}, RunnerGroup: "ci", URL: "https://github.com/o",
		Token: "AABBREGTOKEN", Ephemeral: true, PackageSHA256: hex.EncodeToString(sum[:])}
	run, _, _ := runBootstrap(t, "jq", b, tarball)
	if run.err != nil {
		t.Fatalf("bootstrap failed: %v\n%s", run.err, run.output)
	}
	if got := run.file(t, "config-token"); got != "AABBREGTOKEN" {
		t.Errorf("config.sh got token %q", got)
	}
	args := strings.Split(strings.TrimSpace(run.file(t, "config-args")), "\n")
	want := []string{"--unattended", "--url", "https://github.com/o", "--name", "r-2", "--work", "_work", "--disableupdate",
		"--labels", "linux,x64", "--runnergroup", "ci", "--ephemeral"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("config.sh args\n got %v\nwant %v", args, want)
	}
	if c := run.file(t, "config-cmdline"); strings.Contains(c, "AABBREGTOKEN") {
		t.Errorf("token in config.sh argv: %s", c)
	}
	if got := run.file(t, "run-token"); got != "" {
		t.Errorf("run.sh still sees the registration token %q", got)
	}
}

func TestBootstrapScriptRefusesTamperedPackage(t *testing.T) {
	tarball := fakeRunnerTarball(t)
	b := Bundle{RunnerName: "r-3", JITConfig: "jit", PackageSHA256: strings.Repeat("0", 64)}
	run, _, _ := runBootstrap(t, "jq", b, tarball)
	if run.err == nil || !strings.Contains(run.output, "checksum mismatch") {
		t.Fatalf("tampered package accepted: %v\n%s", run.err, run.output)
	}
	if _, err := os.Stat(filepath.Join(run.runnerDir, "run.sh")); err == nil {
		t.Error("the tampered package was unpacked")
	}
	if _, err := os.Stat(filepath.Join(run.out, "run-jit")); err == nil {
		t.Error("the runner ran")
	}
}

func TestBootstrapScriptStopsOnUsedToken(t *testing.T) {
	tarball := fakeRunnerTarball(t)
	sum := sha256.Sum256(tarball)
	b := Bundle{RunnerName: "r-4", JITConfig: "jit", PackageSHA256: hex.EncodeToString(sum[:])}
	path := toolPath(t, "jq")
	regs := NewRegistrationServer()
	reg := httptest.NewServer(regs)
	defer reg.Close()
	token, _ := regs.Offer(b, time.Minute)
	regs.Revoke(token)
	script, _ := renderUserData(userData{RegistrationURL: reg.URL + RegistrationPath, Token: token.Reveal(), RunnerDir: t.TempDir()})
	cmd := exec.Command(filepath.Join(path, "bash"), "-c", script)
	cmd.Env = []string{"PATH=" + path, "TMPDIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "could not fetch the registration bundle") {
		t.Fatalf("bootstrap with a revoked token: %v\n%s", err, out)
	}
}

func TestUserDataQuoting(t *testing.T) {
	script, err := renderUserData(userData{RegistrationURL: "https://x/'; rm -rf / #", Token: "tok", RunnerDir: "/opt/a b", RunnerUser: "runner", Shutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(script, `registration_url='https://x/'\''; rm -rf / #'`) || !strings.Contains(script, "runner_dir='/opt/a b'") ||
		!strings.Contains(script, "shutdown_when_done=1") {
		t.Errorf("quoting:\n%s", script)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command(bash, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
	}
	if len(script) > 16*1024*3/4 {
		t.Errorf("user data is %d bytes; EC2 takes 16 KiB after base64", len(script))
	}
}
