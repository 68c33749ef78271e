package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// credDir makes a credentials directory as systemd's LoadCredential= does:
// one file per credential, named by its id.
func credDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// noCredentialsYAML is a valid configuration that names no GitHub credentials: they
// come from the test's credentials.
const noCredentialsYAML = validPools

func TestCredentialsApp(t *testing.T) {
	t.Parallel()
	key := string(pkcs1PEM(t))
	dir := credDir(t, map[string]string{
		CredentialAppPrivateKey: key,
		// Two secrets during a rotation, a blank line and Windows line
		// endings: each non-blank line is one secret, kept exactly.
		CredentialWebhookSecret: "old-secret\r\n\n new secret \n",
		CredentialAdminToken:    "admin-tok\n",
	})
	cfg, err := Parse([]byte("github: {app: {id: 7}}\n"+noCredentialsYAML), map[string]string{CredentialsDirectoryEnv: dir})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := cfg.GitHub.App.PrivateKey.Reveal(); got != key {
		t.Error("private key not taken from the credential, or changed")
	}
	if want := []Secret{"old-secret", " new secret "}; !slices.Equal(cfg.Webhook.Secrets, want) {
		t.Errorf("webhook secrets: got %d entries, want the credential's 2 lines", len(cfg.Webhook.Secrets))
	}
	if cfg.Admin.Token.Reveal() != "admin-tok" {
		t.Error("admin token: trailing newline not trimmed, or not read")
	}
	if err := cfg.CheckRuntime(); err != nil {
		t.Errorf("CheckRuntime: %v", err)
	}
}

func TestCredentialsToken(t *testing.T) {
	t.Parallel()
	dir := credDir(t, map[string]string{CredentialGitHubToken: "ghp_cred\r\n", CredentialWebhookSecret: "s"})
	cfg, err := Parse([]byte(noCredentialsYAML), map[string]string{CredentialsDirectoryEnv: dir})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.GitHub.Token.Reveal() != "ghp_cred" || cfg.GitHub.UsesApp() {
		t.Error("token not taken from the credential")
	}
	// The credential replaces a YAML token, as the variable would.
	cfg, err = Parse([]byte("github: {token: from-yaml}\n"+noCredentialsYAML), map[string]string{CredentialsDirectoryEnv: dir})
	if err != nil || cfg.GitHub.Token.Reveal() != "ghp_cred" {
		t.Errorf("credential did not override the YAML token (err %v)", err)
	}
}

// An explicit variable wins over a credential, which is then not read at
// all: the credentials shadowed are directories, which would be a problem
// if they were read.
func TestCredentialsEnvWins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		environ  map[string]string
		shadowed []string
		check    func(t *testing.T, c *Config)
	}{
		{"key variable", "github: {app: {id: 1}}\n" + noCredentialsYAML,
			map[string]string{"SCALER_GITHUB_APP_PRIVATE_KEY": "pem-from-env"}, []string{CredentialAppPrivateKey},
			func(t *testing.T, c *Config) {
				if c.GitHub.App.PrivateKey.Reveal() != "pem-from-env" {
					t.Error("the variable did not win")
				}
			}},
		{"key file variable", "github: {app: {id: 1}}\n" + noCredentialsYAML,
			map[string]string{"SCALER_GITHUB_APP_PRIVATE_KEY_FILE": "/env/app.pem"}, []string{CredentialAppPrivateKey},
			func(t *testing.T, c *Config) {
				if c.GitHub.App.PrivateKey != "" || c.GitHub.App.PrivateKeyFile != "/env/app.pem" {
					t.Error("the key file variable did not win")
				}
			}},
		{"token variables", noCredentialsYAML,
			map[string]string{"SCALER_GITHUB_TOKEN": "ghp_env", "SCALER_ADMIN_TOKEN": "adm_env"},
			[]string{CredentialGitHubToken, CredentialAdminToken},
			func(t *testing.T, c *Config) {
				if c.GitHub.Token.Reveal() != "ghp_env" || c.Admin.Token.Reveal() != "adm_env" {
					t.Error("the variables did not win")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, name := range tc.shadowed {
				if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			environ := map[string]string{CredentialsDirectoryEnv: dir}
			for k, v := range tc.environ {
				environ[k] = v
			}
			cfg, err := Parse([]byte(tc.yaml), environ)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, cfg)
		})
	}
}

// Webhook secrets add up: the YAML's, the credential's lines, the
// variable's.
func TestCredentialsWebhookSecretsAddUp(t *testing.T) {
	t.Parallel()
	dir := credDir(t, map[string]string{CredentialWebhookSecret: "cred-1\ncred-2\n"})
	cfg, err := Parse([]byte(appYAML), map[string]string{
		CredentialsDirectoryEnv: dir, "SCALER_WEBHOOK_SECRET": "from-env",
	})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Secret{"from-yaml", "from-env", "cred-1", "cred-2"}
	if !reflect.DeepEqual(cfg.Webhook.Secrets, want) {
		t.Errorf("got %d secrets, want %d in the order YAML, variable, credential", len(cfg.Webhook.Secrets), len(want))
	}
}

func TestCredentialsMissingFilesAreNoCredentials(t *testing.T) {
	t.Parallel()
	base, err := Parse([]byte(appYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(appYAML), map[string]string{CredentialsDirectoryEnv: t.TempDir()})
	if err != nil {
		t.Fatalf("Parse with an empty credentials directory: %v", err)
	}
	if !reflect.DeepEqual(cfg, base) {
		t.Error("an empty credentials directory changed the configuration")
	}
}

// The directory comes from the environ map only, never the process
// environment.
func TestCredentialsHermetic(t *testing.T) {
	dir := credDir(t, map[string]string{CredentialGitHubToken: "ghp_process"})
	t.Setenv(CredentialsDirectoryEnv, dir)
	cfg, err := Parse([]byte(appYAML), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHub.Token != "" {
		t.Error("Parse read $CREDENTIALS_DIRECTORY from the process environment")
	}
}

func TestCredentialsProblems(t *testing.T) {
	t.Parallel()
	const sentinel = "SECRETBYTES"
	tests := []struct {
		name  string
		yaml  string
		setup func(t *testing.T, dir string)
		want  []Problem
	}{
		{
			name: "unreadable credential",
			yaml: appYAML,
			setup: func(t *testing.T, dir string) {
				// A directory where the file should be: unreadable for
				// root too, unlike a file without permissions.
				if err := os.Mkdir(filepath.Join(dir, CredentialWebhookSecret), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			want: []Problem{{"credential webhook-secret", "cannot be read: read DIR/webhook-secret: is a directory"}},
		},
		{
			name:  "empty credential",
			yaml:  appYAML,
			setup: write(CredentialAdminToken, "\n"),
			want:  []Problem{{"credential admin-token", "DIR/admin-token is empty"}},
		},
		{
			name:  "webhook secret of blank lines",
			yaml:  appYAML,
			setup: write(CredentialWebhookSecret, "\n  \n\n"),
			want:  []Problem{{"credential webhook-secret", "holds only blank lines; write one webhook secret per line"}},
		},
		{
			name:  "token of white space",
			yaml:  appYAML,
			setup: write(CredentialAdminToken, "  \n"),
			want:  []Problem{{"credential admin-token", "holds only white space; write the token on one line"}},
		},
		{
			name:  "token of two lines",
			yaml:  noCredentialsYAML,
			setup: write(CredentialGitHubToken, sentinel+"\n"+sentinel+"\n"),
			want: []Problem{
				{"credential github-token", "holds more than one line; a token is a single line"},
				{"github", "no GitHub credentials: set github.app.id and github.app.private_key_file (or SCALER_GITHUB_APP_PRIVATE_KEY) " +
					"to act as a GitHub App, or set SCALER_GITHUB_TOKEN to use a personal access token"},
			},
		},
		{
			name:  "key credential and key file",
			yaml:  appYAML,
			setup: write(CredentialAppPrivateKey, sentinel),
			want: []Problem{{"github.app.private_key_file",
				"set either private_key_file or the systemd credential app-private-key, not both"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := Parse([]byte(tc.yaml), map[string]string{CredentialsDirectoryEnv: dir})
			got := problemsOf(t, err)
			for i := range got {
				got[i].Message = strings.ReplaceAll(got[i].Message, dir, "DIR")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), sentinel) {
				t.Errorf("credential contents in the error: %v", err)
			}
		})
	}
}

func write(name, data string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o400); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCredentialsDirectoryProblems(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "absent")
	for dir, msg := range map[string]string{
		missing: `"` + missing + `" cannot be read: no such file or directory`,
		file:    `"` + file + `" is not a directory`,
	} {
		_, err := Parse([]byte(appYAML), map[string]string{CredentialsDirectoryEnv: dir})
		want := []Problem{{"env CREDENTIALS_DIRECTORY", msg}}
		if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
			t.Errorf("problems:\n got %q\nwant %q", got, want)
		}
	}
}

// A credential key that does not parse is blamed on the credential.
func TestCredentialsBadKeyAtRuntime(t *testing.T) {
	t.Parallel()
	dir := credDir(t, map[string]string{CredentialAppPrivateKey: "SECRETBYTES garbage\n", CredentialWebhookSecret: "s\n"})
	cfg, err := Parse([]byte("github: {app: {id: 7}}\n"+noCredentialsYAML), map[string]string{CredentialsDirectoryEnv: dir})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	err = cfg.CheckRuntime()
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Path != "credential app-private-key" || !strings.Contains(got[0].Message, "not PEM") {
		t.Errorf("problems = %q, want one at credential app-private-key saying not PEM", got)
	}
	if err != nil && strings.Contains(err.Error(), "SECRETBYTES") {
		t.Errorf("key material in the error: %v", err)
	}
}

func TestCredentialNames(t *testing.T) {
	t.Parallel()
	want := []string{"app-private-key", "webhook-secret", "github-token", "admin-token"}
	if got := CredentialNames(); !slices.Equal(got, want) {
		t.Errorf("CredentialNames() = %q, want %q", got, want)
	}
}
