package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML is not decoded with yaml.Unmarshal: that stops at the first type
// error, ignores unknown keys unless asked, and then reports them without a
// key path. Instead the file is parsed into a yaml.Node tree and walked
// against the Config struct by reflection, following the yaml tags, so that
// every problem is recorded with the path of the key that caused it and the
// walk carries on past it.

// nodeBudget caps how many nodes a walk visits. A few nested aliases can make
// a tiny file expand into billions of values ("billion laughs"); a real
// configuration is nowhere near this.
const nodeBudget = 100_000

type decoder struct {
	ps *problems
	// positions maps each key path found in the file to where it is, so
	// that problems found later (validation) can be listed in file order.
	positions map[string]position
	budget    int
	// expanding holds the alias targets being walked, to stop an anchor
	// that contains an alias to itself.
	expanding  map[*yaml.Node]bool
	overBudget bool
}

// decodeResult says how far decoding got.
type decodeResult int

const (
	decoded    decodeResult = iota // the file was walked; problems may remain
	notYAML                        // not well-formed YAML: nothing was decoded
	notMapping                     // YAML, but not a mapping: nothing was decoded
)

// decodeYAML walks data into cfg (which already holds the defaults).
func decodeYAML(data []byte, cfg *Config, ps *problems) (map[string]position, decodeResult) {
	positions := make(map[string]position)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return positions, decoded // an empty file: defaults only
		}
		ps.add("", "invalid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
		return positions, notYAML
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err == nil && (len(extra.Content) == 0 || isNull(extra.Content[0])):
		// A stray "---" at the end starts an empty document: harmless.
	case err != nil:
		ps.add("", "invalid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
		return positions, notYAML
	default:
		ps.addAt("", posOf(&extra), "the file holds more than one YAML document (\"---\"); keep the whole configuration in one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return positions, decoded
	}
	root := doc.Content[0]
	d := &decoder{ps: ps, positions: positions, budget: nodeBudget, expanding: make(map[*yaml.Node]bool)}
	if resolved := d.resolve(root, ""); resolved != nil && !isNull(resolved) && resolved.Kind != yaml.MappingNode {
		ps.addAt("", posOf(root), "the file must be a mapping of settings (key: value), got "+describeNode(resolved, false))
		return positions, notMapping
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	return positions, decoded
}

// decode applies node to v, which must be addressable.
func (d *decoder) decode(node *yaml.Node, v reflect.Value, path string) {
	if !d.spend(node, path) {
		return
	}
	if node = d.enter(node, path); node == nil {
		return
	}
	defer d.leave(node)
	if isNull(node) {
		return // "key:" with no value keeps the default
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := node.Decode(u); err != nil {
			d.ps.addAt(path, posOf(node), err.Error())
		}
		return
	}
	secret := containsSecret(v.Type())
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(node, v, path)
	case reflect.Slice:
		d.decodeSlice(node, v, path)
	case reflect.Map:
		d.decodeMap(node, v, path)
	case reflect.Pointer:
		fresh := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			fresh.Elem().Set(v.Elem())
		}
		d.decode(node, fresh.Elem(), path)
		v.Set(fresh)
	case reflect.Interface:
		if val := d.decodeAny(node, path); val != nil {
			v.Set(reflect.ValueOf(val))
		}
	case reflect.String:
		if node.Kind != yaml.ScalarNode {
			d.ps.addAt(path, posOf(node), "must be a string, got "+describeNode(node, secret))
			return
		}
		v.SetString(node.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(node, v, path)
	case reflect.Bool:
		var b bool
		if node.Kind != yaml.ScalarNode || node.ShortTag() != "!!bool" || node.Decode(&b) != nil {
			d.ps.addAt(path, posOf(node), "must be true or false, got "+describeNode(node, secret))
			return
		}
		v.SetBool(b)
	default:
		// Only reachable if a field of an unsupported type is added to
		// Config; fail loudly in tests rather than ignore the value.
		d.ps.addAt(path, posOf(node), fmt.Sprintf("internal error: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) decodeInt(node *yaml.Node, v reflect.Value, path string) {
	var n int64
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!float" && bigInteger.MatchString(node.Value) {
		// Too large for any integer: YAML resolved it as a float.
		node = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: node.Value, Line: node.Line, Column: node.Column}
		d.ps.addAt(path, posOf(node), rangeMessage(v, node))
		return
	}
	if node.Kind != yaml.ScalarNode || node.ShortTag() != "!!int" {
		msg := "must be an integer, got " + describeNode(node, false)
		if node.Kind == yaml.ScalarNode && node.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			if _, err := strconv.ParseInt(node.Value, 10, 64); err == nil {
				msg += " (a quoted string; remove the quotes)"
			}
		}
		d.ps.addAt(path, posOf(node), msg)
		return
	}
	if err := node.Decode(&n); err != nil || v.OverflowInt(n) {
		d.ps.addAt(path, posOf(node), rangeMessage(v, node))
		return
	}
	v.SetInt(n)
}

var bigInteger = regexp.MustCompile(`^[-+]?[0-9]+$`)

func rangeMessage(v reflect.Value, node *yaml.Node) string {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if bits := v.Type().Bits(); bits < 64 {
		lo, hi = -1<<(bits-1), 1<<(bits-1)-1
	}
	return fmt.Sprintf("must be an integer between %d and %d, got %s", lo, hi, describeNode(node, false))
}

func (d *decoder) decodeStruct(node *yaml.Node, v reflect.Value, path string) {
	if node.Kind != yaml.MappingNode {
		d.ps.addAt(path, posOf(node), "must be a mapping (key: value), got "+describeNode(node, containsSecret(v.Type())))
		return
	}
	fields := yamlFields(v.Type())
	for _, p := range d.pairs(node, path) {
		child := joinKey(path, p.key)
		idx, ok := fields.index[p.key]
		if !ok {
			d.ps.addAt(child, posOf(p.keyNode), unknownKeyMessage(child, p.key, fields.names))
			continue
		}
		d.decode(p.value, v.Field(idx), child)
	}
}

func (d *decoder) decodeSlice(node *yaml.Node, v reflect.Value, path string) {
	if node.Kind != yaml.SequenceNode {
		d.ps.addAt(path, posOf(node), "must be a list, got "+describeNode(node, containsSecret(v.Type())))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(node.Content))
	for i, item := range node.Content {
		child := fmt.Sprintf("%s[%d]", path, i)
		d.positions[child] = posOf(item)
		elem := newElem(v.Type().Elem())
		d.decode(item, elem, child)
		out = reflect.Append(out, elem)
	}
	v.Set(out)
}

func (d *decoder) decodeMap(node *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.ps.addAt(path, posOf(node), fmt.Sprintf("internal error: cannot decode into %s", v.Type()))
		return
	}
	if node.Kind != yaml.MappingNode {
		d.ps.addAt(path, posOf(node), "must be a mapping (key: value), got "+describeNode(node, containsSecret(v.Type())))
		return
	}
	out := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(node, path) {
		elem := newElem(v.Type().Elem())
		d.decode(p.value, elem, joinKey(path, p.key))
		out.SetMapIndex(reflect.ValueOf(p.key).Convert(v.Type().Key()), elem)
	}
	v.Set(out)
}

// decodeAny decodes free-form YAML (provisioner settings) into maps, slices
// and scalars, still reporting duplicate keys and bad aliases with paths.
func (d *decoder) decodeAny(node *yaml.Node, path string) any {
	if !d.spend(node, path) {
		return nil
	}
	if node = d.enter(node, path); node == nil {
		return nil
	}
	defer d.leave(node)
	switch node.Kind {
	case yaml.MappingNode:
		out := make(map[string]any)
		for _, p := range d.pairs(node, path) {
			out[p.key] = d.decodeAny(p.value, joinKey(path, p.key))
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(node.Content))
		for i, item := range node.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			d.positions[child] = posOf(item)
			out = append(out, d.decodeAny(item, child))
		}
		return out
	default:
		var val any
		if err := node.Decode(&val); err != nil {
			d.ps.addAt(path, posOf(node), "invalid value: "+strings.TrimPrefix(err.Error(), "yaml: "))
			return nil
		}
		return val
	}
}

// pair is one key/value of a mapping, after merge keys are expanded.
type pair struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
}

// pairs lists a mapping's entries: those pulled in by merge keys ("<<: *x")
// first, so the mapping's own keys override them as YAML specifies, then its
// own. Duplicate keys and keys that are not plain scalars are reported and
// dropped.
func (d *decoder) pairs(node *yaml.Node, path string) []pair {
	var merged, own []pair
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], node.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.ps.addAt(path, posOf(k), "keys must be plain strings, got "+describeNode(k, false))
			continue
		}
		child := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.ps.addAt(child, posOf(k), fmt.Sprintf("duplicate key (first set on line %d)", first.Line))
			continue
		}
		seen[k.Value] = k
		d.positions[child] = posOf(k)
		own = append(own, pair{key: k.Value, keyNode: k, value: val})
	}
	return append(merged, own...)
}

// mergeSources expands the value of a merge key: a mapping, an alias to one,
// or a list of those where earlier entries win.
func (d *decoder) mergeSources(val *yaml.Node, path string) []pair {
	target := d.resolve(val, path)
	if target == nil {
		return nil
	}
	switch target.Kind {
	case yaml.MappingNode:
		if d.expanding[target] {
			d.ps.addAt(path, posOf(val), "merge key refers to the mapping that contains it")
			return nil
		}
		d.expanding[target] = true
		defer delete(d.expanding, target)
		return d.pairs(target, path)
	case yaml.SequenceNode:
		var out []pair
		for i := len(target.Content) - 1; i >= 0; i-- {
			item := d.resolve(target.Content[i], path)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				d.ps.addAt(path, posOf(target.Content[i]), "a merge key (<<) takes mappings, got "+describeNode(item, false))
				continue
			}
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	default:
		d.ps.addAt(path, posOf(val), "a merge key (<<) takes a mapping or a list of mappings, got "+describeNode(target, false))
		return nil
	}
}

// enter resolves an alias and marks an anchored node as being walked, so
// that an alias inside it back to it is caught rather than followed forever.
// It returns nil when the node cannot be walked.
func (d *decoder) enter(node *yaml.Node, path string) *yaml.Node {
	node = d.resolve(node, path)
	if node != nil && node.Anchor != "" {
		d.expanding[node] = true
	}
	return node
}

// leave undoes enter.
func (d *decoder) leave(node *yaml.Node) {
	if node.Anchor != "" {
		delete(d.expanding, node)
	}
}

// resolve follows an alias to its target, reporting a target that is being
// expanded already (an anchor containing itself). It returns nil on failure.
func (d *decoder) resolve(node *yaml.Node, path string) *yaml.Node {
	for node != nil && node.Kind == yaml.AliasNode {
		target := node.Alias
		if target == nil {
			d.ps.addAt(path, posOf(node), "alias *"+node.Value+" has no anchor")
			return nil
		}
		if d.expanding[target] {
			d.ps.addAt(path, posOf(node), "alias *"+node.Value+" refers to a value that contains it")
			return nil
		}
		node = target
	}
	return node
}

// spend counts a visited node against the budget, reporting once when it
// runs out.
func (d *decoder) spend(node *yaml.Node, path string) bool {
	if d.budget <= 0 {
		if !d.overBudget {
			d.overBudget = true
			d.ps.addAt(path, posOf(node), fmt.Sprintf("the file expands to more than %d values through aliases; simplify it", nodeBudget))
		}
		return false
	}
	d.budget--
	return true
}

// fieldSet describes the YAML keys of a struct type.
type fieldSet struct {
	index map[string]int // key -> field index
	names []string       // keys in declaration order, for suggestions
}

func yamlFields(t reflect.Type) fieldSet {
	fs := fieldSet{index: make(map[string]int)}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		fs.index[name] = i
		fs.names = append(fs.names, name)
	}
	return fs
}

// keyHints explain keys people plausibly write that do not exist for a
// reason, where "did you mean" would not help.
var keyHints = map[string]string{
	"github.app.private_key": "the key itself is read only from the environment variable SCALER_GITHUB_APP_PRIVATE_KEY; " +
		"to read it from a file use private_key_file",
	"webhook.secret": "use secrets (a list), or the environment variable SCALER_WEBHOOK_SECRET",
}

// keySynonyms map words people naturally write to the short keys the schema
// uses, too far apart for the edit-distance suggestion to find.
var keySynonyms = map[string]string{
	"organization": "org",
	"organisation": "org",
	"repository":   "repo",
	"group":        "runner_group",
}

// unknownKeyMessage reports an unknown key, suggesting the closest known key
// when it is at most two edits away: almost always a typo.
func unknownKeyMessage(path, key string, known []string) string {
	if hint, ok := keyHints[path]; ok {
		return "unknown key (" + hint + ")"
	}
	if synonym, ok := keySynonyms[key]; ok && slices.Contains(known, synonym) {
		return fmt.Sprintf("unknown key (did you mean %q?)", synonym)
	}
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return "unknown key"
	}
	return fmt.Sprintf("unknown key (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// newElem returns an addressable new value of type t with its defaults set.
func newElem(t reflect.Type) reflect.Value {
	elem := reflect.New(t).Elem()
	if def, ok := elem.Addr().Interface().(defaulter); ok {
		def.setDefaults()
	}
	return elem
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends a mapping key to a path: "a.b", or a["odd key"] when the
// key would make the path ambiguous.
func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var secretType = reflect.TypeOf(Secret(""))

// containsSecret reports whether a value of type t may hold a Secret, in
// which case messages describe the YAML given for it without quoting it.
func containsSecret(t reflect.Type) bool {
	return containsSecretSeen(t, make(map[reflect.Type]bool))
}

func containsSecretSeen(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == secretType {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return containsSecretSeen(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if containsSecretSeen(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

func isNull(node *yaml.Node) bool {
	return node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null"
}

func posOf(node *yaml.Node) position {
	if node == nil {
		return position{}
	}
	return position{line: node.Line, column: node.Column}
}

// describeNode says what the YAML held, for "must be X, got Y" messages.
// Scalars are quoted unless the destination may be a secret.
func describeNode(node *yaml.Node, secret bool) string {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	switch node.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if secret {
			return "a scalar value"
		}
		v := node.Value
		if len(v) > 60 {
			v = v[:57] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unexpected YAML node"
}
