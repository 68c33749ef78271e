package external

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// minFragment is the shortest piece of a secret cut at the edge of a captured
// excerpt that scrub still removes. Shorter pieces cannot be told apart from
// ordinary text.
const minFragment = 8

// scrub removes every occurrence of the secrets from s: verbatim, and as JSON
// string escaping would write them (a plugin echoing its input). A capture
// window may also have cut a secret at either edge of s, so a leading suffix or
// a trailing prefix of a secret of at least minFragment bytes goes as well.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, form := range secretForms(sec) {
			s = strings.ReplaceAll(s, form, secret.Redacted)
		}
		for _, form := range secretForms(sec) {
			s = scrubEdges(s, form)
		}
	}
	return s
}

// secretForms is a secret as it may appear in output: verbatim, JSON-escaped
// (Go's encoder, which also escapes <, > and &), and with "/" escaped as "\/"
// as some other encoders write it.
func secretForms(sec string) []string {
	forms := []string{sec}
	if b, err := json.Marshal(sec); err == nil {
		esc := string(b[1 : len(b)-1])
		forms = append(forms, esc, strings.ReplaceAll(esc, "/", `\/`))
	}
	return forms
}

// scrubEdges removes a suffix of sec that s starts with, and a prefix of sec
// that s ends with, when at least minFragment bytes long.
func scrubEdges(s, sec string) string {
	for n := min(len(sec)-1, len(s)); n >= minFragment; n-- {
		if strings.HasPrefix(s, sec[len(sec)-n:]) {
			s = secret.Redacted + s[n:]
			break
		}
	}
	for n := min(len(sec)-1, len(s)); n >= minFragment; n-- {
		if strings.HasSuffix(s, sec[:n]) {
			s = s[:len(s)-n] + secret.Redacted
			break
		}
	}
	return s
}

// excerpt turns captured plugin output into text fit for an error message:
// secrets scrubbed first, then invalid UTF-8 and control characters replaced,
// lines joined with " | ", and the result cut to at most max bytes, keeping
// the end (where a failing program usually says why) or the start.
func excerpt(raw []byte, secrets []string, max int, keepEnd bool) string {
	s := scrub(string(raw), secrets)
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r):
			return '?'
		}
		return r
	}, s)
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	s = strings.Join(lines, " | ")
	if len(s) <= max {
		return s
	}
	if keepEnd {
		cut := len(s) - max
		for cut < len(s) && !utf8RuneStart(s[cut]) {
			cut++
		}
		return "…" + s[cut:]
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
