package ghsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
)

// runnerPlatforms are the os/architecture pairs GitHub lists for the runner
// application, in GitHub's order.
var runnerPlatforms = []struct{ os, arch string }{
	{"osx", "x64"}, {"osx", "arm64"},
	{"linux", "x64"}, {"linux", "arm"}, {"linux", "arm64"},
	{"win", "x64"}, {"win", "arm64"},
}

// runnerPackageTime is the modification time of every file in the packages, so
// the same inputs always give the same bytes and checksums.
var runnerPackageTime = time.Date(2024, 11, 25, 0, 0, 0, 0, time.UTC)

// runnerDownloads holds the runner application packages: a .tar.gz per platform
// with run.sh and config.sh (and bin/Runner.Listener) that exec
// `<RunnerCommand> sim-runner ...`. GitHub ships a .zip for Windows; the
// simulator ships a .tar.gz for every platform, with config.cmd and run.cmd
// added for Windows.
//
// config.sh needs the simulator's URL (the --url it is given names GitHub's
// web URL, as for the real runner), so the packages embed it; they are built
// when the hub starts and rebuilt if the base URL changes (Start and SetURL
// set it after New).
type runnerDownloads struct {
	command string

	mu   sync.Mutex
	base string
	pkgs []runnerPackage
}

type runnerPackage struct {
	app  RunnerApplication
	data []byte
}

func newRunnerDownloads(command, base string) (*runnerDownloads, error) {
	if command == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("runner command: %w (set Options.RunnerCommand)", err)
		}
		command = exe
	}
	d := &runnerDownloads{command: command}
	if err := d.build(base); err != nil {
		return nil, err
	}
	return d, nil
}

// packages returns the packages for base, building them if base changed.
func (d *runnerDownloads) packages(base string) []runnerPackage {
	d.mu.Lock()
	defer d.mu.Unlock()
	if base != d.base || d.pkgs == nil {
		if err := d.build(base); err != nil {
			return nil // only an archive writer failing on memory; nothing to serve
		}
	}
	return d.pkgs
}

// list is the downloads list for base.
func (d *runnerDownloads) list(base string) []RunnerApplication {
	pkgs := d.packages(base)
	out := make([]RunnerApplication, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.app
	}
	return out
}

// get finds a package by file name.
func (d *runnerDownloads) get(base, filename string) (runnerPackage, bool) {
	for _, p := range d.packages(base) {
		if p.app.Filename == filename {
			return p, true
		}
	}
	return runnerPackage{}, false
}

// build makes every package for base; caller holds mu (or owns d).
func (d *runnerDownloads) build(base string) error {
	pkgs := make([]runnerPackage, 0, len(runnerPlatforms))
	for _, p := range runnerPlatforms {
		data, err := buildRunnerPackage(d.command, base, p.os, p.arch)
		if err != nil {
			return fmt.Errorf("runner package %s-%s: %w", p.os, p.arch, err)
		}
		sum := sha256.Sum256(data)
		name := fmt.Sprintf("actions-runner-%s-%s-%s.tar.gz", p.os, p.arch, simrunner.RunnerVersion)
		pkgs = append(pkgs, runnerPackage{
			app: RunnerApplication{
				OS: p.os, Architecture: p.arch, Filename: name,
				DownloadURL: base + "_downloads/" + name, SHA256: hex.EncodeToString(sum[:]),
			},
			data: data,
		})
	}
	d.base, d.pkgs = base, pkgs
	return nil
}

// buildRunnerPackage writes one .tar.gz. Files sit at the top level, as in
// the real package, which is unpacked into the runner's directory.
func buildRunnerPackage(command, base, osName, arch string) ([]byte, error) {
	type file struct {
		name, body string
	}
	files := []file{
		{"config.sh", pkgConfigScript(command, base, osName, arch)},
		{"run.sh", pkgRunScript(command)},
		{"bin/Runner.Listener", pkgListenerScript(command)},
	}
	if osName == "win" {
		files = append(files,
			file{"config.cmd", pkgConfigCmd(command, base, osName, arch)},
			file{"run.cmd", pkgRunCmd(command)})
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: runnerPackageTime, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr("bin/", 0o755, tar.TypeDir, 0)); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := tw.WriteHeader(hdr(f.name, 0o755, tar.TypeReg, int64(len(f.body)))); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pkgShQuote quotes s for a POSIX shell.
func pkgShQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pkgCmdQuote quotes s for cmd.exe (paths cannot hold a double quote on Windows).
func pkgCmdQuote(s string) string { return `"` + strings.ReplaceAll(s, "%", "%%") + `"` }

const pkgScriptHeader = `#!/bin/sh
# %s of the simulated GitHub Actions runner application %s (Runnerscaler's
# GitHub simulator). It behaves like the real script but runs the simulator's
# runner, "scaler sim-runner", against the simulator instead of GitHub.
`

func pkgConfigScript(command, base, osName, arch string) string {
	return fmt.Sprintf(pkgScriptHeader, "config.sh", simrunner.RunnerVersion) + `#
#   ./config.sh --unattended --url URL --token TOKEN [--name NAME] [--labels a,b]
#               [--runnergroup GROUP] [--work DIR] [--ephemeral] [--disableupdate]
#               [--no-default-labels] [--replace]
#   ./config.sh remove --token REMOVE_TOKEN
#
# The runner's .runner and .credentials files are kept beside this script.
# SCALER_SIM_URL, when set, overrides the simulator URL built in below.
cd "$(dirname "$0")" || exit 1
if [ -z "${SCALER_SIM_URL:-}" ]; then
	SCALER_SIM_URL=` + pkgShQuote(base) + `
fi
export SCALER_SIM_URL
if [ "${1:-}" = remove ]; then
	exec ` + pkgShQuote(command) + ` sim-runner "$@"
fi
exec ` + pkgShQuote(command) + ` sim-runner configure --os ` + pkgShQuote(osName) + ` --arch ` + pkgShQuote(arch) + ` "$@"
`
}

func pkgRunScript(command string) string {
	return fmt.Sprintf(pkgScriptHeader, "run.sh", simrunner.RunnerVersion) + `#
#   ./run.sh                       run the runner configured by config.sh
#   ./run.sh --jitconfig CONFIG    run a just-in-time runner (or set
#                                  ACTIONS_RUNNER_INPUT_JITCONFIG instead, which
#                                  keeps the config out of the process list)
cd "$(dirname "$0")" || exit 1
exec ` + pkgShQuote(command) + ` sim-runner run "$@"
`
}

func pkgListenerScript(command string) string {
	return fmt.Sprintf(pkgScriptHeader, "bin/Runner.Listener", simrunner.RunnerVersion) + `#
#   bin/Runner.Listener configure|run|remove [flags]
cd "$(dirname "$0")/.." || exit 1
exec ` + pkgShQuote(command) + ` sim-runner "$@"
`
}

func pkgConfigCmd(command, base, osName, arch string) string {
	return "@echo off\r\n" +
		"rem config.cmd of the simulated GitHub Actions runner application " + simrunner.RunnerVersion + ": see config.sh.\r\n" +
		"cd /d \"%~dp0\"\r\n" +
		"if \"%SCALER_SIM_URL%\"==\"\" set \"SCALER_SIM_URL=" + strings.ReplaceAll(base, "%", "%%") + "\"\r\n" +
		"if /i \"%~1\"==\"remove\" goto remove\r\n" +
		pkgCmdQuote(command) + " sim-runner configure --os " + osName + " --arch " + arch + " %*\r\n" +
		"exit /b %ERRORLEVEL%\r\n" +
		":remove\r\n" +
		pkgCmdQuote(command) + " sim-runner %*\r\n" +
		"exit /b %ERRORLEVEL%\r\n"
}

func pkgRunCmd(command string) string {
	return "@echo off\r\n" +
		"rem run.cmd of the simulated GitHub Actions runner application " + simrunner.RunnerVersion + ": see run.sh.\r\n" +
		"cd /d \"%~dp0\"\r\n" +
		pkgCmdQuote(command) + " sim-runner run %*\r\n" +
		"exit /b %ERRORLEVEL%\r\n"
}
