package ghsim

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

func TestRESTAuth(t *testing.T) {
	h := newRESTSim(t, nil)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(key *rsa.PrivateKey, m jwt.SigningMethod, adjust func(jwt.MapClaims)) string {
		now := h.clock.Now()
		claims := jwt.MapClaims{"iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(2 * time.Minute).Unix(), "iss": strconv.Itoa(restAppID)}
		if adjust != nil {
			adjust(claims)
		}
		var signKey any = key
		if m == jwt.SigningMethodHS256 {
			signKey = []byte("secret")
		}
		s, err := jwt.NewWithClaims(m, claims).SignedString(signKey)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	restKey, _ := restTestKey(t)
	orgTok, entTok := h.token("octo-org"), h.token("")

	cases := []struct {
		name, method, path, auth string
		status                   int
		message                  string
	}{
		{"no credentials", "GET", "orgs/octo-org/actions/runners", "", 401, "Requires authentication"},
		{"unknown token", "GET", "orgs/octo-org/actions/runners", "token ghs_nope", 401, "Bad credentials"},
		{"unknown scheme", "GET", "orgs/octo-org/actions/runners", "Basic " + restPAT, 401, "Bad credentials"},
		{"PAT as token", "GET", "orgs/octo-org/actions/runners", "token " + restPAT, 200, ""},
		{"PAT as bearer", "GET", "orgs/octo-org/actions/runners", "Bearer " + restPAT, 200, ""},
		{"PAT on /app", "GET", "app", "token " + restPAT, 401, "A JSON web token could not be decoded"},
		{"installation token on /app", "GET", "app/installations", orgTok, 401, "A JSON web token could not be decoded"},
		{"JWT on /app", "GET", "app", h.jwt(nil), 200, ""},
		{"JWT of another key", "GET", "app", signWith(otherKey, jwt.SigningMethodRS256, nil), 401, "A JSON web token could not be decoded"},
		{"JWT signed HS256", "GET", "app", signWith(nil, jwt.SigningMethodHS256, nil), 401, "A JSON web token could not be decoded"},
		{"JWT of another app", "GET", "app", h.jwt(func(c jwt.MapClaims) { c["iss"] = "999" }), 401, "'Issuer' claim"},
		{"JWT with numeric issuer", "GET", "app", h.jwt(func(c jwt.MapClaims) { c["iss"] = restAppID }), 200, ""},
		{"JWT expired", "GET", "app", h.jwt(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = h.clock.Now().Add(-15*time.Minute).Unix(), h.clock.Now().Add(-5*time.Minute).Unix()
		}), 401, "'Expiration time' claim"},
		{"JWT living too long", "GET", "app", h.jwt(func(c jwt.MapClaims) { c["exp"] = h.clock.Now().Add(30 * time.Minute).Unix() }), 401, "too far in the future"},
		{"JWT issued long ago", "GET", "app", h.jwt(func(c jwt.MapClaims) { c["iat"] = h.clock.Now().Add(-time.Hour).Unix() }), 401, "too far in the future"},
		{"JWT issued in the future", "GET", "app", h.jwt(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = h.clock.Now().Add(5*time.Minute).Unix(), h.clock.Now().Add(6*time.Minute).Unix()
		}), 401, "'Issued at' claim"},
		{"JWT without exp", "GET", "app", h.jwt(func(c jwt.MapClaims) { delete(c, "exp") }), 401, "'Expiration time' claim"},
		{"JWT on an installation route", "GET", "orgs/octo-org/actions/runners", signWith(restKey, jwt.SigningMethodRS256, nil), 403, "Resource not accessible by integration"},
		{"JWT on rate_limit", "GET", "rate_limit", h.jwt(nil), 200, ""},
		{"org token on its org", "GET", "orgs/octo-org/actions/runners", orgTok, 200, ""},
		{"org token on its repo", "GET", "repos/octo-org/app/actions/runners", orgTok, 200, ""},
		{"org token on another org", "GET", "orgs/octo-labs/actions/runners", orgTok, 403, "Resource not accessible by integration"},
		{"org token on another org's repo", "GET", "repos/octo-labs/ml/actions/runners", orgTok, 403, "Resource not accessible by integration"},
		{"org token on the enterprise", "GET", "enterprises/octo-ent/actions/runners", orgTok, 403, "Resource not accessible by integration"},
		{"org token on an unknown org", "GET", "orgs/ghost/actions/runners", orgTok, 403, "Resource not accessible by integration"},
		{"PAT on an unknown org", "GET", "orgs/ghost/actions/runners", h.pat(), 404, "Not Found"},
		{"enterprise token on the enterprise", "GET", "enterprises/octo-ent/actions/runner-groups", entTok, 200, ""},
		{"enterprise token on an org", "GET", "orgs/octo-org/actions/runners", entTok, 403, "Resource not accessible by integration"},
		{"token for an unknown installation", "POST", "app/installations/42/access_tokens", h.jwt(nil), 404, "Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, tc.auth, "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.message != "" && !strings.Contains(r.message(t), tc.message) {
				t.Errorf("message %q, want it to contain %q", r.message(t), tc.message)
			}
			if r.header.Get("X-RateLimit-Limit") == "" || r.header.Get("X-GitHub-Request-Id") == "" {
				t.Errorf("missing standard headers: %v", r.header)
			}
			if tc.status == 401 && r.header.Get("X-RateLimit-Limit") != "60" {
				t.Errorf("401 reports limit %s, want the anonymous 60", r.header.Get("X-RateLimit-Limit"))
			}
		})
	}

	t.Run("installation token shape and expiry", func(t *testing.T) {
		r := h.do("POST", "app/installations/"+strconv.FormatInt(h.installationID("octo-org"), 10)+"/access_tokens", h.jwt(nil), "")
		if r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		body := r.object(t)
		tok, _ := body["token"].(string)
		if !regexp.MustCompile(`^ghs_[A-Za-z0-9]{36}$`).MatchString(tok) {
			t.Errorf("token %q is not shaped like ghs_ + 36 characters", tok)
		}
		exp, err := time.Parse(time.RFC3339, body["expires_at"].(string))
		if err != nil || exp.Sub(h.clock.Now()) < 59*time.Minute || exp.Sub(h.clock.Now()) > time.Hour {
			t.Errorf("expires_at %v (%v), want in an hour", body["expires_at"], err)
		}
		if r := h.do("GET", "orgs/octo-org/actions/runners", "token "+tok, ""); r.status != 200 {
			t.Errorf("fresh token: %d", r.status)
		}
		h.clock.Advance(time.Hour + time.Second)
		if r := h.do("GET", "orgs/octo-org/actions/runners", "token "+tok, ""); r.status != 401 {
			t.Errorf("expired token: %d, want 401", r.status)
		}
	})
}

func TestRESTStatusCodes(t *testing.T) {
	h := newRESTSim(t, nil)
	pat := h.pat()
	id := h.jit("orgs/octo-org", "r-1", "self-hosted", "linux")
	rid := strconv.FormatInt(id, 10)
	hundredOne := make([]string, 101)
	for i := range hundredOne {
		hundredOne[i] = "l" + strconv.Itoa(i)
	}
	many, _ := json.Marshal(hundredOne)
	jobs, err := h.s.World().CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"nothing-matches"}})
	if err != nil {
		t.Fatal(err)
	}
	job := strconv.FormatInt(jobs[0], 10)

	cases := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"unknown route", "GET", "orgs/octo-org/nothing", "", 404, "Not Found"},
		{"unknown method", "PATCH", "orgs/octo-org/actions/runners", "", 404, "Not Found"},
		{"unknown runner", "GET", "orgs/octo-org/actions/runners/999", "", 404, "Not Found"},
		{"runner of another scope", "GET", "orgs/octo-labs/actions/runners/" + rid, "", 404, "Not Found"},
		{"runner id not a number", "GET", "orgs/octo-org/actions/runners/abc", "", 404, "Not Found"},
		{"delete unknown runner", "DELETE", "repos/octo-org/app/actions/runners/999", "", 404, "Not Found"},
		{"unknown group", "GET", "orgs/octo-org/actions/runner-groups/999", "", 404, "Not Found"},
		{"unknown enterprise group", "DELETE", "enterprises/octo-ent/actions/runner-groups/999", "", 404, "Not Found"},
		{"unknown label", "DELETE", "orgs/octo-org/actions/runners/" + rid + "/labels/nolabel", "", 404, "Not Found"},
		{"labels of unknown runner", "GET", "enterprises/octo-ent/actions/runners/999/labels", "", 404, "Not Found"},
		{"unknown org", "GET", "orgs/ghost/actions/runner-groups", "", 404, "Not Found"},
		{"unknown repo", "GET", "repos/octo-org/ghost/actions/runners", "", 404, "Not Found"},
		{"unknown enterprise", "GET", "enterprises/ghost/actions/runners", "", 404, "Not Found"},
		{"job of another repo", "GET", "repos/octo-org/website/actions/jobs/" + job, "", 404, "Not Found"},
		{"job of its repo", "GET", "repos/octo-org/app/actions/jobs/" + job, "", 200, ""},
		{"duplicate JIT name", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-1","runner_group_id":1,"labels":["x"]}`, 409, "Already exists"},
		{"JIT in unknown group", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":77,"labels":["x"]}`, 404, "Not Found"},
		{"JIT without labels", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":1,"labels":[]}`, 422, "fewer than 1 items"},
		{"JIT with 101 labels", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":1,"labels":` + string(many) + `}`, 422, "more than 100 items"},
		{"JIT labels not an array", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":1,"labels":"x"}`, 422, "is not an array"},
		{"JIT label not a string", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":1,"labels":[1]}`, 422, "is not an array of strings"},
		{"JIT group id a string", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":"1","labels":["x"]}`, 422, "is not an integer"},
		{"JIT group id a fraction", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","runner_group_id":1.5,"labels":["x"]}`, 422, "is not an integer"},
		{"JIT name a number", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":5,"runner_group_id":1,"labels":["x"]}`, 422, "is not a string"},
		{"JIT name null", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":null,"runner_group_id":1,"labels":["x"]}`, 422, "is not a string"},
		{"JIT without name", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"runner_group_id":1,"labels":["x"]}`, 422, `"name" wasn't supplied`},
		{"JIT without group", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"r-2","labels":["x"]}`, 422, `"runner_group_id" wasn't supplied`},
		{"JIT with empty name", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":"","runner_group_id":1,"labels":["x"]}`, 422, "Validation Failed"},
		{"JIT body an array", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `[]`, 422, "must be a JSON object"},
		{"JIT body not JSON", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{"name":`, 400, "Problems parsing JSON"},
		{"JIT body with trailing data", "POST", "orgs/octo-org/actions/runners/generate-jitconfig", `{} {}`, 400, "Problems parsing JSON"},
		{"add no labels", "POST", "orgs/octo-org/actions/runners/" + rid + "/labels", `{"labels":[]}`, 422, "fewer than 1 items"},
		{"set labels missing", "PUT", "orgs/octo-org/actions/runners/" + rid + "/labels", `{}`, 422, `"labels" wasn't supplied`},
		{"remove read-only label", "DELETE", "orgs/octo-org/actions/runners/" + rid + "/labels/self-hosted", "", 422, "read-only"},
		{"group with bad visibility", "POST", "orgs/octo-org/actions/runner-groups", `{"name":"g","visibility":"bogus"}`, 422, "is not a member of"},
		{"enterprise group private", "POST", "enterprises/octo-ent/actions/runner-groups", `{"name":"g","visibility":"private"}`, 422, "is not a member of"},
		{"group without name", "POST", "orgs/octo-org/actions/runner-groups", `{"visibility":"all"}`, 422, `"name" wasn't supplied`},
		{"group with a taken name", "POST", "orgs/octo-org/actions/runner-groups", `{"name":"default"}`, 409, "Already exists"},
		{"org group update without name", "PATCH", "orgs/octo-org/actions/runner-groups/1", `{"visibility":"all"}`, 422, `"name" wasn't supplied`},
		{"delete the Default group", "DELETE", "orgs/octo-org/actions/runner-groups/1", "", 422, "Default"},
		{"set group runners not ints", "PUT", "orgs/octo-org/actions/runner-groups/1/runners", `{"runners":["a"]}`, 422, "array of integers"},
		{"group repo of another org", "PUT", "orgs/octo-org/actions/runner-groups/1/repositories/1", "", 404, "Not Found"},
		{"redeliver unknown delivery", "POST", "app/hook/deliveries/999/attempts", "", 404, "Not Found"},
		{"deliveries with a bad status", "GET", "app/hook/deliveries?status=bogus", "", 422, "Validation Failed"},
		{"deliveries with a bad cursor", "GET", "app/hook/deliveries?cursor=bogus", "", 422, "Validation Failed"},
		{"unknown org installation", "GET", "orgs/ghost/installation", "", 404, "Not Found"},
		{"unknown repo installation", "GET", "repos/octo-org/ghost/installation", "", 404, "Not Found"},
		{"token for foreign repositories", "POST", "app/installations/" + strconv.FormatInt(h.installationID("octo-org"), 10) + "/access_tokens", `{"repositories":["ml"]}`, 422, "not accessible"},
		{"token permissions not an object", "POST", "app/installations/" + strconv.FormatInt(h.installationID("octo-org"), 10) + "/access_tokens", `{"permissions":"all"}`, 422, "is not an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			auth := pat
			if strings.HasPrefix(tc.path, "app") || strings.HasSuffix(tc.path, "/installation") {
				auth = h.jwt(nil)
			}
			r := h.do(tc.method, tc.path, auth, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.message == "" {
				return
			}
			if !strings.Contains(r.message(t), tc.message) {
				t.Errorf("message %q, want it to contain %q", r.message(t), tc.message)
			}
			if docs, _ := r.object(t)["documentation_url"].(string); !strings.HasPrefix(docs, "https://docs.github.com/") {
				t.Errorf("documentation_url %q", docs)
			}
			if st, _ := r.object(t)["status"].(string); st != strconv.Itoa(tc.status) {
				t.Errorf("status field %q", st)
			}
		})
	}
	// Nothing was registered by the refused JIT requests.
	if rs := h.s.World().Runners(world.Scope{Kind: world.Org, Name: "octo-org"}); len(rs) != 1 {
		t.Errorf("%d runners after refused registrations, want 1", len(rs))
	}
}

func TestRESTJITRunner(t *testing.T) {
	h := newRESTSim(t, nil)
	r := h.do("POST", "repos/octo-org/app/actions/runners/generate-jitconfig", h.pat(),
		`{"name":"win-1","runner_group_id":1,"labels":["Windows","ARM64","gpu"],"work_folder":"_w","unknown":"ignored"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var out struct {
		Runner  runnerJSON `json:"runner"`
		Encoded string     `json:"encoded_jit_config"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range out.Runner.Labels {
		names = append(names, l.Name+"/"+l.Type)
	}
	if got := strings.Join(names, ","); got != "self-hosted/read-only,Windows/read-only,ARM64/read-only,gpu/custom" {
		t.Errorf("labels %s", got)
	}
	if out.Runner.OS != "Windows" || out.Runner.Status != "offline" || !out.Runner.Ephemeral || out.Runner.Busy || out.Runner.RunnerGroupID != nil {
		t.Errorf("runner %+v", out.Runner)
	}
	if out.Encoded == "" {
		t.Errorf("no encoded_jit_config")
	}
	rn, ok := h.s.World().RunnerByID(out.Runner.ID)
	if !ok || !rn.JIT || !rn.Ephemeral {
		t.Errorf("world runner %+v", rn)
	}
}

func TestRESTBusyRunner(t *testing.T) {
	h := newRESTSim(t, nil)
	w := h.s.World()
	id := h.jit("orgs/octo-org", "busy-1", "self-hosted", "linux")
	if err := w.RunnerOnline(id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "linux"}}); err != nil {
		t.Fatal(err)
	}
	path := "orgs/octo-org/actions/runners/" + strconv.FormatInt(id, 10)
	busy := func() bool {
		t.Helper()
		r := h.do("GET", path, h.pat(), "")
		b, _ := r.object(t)["busy"].(bool)
		l := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
		var list runnerListJSON
		_ = json.Unmarshal(l.body, &list)
		if len(list.Runners) != 1 || list.Runners[0].Busy != b {
			t.Errorf("list and get disagree on busy: %s", l.body)
		}
		return b
	}
	if !busy() {
		t.Fatalf("runner running a job reads busy=false without a lag")
	}
	r := h.do("DELETE", path, h.pat(), "")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.message(t), "still running a job") {
		t.Fatalf("delete of a busy runner: %d %s", r.status, r.body)
	}
	if v := w.Violations(); v.BusyRunnerDeleted != 0 {
		t.Errorf("refused delete counted a violation: %+v", v)
	}

	// GitHub's trap: within the lag the runner reads idle and a delete goes through.
	w.SetBusyLag(time.Hour)
	if busy() {
		t.Errorf("runner reads busy within the busy lag")
	}
	if r := h.do("DELETE", path, h.pat(), ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("delete within the busy lag: %d %s", r.status, r.body)
	}
	if v := w.Violations(); v.BusyRunnerDeleted != 1 {
		t.Errorf("violations %+v, want one busy runner deleted", v)
	}
}

// restLinks parses a Link header into rel -> URL.
func restLinks(h string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(h, ",") {
		segs := strings.Split(strings.TrimSpace(part), ";")
		if len(segs) < 2 {
			continue
		}
		u := strings.Trim(strings.TrimSpace(segs[0]), "<>")
		rel := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(segs[1]), `rel="`), `"`)
		out[rel] = u
	}
	return out
}

func TestRESTPagination(t *testing.T) {
	h := newRESTSim(t, nil)
	var want []int64
	for i := 0; i < 7; i++ {
		want = append(want, h.jit("orgs/octo-org", "page-"+strconv.Itoa(i), "self-hosted"))
	}
	for _, prefix := range []string{"", "api/v3/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			var got []int64
			url := prefix + "orgs/octo-org/actions/runners?per_page=3"
			for page := 1; ; page++ {
				r := h.do("GET", url, h.pat(), "")
				if r.status != 200 {
					t.Fatalf("page %d: %d %s", page, r.status, r.body)
				}
				var list runnerListJSON
				if err := json.Unmarshal(r.body, &list); err != nil {
					t.Fatal(err)
				}
				if list.TotalCount != 7 {
					t.Errorf("page %d: total_count %d, want 7", page, list.TotalCount)
				}
				for _, rn := range list.Runners {
					got = append(got, rn.ID)
				}
				links := restLinks(r.header.Get("Link"))
				for rel, u := range links {
					if !strings.HasPrefix(u, h.base+prefix+"orgs/octo-org/actions/runners?") || !strings.Contains(u, "per_page=3") {
						t.Errorf("page %d: %s link %q not under %s", page, rel, u, h.base+prefix)
					}
				}
				wantRels := map[int][]string{1: {"next", "last"}, 2: {"prev", "next", "last", "first"}, 3: {"prev", "first"}}[page]
				if len(links) != len(wantRels) {
					t.Errorf("page %d: links %v, want %v", page, links, wantRels)
				}
				for _, rel := range wantRels {
					if links[rel] == "" {
						t.Errorf("page %d: no %s link in %q", page, rel, r.header.Get("Link"))
					}
				}
				if page == 1 && !strings.Contains(links["last"], "page=3") {
					t.Errorf("last link %q, want page=3", links["last"])
				}
				next := links["next"]
				if next == "" {
					if page != 3 {
						t.Errorf("no next link on page %d", page)
					}
					break
				}
				if page > 3 {
					t.Fatalf("more than 3 pages")
				}
				url = strings.TrimPrefix(next, h.base)
			}
			if len(got) != 7 {
				t.Fatalf("walked %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("walked %v, want %v", got, want)
					break
				}
			}
		})
	}
	t.Run("per_page capped at 100, page beyond the end", func(t *testing.T) {
		r := h.do("GET", "orgs/octo-org/actions/runners?per_page=1000", h.pat(), "")
		var list runnerListJSON
		_ = json.Unmarshal(r.body, &list)
		if len(list.Runners) != 7 || r.header.Get("Link") != "" {
			t.Errorf("per_page=1000: %d runners, Link %q", len(list.Runners), r.header.Get("Link"))
		}
		r = h.do("GET", "orgs/octo-org/actions/runners?per_page=5&page=9", h.pat(), "")
		list = runnerListJSON{}
		_ = json.Unmarshal(r.body, &list)
		if r.status != 200 || list.TotalCount != 7 || len(list.Runners) != 0 || list.Runners == nil {
			t.Errorf("page 9: %d %s", r.status, r.body)
		}
		if links := restLinks(r.header.Get("Link")); links["prev"] == "" || links["first"] == "" || links["next"] != "" {
			t.Errorf("page 9 links %v", links)
		}
	})
	t.Run("default per_page is 30", func(t *testing.T) {
		for i := 7; i < 31; i++ {
			h.jit("orgs/octo-org", "page-"+strconv.Itoa(i), "self-hosted")
		}
		r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
		var list runnerListJSON
		_ = json.Unmarshal(r.body, &list)
		if len(list.Runners) != 30 || list.TotalCount != 31 || restLinks(r.header.Get("Link"))["next"] == "" {
			t.Errorf("default page: %d of %d, Link %q", len(list.Runners), list.TotalCount, r.header.Get("Link"))
		}
	})
}

func TestRESTETag(t *testing.T) {
	h := newRESTSim(t, nil)
	const list = "orgs/octo-org/actions/runners"
	route := "GET /orgs/{org}/actions/runners"
	first := h.do("GET", list, h.pat(), "")
	etag := first.header.Get("ETag")
	if first.status != 200 || !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("first: %d, ETag %q", first.status, etag)
	}
	again := h.do("GET", list, h.pat(), "", "If-None-Match", etag)
	if again.status != http.StatusNotModified || len(again.body) != 0 || again.header.Get("ETag") != etag {
		t.Fatalf("conditional: %d %q ETag %q", again.status, again.body, again.header.Get("ETag"))
	}
	if again.remaining() != first.remaining() {
		t.Errorf("304 was charged: remaining %d after, %d before", again.remaining(), first.remaining())
	}
	if n := h.s.Stats().APICalls[route]; n != 2 {
		t.Errorf("stats count %d requests on %s, want 2 (a 304 is still a call)", n, route)
	}
	// A list that changed answers in full, with a new tag, and is charged.
	id := h.jit("orgs/octo-org", "etag-1", "self-hosted")
	changed := h.do("GET", list, h.pat(), "", "If-None-Match", etag)
	if changed.status != 200 || changed.header.Get("ETag") == etag {
		t.Errorf("changed list: %d, ETag %q", changed.status, changed.header.Get("ETag"))
	}
	if changed.remaining() != first.remaining()-2 { // the JIT call and this one
		t.Errorf("remaining %d, want %d", changed.remaining(), first.remaining()-2)
	}
	// Single objects carry tags too; a list of tags and weak/strong forms match.
	one := "orgs/octo-org/actions/runners/" + strconv.FormatInt(id, 10)
	r := h.do("GET", one, h.pat(), "")
	tag := r.header.Get("ETag")
	strong := strings.TrimPrefix(tag, "W/")
	if r := h.do("GET", one, h.pat(), "", "If-None-Match", `"other", `+strong); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match with a list: %d", r.status)
	}
	// Writes carry no ETag.
	if r := h.do("POST", "orgs/octo-org/actions/runners/registration-token", h.pat(), ""); r.header.Get("ETag") != "" {
		t.Errorf("POST answered with an ETag")
	}
}

func TestRESTRateLimit(t *testing.T) {
	h := newRESTSim(t, func(o *Options) { o.RateLimit = 3 })
	start := h.clock.Now()
	for i, want := range []int{2, 1, 0} {
		r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
		if r.status != 200 || r.remaining() != want {
			t.Fatalf("request %d: %d, remaining %d, want %d", i+1, r.status, r.remaining(), want)
		}
		if r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Used") != strconv.Itoa(3-want) ||
			r.header.Get("X-RateLimit-Resource") != "core" {
			t.Errorf("headers %v", r.header)
		}
		reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
		if d := time.Unix(reset, 0).Sub(start); d < 59*time.Minute || d > time.Hour+time.Minute {
			t.Errorf("reset %d is %v after the first request, want an hour", reset, d)
		}
	}
	r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
	if r.status != http.StatusForbidden || r.remaining() != 0 || !strings.Contains(r.message(t), "API rate limit exceeded") {
		t.Fatalf("exhausted: %d remaining %d: %s", r.status, r.remaining(), r.body)
	}
	if r := h.do("POST", "orgs/octo-org/actions/runners/generate-jitconfig", h.pat(), `{"name":"x","runner_group_id":1,"labels":["a"]}`); r.status != 403 {
		t.Errorf("a write past the limit: %d", r.status)
	}
	if len(h.s.World().Runners(world.Scope{})) != 0 {
		t.Errorf("a refused request changed the world")
	}

	// GET /rate_limit is free and tells the truth.
	for i := 0; i < 2; i++ {
		r := h.do("GET", "rate_limit", h.pat(), "")
		if r.status != 200 || r.remaining() != 0 {
			t.Fatalf("rate_limit: %d remaining %d", r.status, r.remaining())
		}
		var body struct {
			Resources map[string]rateJSON `json:"resources"`
			Rate      rateJSON            `json:"rate"`
		}
		_ = json.Unmarshal(r.body, &body)
		if c := body.Resources["core"]; c.Limit != 3 || c.Remaining != 0 || c.Used != 3 || body.Rate != c {
			t.Errorf("rate_limit body %s", r.body)
		}
		if _, ok := body.Resources["search"]; !ok {
			t.Errorf("rate_limit without search: %s", r.body)
		}
	}

	// Budgets are per installation: another credential is unaffected.
	tok := h.token("octo-org")
	if r := h.do("GET", "orgs/octo-org/actions/runners", tok, ""); r.status != 200 || r.remaining() != 2 {
		t.Errorf("installation token: %d remaining %d, want 200 with 2", r.status, r.remaining())
	}

	// The window ends an hour after the first request.
	h.clock.Advance(time.Hour + time.Second)
	if r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r.status != 200 || r.remaining() != 2 {
		t.Errorf("after the reset: %d remaining %d", r.status, r.remaining())
	}
}

func TestRESTJITBudget(t *testing.T) {
	h := newRESTSim(t, func(o *Options) { o.JITBudget = 2 })
	jit := func(name, auth string) restResp {
		return h.do("POST", "orgs/octo-org/actions/runners/generate-jitconfig", auth, `{"name":"`+name+`","runner_group_id":1,"labels":["a"]}`)
	}
	for i := 0; i < 2; i++ {
		if r := jit("j"+strconv.Itoa(i), h.pat()); r.status != 201 {
			t.Fatalf("jit %d: %d %s", i, r.status, r.body)
		}
	}
	r := jit("j2", h.pat())
	retry, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusTooManyRequests || retry < 1 || retry > 3600 || !strings.Contains(r.message(t), "secondary rate limit") {
		t.Fatalf("past the JIT budget: %d retry-after %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if n := len(h.s.World().Runners(world.Scope{Kind: world.Org, Name: "octo-org"})); n != 2 {
		t.Errorf("a refused JIT registered a runner")
	}
	// Other calls still work, and /rate_limit reports the registration budget.
	rl := h.do("GET", "rate_limit", h.pat(), "")
	var body struct {
		Resources map[string]rateJSON `json:"resources"`
	}
	_ = json.Unmarshal(rl.body, &body)
	if reg := body.Resources["actions_runner_registration"]; reg.Limit != 2 || reg.Remaining != 0 {
		t.Errorf("registration budget %s", rl.body)
	}
	// Another installation has its own budget.
	if r := jit("other", h.token("octo-org")); r.status != 201 {
		t.Errorf("another installation: %d %s", r.status, r.body)
	}
	h.clock.Advance(time.Hour + time.Second)
	if r := jit("j3", h.pat()); r.status != 201 {
		t.Errorf("after an hour: %d %s", r.status, r.body)
	}
}

func TestRESTSecondaryLimit(t *testing.T) {
	h := newRESTSim(t, func(o *Options) { o.SecondaryLimit = 3 })
	for i := 0; i < 3; i++ {
		if r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
	retry, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusForbidden || retry < 1 || retry > 60 || !strings.Contains(r.message(t), "secondary rate limit") {
		t.Fatalf("past the secondary limit: %d retry-after %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r.remaining() != 4997 {
		t.Errorf("the refused request was charged to the primary budget: remaining %d", r.remaining())
	}
	if r := h.do("GET", "rate_limit", h.pat(), ""); r.status != 200 {
		t.Errorf("rate_limit under a secondary limit: %d", r.status)
	}
	h.clock.Advance(time.Minute + time.Second)
	if r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r.status != 200 {
		t.Errorf("after a minute: %d", r.status)
	}
}

func TestRESTPrefixURLs(t *testing.T) {
	h := newRESTSim(t, nil)
	for _, prefix := range []string{"", "api/v3/"} {
		r := h.do("GET", prefix+"orgs/octo-org/actions/runner-groups", h.pat(), "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", prefix, r.status, r.body)
		}
		var body struct {
			Groups []orgGroupJSON `json:"runner_groups"`
		}
		_ = json.Unmarshal(r.body, &body)
		if len(body.Groups) == 0 || body.Groups[0].RunnersURL != h.base+prefix+"orgs/octo-org/actions/runner-groups/1/runners" {
			t.Errorf("prefix %q: runners_url %+v", prefix, body.Groups)
		}
		inst := h.do("GET", prefix+"orgs/octo-org/installation", h.jwt(nil), "").object(t)
		if u, _ := inst["access_tokens_url"].(string); !strings.HasPrefix(u, h.base+prefix+"app/installations/") {
			t.Errorf("prefix %q: access_tokens_url %q", prefix, u)
		}
		if u, _ := inst["html_url"].(string); strings.Contains(u, "/api/v3/") {
			t.Errorf("prefix %q: web URL %q under the API prefix", prefix, u)
		}
	}
}

func TestRESTStatsAndFaults(t *testing.T) {
	h := newRESTSim(t, nil)
	const route = "GET /orgs/{org}/actions/runners"
	h.do("GET", "orgs/octo-org/actions/runners", "", "")         // 401: counted
	h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")    // 200
	h.do("GET", "api/v3/orgs/octo-org/actions/runners", "", "")  // under the prefix: same route
	h.do("GET", "orgs/octo-org/actions/nothing", h.pat(), "")    // unknown: not counted
	h.do("DELETE", "orgs/octo-org/actions/runners", h.pat(), "") // unknown method: not counted
	st := h.s.Stats()
	if st.APICalls[route] != 3 || st.APICallsTotal != 3 {
		t.Errorf("api calls %v (total %d), want 3 on %s", st.APICalls, st.APICallsTotal, route)
	}

	r := h.do("POST", "_sim/faults", "", `{"route":"`+route+`","status":502,"probability":1,"count":1}`)
	if r.status/100 != 2 {
		t.Skipf("control API refused a fault rule (%d %s)", r.status, r.body)
	}
	if r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r.status != http.StatusBadGateway {
		t.Errorf("with a fault rule: %d, want 502", r.status)
	}
	if r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r.status != 200 {
		t.Errorf("after the fault's count: %d", r.status)
	}
	if n := h.s.Stats().APICalls[route]; n != 5 {
		t.Errorf("api calls on %s = %d, want 5 (faulted requests count)", route, n)
	}
	before := h.do("GET", "rate_limit", h.pat(), "").remaining()
	if r := h.do("GET", "nothing/here", h.pat(), ""); r.status != 404 || r.remaining() != before {
		t.Errorf("unknown route: %d, remaining %d, want 404 and %d (reported, not charged)", r.status, r.remaining(), before)
	}
	if _, ok := h.s.Stats().APICalls["GET other"]; ok {
		t.Errorf("an unknown route was counted: %v", h.s.Stats().APICalls)
	}
}

func TestRESTStandardHeaders(t *testing.T) {
	h := newRESTSim(t, nil)
	r := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), "")
	for _, k := range []string{"X-GitHub-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used",
		"X-RateLimit-Reset", "X-RateLimit-Resource", "ETag", "X-GitHub-Api-Version-Selected"} {
		if r.header.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	if r2 := h.do("GET", "orgs/octo-org/actions/runners", h.pat(), ""); r2.header.Get("X-GitHub-Request-Id") == r.header.Get("X-GitHub-Request-Id") {
		t.Errorf("request ids repeat")
	}
	d := h.do("DELETE", "orgs/octo-org/actions/runners/"+strconv.FormatInt(h.jit("orgs/octo-org", "h", "a"), 10), h.pat(), "")
	if d.status != 204 || d.header.Get("Content-Type") != "" || len(d.body) != 0 {
		t.Errorf("204: %v %q", d.header, d.body)
	}
}

func TestRESTConcurrentRequests(t *testing.T) {
	h := newRESTSim(t, nil)
	tokens := []string{h.pat(), h.token("octo-org"), h.token("octo-org")}
	const workers, each = 8, 10
	errs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			auth := tokens[i%len(tokens)]
			for j := 0; j < each; j++ {
				var r restResp
				if j%2 == 0 {
					r = h.do("POST", "orgs/octo-org/actions/runners/generate-jitconfig", auth,
						`{"name":"c-`+strconv.Itoa(i)+`-`+strconv.Itoa(j)+`","runner_group_id":1,"labels":["a"]}`)
				} else {
					r = h.do("GET", "orgs/octo-org/actions/runners?per_page=5&page="+strconv.Itoa(j), auth, "")
				}
				if r.status != 201 && r.status != 200 {
					errs <- strconv.Itoa(r.status) + " " + string(r.body)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := len(h.s.World().Runners(world.Scope{Kind: world.Org, Name: "octo-org"})); n != workers*each/2 {
		t.Errorf("%d runners, want %d", n, workers*each/2)
	}
	// Two org tokens share one installation's budget; the PAT has its own.
	var used int
	for _, auth := range tokens[:2] {
		r := h.do("GET", "rate_limit", auth, "")
		n, _ := strconv.Atoi(r.header.Get("X-RateLimit-Used"))
		used += n
	}
	if used != workers*each {
		t.Errorf("%d requests charged, want %d", used, workers*each)
	}
}

func TestRESTGroupVisibilityFilters(t *testing.T) {
	h := newRESTSim(t, nil)
	w := h.s.World()
	app, _ := w.Repo("octo-org/app")
	labs, _ := w.Org("octo-labs")
	octo, _ := w.Org("octo-org")
	yes := true
	org := world.Scope{Kind: world.Org, Name: "octo-org"}
	ent := world.Scope{Kind: world.Enterprise, Name: "octo-ent"}
	mk := func(s world.Scope, in world.GroupInput) {
		if _, err := w.CreateGroup(s, in); err != nil {
			t.Fatal(err)
		}
	}
	mk(org, world.GroupInput{Name: "sel-app", Visibility: world.VisibilitySelected, SelectedRepositoryIDs: []int64{app.ID}})
	mk(org, world.GroupInput{Name: "private", Visibility: world.VisibilityPrivate})
	mk(org, world.GroupInput{Name: "all-public", Visibility: world.VisibilityAll, AllowsPublicRepositories: &yes})
	mk(ent, world.GroupInput{Name: "ent-octo", Visibility: world.VisibilitySelected, SelectedOrganizationIDs: []int64{octo.ID}, AllowsPublicRepositories: &yes})
	mk(ent, world.GroupInput{Name: "ent-labs", Visibility: world.VisibilitySelected, SelectedOrganizationIDs: []int64{labs.ID}})

	names := func(path string) string {
		t.Helper()
		r := h.do("GET", path, h.pat(), "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var body struct {
			Groups []struct {
				Name      string `json:"name"`
				Inherited bool   `json:"inherited"`
			} `json:"runner_groups"`
		}
		_ = json.Unmarshal(r.body, &body)
		var out []string
		for _, g := range body.Groups {
			n := g.Name
			if g.Inherited {
				n += "(inherited)"
			}
			out = append(out, n)
		}
		return strings.Join(out, ",")
	}
	for path, want := range map[string]string{
		"orgs/octo-org/actions/runner-groups":                                          "Default,sel-app,private,all-public,ent-octo(inherited)",
		"orgs/octo-org/actions/runner-groups?visible_to_repository=app":                "Default,sel-app,private,all-public,ent-octo(inherited)",
		"orgs/octo-org/actions/runner-groups?visible_to_repository=website":            "all-public,ent-octo(inherited)",
		"orgs/octo-org/actions/runner-groups?visible_to_repository=ghost":              "",
		"enterprises/octo-ent/actions/runner-groups":                                   "Default,ent-octo,ent-labs",
		"enterprises/octo-ent/actions/runner-groups?visible_to_organization=octo-labs": "Default,ent-labs",
	} {
		if got := names(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func TestRESTJobStates(t *testing.T) {
	h := newRESTSim(t, nil)
	v := oapitest.ValidatingTransport(t, nil)
	hc := &http.Client{Transport: v}
	w := h.s.World()
	id := h.jit("repos/octo-org/app", "job-runner", "self-hosted", "linux")
	get := func(job int64) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", h.base+"repos/octo-org/app/actions/jobs/"+strconv.FormatInt(job, 10), nil)
		req.Header.Set("Authorization", h.pat())
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		return m
	}
	ids, err := w.CreateJobs(world.JobInput{Repo: "octo-org/app", Labels: []string{"self-hosted", "linux"}})
	if err != nil {
		t.Fatal(err)
	}
	if j := get(ids[0]); j["status"] != "queued" || j["runner_id"] != nil || j["conclusion"] != nil || j["completed_at"] != nil {
		t.Errorf("queued job %v", j)
	}
	if err := w.RunnerOnline(id); err != nil {
		t.Fatal(err)
	}
	if j := get(ids[0]); j["status"] != "in_progress" || j["runner_name"] != "job-runner" || j["runner_group_name"] != "Default" {
		t.Errorf("running job %v", j)
	}
	if err := w.FinishJob(id, ids[0]); err != nil {
		t.Fatal(err)
	}
	if j := get(ids[0]); j["status"] != "completed" || j["conclusion"] != "success" || j["completed_at"] == nil {
		t.Errorf("completed job %v", j)
	}
}
