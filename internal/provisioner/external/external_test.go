package external

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// exampleSetup wraps the example plugin in a script that records, for every
// call, the argv and environment it was started with (from /proc), then execs
// the example. It returns the settings and the record and state directories.
func exampleSetup(t *testing.T) (settings map[string]any, recordDir, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	recordDir = filepath.Join(dir, "record")
	stateDir = filepath.Join(dir, "state")
	if err := os.Mkdir(recordDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "fake.conf")
	if err := os.WriteFile(conf, []byte("# the example's configuration\nstate_dir = "+stateDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper := script(t, dir, "recording-plugin", fmt.Sprintf(`
rec=%q/"$RUNNERSCALER_COMMAND.$$"
cat /proc/$$/cmdline >"$rec.cmdline"
cat /proc/$$/environ >"$rec.environ"
exec %q "$@"
`, recordDir, examplePlugin(t)))
	return map[string]any{
		"command":     wrapper,
		"args":        []any{"--verbose"},
		"config_file": conf,
		"env":         []any{"RS_TEST_ALLOWED", "RS_TEST_UNSET"},
		"extra_env":   map[string]any{"RS_TEST_EXTRA": "extra value"},
	}, recordDir, stateDir
}

// records reads the recorded argv and environment of every call so far.
func records(t *testing.T, dir string) (cmdlines, environs map[string][]string) {
	t.Helper()
	cmdlines, environs = map[string][]string{}, map[string][]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		switch base, ext := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name())), filepath.Ext(e.Name()); ext {
		case ".cmdline":
			cmdlines[base] = fields
		case ".environ":
			environs[base] = fields
		}
	}
	return cmdlines, environs
}

func TestEndToEndWithExamplePlugin(t *testing.T) {
	needProc(t)
	t.Setenv("RS_TEST_ALLOWED", "allowed value")
	t.Setenv("RS_TEST_CANARY", "must not reach the plugin")
	settings, recordDir, stateDir := exampleSetup(t)
	p, logs := newTest(t, settings)
	ctx := context.Background()

	before := time.Now().Add(-time.Second).Truncate(time.Second)
	inst, err := p.Create(ctx, jitSpec("runner-1"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := provisioner.Instance{
		ID: "fake-runner-1", Pool: "linux-x64", RunnerName: "runner-1",
		State: provisioner.StateRunning, Addresses: []string{"127.0.0.1"}, CreatedAt: inst.CreatedAt,
	}
	if !reflect.DeepEqual(inst, want) {
		t.Fatalf("Create = %+v, want %+v", inst, want)
	}
	if inst.CreatedAt.Before(before) || inst.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want about now", inst.CreatedAt)
	}

	// The spec reached the plugin on stdin (pool and runner name came back
	// from it); the secret went nowhere else: not in the argv or environment
	// of the plugin, not in the files it keeps.
	cmdlines, environs := records(t, recordDir)
	if len(cmdlines) != 1 || len(environs) != 1 {
		t.Fatalf("want one recorded call, got %d cmdlines, %d environs", len(cmdlines), len(environs))
	}
	for k, argv := range cmdlines {
		if !strings.HasPrefix(k, "CreateInstance.") {
			t.Errorf("recorded call %s, want CreateInstance", k)
		}
		if argv[len(argv)-1] != "--verbose" {
			t.Errorf("argv = %q, want the configured args", argv)
		}
		assertNoSecret(t, "plugin argv", strings.Join(argv, " "))
	}
	for _, env := range environs {
		assertNoSecret(t, "plugin environment", strings.Join(env, "\n"))
		checkEnviron(t, env, map[string]string{
			"RUNNERSCALER_COMMAND":      "CreateInstance",
			"RUNNERSCALER_PROTOCOL":     "1",
			"RUNNERSCALER_DAEMON_ID":    testDaemonID,
			"RUNNERSCALER_PROVISIONER":  "test",
			"RUNNERSCALER_POOL":         "linux-x64",
			"RUNNERSCALER_CONFIG_FILE":  settings["config_file"].(string),
			"GARM_COMMAND":              "CreateInstance",
			"GARM_CONTROLLER_ID":        testDaemonID,
			"GARM_POOL_ID":              "linux-x64",
			"GARM_PROVIDER_CONFIG_FILE": settings["config_file"].(string),
			"GARM_INTERFACE_VERSION":    "v0.1.0",
			"RS_TEST_ALLOWED":           "allowed value",
			"RS_TEST_EXTRA":             "extra value",
			"PATH":                      os.Getenv("PATH"),
		})
	}
	filepath.WalkDir(stateDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			assertNoSecret(t, "plugin state file "+path, string(b))
		}
		return err
	})

	list, err := p.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !reflect.DeepEqual(list, []provisioner.Instance{inst}) {
		t.Fatalf("List = %+v, want [%+v]", list, inst)
	}
	got, err := p.Get(ctx, inst.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, inst) {
		t.Fatalf("Get = %+v, want %+v", got, inst)
	}

	// Another daemon sharing the plugin's state sees none of it.
	other, _ := newTestDaemon(t, settings, "another-daemon")
	if l, err := other.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("other daemon's List = %+v, %v; want nothing", l, err)
	}
	if _, err := other.Get(ctx, inst.ID); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("other daemon's Get = %v, want ErrNotFound", err)
	}

	if err := p.Delete(ctx, inst.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := p.Get(ctx, inst.ID); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := p.Delete(ctx, inst.ID); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	if l, err := p.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after Delete = %+v, %v; want empty", l, err)
	}

	// Token registration, then RemoveAll.
	for _, name := range []string{"runner-2", "runner-3"} {
		if _, err := p.Create(ctx, tokenSpec(name)); err != nil {
			t.Fatalf("Create %s: %v", name, err)
		}
	}
	if l, err := p.List(ctx); err != nil || len(l) != 2 {
		t.Fatalf("List = %+v, %v; want 2", l, err)
	}
	if err := p.RemoveAll(ctx); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if l, err := p.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after RemoveAll = %+v, %v; want empty", l, err)
	}

	cmdlines, environs = records(t, recordDir)
	for k, argv := range cmdlines {
		assertNoSecret(t, "argv of "+k, strings.Join(argv, " "))
	}
	for k, env := range environs {
		assertNoSecret(t, "environment of "+k, strings.Join(env, "\n"))
	}
	assertLogsClean(t, logs)
}

// checkEnviron asserts the plugin's environment is exactly want: the
// allow-listed variables, extra_env, PATH and the protocol's, nothing more
// (RS_TEST_CANARY is set in the daemon but not allow-listed; RS_TEST_UNSET is
// allow-listed but not set).
func checkEnviron(t *testing.T, env []string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	if !reflect.DeepEqual(got, want) {
		var diff []string
		for k, v := range got {
			if w, ok := want[k]; !ok || w != v {
				diff = append(diff, fmt.Sprintf("unexpected %s=%q", k, v))
			}
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, fmt.Sprintf("missing %s=%q", k, v))
			}
		}
		slices.Sort(diff)
		t.Errorf("plugin environment differs:\n%s", strings.Join(diff, "\n"))
	}
}

// TestCreateDocument checks the document a plugin reads on stdin, in both
// registration modes.
func TestCreateDocument(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec provisioner.Spec
		reg  wireRegistration
	}{
		{"jit", jitSpec("runner-j"), wireRegistration{JITConfig: testJIT, Ephemeral: true}},
		{"token", tokenSpec("runner-t"), wireRegistration{Token: testToken, Ephemeral: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			stdin := filepath.Join(dir, "stdin.json")
			plugin := script(t, dir, "plugin", fmt.Sprintf(`
cat >%q
printf '{"id":"i-1","daemon_id":"%%s"}' "$RUNNERSCALER_DAEMON_ID"
`, stdin))
			conf := filepath.Join(dir, "plugin.conf")
			os.WriteFile(conf, nil, 0o600)
			p, _ := newTest(t, map[string]any{"command": plugin, "config_file": conf})
			inst, err := p.Create(context.Background(), tc.spec)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if inst.Pool != tc.spec.Pool || inst.RunnerName != tc.spec.RunnerName || inst.State != provisioner.StatePending {
				t.Errorf("Create = %+v: pool and runner name default to the spec's, state to pending", inst)
			}
			b, err := os.ReadFile(stdin)
			if err != nil {
				t.Fatal(err)
			}
			var got createRequest
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("stdin is not JSON: %v", err)
			}
			want := createRequest{
				Protocol: 1, DaemonID: testDaemonID, Provisioner: "test",
				RunnerName: tc.spec.RunnerName, Pool: "linux-x64", Labels: []string{"self-hosted", "linux"},
				RunnerGroup: "Default", ScopeURL: "https://github.com/octo-org", Registration: tc.reg,
				ConfigFile: conf, GarmName: tc.spec.RunnerName, GarmPoolID: "linux-x64",
				GarmRepoURL: "https://github.com/octo-org", GarmRunnerGroup: "Default",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stdin document:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestConcurrentCalls runs the example plugin from many goroutines at once.
func TestConcurrentCalls(t *testing.T) {
	settings, _, _ := exampleSetup(t)
	p, logs := newTest(t, settings)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, err := p.Create(ctx, jitSpec(fmt.Sprintf("runner-%d", i)))
			if err != nil {
				errs <- err
				return
			}
			if _, err := p.Get(ctx, inst.ID); err != nil {
				errs <- err
			}
			if _, err := p.List(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if l, err := p.List(ctx); err != nil || len(l) != n {
		t.Fatalf("List = %d instances, %v; want %d", len(l), err, n)
	}
	assertLogsClean(t, logs)
}

func TestRegistryBuildsExternal(t *testing.T) {
	r := provisioner.NewRegistry()
	r.Register(Kind, Factory)
	p, err := r.Build("external", map[string]any{"command": examplePlugin(t)},
		provisioner.Env{Name: "plug", DaemonID: testDaemonID})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if _, ok := p.(*Provisioner); !ok {
		t.Fatalf("Build returned %T", p)
	}
}
