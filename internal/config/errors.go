package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the setting: a YAML key path such as
	// "pools[1].max_runners", or "env NAME" for an environment variable.
	// It is empty for problems with the file as a whole (e.g. bad YAML).
	Path string
	// Message says what is wrong and, where it can, what to do about it.
	// It never contains a secret value.
	Message string
}

// String renders the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError lists every problem found in a configuration, so that an
// operator fixes them all in one round instead of one per restart.
type ValidationError struct {
	Problems []Problem
}

// Error joins the problems, one "path: message" per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// position is a place in the YAML file (1-based, as yaml.Node reports it).
type position struct{ line, column int }

// problems collects Problems while a configuration is decoded and checked.
// Each entry may carry a position; entries without one are placed by the
// position of their nearest ancestor key when the file provides one.
type problems struct {
	list []located
}

type located struct {
	Problem
	pos position // zero when unknown
}

func (ps *problems) add(path, message string) {
	ps.list = append(ps.list, located{Problem: Problem{Path: path, Message: message}})
}

func (ps *problems) addAt(path string, pos position, message string) {
	ps.list = append(ps.list, located{Problem: Problem{Path: path, Message: message}, pos: pos})
}

func (ps *problems) empty() bool { return len(ps.list) == 0 }

// sorted returns the problems in file order: those that can be placed in the
// file first, by line and column, then the rest (environment variables,
// settings absent from the file) by path. Ties keep the order in which they
// were found, and nothing is merged: two problems at one path are both
// reported.
func (ps *problems) sorted(positions map[string]position) []Problem {
	type entry struct {
		located
		seq int
	}
	entries := make([]entry, len(ps.list))
	for i, l := range ps.list {
		if l.pos == (position{}) {
			l.pos = lookupPosition(positions, l.Path)
		}
		entries[i] = entry{located: l, seq: i}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		aKnown, bKnown := a.pos.line > 0, b.pos.line > 0
		switch {
		case aKnown && bKnown:
			if a.pos.line != b.pos.line {
				return a.pos.line < b.pos.line
			}
			if a.pos.column != b.pos.column {
				return a.pos.column < b.pos.column
			}
			return a.seq < b.seq
		case aKnown != bKnown:
			return aKnown
		default:
			if c := comparePaths(a.Path, b.Path); c != 0 {
				return c < 0
			}
			return a.seq < b.seq
		}
	})
	out := make([]Problem, len(entries))
	for i, e := range entries {
		out[i] = e.Problem
	}
	return out
}

// err returns nil when there are no problems, else a *ValidationError.
func (ps *problems) err(positions map[string]position) error {
	if ps.empty() {
		return nil
	}
	return &ValidationError{Problems: ps.sorted(positions)}
}

// lookupPosition finds the position of path, or of its closest ancestor that
// appears in the file: a problem with a missing key is shown where the
// enclosing section is.
func lookupPosition(positions map[string]position, path string) position {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := positions[p]; ok {
			return pos
		}
	}
	return position{}
}

// parentPath strips the last segment of a key path: "a.b[2]" -> "a.b",
// "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
		return ""
	}
	depth := 0
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case ']':
			depth++
		case '[':
			depth--
		case '.':
			if depth == 0 {
				return p[:i]
			}
		}
	}
	return ""
}

// comparePaths orders paths naturally, so that "pools[2]" sorts before
// "pools[10]".
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		ca, ra := leadingChunk(a)
		cb, rb := leadingChunk(b)
		if ca != cb {
			na, errA := strconv.Atoi(ca)
			nb, errB := strconv.Atoi(cb)
			if errA == nil && errB == nil && na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			return strings.Compare(ca, cb)
		}
		a, b = ra, rb
	}
	switch {
	case a == b:
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

// leadingChunk splits s into its leading run of digits or of non-digits and
// the rest.
func leadingChunk(s string) (chunk, rest string) {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}
