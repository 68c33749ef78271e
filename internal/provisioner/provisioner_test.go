package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// flaky fails its first failures calls of each operation with err.
type flaky struct {
	mu       sync.Mutex
	failures int
	err      error
	calls    map[string]int
}

func (f *flaky) step(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	if f.calls[op] <= f.failures {
		return f.err
	}
	return nil
}

func (f *flaky) Create(ctx context.Context, s Spec) (Instance, error) {
	if err := f.step("create"); err != nil {
		return Instance{}, err
	}
	return Instance{ID: "i-1", Pool: s.Pool, RunnerName: s.RunnerName, State: StatePending}, nil
}

func (f *flaky) Delete(ctx context.Context, id string) error { return f.step("delete") }

func (f *flaky) List(ctx context.Context) ([]Instance, error) {
	return []Instance{{ID: "i-1"}}, f.step("list")
}

func (f *flaky) Get(ctx context.Context, id string) (Instance, error) {
	return Instance{ID: id}, f.step("get")
}

type observation struct{ provisioner, operation, outcome string }

type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) ObserveOperation(p, op, outcome string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, observation{p, op, outcome})
}

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

func TestInstrumentedRetryRules(t *testing.T) {
	transient := errors.New("connection reset")
	tests := []struct {
		name      string
		failures  int
		err       error
		op        func(context.Context, *Instrumented) error
		opName    string
		wantCalls int
		wantErr   bool
	}{
		{"create after a possibly-created failure is not retried", 1, transient,
			func(ctx context.Context, p *Instrumented) error { _, err := p.Create(ctx, Spec{}); return err }, "create", 1, true},
		{"create after a not-created failure is retried", 2, NotCreated(transient),
			func(ctx context.Context, p *Instrumented) error { _, err := p.Create(ctx, Spec{}); return err }, "create", 3, false},
		{"delete is retried", 2, transient,
			func(ctx context.Context, p *Instrumented) error { return p.Delete(ctx, "i-1") }, "delete", 3, false},
		{"list gives up after the attempts", 5, transient,
			func(ctx context.Context, p *Instrumented) error { _, err := p.List(ctx); return err }, "list", 3, true},
		{"permanent errors are not retried", 5, Permanent(transient),
			func(ctx context.Context, p *Instrumented) error { return p.Delete(ctx, "i-1") }, "delete", 1, true},
		{"not found is not retried", 5, fmt.Errorf("i-9: %w", ErrNotFound),
			func(ctx context.Context, p *Instrumented) error { _, err := p.Get(ctx, "i-9"); return err }, "get", 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := &flaky{failures: tc.failures, err: tc.err}
			rec := &recorder{}
			p := Instrument("local", inner, rec, RetryPolicy{Sleep: noSleep}, nil)
			err := tc.op(context.Background(), p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := inner.calls[tc.opName]; got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
			if len(rec.obs) != tc.wantCalls {
				t.Errorf("%d observations, want one per attempt (%d)", len(rec.obs), tc.wantCalls)
			}
			last := rec.obs[len(rec.obs)-1]
			wantOutcome := OutcomeOK
			switch {
			case errors.Is(err, ErrNotFound):
				wantOutcome = OutcomeNotFound
			case err != nil:
				wantOutcome = OutcomeError
			}
			if last != (observation{"local", tc.opName, wantOutcome}) {
				t.Errorf("last observation %+v, want outcome %s", last, wantOutcome)
			}
		})
	}
}

func TestInstrumentedStopsOnCancel(t *testing.T) {
	inner := &flaky{failures: 10, err: errors.New("down")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := Instrument("x", inner, nil, RetryPolicy{Sleep: noSleep}, nil)
	err := p.Delete(ctx, "i")
	if !errors.Is(err, context.Canceled) || inner.calls["delete"] != 1 {
		t.Errorf("err %v after %d calls; want cancellation after 1", err, inner.calls["delete"])
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	r.Register("fake", func(settings map[string]any, env Env) (Provisioner, error) { return &flaky{}, nil })
	if _, err := r.Build("fake", nil, Env{Name: "f"}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Build("cloud", nil, Env{Name: "mine"})
	var se *SettingsError
	if !errors.As(err, &se) || se.Problems[0].Path != "provisioners.mine.type" || !strings.Contains(err.Error(), "known: fake") {
		t.Errorf("unknown kind: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a kind twice must panic")
		}
	}()
	r.Register("fake", nil)
}

func TestDecodeSettings(t *testing.T) {
	type settings struct {
		Dir   string   `json:"dir"`
		Max   int      `json:"max_instances"`
		Types []string `json:"instance_types"`
	}
	tests := []struct {
		name     string
		in       map[string]any
		ok       bool
		wantPath string
	}{
		{"valid", map[string]any{"dir": "/x", "max_instances": 3, "instance_types": []any{"a"}}, true, ""},
		{"unknown key", map[string]any{"dri": "/x"}, false, "provisioners.p.settings.dri"},
		{"wrong type", map[string]any{"max_instances": "ten"}, false, "provisioners.p.settings.max_instances"},
		{"nil settings", nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s settings
			probs := NewProblems("p")
			ok := DecodeSettings(tc.in, &s, probs)
			if ok != tc.ok {
				t.Fatalf("ok = %v, problems %v", ok, probs.Err())
			}
			if tc.ok {
				if probs.Err() != nil {
					t.Errorf("problems on success: %v", probs.Err())
				}
				return
			}
			var se *SettingsError
			if !errors.As(probs.Err(), &se) || se.Problems[0].Path != tc.wantPath {
				t.Errorf("problem %v, want path %s", probs.Err(), tc.wantPath)
			}
		})
	}
}
