package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestJSONOneEventPerLine(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("info", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("runner created", zap.String("pool", "linux"), zap.Int64("job_id", 7))
	log.Warn("second")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (debug filtered), got %d: %q", len(lines), buf.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatalf("line is not JSON: %v", err)
	}
	if ev["msg"] != "runner created" || ev["pool"] != "linux" || ev["job_id"] != float64(7) || ev["level"] != "info" {
		t.Errorf("unexpected event %v", ev)
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct{ level, format string }{{"loud", "json"}, {"info", "xml"}} {
		if _, err := New(tc.level, tc.format, &bytes.Buffer{}); err == nil {
			t.Errorf("New(%q, %q) accepted", tc.level, tc.format)
		}
	}
	var buf bytes.Buffer
	log, err := New("debug", "console", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("visible")
	if !strings.Contains(buf.String(), "DEBUG") || !strings.Contains(buf.String(), "visible") {
		t.Errorf("console output %q", buf.String())
	}
}
