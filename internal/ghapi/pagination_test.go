package ghapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

// TestListRunnersReadsEveryPage serves three pages linked by Link headers, as
// GitHub does, and expects every runner once.
func TestListRunnersReadsEveryPage(t *testing.T) {
	srv := oapitest.NewServer(t)
	page := exampleJSON(t, "/orgs/{org}/actions/runners", "get", "200").(map[string]any)
	proto := page["runners"].([]any)[0].(map[string]any)
	const pages, perPage = 3, 100
	for p := 1; p <= pages; p++ {
		var runners []any
		n := perPage
		if p == pages {
			n = 7
		}
		for i := 0; i < n; i++ {
			r := cloneJSON(t, proto)
			r["id"] = float64(p*1000 + i)
			r["name"] = fmt.Sprintf("rs-%d-%d", p, i)
			runners = append(runners, r)
		}
		body, _ := json.Marshal(map[string]any{"total_count": (pages-1)*perPage + 7, "runners": runners})
		h := http.Header{"Content-Type": {"application/json"}}
		if p < pages {
			h.Set("Link", fmt.Sprintf(`<%sorgs/acme/actions/runners?per_page=100&page=%d>; rel="next", <%sorgs/acme/actions/runners?per_page=100&page=%d>; rel="last"`,
				srv.URL, p+1, srv.URL, pages))
		}
		srv.Reply("actions/list-self-hosted-runners-for-org", oapitest.Response{Status: 200, Header: h, Body: body})
	}
	c := newPATClient(t, srv)
	got, err := c.ListRunners(context.Background(), orgScope, ghapi.ListRunnersOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 207 {
		t.Fatalf("got %d runners, want 207", len(got))
	}
	seen := map[int64]bool{}
	for _, r := range got {
		if seen[r.GetID()] {
			t.Errorf("runner %d listed twice", r.GetID())
		}
		seen[r.GetID()] = true
	}
	var pagesAsked []string
	for _, r := range srv.Requests() {
		pagesAsked = append(pagesAsked, r.Query.Get("page"))
	}
	if fmt.Sprint(pagesAsked) != "[1 2 3]" {
		t.Errorf("pages requested %v, want [1 2 3]", pagesAsked)
	}
}
