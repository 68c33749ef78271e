package ghsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// hubUntar unpacks a .tar.gz into dir and returns file name -> mode.
func hubUntar(t *testing.T, data []byte, dir string) map[string]os.FileMode {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	modes := map[string]os.FileMode{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.FileInfo().Mode()
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, h.FileInfo().Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return modes
}

func TestDownloadsListAndChecksums(t *testing.T) {
	s, ts, _ := hubServer(t, nil)
	apps := s.RunnerDownloads()
	if len(apps) != 7 {
		t.Fatalf("%d packages, want 7", len(apps))
	}
	seen := map[string]bool{}
	for _, a := range apps {
		seen[a.OS+"-"+a.Architecture] = true
		wantName := "actions-runner-" + a.OS + "-" + a.Architecture + "-2.321.0.tar.gz"
		if a.Filename != wantName || a.DownloadURL != ts.URL+"/_downloads/"+wantName {
			t.Errorf("entry %+v", a)
		}
		resp, err := http.Get(a.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", a.DownloadURL, resp.StatusCode)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("%s: checksum does not match the bytes served", a.Filename)
		}
		modes := hubUntar(t, data, "")
		for _, f := range []string{"run.sh", "config.sh", "bin/Runner.Listener"} {
			if m, ok := modes[f]; !ok || m.Perm()&0o111 != 0o111 {
				t.Errorf("%s: %s missing or not executable (%v)", a.Filename, f, m)
			}
		}
		if _, ok := modes["config.cmd"]; ok != (a.OS == "win") {
			t.Errorf("%s: config.cmd present = %v", a.Filename, ok)
		}
	}
	for _, p := range []string{"linux-x64", "linux-arm64", "linux-arm", "osx-x64", "osx-arm64", "win-x64", "win-arm64"} {
		if !seen[p] {
			t.Errorf("no package for %s", p)
		}
	}
	resp, err := http.Get(ts.URL + "/_downloads/actions-runner-plan9-x64-2.321.0.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown package: %d", resp.StatusCode)
	}
}

func TestDownloadsFollowTheBaseURLAndAreDeterministic(t *testing.T) {
	d, err := newRunnerDownloads("/usr/bin/scaler", "http://a/")
	if err != nil {
		t.Fatal(err)
	}
	first := d.list("http://a/")
	again := d.list("http://a/")
	if first[0].SHA256 != again[0].SHA256 {
		t.Error("same inputs, different bytes")
	}
	moved := d.list("http://b:1/")
	if moved[0].SHA256 == first[0].SHA256 || !strings.HasPrefix(moved[0].DownloadURL, "http://b:1/_downloads/") {
		t.Errorf("packages not rebuilt for a new base URL: %+v", moved[0])
	}
	p, ok := d.get("http://b:1/", moved[2].Filename)
	if !ok || !bytes.Contains(hubFile(t, p.data, "config.sh"), []byte("'http://b:1/'")) {
		t.Error("config.sh does not name the simulator URL")
	}
}

func hubFile(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in package: %v", name, err)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

// TestRunnerScriptsExecTheRunnerCommand unpacks the linux package and runs
// its scripts with a stand-in runner command (at a path that needs quoting)
// that prints its arguments, directory and SCALER_SIM_URL.
func TestRunnerScriptsExecTheRunnerCommand(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the scripts are POSIX shell")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	binDir := filepath.Join(t.TempDir(), "it's a dir")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	command := filepath.Join(binDir, "fake scaler")
	script := "#!/bin/sh\necho \"cwd=$(pwd)\"\necho \"url=$SCALER_SIM_URL\"\nfor a in \"$@\"; do echo \"arg=$a\"; done\n"
	if err := os.WriteFile(command, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s, ts, _ := hubServer(t, func(o *Options) { o.RunnerCommand = command })
	var linux RunnerApplication
	for _, a := range s.RunnerDownloads() {
		if a.OS == "linux" && a.Architecture == "arm64" {
			linux = a
		}
	}
	resp, err := http.Get(linux.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	dir := t.TempDir()
	hubUntar(t, data, dir)
	if !bytes.Contains(hubFile(t, data, "run.sh"), []byte(`'`+strings.ReplaceAll(command, `'`, `'\''`)+`'`)) {
		t.Error("run.sh does not reference the runner command")
	}

	run := func(env []string, args ...string) []string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, args[0]), args[1:]...)
		cmd.Dir = t.TempDir() // the scripts move to their own directory
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	check := func(got []string, url string, want ...string) {
		t.Helper()
		exp := append([]string{"cwd=" + realDir, "url=" + url}, want...)
		if strings.Join(got, "\n") != strings.Join(exp, "\n") {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
		}
	}
	base := ts.URL + "/"
	check(run([]string{"SCALER_SIM_URL="}, "config.sh", "--unattended", "--url", "https://github.com/octo-org", "--token", "T", "--labels", "a b,c"),
		base, "arg=sim-runner", "arg=configure", "arg=--os", "arg=linux", "arg=--arch", "arg=arm64",
		"arg=--unattended", "arg=--url", "arg=https://github.com/octo-org", "arg=--token", "arg=T", "arg=--labels", "arg=a b,c")
	check(run([]string{"SCALER_SIM_URL=http://elsewhere/"}, "config.sh", "remove", "--token", "R"),
		"http://elsewhere/", "arg=sim-runner", "arg=remove", "arg=--token", "arg=R")
	check(run([]string{"SCALER_SIM_URL="}, "run.sh", "--jitconfig", "J"), "", "arg=sim-runner", "arg=run", "arg=--jitconfig", "arg=J")
	check(run([]string{"SCALER_SIM_URL="}, "bin/Runner.Listener", "run"), "", "arg=sim-runner", "arg=run")
}
