package scaler

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
)

func TestPoolsFromConfig(t *testing.T) {
	no := false
	cfg := &config.Config{Pools: []config.Pool{
		{
			Name: "linux-small", Scope: config.Scope{Org: "octo-org"}, RunnerGroup: "Default",
			Labels: []string{"small"}, OS: "linux", Arch: "x64", MinIdle: 1, MaxRunners: 5,
			Registration: "jit", IdleTimeout: config.Duration(10 * time.Minute), Provisioner: "local",
			Schedules: []config.Schedule{{From: "08:00", To: "18:00", MinIdle: 3}},
		},
		{
			Name: "gpu", Scope: config.Scope{Enterprise: "big"}, RunnerGroup: "gpu",
			Labels: []string{"gpu"}, MaxRunners: 2, Ephemeral: &no, Registration: "token",
			MaxConcurrentCreates: 4,
		},
		{
			Name: "web", Scope: config.Scope{Repo: "octo-org/web"}, MaxRunners: 1,
		},
	}}
	pools, err := PoolsFromConfig(cfg)
	if err != nil {
		t.Fatalf("PoolsFromConfig: %v", err)
	}
	if len(pools) != 3 {
		t.Fatalf("got %d pools, want 3", len(pools))
	}

	small := pools[0]
	if small.Name != "linux-small" || small.Scope != ghapi.Org("octo-org") || small.RunnerGroup != "Default" ||
		small.MinIdle != 1 || small.MaxRunners != 5 || !small.Ephemeral || small.Registration != "jit" ||
		small.IdleTimeout != 10*time.Minute || small.Provisioner != "local" || small.Order != 0 {
		t.Errorf("linux-small = %+v", small)
	}
	if small.MaxConcurrentCreates != DefaultMaxConcurrentCreates {
		t.Errorf("linux-small MaxConcurrentCreates = %d, want default %d", small.MaxConcurrentCreates, DefaultMaxConcurrentCreates)
	}
	if len(small.Schedules) != 1 || small.Schedules[0].MinIdle != 3 || small.Schedules[0].Active == nil {
		t.Fatalf("linux-small schedules = %+v", small.Schedules)
	}
	noon := time.Date(2025, 3, 5, 12, 0, 0, 0, time.UTC)
	night := time.Date(2025, 3, 5, 22, 0, 0, 0, time.UTC)
	if got := small.MinIdleAt(noon); got != 3 {
		t.Errorf("MinIdleAt(noon) = %d, want 3 (schedule)", got)
	}
	if got := small.MinIdleAt(night); got != 1 {
		t.Errorf("MinIdleAt(night) = %d, want 1 (pool)", got)
	}

	gpu := pools[1]
	if gpu.Scope != ghapi.Enterprise("big") || gpu.RunnerGroup != "gpu" || gpu.Ephemeral ||
		gpu.Registration != "token" || gpu.MaxConcurrentCreates != 4 || gpu.Order != 1 {
		t.Errorf("gpu = %+v", gpu)
	}
	if gpu.OS != "linux" || gpu.Arch != "x64" {
		t.Errorf("gpu OS/Arch = %s/%s, want defaults linux/x64", gpu.OS, gpu.Arch)
	}

	web := pools[2]
	if web.Scope != ghapi.Repo("octo-org", "web") || web.RunnerGroup != "Default" || !web.Ephemeral ||
		web.Registration != "jit" || web.Order != 2 {
		t.Errorf("web = %+v", web)
	}
}

func TestPoolsFromConfigBadScopes(t *testing.T) {
	cfg := &config.Config{Pools: []config.Pool{
		{Name: "none", MaxRunners: 1},
		{Name: "two", Scope: config.Scope{Org: "a", Repo: "a/b"}, MaxRunners: 1},
		{Name: "badrepo", Scope: config.Scope{Repo: "nope"}, MaxRunners: 1},
		{Name: "ok", Scope: config.Scope{Org: "a"}, MaxRunners: 1},
	}}
	pools, err := PoolsFromConfig(cfg)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"pools[0].scope", "pools[1].scope", "pools[2].scope", "more than one"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(pools) != 1 || pools[0].Name != "ok" || pools[0].Order != 3 {
		t.Errorf("pools = %+v, want only ok with Order 3", pools)
	}
	if _, err := PoolsFromConfig(nil); err == nil {
		t.Error("PoolsFromConfig(nil): want an error")
	}
}

func TestPoolEffectiveLabels(t *testing.T) {
	tests := []struct {
		name string
		pool Pool
		want []string
	}{
		{"defaults only", Pool{OS: "linux", Arch: "x64"}, []string{"self-hosted", "linux", "x64"}},
		{"empty OS and arch", Pool{}, []string{"self-hosted", "linux", "x64"}},
		{"custom", Pool{OS: "windows", Arch: "arm64", Labels: []string{"gpu", "big"}}, []string{"self-hosted", "windows", "arm64", "gpu", "big"}},
		{"case-insensitive repeats", Pool{OS: "linux", Arch: "x64", Labels: []string{"Linux", "GPU", "gpu", "", "Self-Hosted"}}, []string{"self-hosted", "linux", "x64", "GPU"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pool.EffectiveLabels(); !slices.Equal(got, tt.want) {
				t.Errorf("EffectiveLabels() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPoolMinIdleAt(t *testing.T) {
	at := func(h int) func(time.Time) bool {
		return func(t time.Time) bool { return t.Hour() >= h }
	}
	p := Pool{MinIdle: 1, Schedules: []Schedule{
		{MinIdle: 4, Active: at(8)},
		{MinIdle: 0, Active: at(20)}, // later entries win
		{MinIdle: 9},                 // no Active: never
	}}
	for _, tt := range []struct {
		hour, want int
	}{{3, 1}, {8, 4}, {19, 4}, {21, 0}} {
		if got := p.MinIdleAt(time.Date(2025, 1, 1, tt.hour, 0, 0, 0, time.UTC)); got != tt.want {
			t.Errorf("MinIdleAt(%02d:00) = %d, want %d", tt.hour, got, tt.want)
		}
	}
}
