package local

import (
	"errors"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

func TestSettingsDefaults(t *testing.T) {
	env := provisioner.Env{Name: "lp", StateDir: "/var/lib/rs"}
	c, err := parseSettings(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.workDir != "/var/lib/rs/local/lp" || c.cacheDir != "/var/lib/rs/cache/runner" || c.maxInstances != 10 ||
		c.grace != 30*time.Second || c.osName != hostOS() || c.arch != hostArch() || c.runAs != nil {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseSettings(map[string]any{
		"work_dir": "/w", "cache_dir": "/c", "max_instances": 3, "grace_period": "2m", "os": "win", "arch": "arm64", "nice": 5,
		"extra_env": map[string]any{"RUNNER_ALLOW_RUNASROOT": "1", "http_proxy": "http://proxy:3128"},
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.workDir != "/w" || c.cacheDir != "/c" || c.maxInstances != 3 || c.grace != 2*time.Minute || c.osName != "win" ||
		c.arch != "arm64" || c.nice != 5 || c.extraEnv["RUNNER_ALLOW_RUNASROOT"] != "1" || c.extraEnv["http_proxy"] != "http://proxy:3128" {
		t.Errorf("explicit settings: %+v", c)
	}
	// Relative directories are relative to the config file.
	env.ConfigDir = "/etc/runnerscaler"
	c, err = parseSettings(map[string]any{"work_dir": "work", "cache_dir": "../cache"}, env)
	if err != nil || c.workDir != "/etc/runnerscaler/work" || c.cacheDir != "/etc/cache" {
		t.Errorf("relative dirs: %q %q %v", c.workDir, c.cacheDir, err)
	}
}

func TestSettingsProblemsHaveKeyPaths(t *testing.T) {
	const prefix = "provisioners.lp.settings."
	tests := []struct {
		name     string
		settings map[string]any
		stateDir string
		want     []string // key paths, in order
		contains string
	}{
		{"unknown key", map[string]any{"max_instance": 3}, "/s", []string{"max_instance"}, "unknown key"},
		{"wrong type", map[string]any{"max_instances": "ten"}, "/s", []string{"max_instances"}, "must be int"},
		{"grace as a number", map[string]any{"grace_period": 30}, "/s", []string{"grace_period"}, "must be string"},
		{"extra_env not a map", map[string]any{"extra_env": []any{"A=1"}}, "/s", []string{"extra_env"}, "must be map"},
		{"every value problem at once", map[string]any{
			"max_instances": 0, "grace_period": "soon", "os": "solaris", "arch": "mips",
			"extra_env": map[string]any{"1BAD": "x", "ACTIONS_RUNNER_INPUT_TOKEN": "x", "GOOD": "x"},
		}, "/s", []string{"max_instances", "grace_period", "os", "arch", "extra_env.1BAD", "extra_env.ACTIONS_RUNNER_INPUT_TOKEN"}, ""},
		{"negative grace", map[string]any{"grace_period": "-1s"}, "/s", []string{"grace_period"}, "positive"},
		{"negative nice", map[string]any{"nice": -5}, "/s", []string{"nice"}, "between 0 and 19"},
		{"no state dir", nil, "", []string{"work_dir", "cache_dir"}, "must be set"},
		{"same dirs", map[string]any{"work_dir": "/x", "cache_dir": "/x"}, "", []string{"cache_dir"}, "must differ"},
		{"unknown user", map[string]any{"run_as_user": "no-such-user-rs"}, "/s", []string{"run_as_user"}, "no such user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSettings(tc.settings, provisioner.Env{Name: "lp", StateDir: tc.stateDir})
			var se *provisioner.SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SettingsError", err)
			}
			var got []string
			for _, p := range se.Problems {
				if !strings.HasPrefix(p.Path, prefix) {
					t.Errorf("path %q lacks %q", p.Path, prefix)
				}
				got = append(got, strings.TrimPrefix(p.Path, prefix))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems at %v, want %v (%v)", got, tc.want, err)
			}
			if tc.contains != "" && !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("%q lacks %q", err, tc.contains)
			}
		})
	}
}

func TestSettingsRunAsUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	env := provisioner.Env{Name: "lp", StateDir: t.TempDir()}
	// The daemon's own user: nothing to switch.
	c, err := parseSettings(map[string]any{"run_as_user": me.Username}, env)
	if err != nil || c.runAs != nil {
		t.Errorf("own user: runAs %+v, err %v", c.runAs, err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	// Another user, from a daemon that is not root: refused, with the reason.
	defer func(f func() int) { daemonUID = f }(daemonUID)
	daemonUID = func() int { return 4242 }
	_, err = parseSettings(map[string]any{"run_as_user": "nobody"}, env)
	if err == nil || !strings.Contains(err.Error(), "provisioners.lp.settings.run_as_user") || !strings.Contains(err.Error(), "needs the daemon to run as root") {
		t.Errorf("switching users as non-root: %v", err)
	}
	// From root: the credential to use.
	daemonUID = func() int { return 0 }
	c, err = parseSettings(map[string]any{"run_as_user": "nobody"}, env)
	if err != nil || c.runAs == nil || c.runAs.name != "nobody" || c.runAs.home != nobody.HomeDir {
		t.Fatalf("switching users as root: %+v, %v", c.runAs, err)
	}
	if env := (&Provisioner{cfg: c}).buildBaseEnv(); env["HOME"] != nobody.HomeDir {
		t.Errorf("HOME %q, want the user's home %q", env["HOME"], nobody.HomeDir)
	}
}

func TestFactoryBuildsThroughTheRegistry(t *testing.T) {
	if supported != nil {
		t.Skip(supported)
	}
	r := provisioner.NewRegistry()
	r.Register("local", Factory)
	st := t.TempDir()
	p, err := r.Build("local", map[string]any{"max_instances": 2}, provisioner.Env{Name: "lp", DaemonID: "d1", StateDir: st, Downloads: &fakeApp{}})
	if err != nil {
		t.Fatal(err)
	}
	lp := p.(*Provisioner)
	defer lp.Close()
	if lp.cfg.workDir != filepath.Join(st, "local", "lp") {
		t.Errorf("work dir %s", lp.cfg.workDir)
	}
	// A second provisioner on the same work_dir is refused while the first lives.
	if _, err := r.Build("local", nil, provisioner.Env{Name: "lp", DaemonID: "d1", StateDir: st, Downloads: &fakeApp{}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second provisioner on one work_dir: %v", err)
	}
	if _, err := r.Build("local", map[string]any{"max_instances": -1}, provisioner.Env{Name: "lp", DaemonID: "d1", StateDir: st}); err == nil {
		t.Error("bad settings through the registry: no error")
	}
	if _, err := New(nil, provisioner.Env{Name: "lp", StateDir: t.TempDir(), Downloads: &fakeApp{}}); err == nil || !strings.Contains(err.Error(), "daemon id") {
		t.Errorf("no daemon id: %v", err)
	}
}
