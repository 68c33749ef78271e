package simrunner

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestApplyEnvInputs(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *string, *bool, *bool) {
		fs := flag.NewFlagSet("configure", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		token := fs.String("token", "", "")
		url := fs.String("url", "", "")
		eph := fs.Bool("ephemeral", false, "")
		ndl := fs.Bool("no-default-labels", false, "")
		return fs, token, url, eph, ndl
	}
	fs, token, url, eph, ndl := newFS()
	if err := fs.Parse([]string{"--url", "https://github.com/cli"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ACTIONS_RUNNER_INPUT_TOKEN":             "AAAA-secret",
		"ACTIONS_RUNNER_INPUT_URL":               "https://github.com/env",
		"ACTIONS_RUNNER_INPUT_EPHEMERAL":         "true",
		"ACTIONS_RUNNER_INPUT_NO_DEFAULT_LABELS": "true",
	}
	if err := ApplyEnvInputs(fs, env); err != nil {
		t.Fatal(err)
	}
	if *token != "AAAA-secret" || *url != "https://github.com/cli" || !*eph || !*ndl {
		t.Errorf("token %q url %q ephemeral %v no-default-labels %v: want the token and flags from the environment, the URL from the command line", *token, *url, *eph, *ndl)
	}

	fs, _, _, _, _ = newFS()
	_ = fs.Parse(nil)
	err := ApplyEnvInputs(fs, map[string]string{"ACTIONS_RUNNER_INPUT_EPHEMERAL": "maybe-secret"})
	if err == nil || !strings.Contains(err.Error(), "ACTIONS_RUNNER_INPUT_EPHEMERAL") || strings.Contains(err.Error(), "maybe-secret") {
		t.Errorf("invalid boolean: %v; want an error naming the variable, not quoting the value", err)
	}
}
