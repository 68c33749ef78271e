package ghsim

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Page-numbered pagination as GitHub does it: per_page (default 30, at most
// 100) and page (from 1); a Link header with prev/next/last/first when there
// is more than one page; total_count in the body is always the full count.

const (
	defaultPerPage = 30
	maxPerPage     = 100
)

// pageParams reads per_page and page; values that are not positive numbers
// fall back to the defaults, as on GitHub.
func (c *call) pageParams() (page, perPage int) {
	q := c.r.URL.Query()
	perPage = defaultPerPage
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, maxPerPage)
	}
	page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	return page, perPage
}

// paginate returns the requested page of all and the Link header for it ("" when
// everything fits on one page).
func paginate[T any](c *call, all []T) ([]T, string) {
	page, per := c.pageParams()
	total := len(all)
	last := (total + per - 1) / per
	if last < 1 {
		last = 1
	}
	start := (page - 1) * per
	var out []T
	if start < total {
		out = all[start:min(start+per, total)]
	}
	if out == nil {
		out = []T{}
	}
	return out, c.pageLinks(page, per, last)
}

// pageLinks builds the Link header: the request's own URL (prefix, path and
// other query parameters kept) with page and per_page set.
func (c *call) pageLinks(page, per, last int) string {
	if last <= 1 && page <= 1 {
		return ""
	}
	link := func(p int, rel string) string {
		q := c.r.URL.Query()
		q.Set("per_page", strconv.Itoa(per))
		q.Set("page", strconv.Itoa(p))
		return "<" + c.apiURL(c.r.URL.Path) + "?" + q.Encode() + `>; rel="` + rel + `"`
	}
	var parts []string
	if page > 1 {
		parts = append(parts, link(min(page-1, last), "prev"))
	}
	if page < last {
		parts = append(parts, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		parts = append(parts, link(1, "first"))
	}
	return strings.Join(parts, ", ")
}

// etagOf is a weak validator of a response body, as GitHub sends for lists.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `W/"` + hex.EncodeToString(sum[:16]) + `"`
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 prescribes for If-None-Match).
func etagMatches(ifNoneMatch, etag string) bool {
	if ifNoneMatch == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, v := range strings.Split(ifNoneMatch, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.TrimPrefix(v, "W/") == want {
			return true
		}
	}
	return false
}
