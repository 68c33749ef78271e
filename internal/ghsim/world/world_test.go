package world

import (
	"errors"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/clocktest"
)

func newTestWorld(t *testing.T) (*World, *clocktest.Clock) {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	w, err := NewFromSpec(clock, DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	return w, clock
}

var (
	octoOrg  = Scope{Kind: Org, Name: "octo-org"}
	octoLabs = Scope{Kind: Org, Name: "octo-labs"}
	octoEnt  = Scope{Kind: Enterprise, Name: "octo-ent"}
)

// online registers a runner and brings it online.
func online(t *testing.T, w *World, in RunnerInput) Runner {
	t.Helper()
	r, err := w.RegisterRunner(in)
	if err != nil {
		t.Fatalf("register %s: %v", in.Name, err)
	}
	if err := w.RunnerOnline(r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

func createJob(t *testing.T, w *World, repo string, labels ...string) Job {
	t.Helper()
	ids, err := w.CreateJobs(JobInput{Repo: repo, Labels: labels, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	j, _, _ := w.Job(ids[0])
	return j
}

func TestDefaultWorld(t *testing.T) {
	w, _ := newTestWorld(t)
	if w.Enterprise().Login != "octo-ent" {
		t.Errorf("enterprise %q", w.Enterprise().Login)
	}
	for name, private := range map[string]bool{"octo-org/app": true, "octo-org/website": false, "octo-labs/ml": true} {
		r, ok := w.Repo(name)
		if !ok || r.Private != private {
			t.Errorf("repo %s: found %v private %v", name, ok, r.Private)
		}
	}
	for _, s := range []Scope{octoOrg, octoLabs, octoEnt} {
		gs, err := w.Groups(s)
		if err != nil || len(gs) != 1 || gs[0].ID != DefaultGroupID || gs[0].Name != "Default" || gs[0].Visibility != VisibilityAll {
			t.Errorf("%s groups %+v, %v", s, gs, err)
		}
	}
}

func TestLabelMatching(t *testing.T) {
	tests := []struct {
		name      string
		runner    []string
		job       []string
		wantStart bool
	}{
		{"subset", []string{"gpu", "big"}, []string{"self-hosted", "gpu"}, true},
		{"case-insensitive", []string{"GPU"}, []string{"Self-Hosted", "gpu", "LINUX"}, true},
		{"default labels count", nil, []string{"self-hosted", "linux", "x64"}, true},
		{"missing one", []string{"gpu"}, []string{"gpu", "big"}, false},
		{"hosted label", []string{"gpu"}, []string{"ubuntu-latest"}, false},
		{"wrong arch", nil, []string{"self-hosted", "arm64"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := newTestWorld(t)
			r := online(t, w, RunnerInput{Scope: octoOrg, Name: "r1", Labels: tc.runner})
			j := createJob(t, w, "octo-org/app", tc.job...)
			started := j.Status == JobInProgress
			if started != tc.wantStart {
				t.Fatalf("job status %s, want started=%v", j.Status, tc.wantStart)
			}
			if started && (j.RunnerID != r.ID || j.RunnerName != "r1" || j.GroupName != "Default" || j.StartedAt.IsZero()) {
				t.Errorf("assignment recorded wrongly: %+v", j)
			}
		})
	}
}

func TestGroupAccess(t *testing.T) {
	w, _ := newTestWorld(t)
	app, _ := w.Repo("octo-org/app")
	website, _ := w.Repo("octo-org/website")
	sel, err := w.CreateGroup(octoOrg, GroupInput{Name: "selected-app", Visibility: VisibilitySelected, SelectedRepositoryIDs: []int64{app.ID}})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	pub, err := w.CreateGroup(octoOrg, GroupInput{Name: "public-ok", Visibility: VisibilityAll, AllowsPublicRepositories: &yes})
	if err != nil {
		t.Fatal(err)
	}
	rSel, _ := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "sel", GroupID: sel.ID})
	rDef, _ := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "def"})
	rPub, _ := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "pub", GroupID: pub.ID})
	rRepo, _ := w.RegisterRunner(RunnerInput{Scope: Scope{Kind: Repo, Name: "octo-org/app"}, Name: "repo-runner"})
	rLabs, _ := w.RegisterRunner(RunnerInput{Scope: octoLabs, Name: "labs"})
	job := func(repo Repository) Job { return Job{RepoID: repo.ID, Labels: []string{"self-hosted"}} }
	tests := []struct {
		name   string
		runner Runner
		repo   Repository
		want   bool
	}{
		{"selected group admits listed repo", rSel, app, true},
		{"selected group refuses unlisted repo", rSel, website, false},
		{"default group admits private repo", rDef, app, true},
		{"default group refuses public repo", rDef, website, false},
		{"public flag admits public repo", rPub, website, true},
		{"repository runner serves its repo", rRepo, app, true},
		{"repository runner refuses another repo", rRepo, website, false},
		{"org runner refuses another org's repo", rLabs, app, false},
	}
	for _, tc := range tests {
		if got := w.CanRun(job(tc.repo), tc.runner); got != tc.want {
			t.Errorf("%s: CanRun = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Access changes take effect: listing website on the selected group.
	if err := w.AddGroupRepository(octoOrg, sel.ID, website.ID); err != nil {
		t.Fatal(err)
	}
	if w.CanRun(job(website), rSel) {
		t.Error("public repository admitted without allows_public_repositories")
	}
}

func TestEnterpriseGroupSharedWithOneOrg(t *testing.T) {
	w, _ := newTestWorld(t)
	org, _ := w.Org("octo-org")
	g, err := w.CreateGroup(octoEnt, GroupInput{Name: "shared", Visibility: VisibilitySelected, SelectedOrganizationIDs: []int64{org.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r := online(t, w, RunnerInput{Scope: octoEnt, Name: "ent-1", GroupID: g.ID, Labels: []string{"big"}})
	labsJob := createJob(t, w, "octo-labs/ml", "big")
	if labsJob.Status != JobQueued {
		t.Fatalf("job of an org the group is not shared with started: %+v", labsJob)
	}
	orgJob := createJob(t, w, "octo-org/app", "big")
	if orgJob.Status != JobInProgress || orgJob.RunnerID != r.ID || orgJob.GroupName != "shared" {
		t.Fatalf("job of the shared org did not start on the enterprise runner: %+v", orgJob)
	}
	// The org sees the enterprise group as inherited; the other org does not.
	gs, _ := w.Groups(octoOrg)
	if len(gs) != 2 || !gs[1].Inherited || gs[1].Name != "shared" {
		t.Errorf("octo-org groups %+v", gs)
	}
	if gs, _ := w.Groups(octoLabs); len(gs) != 1 {
		t.Errorf("octo-labs sees %d groups, want only Default", len(gs))
	}
}

func TestEphemeralRunnerRemovedAfterItsJob(t *testing.T) {
	w, _ := newTestWorld(t)
	var events []Event
	w.OnEvent(func(e Event) { events = append(events, e) })
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "jit-1", JIT: true, Labels: []string{"linux"}})
	if !r.Ephemeral {
		t.Fatal("a JIT runner must be ephemeral")
	}
	j := createJob(t, w, "octo-org/app", "self-hosted", "linux")
	if err := w.FinishJob(r.ID, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.RunnerByID(r.ID); ok {
		t.Error("ephemeral runner still listed after its job")
	}
	j, _, _ = w.Job(j.ID)
	if j.Status != JobCompleted || j.Conclusion != "success" || j.CompletedAt.IsZero() {
		t.Errorf("job %+v", j)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	if len(actions) != 3 || actions[0] != "queued" || actions[1] != "in_progress" || actions[2] != "completed" {
		t.Errorf("transitions %v, want queued in_progress completed", actions)
	}
	if events[1].Job.RunnerName != "jit-1" || events[1].Repo.FullName() != "octo-org/app" || events[1].Org.Login != "octo-org" {
		t.Errorf("event lacks runner, repo or org: %+v", events[1])
	}
	// A second job has nobody to run it.
	if j2 := createJob(t, w, "octo-org/app", "linux"); j2.Status != JobQueued {
		t.Errorf("second job %s", j2.Status)
	}
}

func TestDeleteBusyRunner(t *testing.T) {
	w, _ := newTestWorld(t)
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "r1"})
	createJob(t, w, "octo-org/app", "self-hosted")
	err := w.DeleteRunner(octoOrg, r.ID)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("delete of a busy runner: %v, want ErrBusy", err)
	}
	if v := w.Violations(); v.BusyRunnerDeleted != 0 {
		t.Errorf("a refused delete counted as a violation: %+v", v)
	}
	got, _ := w.Runner(octoOrg, r.ID)
	if !w.VisibleBusy(got) {
		t.Error("busy runner reported idle with no lag configured")
	}
}

func TestBusyLagTrap(t *testing.T) {
	w, clock := newTestWorld(t)
	w.SetBusyLag(30 * time.Second)
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "r1"})
	createJob(t, w, "octo-org/app", "self-hosted")
	clock.Advance(10 * time.Second)
	got, _ := w.Runner(octoOrg, r.ID)
	if !got.Busy || w.VisibleBusy(got) {
		t.Fatalf("inside the lag: busy=%v visible=%v, want true/false", got.Busy, w.VisibleBusy(got))
	}
	clock.Advance(25 * time.Second)
	if !w.VisibleBusy(got) {
		t.Error("after the lag the busy flag must show")
	}

	r2 := online(t, w, RunnerInput{Scope: octoOrg, Name: "r2"})
	createJob(t, w, "octo-org/app", "self-hosted")
	clock.Advance(5 * time.Second)
	if err := w.DeleteRunner(octoOrg, r2.ID); err != nil {
		t.Fatalf("delete inside the lag must succeed, as on GitHub: %v", err)
	}
	if v := w.Violations(); v.BusyRunnerDeleted != 1 {
		t.Errorf("violations %+v, want busy_runner_deleted 1", v)
	}
	// Its process then goes away: the job it ran is lost.
	w.RunnerOffline(r2.ID)
	if v := w.Violations(); v.JobRunnerKilled != 1 {
		t.Errorf("violations %+v, want job_runner_killed 1", v)
	}
}

func TestKilledBusyRunner(t *testing.T) {
	w, _ := newTestWorld(t)
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "r1"})
	j := createJob(t, w, "octo-org/app", "self-hosted")
	w.RunnerOffline(r.ID)
	if v := w.Violations(); v.JobRunnerKilled != 1 {
		t.Errorf("violations %+v", v)
	}
	j, _, _ = w.Job(j.ID)
	if j.Status != JobCompleted || j.Conclusion != "failure" {
		t.Errorf("job of a killed runner: %+v", j)
	}
	// An idle runner going offline harms nobody.
	r2 := online(t, w, RunnerInput{Scope: octoOrg, Name: "r2"})
	w.RunnerOffline(r2.ID)
	if v := w.Violations(); v.JobRunnerKilled != 1 {
		t.Errorf("idle runner offline counted: %+v", v)
	}
}

func TestWaitingCancelRelease(t *testing.T) {
	w, _ := newTestWorld(t)
	online(t, w, RunnerInput{Scope: octoOrg, Name: "r1"})
	ids, err := w.CreateJobs(JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted"}, Waiting: true, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c := w.JobCounts(); c.Waiting != 2 || c.InProgress != 0 {
		t.Fatalf("counts %+v: waiting jobs must not start", c)
	}
	if err := w.CancelJob(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseJob(ids[0]); err != nil {
		t.Fatal(err)
	}
	j, _, _ := w.Job(ids[0])
	if j.Status != JobInProgress {
		t.Errorf("released job %s", j.Status)
	}
	c, _, _ := w.Job(ids[1])
	if c.Status != JobCompleted || c.Conclusion != "cancelled" {
		t.Errorf("cancelled job %+v", c)
	}
	if err := w.ReleaseJob(ids[1]); !errors.Is(err, ErrValidation) {
		t.Errorf("release of a completed job: %v", err)
	}
}

func TestOldestJobFirstAndRunnerReuse(t *testing.T) {
	w, _ := newTestWorld(t)
	a := createJob(t, w, "octo-org/app", "self-hosted")
	b := createJob(t, w, "octo-org/app", "self-hosted")
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "persistent", Ephemeral: false})
	a, _, _ = w.Job(a.ID)
	if a.RunnerID != r.ID {
		t.Fatalf("oldest job not first: %+v", a)
	}
	if err := w.FinishJob(r.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	b, _, _ = w.Job(b.ID)
	if b.Status != JobInProgress || b.RunnerID != r.ID {
		t.Errorf("a persistent runner takes the next job: %+v", b)
	}
}

func TestRegistrationRules(t *testing.T) {
	w, _ := newTestWorld(t)
	if _, err := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "DUP"}); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := w.RegisterRunner(RunnerInput{Scope: octoLabs, Name: "dup"}); err != nil {
		t.Errorf("same name in another org must work: %v", err)
	}
	if _, err := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "g", GroupID: 999}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := w.RegisterRunner(RunnerInput{Scope: Scope{Kind: Org, Name: "nope"}, Name: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown org: %v", err)
	}
	r, _ := w.RegisterRunner(RunnerInput{Scope: octoOrg, Name: "labels", Labels: []string{"gpu"}, OS: "linux", Arch: "arm64"})
	want := map[string]string{"self-hosted": LabelReadOnly, "linux": LabelReadOnly, "arm64": LabelReadOnly, "gpu": LabelCustom}
	if len(r.Labels) != len(want) {
		t.Fatalf("labels %+v", r.Labels)
	}
	for _, l := range r.Labels {
		if want[l.Name] != l.Type || l.ID == 0 {
			t.Errorf("label %+v", l)
		}
	}
	ls, err := w.RemoveLabel(octoOrg, r.ID, "linux")
	if !errors.Is(err, ErrValidation) || ls != nil {
		t.Errorf("removing a read-only label: %v", err)
	}
	if _, err := w.RemoveLabel(octoOrg, r.ID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a missing label: %v", err)
	}
	ls, _ = w.SetLabels(octoOrg, r.ID, []string{"a", "b"})
	if len(ls) != 5 {
		t.Errorf("set labels: %+v", ls)
	}
	ls, _ = w.RemoveAllLabels(octoOrg, r.ID)
	if len(ls) != 3 {
		t.Errorf("remove all keeps read-only labels: %+v", ls)
	}
}

func TestLabelChangeLetsWaitingJobStart(t *testing.T) {
	w, _ := newTestWorld(t)
	r := online(t, w, RunnerInput{Scope: octoOrg, Name: "r"})
	j := createJob(t, w, "octo-org/app", "gpu")
	if j.Status != JobQueued {
		t.Fatal("started without the label")
	}
	if _, err := w.AddLabels(octoOrg, r.ID, []string{"GPU"}); err != nil {
		t.Fatal(err)
	}
	j, _, _ = w.Job(j.ID)
	if j.Status != JobInProgress {
		t.Error("adding the label did not let the job start")
	}
}
