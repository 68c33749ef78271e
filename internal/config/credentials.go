package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CredentialsDirectoryEnv names the variable systemd sets, for a unit with
// LoadCredential= (or SetCredential=), to the directory holding the
// service's credentials, one file per credential.
const CredentialsDirectoryEnv = "CREDENTIALS_DIRECTORY"

// Credentials read from $CREDENTIALS_DIRECTORY, by file name.
const (
	// CredentialAppPrivateKey is the GitHub App's private key, PEM as
	// downloaded from GitHub. It is used as SCALER_GITHUB_APP_PRIVATE_KEY
	// would be.
	CredentialAppPrivateKey = "app-private-key"
	// CredentialWebhookSecret holds webhook secrets, one per line; blank
	// lines are ignored. Every line is accepted, so a rotation is one file
	// holding the old and the new secret.
	CredentialWebhookSecret = "webhook-secret"
	// CredentialGitHubToken is a personal access token, used instead of a
	// GitHub App.
	CredentialGitHubToken = "github-token"
	// CredentialAdminToken is the admin endpoint's bearer token.
	CredentialAdminToken = "admin-token"
)

// CredentialNames returns the file names read from $CREDENTIALS_DIRECTORY,
// in a fixed order, for documentation and tests.
func CredentialNames() []string {
	return []string{CredentialAppPrivateKey, CredentialWebhookSecret, CredentialGitHubToken, CredentialAdminToken}
}

// applyCredentials reads the secrets systemd passes in files (LoadCredential=)
// from the directory named by CREDENTIALS_DIRECTORY in environ; without that
// variable it does nothing. Precedence, lowest first: the YAML, then a
// credential, then an environment variable. A credential whose variable is
// set (SCALER_GITHUB_APP_PRIVATE_KEY or SCALER_GITHUB_APP_PRIVATE_KEY_FILE
// for the key, SCALER_GITHUB_TOKEN, SCALER_ADMIN_TOKEN) is not read at all:
// an explicit variable is the operator's latest word. Webhook secrets are
// the exception, as they add up: the credential's lines join the YAML's
// secrets and SCALER_WEBHOOK_SECRET, and every one of them is accepted.
//
// A missing file is no credential (a unit loads only those it uses). A file
// that exists but cannot be read, or holds nothing, is a problem at
// "credential NAME"; messages never contain the file's contents. A trailing
// line break (as `echo` and editors write) is dropped.
//
// It runs after applyEnv and adds to overridden the key paths it set.
func applyCredentials(cfg *Config, environ map[string]string, ps *problems, overridden map[string]string) {
	dir := environ[CredentialsDirectoryEnv]
	if dir == "" {
		return
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		msg := "is not a directory"
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			msg = "cannot be read: " + pe.Err.Error()
		case err != nil:
			msg = "cannot be read: " + err.Error()
		}
		ps.add("env "+CredentialsDirectoryEnv, fmt.Sprintf("%q %s", dir, msg))
		return
	}
	envSet := func(names ...string) bool {
		for _, n := range names {
			if environ[n] != "" {
				return true
			}
		}
		return false
	}

	if !envSet("SCALER_GITHUB_APP_PRIVATE_KEY", "SCALER_GITHUB_APP_PRIVATE_KEY_FILE") {
		if data, ok := readCredential(dir, CredentialAppPrivateKey, ps); ok {
			// PEM is kept as it is, final line break included.
			cfg.GitHub.App.PrivateKey = Secret(data)
			cfg.GitHub.App.privateKeyFrom = "credential " + CredentialAppPrivateKey
		}
	}
	if data, ok := readCredential(dir, CredentialWebhookSecret, ps); ok {
		added := 0
		for _, line := range strings.Split(data, "\n") {
			line = strings.TrimSuffix(line, "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			cfg.Webhook.Secrets = append(cfg.Webhook.Secrets, Secret(line))
			overridden[fmt.Sprintf("webhook.secrets[%d]", len(cfg.Webhook.Secrets)-1)] = "credential " + CredentialWebhookSecret
			added++
		}
		if added == 0 {
			ps.add("credential "+CredentialWebhookSecret, "holds only blank lines; write one webhook secret per line")
		}
	}
	if !envSet("SCALER_GITHUB_TOKEN") {
		if tok, ok := readTokenCredential(dir, CredentialGitHubToken, ps); ok {
			cfg.GitHub.Token = Secret(tok)
			overridden["github.token"] = "credential " + CredentialGitHubToken
		}
	}
	if !envSet("SCALER_ADMIN_TOKEN") {
		if tok, ok := readTokenCredential(dir, CredentialAdminToken, ps); ok {
			cfg.Admin.Token = Secret(tok)
			overridden["admin.token"] = "credential " + CredentialAdminToken
		}
	}
}

// readCredential returns the contents of dir/name as they are. ok is false
// when the file does not exist or a problem was reported.
func readCredential(dir, name string, ps *problems) (string, bool) {
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false
	case err != nil:
		// An *fs.PathError names the file and the reason, never the
		// contents.
		ps.add("credential "+name, "cannot be read: "+err.Error())
		return "", false
	case len(trimNewline(string(data))) == 0:
		ps.add("credential "+name, path+" is empty")
		return "", false
	}
	return string(data), true
}

// readTokenCredential is readCredential for a token: one line, returned
// without its line break.
func readTokenCredential(dir, name string, ps *problems) (string, bool) {
	s, ok := readCredential(dir, name, ps)
	if !ok {
		return "", false
	}
	s = trimNewline(s)
	switch {
	case strings.TrimSpace(s) == "":
		ps.add("credential "+name, "holds only white space; write the token on one line")
		return "", false
	case strings.ContainsAny(s, "\r\n"):
		ps.add("credential "+name, "holds more than one line; a token is a single line")
		return "", false
	}
	return s, true
}

// trimNewline drops one trailing line break, "\n" or "\r\n".
func trimNewline(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}
