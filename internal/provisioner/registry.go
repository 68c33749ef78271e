package provisioner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Factory builds a provisioner from its settings (provisioners.<name>.settings).
// Settings problems are returned as *SettingsError.
type Factory func(settings map[string]any, env Env) (Provisioner, error)

// Registry maps provisioners.<name>.type to a Factory.
type Registry struct{ factories map[string]Factory }

// NewRegistry returns an empty registry; the daemon registers the kinds it has.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a kind; registering a kind twice is a programming error.
func (r *Registry) Register(kind string, f Factory) {
	if _, dup := r.factories[kind]; dup {
		panic("provisioner kind registered twice: " + kind)
	}
	r.factories[kind] = f
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.factories))
	for k := range r.factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build constructs provisioner env.Name of the given kind.
func (r *Registry) Build(kind string, settings map[string]any, env Env) (Provisioner, error) {
	f, ok := r.factories[kind]
	if !ok {
		return nil, &SettingsError{Problems: []SettingsProblem{{
			Path:    "provisioners." + env.Name + ".type",
			Message: fmt.Sprintf("unknown provisioner type %q (known: %s)", kind, strings.Join(r.Kinds(), ", ")),
		}}}
	}
	return f(settings, env)
}

// SettingsProblem is one problem with a provisioner's settings.
type SettingsProblem struct{ Path, Message string }

func (p SettingsProblem) String() string { return p.Path + ": " + p.Message }

// SettingsError lists every problem found in a provisioner's settings, each
// with its key path (provisioners.<name>.settings.<key>).
type SettingsError struct{ Problems []SettingsProblem }

func (e *SettingsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Problems collects settings problems for one provisioner.
type Problems struct {
	prefix string
	list   []SettingsProblem
}

// NewProblems starts a problem list for provisioners.<name>.settings.
func NewProblems(name string) *Problems {
	return &Problems{prefix: "provisioners." + name + ".settings"}
}

// Add records a problem at key (a path below settings, e.g. "instance_types[1]").
func (p *Problems) Add(key, format string, args ...any) {
	path := p.prefix
	if key != "" {
		path += "." + key
	}
	p.list = append(p.list, SettingsProblem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Err returns a *SettingsError, or nil when there is no problem.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &SettingsError{Problems: p.list}
}

// DecodeSettings decodes free-form settings into out (a pointer to a struct
// with json tags), refusing unknown keys and wrong types, and records each
// problem in probs with its key path. It reports whether decoding succeeded.
func DecodeSettings(settings map[string]any, out any, probs *Problems) bool {
	raw, err := json.Marshal(settings)
	if err != nil {
		probs.Add("", "cannot be read: %v", err)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		var typ *json.UnmarshalTypeError
		switch {
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			probs.Add(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown key")
		case asTypeError(err, &typ):
			probs.Add(typ.Field, "must be %s, got %s", typ.Type.String(), typ.Value)
		default:
			probs.Add("", "%v", err)
		}
		return false
	}
	return true
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = t
	}
	return ok
}
