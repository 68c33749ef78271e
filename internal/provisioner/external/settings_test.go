package external

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

func TestSettingsValidation(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", "exit 0\n")
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644)
	const prefix = "provisioners.plug.settings"

	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     map[string]string // key path -> part of the message
	}{
		{"missing command", map[string]any{}, map[string]string{
			prefix + ".command": "is required"}},
		{"command not executable", map[string]any{"command": plain}, map[string]string{
			prefix + ".command": "is not executable"}},
		{"command missing", map[string]any{"command": filepath.Join(dir, "nope")}, map[string]string{
			prefix + ".command": "does not exist"}},
		{"command is a directory", map[string]any{"command": dir}, map[string]string{
			prefix + ".command": "is a directory"}},
		{"unknown key", map[string]any{"command": plugin, "comand": "x"}, map[string]string{
			prefix + ".comand": "unknown key"}},
		{"wrong type", map[string]any{"command": plugin, "timeout": 30}, map[string]string{
			prefix + ".timeout": "must be string"}},
		{"every problem at once", map[string]any{
			"config_file":    filepath.Join(dir, "missing.conf"),
			"timeout":        "soon",
			"create_timeout": "-1s",
			"env":            []any{"HOME", "1BAD", "GARM_COMMAND", "RUNNERSCALER_POOL"},
			"extra_env":      map[string]any{"OK": "v", "bad-name": "v", "RUNNERSCALER_X": "v", "NUL": "a\x00b"},
			"args":           []any{"ok", "a\x00b"},
		}, map[string]string{
			prefix + ".command":                  "is required",
			prefix + ".config_file":              "does not exist",
			prefix + ".timeout":                  "not a duration",
			prefix + ".create_timeout":           "must be positive",
			prefix + ".env[1]":                   "not an environment variable name",
			prefix + ".env[2]":                   "is reserved",
			prefix + ".env[3]":                   "is reserved",
			prefix + ".extra_env.bad-name":       "not an environment variable name",
			prefix + ".extra_env.RUNNERSCALER_X": "is reserved",
			prefix + ".extra_env.NUL":            "NUL byte",
			prefix + ".args[1]":                  "NUL byte",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.settings, provisioner.Env{Name: "plug", DaemonID: testDaemonID})
			if err == nil {
				t.Fatal("New succeeded")
			}
			got := settingsErrorPaths(t, err)
			if len(got) != len(tc.want) {
				t.Errorf("problems = %q, want %d of them", got, len(tc.want))
			}
			for path, msg := range tc.want {
				if !strings.Contains(got[path], msg) {
					t.Errorf("%s: got %q, want a message containing %q", path, got[path], msg)
				}
			}
		})
	}
}

func TestSettingsDefaultsAndRelativeCommand(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "plugin", "exit 0\n")
	t.Chdir(dir)
	p, err := New(map[string]any{"command": "plugin"}, provisioner.Env{Name: "plug", DaemonID: testDaemonID})
	if err != nil {
		t.Fatal(err)
	}
	if p.command != filepath.Join(dir, "plugin") {
		t.Errorf("command = %q, want it resolved to %q", p.command, filepath.Join(dir, "plugin"))
	}
	if p.createTimeout != time.Minute || p.deleteTimeout != time.Minute || p.getTimeout != 30*time.Second || p.listTimeout != 30*time.Second {
		t.Errorf("default timeouts = %v %v %v %v", p.createTimeout, p.deleteTimeout, p.getTimeout, p.listTimeout)
	}

	p, err = New(map[string]any{"command": "plugin", "timeout": "10s", "create_timeout": "5m"},
		provisioner.Env{Name: "plug", DaemonID: testDaemonID})
	if err != nil {
		t.Fatal(err)
	}
	if p.createTimeout != 5*time.Minute || p.deleteTimeout != 10*time.Second || p.getTimeout != 10*time.Second || p.listTimeout != 10*time.Second {
		t.Errorf("timeouts = %v %v %v %v", p.createTimeout, p.deleteTimeout, p.getTimeout, p.listTimeout)
	}
}

func TestSettingsNeedDaemonID(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", "exit 0\n")
	_, err := New(map[string]any{"command": plugin}, provisioner.Env{Name: "plug"})
	if got := settingsErrorPaths(t, err); !strings.Contains(got["provisioners.plug.settings"], "daemon id") {
		t.Errorf("problems = %q, want one about the daemon id", got)
	}
}

func TestEnvironIsOnlyWhatIsAllowed(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", "exit 0\n")
	t.Setenv("RS_PASS", "p")
	t.Setenv("RS_SECRET_OF_THE_DAEMON", "x")
	t.Setenv("PATH", "/custom/bin")
	p, err := New(map[string]any{"command": plugin, "env": []any{"RS_PASS", "RS_NOT_SET"},
		"extra_env": map[string]any{"PATH": "/override/bin", "FOO": "bar"}},
		provisioner.Env{Name: "plug", DaemonID: testDaemonID})
	if err != nil {
		t.Fatal(err)
	}
	got := p.environ(call{command: CmdGetInstance, instance: "i-1"})
	want := []string{
		"FOO=bar",
		"GARM_COMMAND=GetInstance",
		"GARM_CONTROLLER_ID=" + testDaemonID,
		"GARM_INSTANCE_ID=i-1",
		"GARM_INTERFACE_VERSION=v0.1.0",
		"PATH=/override/bin",
		"RS_PASS=p",
		"RUNNERSCALER_COMMAND=GetInstance",
		"RUNNERSCALER_DAEMON_ID=" + testDaemonID,
		"RUNNERSCALER_INSTANCE_ID=i-1",
		"RUNNERSCALER_PROTOCOL=1",
		"RUNNERSCALER_PROVISIONER=plug",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("environ =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
