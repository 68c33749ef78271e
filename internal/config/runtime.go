package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// CheckRuntime checks what `run` needs beyond a structurally valid
// configuration: a webhook secret to verify deliveries, and, with GitHub App
// authentication, a private key that can be read and parsed as RSA. These are
// kept out of Validate so that an example or a configuration on a developer's
// machine can be validated without the production secrets.
//
// Call it after Load succeeded. It returns a *ValidationError or nil, and its
// messages never contain key material.
func (c *Config) CheckRuntime() error {
	var ps problems
	hasSecret := false
	for _, s := range c.Webhook.Secrets {
		if s != "" {
			hasSecret = true
		}
	}
	if !hasSecret {
		ps.add("webhook.secrets", "no webhook secret: set SCALER_WEBHOOK_SECRET to the secret configured on the GitHub App's webhook "+
			"(or pass it as the systemd credential webhook-secret, or list it under webhook.secrets); unsigned deliveries are never accepted")
	}
	if c.GitHub.UsesApp() {
		path := "github.app.private_key_file"
		if c.GitHub.App.PrivateKey != "" {
			path = c.GitHub.App.privateKeyOrigin()
		}
		if _, err := c.GitHub.App.LoadPrivateKey(); err != nil {
			ps.add(path, err.Error())
		}
	}
	return ps.err(nil)
}

// privateKeyOrigin names where PrivateKey came from, as a problem path:
// "env SCALER_GITHUB_APP_PRIVATE_KEY" or "credential app-private-key".
func (a GitHubApp) privateKeyOrigin() string {
	if a.privateKeyFrom != "" {
		return a.privateKeyFrom
	}
	return "env SCALER_GITHUB_APP_PRIVATE_KEY"
}

// PrivateKeyPEM returns the App's private key in PEM form: PrivateKey when
// set (from SCALER_GITHUB_APP_PRIVATE_KEY or the app-private-key
// credential), else the contents of private_key_file.
func (a GitHubApp) PrivateKeyPEM() ([]byte, error) {
	if a.PrivateKey != "" {
		return []byte(a.PrivateKey.Reveal()), nil
	}
	if a.PrivateKeyFile == "" {
		return nil, errors.New("no private key: set github.app.private_key_file or SCALER_GITHUB_APP_PRIVATE_KEY")
	}
	data, err := os.ReadFile(a.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	return data, nil
}

// LoadPrivateKey reads the App's private key (see PrivateKeyPEM) and parses
// it as an RSA key, the only kind GitHub issues for Apps.
func (a GitHubApp) LoadPrivateKey() (*rsa.PrivateKey, error) {
	data, err := a.PrivateKeyPEM()
	if err != nil {
		return nil, err
	}
	return ParseRSAPrivateKey(data)
}

// ParseRSAPrivateKey parses a PEM-encoded RSA private key in PKCS #1
// ("RSA PRIVATE KEY", what GitHub downloads) or PKCS #8 ("PRIVATE KEY", what
// `openssl pkcs8` and some secret stores produce) form. Errors describe the
// input's shape only, never its content.
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("private key is not PEM: expected a block starting with \"-----BEGIN RSA PRIVATE KEY-----\"")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, errors.New("private key is encrypted; GitHub issues unencrypted App keys, use the downloaded .pem as is")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			// The parser's own error describes the DER structure it
			// choked on; that is of no use to an operator and brushes
			// against key material, so it is not passed on.
			return nil, errors.New("private key has an \"RSA PRIVATE KEY\" block that does not parse as a PKCS #1 RSA key; is the file damaged?")
		}
		return key, nil
	case "PRIVATE KEY":
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private key has a \"PRIVATE KEY\" block that does not parse as PKCS #8; is the file damaged?")
		}
		key, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key is a %T, but GitHub App keys are RSA", parsed)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("PEM block is a %q, expected \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
	}
}
