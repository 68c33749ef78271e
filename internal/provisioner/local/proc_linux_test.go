package local

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Helpers that read /proc.

// pidOf returns the recorded pid and start time of an instance.
func pidOf(t *testing.T, p *Provisioner, id string) (int, uint64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[id]
	if !ok {
		t.Fatalf("no entry %s", id)
	}
	return e.rec.PID, e.rec.StartTime
}

// member is a process of a runner's group, by pid and start time.
type member struct {
	pid   int
	start uint64
}

func members(pgid int) []member {
	var out []member
	for _, pid := range groupMembers(pgid) {
		if st, err := processStartTime(pid); err == nil {
			out = append(out, member{pid, st})
		}
	}
	return out
}

// procFile reads /proc/<pid>/<name> with NULs as spaces.
func procFile(pid int, name string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// assertArgvClean checks that no process of the group has secret in its
// arguments, and returns how many processes it looked at.
func assertArgvClean(t *testing.T, pgid int, secret string) int {
	t.Helper()
	ms := groupMembers(pgid)
	for _, pid := range ms {
		if cl := procFile(pid, "cmdline"); strings.Contains(cl, secret) {
			t.Errorf("process %d has a secret in its arguments", pid)
		}
	}
	return len(ms)
}

// envKeys reads the names in /proc/<pid>/environ.
func envKeys(pid int) map[string]string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	out := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
