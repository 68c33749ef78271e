// Package simrunner is the runner-process side of the GitHub simulator: what
// `scaler sim-runner` does in place of the Actions runner application. It
// registers with a registration token (config.sh), or decodes a JIT config,
// opens a session with the simulator, goes online, "runs" the jobs the
// simulator assigns for their duration, reports them complete, and exits
// after one job when ephemeral.
//
// This file is the wire protocol both sides share (the simulator in
// internal/ghsim imports it); simrunner itself never imports ghsim.
//
// Protocol (paths relative to the simulator's base URL):
//
//	POST _runner/register           RegisterRequest -> 201 RegisterResponse (config.sh)
//	POST _runner/remove             RemoveRequest -> 204 (config.sh remove)
//	GET  _runner/session            Authorization: Bearer <credential>; 200 and a stream
//	                                of newline-delimited Message values until the runner
//	                                leaves; 401 bad or spent credential, 404 runner gone,
//	                                409 another session is open
//	POST _runner/jobs/{id}/complete Authorization: Bearer <credential> -> 204
//
// Errors are JSON {"message": "..."}.
package simrunner

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// RunnerVersion is the runner application version the simulator reports.
const RunnerVersion = "2.321.0"

// Paths of the runner protocol, relative to the simulator's base URL.
const (
	PathRegister = "_runner/register"
	PathRemove   = "_runner/remove"
	PathSession  = "_runner/session"
)

// CompletePath is the path a runner POSTs to when it finished a job.
func CompletePath(jobID int64) string {
	return "_runner/jobs/" + strconv.FormatInt(jobID, 10) + "/complete"
}

// The files a configured runner keeps in its directory, and the keys of a
// JIT config's map.
const (
	FileRunner      = ".runner"
	FileCredentials = ".credentials"
	FileRSAParams   = ".credentials_rsaparams"
)

// Settings is the .runner file, in the runner application's field names.
type Settings struct {
	AgentID        int64  `json:"agentId"`
	AgentName      string `json:"agentName"`
	PoolID         int64  `json:"poolId"`
	PoolName       string `json:"poolName,omitempty"`
	ServerURL      string `json:"serverUrl"`
	ServerURLV2    string `json:"serverUrlV2,omitempty"`
	GitHubURL      string `json:"gitHubUrl"`
	WorkFolder     string `json:"workFolder"`
	Ephemeral      bool   `json:"ephemeral"`
	DisableUpdate  bool   `json:"disableUpdate,omitempty"`
	IsHostedServer bool   `json:"isHostedServer"`
	UseV2Flow      bool   `json:"useV2Flow"`
}

// CredentialScheme is the scheme of the simulator's session credentials.
const CredentialScheme = "OAuthAccessToken"

// Credentials is the .credentials file. Data.Token is the session
// credential: a secret.
type Credentials struct {
	Scheme string          `json:"scheme"`
	Data   CredentialsData `json:"data"`
}

// CredentialsData holds the session credential.
type CredentialsData struct {
	Token string `json:"token"`
}

// RSAParams is the .credentials_rsaparams file: the runner's key pair in
// .NET's RSAParameters shape (base64 fields). The simulator's values are
// random bytes of the right sizes; nothing signs with them.
type RSAParams struct {
	D        string `json:"d"`
	DP       string `json:"dp"`
	DQ       string `json:"dq"`
	Exponent string `json:"exponent"`
	InverseQ string `json:"inverseQ"`
	Modulus  string `json:"modulus"`
	P        string `json:"p"`
	Q        string `json:"q"`
}

// EncodeJIT builds an encoded JIT config in GitHub's shape: base64 of a JSON
// object mapping the three file names to base64 file contents.
func EncodeJIT(s Settings, c Credentials, rsa RSAParams) (string, error) {
	files := map[string]any{FileRunner: s, FileCredentials: c, FileRSAParams: rsa}
	m := make(map[string]string, len(files))
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", name, err)
		}
		m[name] = base64.StdEncoding.EncodeToString(b)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Config is what a runner needs to connect: its settings and its session
// credential.
type Config struct {
	Settings Settings
	Token    secret.String // the session credential
	JIT      bool          // from a JIT config: the credential opens one session only
}

// ErrBadJITConfig is returned for a JIT config that does not decode. It
// never quotes the config, which is a credential.
var ErrBadJITConfig = errors.New("invalid JIT config")

// DecodeJIT reads an encoded JIT config.
func DecodeJIT(encoded string) (Config, error) {
	raw, err := decodeBase64(strings.TrimSpace(encoded))
	if err != nil {
		return Config{}, fmt.Errorf("%w: not base64", ErrBadJITConfig)
	}
	var files map[string]string
	if err := json.Unmarshal(raw, &files); err != nil {
		return Config{}, fmt.Errorf("%w: not a JSON object of files", ErrBadJITConfig)
	}
	cfg, err := decodeFiles(func(name string) ([]byte, error) {
		v, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%w: no %s", ErrBadJITConfig, name)
		}
		b, err := decodeBase64(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not base64", ErrBadJITConfig, name)
		}
		return b, nil
	})
	if err != nil {
		return Config{}, err
	}
	if _, ok := files[FileRSAParams]; !ok {
		return Config{}, fmt.Errorf("%w: no %s", ErrBadJITConfig, FileRSAParams)
	}
	cfg.JIT = true
	return cfg, nil
}

// decodeFiles builds a Config from the .runner and .credentials contents.
func decodeFiles(read func(name string) ([]byte, error)) (Config, error) {
	var cfg Config
	b, err := read(FileRunner)
	if err != nil {
		return Config{}, err
	}
	if err := json.Unmarshal(b, &cfg.Settings); err != nil {
		return Config{}, fmt.Errorf("%s: %w", FileRunner, err)
	}
	if cfg.Settings.ServerURL == "" || cfg.Settings.AgentID == 0 {
		return Config{}, fmt.Errorf("%s: no serverUrl or agentId", FileRunner)
	}
	if !strings.HasSuffix(cfg.Settings.ServerURL, "/") {
		cfg.Settings.ServerURL += "/"
	}
	if b, err = read(FileCredentials); err != nil {
		return Config{}, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		// Do not wrap: a JSON syntax error may quote the credential.
		return Config{}, fmt.Errorf("%s: not valid JSON", FileCredentials)
	}
	if c.Scheme != CredentialScheme || c.Data.Token == "" {
		return Config{}, fmt.Errorf("%s: want scheme %s with a token", FileCredentials, CredentialScheme)
	}
	cfg.Token = secret.String(c.Data.Token)
	return cfg, nil
}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Message types on a session stream.
const (
	MsgJob    = "job"    // run Job
	MsgCancel = "cancel" // stop JobID without reporting it
	MsgExit   = "exit"   // leave: the runner is removed (ephemeral after its job, or deleted)
	MsgPing   = "ping"   // keep-alive
)

// Message is one line of a session stream.
type Message struct {
	Type   string `json:"type"`
	Job    *Job   `json:"job,omitempty"`
	JobID  int64  `json:"job_id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Job is a job assigned to the runner.
type Job struct {
	ID         int64    `json:"id"`
	RunID      int64    `json:"run_id,omitempty"`
	Name       string   `json:"name"`
	Repo       string   `json:"repo,omitempty"`
	Labels     []string `json:"labels,omitempty"`
	DurationMS int64    `json:"duration_ms"`
}

// RegisterRequest is what config.sh sends.
type RegisterRequest struct {
	Token           string   `json:"token"`
	URL             string   `json:"url"` // https://github.com/ORG, .../OWNER/REPO or .../enterprises/SLUG
	Name            string   `json:"name"`
	Labels          []string `json:"labels,omitempty"`
	RunnerGroup     string   `json:"runner_group,omitempty"` // default "Default"
	Ephemeral       bool     `json:"ephemeral,omitempty"`
	NoDefaultLabels bool     `json:"no_default_labels,omitempty"`
	OS              string   `json:"os,omitempty"`   // linux, osx or win (also macos, windows)
	Arch            string   `json:"arch,omitempty"` // x64, arm64 or arm
	Replace         bool     `json:"replace,omitempty"`
	WorkFolder      string   `json:"work_folder,omitempty"`
}

// RegisterResponse is the registered runner: the contents of its .runner
// and .credentials files.
type RegisterResponse struct {
	RunnerID    int64       `json:"runner_id"`
	Name        string      `json:"name"`
	Runner      Settings    `json:"runner"`
	Credentials Credentials `json:"credentials"`
}

// RemoveRequest is what config.sh remove sends: the remove token and the
// runner's own credential, which names the runner.
type RemoveRequest struct {
	Token       string `json:"token"`
	Credentials string `json:"credentials"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Message string `json:"message"`
}
