package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

func TestLogrWritesZapRecords(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := Logr(zap.New(core)).WithName("client-go").WithValues("namespace", "runners")
	l.Info("caches populated", "type", "*v1.Pod")
	l.V(4).Info("verbose chatter")
	l.Error(errors.New("boom"), "watch ended", 42, "odd", "dangling")
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d records, want 2 (V(4) dropped): %+v", len(entries), entries)
	}
	info, failure := entries[0], entries[1]
	if info.LoggerName != "client-go" || info.Message != "caches populated" || info.ContextMap()["namespace"] != "runners" || info.ContextMap()["type"] != "*v1.Pod" {
		t.Errorf("info record %+v %v", info.Entry, info.ContextMap())
	}
	cm := failure.ContextMap()
	if failure.Level != zap.ErrorLevel || cm["error"] != "boom" || cm["42"] != "odd" || cm["logr_key_without_value"] != "dangling" {
		t.Errorf("error record %+v %v", failure.Entry, cm)
	}
}
