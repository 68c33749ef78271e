package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testRSAKey is generated once: RSA key generation is slow under -race.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

func pkcs1PEM(t *testing.T) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey())})
}

func pkcs8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckRuntime(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"},
		Bytes:   []byte("not really"),
	})
	damaged := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("SECRETBYTES-not-DER")})

	type want struct{ path, msg string }
	tests := []struct {
		name  string
		setup func(t *testing.T, c *Config)
		want  []want
	}{
		{"PKCS #1 file", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKeyFile = writeFile(t, pkcs1PEM(t)) }, nil},
		{"PKCS #8 file", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKeyFile = writeFile(t, pkcs8PEM(t, testRSAKey())) }, nil},
		{"PKCS #1 env", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKey = Secret(pkcs1PEM(t)) }, nil},
		{"PKCS #8 env", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKey = Secret(pkcs8PEM(t, testRSAKey())) }, nil},
		{"token auth needs no key", func(t *testing.T, c *Config) { c.GitHub.App = GitHubApp{}; c.GitHub.Token = "ghp_x" }, nil},
		{"missing key file", func(t *testing.T, c *Config) {
			c.GitHub.App.PrivateKeyFile = filepath.Join(t.TempDir(), "nope.pem")
		}, []want{{"github.app.private_key_file", "no such file"}}},
		{"garbage file", func(t *testing.T, c *Config) {
			c.GitHub.App.PrivateKeyFile = writeFile(t, []byte("SECRETBYTES garbage"))
		}, []want{{"github.app.private_key_file", "not PEM"}}},
		{"garbage env", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKey = "SECRETBYTES garbage" }, []want{{"env SCALER_GITHUB_APP_PRIVATE_KEY", "not PEM"}}},
		{"damaged PEM", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKeyFile = writeFile(t, damaged) }, []want{{"github.app.private_key_file", "PKCS #1"}}},
		{"encrypted PEM", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKeyFile = writeFile(t, encrypted) }, []want{{"github.app.private_key_file", "encrypted"}}},
		{"EC key", func(t *testing.T, c *Config) { c.GitHub.App.PrivateKeyFile = writeFile(t, pkcs8PEM(t, ecKey)) }, []want{{"github.app.private_key_file", "GitHub App keys are RSA"}}},
		{"certificate instead of key", func(t *testing.T, c *Config) {
			c.GitHub.App.PrivateKeyFile = writeFile(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}))
		}, []want{{"github.app.private_key_file", `"CERTIFICATE"`}}},
		{"no webhook secret", func(t *testing.T, c *Config) {
			c.GitHub.App.PrivateKeyFile = writeFile(t, pkcs1PEM(t))
			c.Webhook.Secrets = nil
		}, []want{{"webhook.secrets", "SCALER_WEBHOOK_SECRET"}}},
		{"only an empty webhook secret, no key", func(t *testing.T, c *Config) {
			c.Webhook.Secrets = []Secret{""}
		}, []want{{"github.app.private_key_file", "no private key"}, {"webhook.secrets", "no webhook secret"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.GitHub.App.PrivateKeyFile = ""
			c.Webhook.Secrets = []Secret{"s"}
			tc.setup(t, c)
			err := c.CheckRuntime()
			got := problemsOf(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d: %v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if got[i].Path != w.path || !strings.Contains(got[i].Message, w.msg) {
					t.Errorf("problem %d = %q, want path %q and a message containing %q", i, got[i], w.path, w.msg)
				}
			}
			if err != nil && strings.Contains(err.Error(), "SECRETBYTES") {
				t.Errorf("key material in the error: %v", err)
			}
		})
	}
}

func TestEnvKeyWithEscapedNewlines(t *testing.T) {
	t.Parallel()
	escaped := strings.ReplaceAll(string(pkcs1PEM(t)), "\n", `\n`)
	cfg, err := Parse([]byte("github: {app: {id: 1}}\n"+validPools), map[string]string{
		"SCALER_GITHUB_APP_PRIVATE_KEY": escaped,
		"SCALER_WEBHOOK_SECRET":         "s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.GitHub.App.PrivateKey.Reveal(); got != string(pkcs1PEM(t)) {
		t.Error("escaped line breaks were not restored")
	}
	if err := cfg.CheckRuntime(); err != nil {
		t.Errorf("CheckRuntime: %v", err)
	}
}

func TestLoadPrivateKey(t *testing.T) {
	t.Parallel()
	app := GitHubApp{ID: 1, PrivateKeyFile: writeFile(t, pkcs8PEM(t, testRSAKey()))}
	key, err := app.LoadPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(testRSAKey()) {
		t.Error("LoadPrivateKey returned a different key")
	}
}
