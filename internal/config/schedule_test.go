package config

import (
	"strings"
	"testing"
	"time"
)

func TestScheduleActive(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	workHours := Schedule{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Berlin"}
	night := Schedule{From: "22:00", To: "06:00"} // UTC, every day, past midnight
	friNight := Schedule{Days: []string{"fri"}, From: "22:00", To: "02:00"}
	tests := []struct {
		name string
		s    Schedule
		t    time.Time
		want bool
	}{
		{"monday 09:00 Berlin", workHours, time.Date(2026, 11, 23, 9, 0, 0, 0, berlin), true},
		{"monday 08:00 Berlin is inside (from is inclusive)", workHours, time.Date(2026, 11, 23, 8, 0, 0, 0, berlin), true},
		{"monday 18:00 Berlin is outside (to is exclusive)", workHours, time.Date(2026, 11, 23, 18, 0, 0, 0, berlin), false},
		{"monday 07:30 UTC is 08:30 Berlin", workHours, time.Date(2026, 11, 23, 7, 30, 0, 0, time.UTC), true},
		{"saturday noon", workHours, time.Date(2026, 11, 28, 12, 0, 0, 0, berlin), false},
		{"23:00 in a night window", night, time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC), true},
		{"03:00 in a night window", night, time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC), true},
		{"noon outside a night window", night, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), false},
		{"saturday 01:00 belongs to friday's window", friNight, time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), true},
		{"friday 01:00 belongs to thursday: outside", friNight, time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC), false},
		{"an invalid schedule is never active", Schedule{From: "8am", To: "18:00"}, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		if got := tc.s.Active(tc.t); got != tc.want {
			t.Errorf("%s: Active = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestScheduleValidation(t *testing.T) {
	c := Default()
	c.Pools = []Pool{{Name: "p", Scope: Scope{Org: "acme"}, Labels: []string{"x"}, MaxRunners: 4, Provisioner: "local",
		RunnerGroup: DefaultRunnerGroup, OS: "linux", Arch: "x64", Registration: RegistrationJIT, MaxConcurrentCreates: 0,
		Schedules: []Schedule{{Days: []string{"monday"}, From: "25:00", To: "18:00", TimeZone: "Mars/Olympus", MinIdle: 9}}}}
	c.Provisioners = map[string]Provisioner{"local": {Type: "local"}}
	c.GitHub.Token = "t"
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid schedule accepted")
	}
	for _, want := range []string{
		"pools[0].max_concurrent_creates: must be >= 1",
		"pools[0].schedules[0].days[0]",
		"pools[0].schedules[0].from",
		"pools[0].schedules[0].timezone",
		"pools[0].schedules[0].min_idle: must be <= max_runners (4)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
