package transport

import (
	"regexp"
	"strings"
	"testing"
)

var paramRE = regexp.MustCompile(`\{[a-z_]+\}`)

func TestRouteTemplatesMapToThemselves(t *testing.T) {
	if len(routeTemplates) != 50 {
		t.Errorf("routes.go holds %d templates, want the spec's 50", len(routeTemplates))
	}
	seen := map[string]bool{}
	for _, tpl := range routeTemplates {
		if seen[tpl] {
			t.Errorf("duplicate template %s", tpl)
		}
		seen[tpl] = true
		n := 0
		sample := paramRE.ReplaceAllStringFunc(tpl, func(string) string {
			n++
			return "v" + strings.Repeat("9", n) // never equal to a literal segment
		})
		for _, p := range []string{sample, "/api/v3" + sample, sample + "/", sample + "?per_page=100"} {
			for _, m := range []string{"GET", "POST", "DELETE"} {
				if got, want := Route(m, p), m+" "+tpl; got != want {
					t.Errorf("Route(%s, %s) = %q, want %q", m, p, got, want)
				}
			}
		}
	}
}

func TestRoute(t *testing.T) {
	tests := []struct {
		method, path, want string
	}{
		{"POST", "/api/v3/orgs/acme/actions/runners/generate-jitconfig", "POST /orgs/{org}/actions/runners/generate-jitconfig"},
		{"GET", "/orgs/acme/actions/runners/downloads", "GET /orgs/{org}/actions/runners/downloads"},
		{"GET", "/orgs/acme/actions/runners/123", "GET /orgs/{org}/actions/runners/{runner_id}"},
		{"GET", "/orgs/downloads/actions/runners", "GET /orgs/{org}/actions/runners"},
		{"GET", "/enterprises/e/actions/runners/deprecations", "GET /enterprises/{enterprise}/actions/runners/{runner_id}"},
		{"GET", "/enterprises/e/actions/runners/deprecations/2.330.0", "GET /enterprises/{enterprise}/actions/runners/deprecations/{version}"},
		{"GET", "/enterprises/e/actions/runners/registration-token/labels", "GET /enterprises/{enterprise}/actions/runners/{runner_id}/labels"},
		{"DELETE", "/repos/o/r/actions/runners/5/labels/gpu", "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}/labels/{name}"},
		{"DELETE", "/repos/o/r/actions/runners/5/labels/a%2Fb", "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}/labels/{name}"},
		{"POST", "/app/installations/123/access_tokens", "POST /app/installations/{installation_id}/access_tokens"},
		{"GET", "/rate_limit", "GET /rate_limit"},
		{"get", "/app", "GET /app"},
		{"", "/app", "GET /app"},
		{"BREW", "/app", "OTHER /app"},
		{"GET", "/api/v3", "GET other"},
		{"GET", "/api/v3x/app", "GET other"},
		{"GET", "/users/octocat/12345", "GET other"},
		{"GET", "/orgs/acme/actions/runners/123/extra", "GET other"},
		{"GET", "/orgs//actions/runners", "GET other"},
		{"GET", "/", "GET other"},
		{"GET", "", "GET other"},
		{"GET", "orgs/acme/actions/runners", "GET other"},
	}
	for _, tc := range tests {
		if got := Route(tc.method, tc.path); got != tc.want {
			t.Errorf("Route(%q, %q) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestRetrySafe(t *testing.T) {
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/orgs/acme/actions/runners", true},
		{"GET", "/nope", true},
		{"DELETE", "/orgs/acme/actions/runners/1", true},
		{"PUT", "/orgs/acme/actions/runners/1/labels", true},
		{"PATCH", "/orgs/acme/actions/runner-groups/3", true},
		{"POST", "/orgs/acme/actions/runners/registration-token", true},
		{"POST", "/repos/o/r/actions/runners/registration-token", true},
		{"POST", "/enterprises/e/actions/runners/registration-token", true},
		{"POST", "/orgs/acme/actions/runners/remove-token", true},
		{"POST", "/repos/o/r/actions/runners/remove-token", true},
		{"POST", "/enterprises/e/actions/runners/remove-token", true},
		{"POST", "/app/installations/9/access_tokens", true},
		{"POST", "/orgs/acme/actions/runners/1/labels", true},
		{"POST", "/repos/o/r/actions/runners/1/labels", true},
		{"POST", "/enterprises/e/actions/runners/1/labels", true},
		{"POST", "/orgs/acme/actions/runners/generate-jitconfig", false},
		{"POST", "/repos/o/r/actions/runners/generate-jitconfig", false},
		{"POST", "/enterprises/e/actions/runners/generate-jitconfig", false},
		{"POST", "/orgs/acme/actions/runner-groups", false},
		{"POST", "/enterprises/e/actions/runner-groups", false},
		{"POST", "/app/hook/deliveries/77/attempts", false},
		{"POST", "/nope", false},
		{"BREW", "/app", false},
	}
	for _, tc := range tests {
		route := Route(tc.method, tc.path)
		if got := RetrySafe(route); got != tc.want {
			t.Errorf("RetrySafe(%q) = %v, want %v", route, got, tc.want)
		}
	}
	for r := range retrySafePOST {
		if !strings.HasPrefix(r, "POST ") || Route("POST", paramRE.ReplaceAllString(strings.TrimPrefix(r, "POST "), "x1")) != r {
			t.Errorf("retrySafePOST entry %q is not a route of routes.go", r)
		}
	}
}
