package external

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

func TestDecodeInstance(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     parsedInstance
	}{
		{"ours", `{"id":"i-1","daemon_id":"d","pool":"p","runner_name":"r","state":"running","addresses":["10.0.0.1","fe80::1"],"created_at":"2025-03-01T12:30:00Z","last_error":"","extra":"ignored"}`,
			parsedInstance{Instance: provisioner.Instance{ID: "i-1", Pool: "p", RunnerName: "r", State: provisioner.StateRunning, Addresses: []string{"10.0.0.1", "fe80::1"}, CreatedAt: created}, DaemonID: "d"}},
		{"garm", `{"provider_id":"vm-1","name":"r","pool_id":"p","status":"error","provider_fault":"` + base64.StdEncoding.EncodeToString([]byte("out of quota")) + `","addresses":[{"address":"1.2.3.4","type":"public"}]}`,
			parsedInstance{Instance: provisioner.Instance{ID: "vm-1", Pool: "p", RunnerName: "r", State: provisioner.StateFailed, Addresses: []string{"1.2.3.4"}, LastError: "out of quota"}}},
		{"garm plain fault", `{"provider_id":"vm-1","status":"unknown","provider_fault":"boom"}`,
			parsedInstance{Instance: provisioner.Instance{ID: "vm-1", State: provisioner.StatePending, LastError: "boom"}}},
		{"ours win over garm", `{"id":"a","provider_id":"b","pool":"p1","pool_id":"p2","state":"stopped","status":"running","last_error":"x","provider_fault":"y"}`,
			parsedInstance{Instance: provisioner.Instance{ID: "a", Pool: "p1", State: provisioner.StateStopped, LastError: "x"}}},
		{"empty state is pending", `{"id":"a"}`, parsedInstance{Instance: provisioner.Instance{ID: "a", State: provisioner.StatePending}}},
		{"state case", `{"id":"a","state":"Gone"}`, parsedInstance{Instance: provisioner.Instance{ID: "a", State: provisioner.StateGone}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeInstance([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got.CreatedAt.Equal(tc.want.CreatedAt) {
				got.CreatedAt = tc.want.CreatedAt
			}
			if strings.Join(got.Addresses, ",") != strings.Join(tc.want.Addresses, ",") ||
				got.ID != tc.want.ID || got.Pool != tc.want.Pool || got.RunnerName != tc.want.RunnerName ||
				got.State != tc.want.State || got.LastError != tc.want.LastError ||
				!got.CreatedAt.Equal(tc.want.CreatedAt) || got.DaemonID != tc.want.DaemonID {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if l, err := decodeInstances([]byte("null")); err != nil || len(l) != 0 {
		t.Errorf("null list = %v, %v; want empty", l, err)
	}
}

func TestScrub(t *testing.T) {
	const sec = "0123456789abcdefSECRET/+=<&>"
	for _, tc := range []struct{ name, in, want string }{
		{"verbatim", "x " + sec + " y " + sec, "x [redacted] y [redacted]"},
		{"json", `{"t":"0123456789abcdefSECRET/+=\u003c\u0026\u003e"}`, `{"t":"[redacted]"}`},
		{"slash escaped", `0123456789abcdefSECRET\/+=\u003c\u0026\u003e`, `[redacted]`},
		{"cut at start", "6789abcdefSECRET/+=<&> and then", "[redacted] and then"},
		{"cut at end", "it was 0123456789ab", "it was [redacted]"},
		{"short fragments stay", "0123 and <&>", "0123 and <&>"},
		{"nothing", "hello", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scrub(tc.in, []string{"", sec}); got != tc.want {
				t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	in := []byte("line one\r\n\n  line\ttwo \x1b[0m\xff\nthe end SECRET-VALUE-123\n")
	if got, want := excerpt(in, []string{"SECRET-VALUE-123"}, 100, true), "line one | line\ttwo ?[0m? | the end [redacted]"; got != want {
		t.Errorf("excerpt = %q, want %q", got, want)
	}
	long := []byte(strings.Repeat("a", 50) + "é" + strings.Repeat("b", 50))
	if got := excerpt(long, nil, 50, true); got != "…"+strings.Repeat("b", 50) {
		t.Errorf("tail excerpt = %q", got)
	}
	if got := excerpt(long, nil, 51, false); got != strings.Repeat("a", 50)+"…" {
		t.Errorf("head excerpt = %q (must not split a rune)", got)
	}
}

func TestBuffers(t *testing.T) {
	tb := &tailBuffer{max: 5}
	for _, s := range []string{"ab", "cd", "efg", "h", "0123456789"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := string(tb.Bytes()); got != "56789" {
		t.Errorf("tail = %q", got)
	}
	tb = &tailBuffer{max: 5}
	tb.Write([]byte("abc"))
	tb.Write([]byte("defg"))
	if got := string(tb.Bytes()); got != "cdefg" {
		t.Errorf("tail = %q", got)
	}

	hb := &headBuffer{max: 5}
	hb.Write([]byte("abc"))
	if hb.overflow {
		t.Error("overflow too early")
	}
	if n, err := hb.Write([]byte("defg")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v; a full buffer must not fail the plugin's writes", n, err)
	}
	hb.Write([]byte("h"))
	if got := string(hb.Bytes()); got != "abcde" || !hb.overflow {
		t.Errorf("head = %q, overflow %v", got, hb.overflow)
	}
}

func TestExitErrorMessage(t *testing.T) {
	e := &ExitError{Command: CmdCreateInstance, Code: 31, State: "exit status 31"}
	if got := e.Error(); !strings.Contains(got, "already exists") || !strings.Contains(got, "nothing on stderr") {
		t.Errorf("Error() = %q", got)
	}
}
