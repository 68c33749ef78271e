package external

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// ProtocolVersion is the version of the plugin protocol this package speaks
// (docs/provisioner-protocol.md). It is passed as RUNNERSCALER_PROTOCOL and
// in the CreateInstance document.
const ProtocolVersion = 1

// Protocol commands, passed as RUNNERSCALER_COMMAND and GARM_COMMAND.
const (
	CmdCreateInstance     = "CreateInstance"
	CmdDeleteInstance     = "DeleteInstance"
	CmdGetInstance        = "GetInstance"
	CmdListInstances      = "ListInstances"
	CmdRemoveAllInstances = "RemoveAllInstances"
)

// ExitCodeNotFound is the exit status by which a plugin says "no such
// instance" (GARM's convention).
const ExitCodeNotFound = 30

// exitCodeDuplicate is GARM's "already exists"; only used to explain an error.
const exitCodeDuplicate = 31

// createRequest is the CreateInstance document written to the plugin's
// standard input. It holds the registration secrets as plain strings, so it is
// built, marshalled and dropped inside one function and never logged.
type createRequest struct {
	Protocol     int              `json:"protocol"`
	DaemonID     string           `json:"daemon_id"`
	Provisioner  string           `json:"provisioner"`
	RunnerName   string           `json:"runner_name"`
	Pool         string           `json:"pool"`
	Labels       []string         `json:"labels"`
	RunnerGroup  string           `json:"runner_group,omitempty"`
	ScopeURL     string           `json:"scope_url"`
	Registration wireRegistration `json:"registration"`
	OS           string           `json:"os,omitempty"`
	Arch         string           `json:"arch,omitempty"`
	ConfigFile   string           `json:"config_file,omitempty"`

	// The same facts under the names GARM's bootstrap document uses, so that
	// simple GARM providers find them.
	GarmName        string `json:"name"`
	GarmPoolID      string `json:"pool_id"`
	GarmRepoURL     string `json:"repo_url"`
	GarmRunnerGroup string `json:"github-runner-group,omitempty"`
	GarmOSType      string `json:"os_type,omitempty"`
}

type wireRegistration struct {
	JITConfig string `json:"jit_config,omitempty"`
	Token     string `json:"token,omitempty"`
	Ephemeral bool   `json:"ephemeral"`
}

// wireInstance is an instance as a plugin prints it. Our names come first;
// GARM's names (provider_id, name, pool_id, status, provider_fault) are
// accepted when ours are absent.
type wireInstance struct {
	ID         string        `json:"id"`
	DaemonID   string        `json:"daemon_id"`
	Pool       string        `json:"pool"`
	RunnerName string        `json:"runner_name"`
	State      string        `json:"state"`
	Addresses  []wireAddress `json:"addresses"`
	CreatedAt  string        `json:"created_at"`
	LastError  string        `json:"last_error"`

	GarmProviderID    string `json:"provider_id"`
	GarmName          string `json:"name"`
	GarmPoolID        string `json:"pool_id"`
	GarmStatus        string `json:"status"`
	GarmProviderFault string `json:"provider_fault"`
}

// wireAddress is an address as a plain string ("10.0.0.5") or as GARM's
// object ({"address": "10.0.0.5", "type": "private"}).
type wireAddress string

func (a *wireAddress) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = wireAddress(s)
		return nil
	}
	var o struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return errors.New("an address must be a string or an object with an \"address\" string")
	}
	*a = wireAddress(o.Address)
	return nil
}

// parsedInstance is a decoded plugin instance plus the ownership tag it
// carried (empty when it carried none).
type parsedInstance struct {
	provisioner.Instance
	DaemonID string
}

// decodeInstance decodes one instance document.
func decodeInstance(out []byte) (parsedInstance, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return parsedInstance{}, errors.New("no output; expected an instance as a JSON object")
	}
	var w wireInstance
	if err := json.Unmarshal(out, &w); err != nil {
		return parsedInstance{}, fmt.Errorf("output is not an instance JSON object: %w", err)
	}
	return w.toInstance()
}

// decodeInstances decodes a ListInstances document: a JSON array of instances
// (null is an empty list).
func decodeInstances(out []byte) ([]parsedInstance, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, errors.New("no output; expected a JSON array of instances (print [] when there are none)")
	}
	var ws []wireInstance
	if err := json.Unmarshal(out, &ws); err != nil {
		return nil, fmt.Errorf("output is not a JSON array of instances: %w", err)
	}
	res := make([]parsedInstance, 0, len(ws))
	for i, w := range ws {
		inst, err := w.toInstance()
		if err != nil {
			return nil, fmt.Errorf("instance [%d]: %w", i, err)
		}
		res = append(res, inst)
	}
	return res, nil
}

func (w wireInstance) toInstance() (parsedInstance, error) {
	inst := parsedInstance{DaemonID: w.DaemonID}
	inst.ID = firstNonEmpty(w.ID, w.GarmProviderID)
	if inst.ID == "" {
		return parsedInstance{}, errors.New(`missing "id"`)
	}
	inst.Pool = firstNonEmpty(w.Pool, w.GarmPoolID)
	inst.RunnerName = firstNonEmpty(w.RunnerName, w.GarmName)
	state, err := parseState(firstNonEmpty(w.State, w.GarmStatus))
	if err != nil {
		return parsedInstance{}, fmt.Errorf("instance %q: %w", inst.ID, err)
	}
	inst.State = state
	for _, a := range w.Addresses {
		if a != "" {
			inst.Addresses = append(inst.Addresses, string(a))
		}
	}
	if w.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, w.CreatedAt)
		if err != nil {
			return parsedInstance{}, fmt.Errorf("instance %q: created_at %q is not an RFC 3339 time", inst.ID, w.CreatedAt)
		}
		inst.CreatedAt = t
	}
	inst.LastError = w.LastError
	if inst.LastError == "" && w.GarmProviderFault != "" {
		inst.LastError = providerFault(w.GarmProviderFault)
	}
	return inst, nil
}

// parseState maps our states, and the statuses a GARM provider may report
// (running, stopped, error, unknown), onto provisioner.State. An empty state
// means pending.
func parseState(s string) (provisioner.State, error) {
	switch strings.ToLower(s) {
	case "", "pending", "unknown":
		return provisioner.StatePending, nil
	case "running":
		return provisioner.StateRunning, nil
	case "stopped":
		return provisioner.StateStopped, nil
	case "failed", "error":
		return provisioner.StateFailed, nil
	case "gone":
		return provisioner.StateGone, nil
	}
	return "", fmt.Errorf("unknown state %q (want pending, running, stopped, failed or gone)", s)
}

// providerFault reads GARM's provider_fault, which GARM's Go providers emit as
// base64 (it is a byte slice there) and shell providers often as plain text.
func providerFault(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return s
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return s
		}
	}
	return string(b)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
