package ghsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Request bodies are validated strictly against the shapes GitHub's OpenAPI
// description gives them: a JSON object, required fields present, every
// known field of the right type (integers without a fraction, arrays of the
// right item type, enums, item counts). Unknown fields are ignored, as
// GitHub ignores them (the schemas allow additional properties). A body
// that is not JSON is 400 "Problems parsing JSON"; one that breaks the
// schema is 422 with GitHub's "Invalid request." message.

// maxBodyBytes bounds what a request body may hold.
const maxBodyBytes = 1 << 20

type fieldType int

const (
	fString fieldType = iota
	fInt
	fBool
	fObject
	fStrings // array of strings
	fInts    // array of integers
)

func (t fieldType) String() string {
	switch t {
	case fString:
		return "a string"
	case fInt:
		return "an integer"
	case fBool:
		return "a boolean"
	case fObject:
		return "an object"
	}
	return "an array"
}

// field describes one property of a request body.
type field struct {
	name     string
	typ      fieldType
	required bool
	nullable bool
	enum     []string
	minItems int
	maxItems int // 0: no maximum
}

// body is a decoded, validated request body: numbers are json.Number.
type body map[string]any

// bodyError is a refused body: status 400 or 422 and GitHub's message.
type bodyError struct {
	status  int
	message string
}

func (e *bodyError) Error() string { return e.message }

// decodeBody reads and validates the request body against fields. An empty
// body is an empty object.
func decodeBody(r *http.Request, fields []field) (body, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, &bodyError{http.StatusBadRequest, "Problems parsing JSON"}
	}
	if len(raw) > maxBodyBytes {
		return nil, &bodyError{http.StatusRequestEntityTooLarge, "Request body too large"}
	}
	b := body{}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, &bodyError{http.StatusBadRequest, "Problems parsing JSON"}
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, &bodyError{http.StatusBadRequest, "Problems parsing JSON"}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("Invalid input: the request body must be a JSON object.")
		}
		b = obj
	}
	for _, f := range fields {
		v, present := b[f.name]
		if !present {
			if f.required {
				return nil, invalid(fmt.Sprintf("%q wasn't supplied.", f.name))
			}
			continue
		}
		if err := f.check(v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func invalid(detail string) *bodyError {
	return &bodyError{http.StatusUnprocessableEntity, "Invalid request.\n\n" + detail}
}

func (f field) check(v any) error {
	bad := func(what string) error {
		shown, _ := json.Marshal(v)
		if len(shown) > 80 {
			shown = append(shown[:77:77], "..."...)
		}
		return invalid(fmt.Sprintf("For 'properties/%s', %s %s.", f.name, shown, what))
	}
	if v == nil {
		if f.nullable {
			return nil
		}
		return bad("is not " + f.typ.String())
	}
	switch f.typ {
	case fString:
		s, ok := v.(string)
		if !ok {
			return bad("is not a string")
		}
		if len(f.enum) > 0 && !slices.Contains(f.enum, s) {
			return bad("is not a member of [" + strings.Join(f.enum, ", ") + "]")
		}
	case fInt:
		if !isInt(v) {
			return bad("is not an integer")
		}
	case fBool:
		if _, ok := v.(bool); !ok {
			return bad("is not a boolean")
		}
	case fObject:
		if _, ok := v.(map[string]any); !ok {
			return bad("is not an object")
		}
	case fStrings, fInts:
		items, ok := v.([]any)
		if !ok {
			return bad("is not an array")
		}
		for _, it := range items {
			if f.typ == fStrings {
				if _, ok := it.(string); !ok {
					return bad("is not an array of strings")
				}
			} else if !isInt(it) {
				return bad("is not an array of integers")
			}
		}
		if len(items) < f.minItems {
			return bad(fmt.Sprintf("has fewer than %d items", f.minItems))
		}
		if f.maxItems > 0 && len(items) > f.maxItems {
			return bad(fmt.Sprintf("has more than %d items", f.maxItems))
		}
	}
	return nil
}

func isInt(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	_, err := n.Int64()
	return err == nil
}

// str returns a string field ("" when absent or null).
func (b body) str(name string) string {
	s, _ := b[name].(string)
	return s
}

// int64 returns an integer field (0 when absent).
func (b body) int64(name string) int64 {
	n, _ := b[name].(json.Number)
	v, _ := n.Int64()
	return v
}

// boolPtr returns a boolean field, nil when absent.
func (b body) boolPtr(name string) *bool {
	v, ok := b[name].(bool)
	if !ok {
		return nil
	}
	return &v
}

// strings returns an array of strings, nil when absent (non-nil when empty).
func (b body) strings(name string) []string {
	items, ok := b[name].([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, _ := it.(string)
		out = append(out, s)
	}
	return out
}

// ints returns an array of integers, nil when absent (non-nil when empty).
func (b body) ints(name string) []int64 {
	items, ok := b[name].([]any)
	if !ok {
		return nil
	}
	out := make([]int64, 0, len(items))
	for _, it := range items {
		n, _ := it.(json.Number)
		v, _ := n.Int64()
		out = append(out, v)
	}
	return out
}
