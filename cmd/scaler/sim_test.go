package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

func TestSimAndSimRunnerUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string // in stderr
	}{
		{[]string{"sim", "-h"}, nil, 0, "simulator listening on"},
		{[]string{"sim", "-nope"}, nil, 2, ""},
		{[]string{"sim", "extra"}, nil, 2, ""},
		{[]string{"sim", "-app-id", "5"}, nil, 2, "go together"},
		{[]string{"sim", "-rate-limit", "0"}, nil, 2, ""},
		{[]string{"sim", "-world", filepath.Join(dir, "missing.yaml"), "-listen", "127.0.0.1:0"}, nil, 1, "missing.yaml"},
		{[]string{"sim", "-app-id", "5", "-app-public-key", filepath.Join(dir, "missing.pem")}, nil, 1, "missing.pem"},
		{[]string{"sim", "-listen", "256.0.0.1:bad"}, nil, 1, "listen"},
		{[]string{"sim-runner", "-h"}, nil, 0, "ACTIONS_RUNNER_INPUT_JITCONFIG"},
		{[]string{"sim-runner", "run", "-h"}, nil, 0, ""},
		{[]string{"sim-runner", "configure", "--url", "https://github.com/octo-org"}, nil, 2, "--token"},
		{[]string{"sim-runner", "configure", "--url", "https://github.com/octo-org", "--token", "T"}, map[string]string{}, 2, "SCALER_SIM_URL"},
		{[]string{"sim-runner", "remove"}, nil, 2, "--token is required"},
		{[]string{"sim-runner", "--jitconfig", "bm9wZQ=="}, nil, 1, "invalid JIT config"},
		{[]string{"sim-runner"}, map[string]string{"ACTIONS_RUNNER_INPUT_JITCONFIG": "bm9wZQ=="}, 1, "invalid JIT config"},
		{[]string{"sim-runner", "--jitconfig", "x", "--url", "https://github.com/o", "--token", "t"}, nil, 2, "not both"},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("scaler %v: exit %d, want %d; stderr %q lacks %q?", tc.args, code, tc.code, stderr, tc.want)
		}
		if strings.Contains(stderr, "bm9wZQ") {
			t.Errorf("scaler %v printed the JIT config", tc.args)
		}
	}
}

func TestSimRunnerNotConfiguredHere(t *testing.T) {
	t.Chdir(t.TempDir())
	code, _, stderr := runCLI(t, map[string]string{}, "sim-runner")
	if code != 2 || !strings.Contains(stderr, "not configured") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, _ = runCLI(t, map[string]string{}, "sim-runner", "remove", "--token", "R")
	if code != 1 {
		t.Errorf("remove with nothing configured: exit %d", code)
	}
}

func TestLoadWorldYAMLAndJSON(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "world.yaml")
	_ = os.WriteFile(yamlPath, []byte(`
enterprise: big-ent
orgs:
  - login: acme
    repos:
      - {name: api, private: true}
groups:
  - scope: org:acme
    name: linux
    visibility: selected
    repositories: [acme/api]
`), 0o600)
	w, err := loadWorld(yamlPath)
	if err != nil {
		t.Fatal(err)
	}
	if w.Enterprise().Login != "big-ent" || !w.ScopeExists(world.Scope{Kind: world.Repo, Name: "acme/api"}) {
		t.Errorf("world from YAML: %v %v", w.Enterprise(), w.Orgs())
	}
	if gs, _ := w.Groups(world.Scope{Kind: world.Org, Name: "acme"}); len(gs) != 2 {
		t.Errorf("groups %+v", gs)
	}
	jsonPath := filepath.Join(dir, "world.json")
	_ = os.WriteFile(jsonPath, []byte(`{"orgs":[{"login":"solo","repos":[{"name":"r","private":false}]}]}`), 0o600)
	if w, err = loadWorld(jsonPath); err != nil || !w.ScopeExists(world.Scope{Kind: world.Repo, Name: "solo/r"}) {
		t.Errorf("world from JSON: %v", err)
	}
	badPath := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(badPath, []byte("orgs:\n  - login: x\n    repoz: []\n"), 0o600)
	if _, err := loadWorld(badPath); err == nil || !strings.Contains(err.Error(), "repoz") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestLoadRSAPublicKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	for typ, der := range map[string][]byte{
		"PUBLIC KEY":      pkix,
		"RSA PUBLIC KEY":  x509.MarshalPKCS1PublicKey(&key.PublicKey),
		"RSA PRIVATE KEY": x509.MarshalPKCS1PrivateKey(key),
		"PRIVATE KEY":     pkcs8,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(typ, " ", "_")+".pem")
		_ = os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		pub, err := loadRSAPublicKey(path)
		if err != nil || !pub.Equal(&key.PublicKey) {
			t.Errorf("%s: %v", typ, err)
		}
	}
	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(junk, []byte("not pem"), 0o600)
	if _, err := loadRSAPublicKey(junk); err == nil {
		t.Error("junk accepted")
	}
}
