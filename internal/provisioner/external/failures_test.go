package external

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// calls is a plugin fragment that appends "$RUNNERSCALER_COMMAND $RUNNERSCALER_INSTANCE_ID"
// to a log, so tests see which calls (cleanups included) were made.
func callLog(log string) string {
	return fmt.Sprintf("printf '%%s %%s\\n' \"$RUNNERSCALER_COMMAND\" \"${RUNNERSCALER_INSTANCE_ID:-}\" >>%q\n", log)
}

func readCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestPluginFails(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	plugin := script(t, dir, "plugin", callLog(log)+`
case $RUNNERSCALER_COMMAND in
DeleteInstance) exit 0 ;;
esac
echo "starting $RUNNERSCALER_COMMAND" >&2
printf 'boom: quota exceeded in\tregion\033[31m x\n' >&2
exit 3
`)
	p, logs := newTest(t, map[string]any{"command": plugin})
	ctx := context.Background()

	_, err := p.Create(ctx, jitSpec("runner-1"))
	if err == nil {
		t.Fatal("Create succeeded, want error")
	}
	msg := err.Error()
	for _, want := range []string{"create runner runner-1", "CreateInstance", "exit status 3", "starting CreateInstance | boom: quota exceeded in\tregion?[31m x", "cleaned up"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("error does not unwrap to *ExitError with code 3: %#v", ee)
	}
	if !provisioner.IsNotCreated(err) {
		t.Error("the plugin confirmed the cleanup: the error should be NotCreated")
	}
	if errors.Is(err, provisioner.ErrNotFound) {
		t.Error("a failure is not ErrNotFound")
	}
	if got, want := readCalls(t, log), []string{"CreateInstance ", "DeleteInstance runner-1"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q (cleanup by runner name)", got, want)
	}

	_, err = p.Get(ctx, "i-1")
	if err == nil || !strings.Contains(err.Error(), "get instance i-1") || !strings.Contains(err.Error(), "boom: quota exceeded") {
		t.Errorf("Get error = %v, want one carrying stderr", err)
	}
	if _, err := p.List(ctx); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("List error = %v, want one carrying stderr", err)
	}
	assertLogsClean(t, logs)
}

func TestCreateFailsAndCleanupFails(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", `echo "no cloud today" >&2; exit 1`)
	p, _ := newTest(t, map[string]any{"command": plugin})
	_, err := p.Create(context.Background(), jitSpec("runner-1"))
	if err == nil || provisioner.IsNotCreated(err) {
		t.Fatalf("Create = %v; want an error not marked NotCreated, since the cleanup failed too", err)
	}
	if !strings.Contains(err.Error(), "cleanup (DeleteInstance runner-1) also failed") {
		t.Errorf("error %q does not tell that the cleanup failed", err)
	}
}

func TestPluginHangsIsKilledWithItsGroup(t *testing.T) {
	needProc(t)
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	log := filepath.Join(dir, "calls")
	// The plugin starts a child that shares its process group and output,
	// records both pids, and waits for ever; deletes succeed at once.
	plugin := script(t, dir, "plugin", callLog(log)+fmt.Sprintf(`
case $RUNNERSCALER_COMMAND in
DeleteInstance) exit 0 ;;
esac
cat >/dev/null
sleep 1000 &
echo "$$ $!" >%q
echo "working on it" >&2
wait
`, pids))
	p, logs := newTest(t, map[string]any{"command": plugin, "timeout": "300ms"})
	var leaders recorder
	p.onStart = leaders.add

	start := time.Now()
	_, err := p.Create(context.Background(), jitSpec("runner-1"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Create = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "timed out after 300ms") || !strings.Contains(err.Error(), "process group was killed") {
		t.Errorf("error %q should say it timed out and what was killed", err)
	}
	// 300ms for the create and 300ms at most for the cleanup delete, which
	// exits at once; far below the plugin's 1000s.
	if elapsed > 5*time.Second {
		t.Errorf("Create took %v; the 300ms timeout was not honoured", elapsed)
	}
	if !provisioner.IsNotCreated(err) {
		t.Error("the cleanup delete succeeded: the error should be NotCreated")
	}
	if got := readCalls(t, log); len(got) != 2 || got[1] != "DeleteInstance runner-1" {
		t.Errorf("calls = %q, want CreateInstance then the cleanup DeleteInstance runner-1", got)
	}

	started := leaders.all()
	if len(started) != 2 {
		t.Fatalf("started %d plugins, want 2 (create, cleanup)", len(started))
	}
	create := started[0]
	if !leaders.leader(0) {
		t.Fatalf("the plugin %d does not lead its own process group", create)
	}
	eventually(t, fmt.Sprintf("no live process in the plugin's group %d", create), func() bool {
		return len(liveInGroup(t, create)) == 0
	})
	if b, err := os.ReadFile(pids); err == nil { // absent if killed before it got there
		for f := range strings.FieldsSeq(string(b)) {
			pid, _ := strconv.Atoi(f)
			if alive(pid) {
				t.Errorf("process %d the plugin started is still alive", pid)
			}
		}
	}

	// A hanging Get: same, without any cleanup.
	_, err = p.Get(context.Background(), "i-1")
	if !errors.Is(err, ErrTimeout) || errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrTimeout", err)
	}
	get := leaders.all()[2]
	if !leaders.leader(2) {
		t.Fatalf("the plugin %d does not lead its own process group", get)
	}
	eventually(t, "the Get plugin's group is gone", func() bool { return len(liveInGroup(t, get)) == 0 })
	assertLogsClean(t, logs)
}

func TestCallerCancelKillsPlugin(t *testing.T) {
	needProc(t)
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", "sleep 1000 & wait\n")
	p, _ := newTest(t, map[string]any{"command": plugin})
	started := make(chan int, 1)
	var leaders recorder
	p.onStart = func(pid int) { leaders.add(pid); started <- pid }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.List(ctx)
		errc <- err
	}()
	pid := <-started
	if !leaders.leader(0) {
		t.Fatalf("the plugin %d does not lead its own process group", pid)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("List = %v, want context.Canceled", err)
	}
	eventually(t, "the plugin's group is gone", func() bool { return len(liveInGroup(t, pid)) == 0 })
}

func TestMalformedOutput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, out string
		op        func(p *Provisioner) error
		want      string
	}{
		{"create not json", `not json {`, createOp, "output is not an instance JSON object"},
		{"create empty", ``, createOp, "no output"},
		{"create no id", `{"state":"running"}`, createOp, `missing "id"`},
		{"create bad state", `{"id":"i-1","daemon_id":"daemon-7f3a","state":"exploded"}`, createOp, `unknown state "exploded"`},
		{"create bad time", `{"id":"i-1","daemon_id":"daemon-7f3a","created_at":"yesterday"}`, createOp, "not an RFC 3339 time"},
		{"create trailing", `{"id":"i-1","daemon_id":"daemon-7f3a"} {"id":"i-2"}`, createOp, "output is not an instance JSON object"},
		{"create other pool", `{"id":"i-1","daemon_id":"daemon-7f3a","pool":"other"}`, createOp, `reported pool "other"`},
		{"create untagged", `{"id":"i-1","pool":"linux-x64"}`, createOp, "without a daemon_id"},
		{"get not json", `<html>`, getOp, "output is not an instance JSON object"},
		{"get wrong id", `{"id":"i-2","daemon_id":"daemon-7f3a","pool":"p"}`, getOp, `answered with instance "i-2"`},
		{"get no pool", `{"id":"i-1","daemon_id":"daemon-7f3a"}`, getOp, "no pool"},
		{"list object", `{"id":"i-1"}`, listOp, "not a JSON array"},
		{"list empty", ``, listOp, "print [] when there are none"},
		{"list no pool", `[{"id":"i-1","daemon_id":"daemon-7f3a"}]`, listOp, "without a pool"},
		{"list bad address", `[{"id":"i-1","addresses":[7]}]`, listOp, "an address must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".out")
			os.WriteFile(out, []byte(tc.out), 0o600)
			plugin := script(t, dir, strings.ReplaceAll(tc.name, " ", "-"), fmt.Sprintf(`
[ "$RUNNERSCALER_COMMAND" = DeleteInstance ] && exit 0
cat %q
`, out))
			p, _ := newTest(t, map[string]any{"command": plugin})
			err := tc.op(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, provisioner.ErrNotFound) {
				t.Errorf("malformed output must not read as not found: %v", err)
			}
		})
	}
}

func createOp(p *Provisioner) error {
	_, err := p.Create(context.Background(), jitSpec("runner-1"))
	return err
}

func getOp(p *Provisioner) error {
	_, err := p.Get(context.Background(), "i-1")
	return err
}

func listOp(p *Provisioner) error {
	_, err := p.List(context.Background())
	return err
}

func TestExitCodeNotFound(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", `echo "no such instance" >&2; exit 30`)
	p, _ := newTest(t, map[string]any{"command": plugin})
	ctx := context.Background()
	if _, err := p.Get(ctx, "i-1"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if err := p.Delete(ctx, "i-1"); err != nil {
		t.Errorf("Delete = %v, want nil (already gone)", err)
	}
	// An empty list would tell the daemon every machine is gone: refuse.
	if _, err := p.List(ctx); err == nil || errors.Is(err, provisioner.ErrNotFound) || !strings.Contains(err.Error(), "exit status 30") {
		t.Errorf("List = %v, want a plain error", err)
	}
}

func TestSecretScrubbedFromErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		spec       provisioner.Spec
	}{
		// Echo the whole input document on stderr, then fail.
		{"stderr jit", `input=$(cat); printf 'bad input: %s\n' "$input" >&2; exit 1`, jitSpec("r")},
		{"stderr token", `input=$(cat); printf 'bad input: %s\n' "$input" >&2; exit 1`, tokenSpec("r")},
		// Echo the secret raw, unescaped.
		{"stderr raw token", `printf 'token was AABBCC<tok&en>DDEEFF\n' >&2; exit 1`, tokenSpec("r")},
		// Answer with the input document: valid JSON, but no instance.
		{"stdout jit", `cat`, jitSpec("r")},
		{"stdout token", `cat`, tokenSpec("r")},
		// Hang after echoing it.
		{"timeout", `input=$(cat); printf '%s\n' "$input" >&2; sleep 1000 & wait`, jitSpec("r")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugin := script(t, dir, strings.ReplaceAll(tc.name, " ", "-"),
				"[ \"$RUNNERSCALER_COMMAND\" = DeleteInstance ] && exit 0\n"+tc.body+"\n")
			p, logs := newTest(t, map[string]any{"command": plugin, "create_timeout": "300ms"})
			_, err := p.Create(context.Background(), tc.spec)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			assertNoSecret(t, "error", err.Error())
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("error %q: expected the secret's place to be marked", err)
			}
			assertLogsClean(t, logs)
		})
	}
}

func TestOwnershipFilter(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "list.json")
	os.WriteFile(out, []byte(`[
 {"id":"i-ours","daemon_id":"daemon-7f3a","pool":"p","runner_name":"r1","state":"running"},
 {"id":"i-foreign","daemon_id":"someone-else","pool":"p","runner_name":"r2","state":"running"},
 {"id":"i-untagged","pool":"p","runner_name":"r3","state":"running"},
 {"id":"i-gone","daemon_id":"daemon-7f3a","pool":"p","runner_name":"r4","state":"gone"}
]`), 0o600)
	plugin := script(t, dir, "plugin", fmt.Sprintf("cat %q\n", out))

	ids := func(l []provisioner.Instance) []string {
		var s []string
		for _, i := range l {
			s = append(s, i.ID)
		}
		return s
	}
	strict, logs := newTest(t, map[string]any{"command": plugin})
	l, err := strict.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(l); !slices.Equal(got, []string{"i-ours"}) {
		t.Errorf("List = %q, want only i-ours", got)
	}
	if logs.FilterMessageSnippet("not tagged with this daemon's id").Len() != 1 {
		t.Error("ignoring foreign instances should be logged")
	}
	lenient, _ := newTest(t, map[string]any{"command": plugin, "accept_untagged": true})
	l, err = lenient.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(l); !slices.Equal(got, []string{"i-ours", "i-untagged"}) {
		t.Errorf("List with accept_untagged = %q, want i-ours, i-untagged", got)
	}

	getPlugin := script(t, dir, "get", `printf '{"id":"%s","daemon_id":"someone-else","pool":"p"}' "$RUNNERSCALER_INSTANCE_ID"`)
	p, _ := newTest(t, map[string]any{"command": getPlugin})
	if _, err := p.Get(context.Background(), "i-foreign"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("Get of a foreign instance = %v, want ErrNotFound", err)
	}
}

func TestCreateRefusesForeignAnswerAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	plugin := script(t, dir, "plugin", callLog(log)+`
[ "$RUNNERSCALER_COMMAND" = DeleteInstance ] && exit 0
printf '{"id":"i-9","daemon_id":"someone-else"}'
`)
	p, _ := newTest(t, map[string]any{"command": plugin})
	_, err := p.Create(context.Background(), jitSpec("runner-1"))
	if err == nil || !strings.Contains(err.Error(), `daemon_id "someone-else"`) {
		t.Fatalf("Create = %v, want a refusal", err)
	}
	if got, want := readCalls(t, log), []string{"CreateInstance ", "DeleteInstance i-9"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q (cleanup by the id it answered)", got, want)
	}
}

func TestGARMStyleProvider(t *testing.T) {
	dir := t.TempDir()
	// A GARM provider: GARM_* variables only, GARM's instance fields, no
	// daemon_id; provider_fault base64 as GARM's Go providers write it.
	plugin := script(t, dir, "plugin", `
case $GARM_COMMAND in
GetInstance)
	printf '{"provider_id":"%s","name":"garm-runner","pool_id":"p","status":"error","provider_fault":"cXVvdGEgZXhjZWVkZWQ=","addresses":[{"address":"10.0.0.5","type":"private"}],"os_type":"linux"}' "$GARM_INSTANCE_ID" ;;
ListInstances)
	printf '[{"provider_id":"vm-1","name":"a","pool_id":"p","status":"running"},{"provider_id":"vm-2","name":"b","pool_id":"p","status":"stopped"}]' ;;
*) exit 1 ;;
esac
`)
	p, _ := newTest(t, map[string]any{"command": plugin, "accept_untagged": true})
	inst, err := p.Get(context.Background(), "vm-7")
	if err != nil {
		t.Fatal(err)
	}
	want := provisioner.Instance{ID: "vm-7", Pool: "p", RunnerName: "garm-runner", State: provisioner.StateFailed,
		Addresses: []string{"10.0.0.5"}, LastError: "quota exceeded"}
	if fmt.Sprint(inst) != fmt.Sprint(want) {
		t.Errorf("Get = %+v, want %+v", inst, want)
	}
	l, err := p.List(context.Background())
	if err != nil || len(l) != 2 || l[1].State != provisioner.StateStopped {
		t.Errorf("List = %+v, %v", l, err)
	}
}

func TestBadSpecIsPermanent(t *testing.T) {
	p, _ := newTest(t, map[string]any{"command": examplePlugin(t)})
	var leaders recorder
	p.onStart = leaders.add
	for _, spec := range []provisioner.Spec{
		{Pool: "p", Registration: jitSpec("x").Registration},
		{RunnerName: "r", Registration: jitSpec("x").Registration},
		{RunnerName: "r", Pool: "p"},
		{RunnerName: "r", Pool: "p", Registration: provisioner.Registration{JITConfig: "a", Token: "b"}},
		{RunnerName: "r", Pool: "p", Registration: provisioner.Registration{Token: "b"}},
	} {
		_, err := p.Create(context.Background(), spec)
		if !provisioner.IsPermanent(err) || !provisioner.IsNotCreated(err) {
			t.Errorf("Create(%+v) = %v, want a permanent NotCreated error", spec, err)
		}
	}
	if err := p.Delete(context.Background(), ""); !provisioner.IsPermanent(err) {
		t.Errorf("Delete(\"\") = %v, want a permanent error", err)
	}
	if n := len(leaders.all()); n != 0 {
		t.Errorf("the plugin ran %d times for invalid input", n)
	}
}

func TestPluginMissingAtRunTime(t *testing.T) {
	dir := t.TempDir()
	plugin := script(t, dir, "plugin", "exit 0\n")
	p, _ := newTest(t, map[string]any{"command": plugin})
	os.Remove(plugin)
	_, err := p.Create(context.Background(), jitSpec("runner-1"))
	if err == nil || !provisioner.IsNotCreated(err) || !strings.Contains(err.Error(), "start plugin") {
		t.Fatalf("Create = %v, want a NotCreated start error", err)
	}
}
