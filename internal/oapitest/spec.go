// Package oapitest is a test-only helper: a loopback HTTP server that behaves
// like GitHub's REST API as described by GitHub's own OpenAPI description
// (a subset covering self-hosted runners, runner groups, app installations and
// webhook deliveries, jobs and rate_limit), validating every request it
// receives and every response it sends against that description.
//
// Client tests use it to prove that what they send and what they understand
// agrees with GitHub's description, not only with the test author's memory of
// it:
//
//	srv := oapitest.NewServer(t)                  // or NewServer(t, oapitest.WithPrefix("/api/v3"))
//	srv.Reply("actions/generate-runner-jitconfig-for-org", oapitest.Response{Status: 409})
//	client := newClient(srv.URL)                  // base URL with trailing slash
//	... exercise the client ...
//	req := srv.Last(t)                            // what was sent, Authorization included
//	n := srv.Count("actions/delete-self-hosted-runner-from-org")
//
// Every request is routed and validated (path, query, body) and every reply
// with a status the operation documents is validated (status, headers, body)
// against the description; mismatches and unknown routes are reported with
// t.Errorf. Unless scripted, an operation answers with its lowest documented
// 2xx status and GitHub's documented example.
package oapitest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed spec/github-runners-openapi.json
var specJSON []byte

// Operation is one method+path of the OpenAPI description.
type Operation struct {
	Method        string   // upper-case HTTP method, e.g. "POST"
	Path          string   // path template, e.g. "/orgs/{org}/actions/runners"
	OperationID   string   // GitHub's operationId, e.g. "actions/list-self-hosted-runners-for-org"
	SuccessStatus int      // lowest documented 2xx status
	Tags          []string // the operation's tags
	DocsURL       string   // externalDocs.url (docs.github.com page)
}

// opInfo is everything the server needs about one operation. It is built
// once, together with the document, and never changed afterwards.
type opInfo struct {
	Operation
	op            *openapi3.Operation
	paginated     bool   // has a per_page query parameter
	defaultStatus int    // == SuccessStatus
	defaultBody   []byte // documented example for defaultStatus (nil for 204)
}

// loadedSpec is the only package-level state: the parsed document and what is
// derived from it, computed once and read-only afterwards.
type loadedSpec struct {
	once   sync.Once
	doc    *openapi3.T
	ops    []Operation        // sorted by Path, then Method
	byID   map[string]*opInfo // operationId -> info
	quirks []string           // names of the spec quirks fixed in memory
	err    error
}

var cache loadedSpec

func loadSpec() *loadedSpec {
	cache.once.Do(func() {
		cache.err = cache.load()
	})
	return &cache
}

// Spec returns GitHub's OpenAPI document (embedded in the package), loaded
// and validated once per test binary. The returned document is shared: treat
// it as read-only.
//
// The document is validated strictly (doc.Validate with its defaults, which
// include checking every example against its schema). Only the following is
// relaxed or patched, each because GitHub's own file fails otherwise:
//
//   - info.source: a sibling field added by whoever extracted the subset (it
//     names the @octokit/openapi files it came from); allowed with
//     openapi3.AllowExtraSiblingFields("source").
//   - a few examples and one schema, fixed in memory by fixQuirks (see there):
//     those are errors in GitHub's description, not in kin-openapi.
func Spec(t testing.TB) *openapi3.T {
	t.Helper()
	ls := loadSpec()
	if ls.err != nil {
		t.Fatalf("oapitest: loading GitHub's OpenAPI description: %v", ls.err)
	}
	return ls.doc
}

// Operations returns every method+path of the description, sorted by path and
// then method.
func Operations(t testing.TB) []Operation {
	t.Helper()
	ls := loadSpec()
	if ls.err != nil {
		t.Fatalf("oapitest: loading GitHub's OpenAPI description: %v", ls.err)
	}
	out := make([]Operation, len(ls.ops))
	for i, op := range ls.ops {
		op.Tags = slices.Clone(op.Tags)
		out[i] = op
	}
	return out
}

func (ls *loadedSpec) load() error {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specJSON)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	ls.quirks, err = fixQuirks(doc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := doc.Validate(ctx,
		openapi3.EnableMultiError(),
		// info.source is not part of GitHub's description: the extracted
		// subset records where it came from there.
		openapi3.AllowExtraSiblingFields("source"),
	); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	ls.doc = doc
	ls.byID = make(map[string]*opInfo)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				return fmt.Errorf("%s %s has no operationId", method, path)
			}
			if _, dup := ls.byID[op.OperationID]; dup {
				return fmt.Errorf("operationId %q used twice", op.OperationID)
			}
			info := &opInfo{
				Operation: Operation{
					Method:      strings.ToUpper(method),
					Path:        path,
					OperationID: op.OperationID,
					Tags:        slices.Clone(op.Tags),
				},
				op: op,
			}
			if op.ExternalDocs != nil {
				info.DocsURL = op.ExternalDocs.URL
			}
			for _, p := range op.Parameters {
				if p.Value != nil && p.Value.In == openapi3.ParameterInQuery && p.Value.Name == "per_page" {
					info.paginated = true
				}
			}
			info.SuccessStatus, err = lowestSuccess(op)
			if err != nil {
				return fmt.Errorf("%s: %w", op.OperationID, err)
			}
			info.defaultStatus = info.SuccessStatus
			if info.defaultBody, err = documentedBody(op, info.SuccessStatus); err != nil {
				return fmt.Errorf("%s: %w", op.OperationID, err)
			}
			if info.defaultBody == nil && hasJSONContent(op, info.SuccessStatus) {
				return fmt.Errorf("%s: no example for documented %d response", op.OperationID, info.SuccessStatus)
			}
			ls.byID[op.OperationID] = info
			ls.ops = append(ls.ops, info.Operation)
		}
	}
	sort.Slice(ls.ops, func(i, j int) bool {
		if ls.ops[i].Path != ls.ops[j].Path {
			return ls.ops[i].Path < ls.ops[j].Path
		}
		return ls.ops[i].Method < ls.ops[j].Method
	})
	return nil
}

// lowestSuccess is the lowest documented 2xx status of op.
func lowestSuccess(op *openapi3.Operation) (int, error) {
	best := 0
	for code := range op.Responses.Map() {
		n, err := strconv.Atoi(code)
		if err != nil || n < 200 || n > 299 {
			continue
		}
		if best == 0 || n < best {
			best = n
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("no documented 2xx response")
	}
	return best, nil
}

// documentedResponse is the response documented for status, without falling
// back to "default" (the subset has none).
func documentedResponse(op *openapi3.Operation, status int) *openapi3.Response {
	ref := op.Responses.Status(status)
	if ref == nil {
		return nil
	}
	return ref.Value
}

func jsonMediaType(resp *openapi3.Response) *openapi3.MediaType {
	if resp == nil {
		return nil
	}
	return resp.Content.Get("application/json")
}

func hasJSONContent(op *openapi3.Operation, status int) bool {
	return jsonMediaType(documentedResponse(op, status)) != nil
}

// documentedBody is the documented application/json example of op's status
// response, marshalled: the first entry of "examples" (the one named
// "default" if there is one, otherwise the first name in sorted order — map
// order is random), whose $ref to components/examples the loader resolved,
// or else "example". nil when nothing is documented.
func documentedBody(op *openapi3.Operation, status int) ([]byte, error) {
	mt := jsonMediaType(documentedResponse(op, status))
	if mt == nil {
		return nil, nil
	}
	var value any
	found := false
	if len(mt.Examples) > 0 {
		names := make([]string, 0, len(mt.Examples))
		for name := range mt.Examples {
			names = append(names, name)
		}
		sort.Strings(names)
		name := names[0]
		if _, ok := mt.Examples["default"]; ok {
			name = "default"
		}
		ex := mt.Examples[name]
		if ex == nil || ex.Value == nil {
			return nil, fmt.Errorf("%d example %q is not resolved", status, name)
		}
		value, found = ex.Value.Value, true
	} else if mt.Example != nil {
		value, found = mt.Example, true
	}
	if !found {
		return nil, nil
	}
	b, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("%d example: %w", status, err)
	}
	return b, nil
}

// fixQuirks repairs, in memory, the places where GitHub's own description
// contradicts itself (an example that does not match its schema, or a
// schema no real response can match). Each fix names the operations it
// concerns and returns an error if the quirk is no longer there in the shape
// expected, so that a refreshed spec file makes the stale fix visible
// instead of silently patching something else. Validation itself is never
// weakened: after these fixes the document passes doc.Validate including
// examples, and replies are validated with the full schemas.
func fixQuirks(doc *openapi3.T) ([]string, error) {
	var fixed []string
	for _, q := range quirkFixes {
		if err := q.fix(doc); err != nil {
			return nil, fmt.Errorf("spec quirk %q: %w (the spec file changed? re-check the fix)", q.name, err)
		}
		fixed = append(fixed, q.name)
	}
	return fixed, nil
}

type quirkFix struct {
	name string
	fix  func(doc *openapi3.T) error
}

var quirkFixes = []quirkFix{
	{
		// apps/redeliver-webhook-delivery (POST /app/hook/deliveries/{delivery_id}/attempts)
		// answers 202 with components/responses/accepted, whose schema is
		// {type: object} (not nullable) but whose example is `"value": null`.
		// kin-openapi reads a null value as "no value" ("example default: no
		// value or externalValue field"), and a null body would not match the
		// schema anyway. The example becomes {}, the smallest body the
		// documented schema accepts (the schema is left as it is).
		name: "accepted-example-null",
		fix: func(doc *openapi3.T) error {
			ref := doc.Components.Responses["accepted"]
			if ref == nil || ref.Value == nil {
				return fmt.Errorf("components/responses/accepted missing")
			}
			mt := ref.Value.Content.Get("application/json")
			if mt == nil || mt.Examples["default"] == nil || mt.Examples["default"].Value == nil {
				return fmt.Errorf("components/responses/accepted has no default example")
			}
			if mt.Examples["default"].Value.Value != nil {
				return fmt.Errorf("example is no longer null")
			}
			mt.Examples["default"].Value.Value = map[string]any{}
			return nil
		},
	},
	{
		// apps/list-installations (GET /app/installations) inlines an older
		// copy of the Installation schema in which `account` is
		// allOf[simple-user, enterprise], whereas components/schemas/installation
		// (and every other use) has anyOf[simple-user, enterprise]. allOf
		// would require an account to be a user and an enterprise at once:
		// GitHub's own example (a User account) fails it with "name", "slug",
		// "created_at", "updated_at" missing, and so would every real
		// response. The fix makes it anyOf, as in the component.
		name: "list-installations-account-allOf",
		fix: func(doc *openapi3.T) error {
			op := doc.Paths.Find("/app/installations")
			if op == nil || op.Get == nil {
				return fmt.Errorf("GET /app/installations missing")
			}
			mt := jsonMediaType(documentedResponse(op.Get, http.StatusOK))
			if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || mt.Schema.Value.Items == nil || mt.Schema.Value.Items.Value == nil {
				return fmt.Errorf("200 schema is not an inline array")
			}
			account := mt.Schema.Value.Items.Value.Properties["account"]
			if account == nil || account.Value == nil || len(account.Value.AllOf) != 2 || len(account.Value.AnyOf) != 0 {
				return fmt.Errorf("items.account is no longer allOf of two schemas")
			}
			account.Value.AnyOf, account.Value.AllOf = account.Value.AllOf, nil
			return nil
		},
	},
	{
		// actions/get-job-for-workflow-run (components/examples/job) and
		// actions/list-jobs-for-workflow-run (components/examples/job-paginated)
		// have examples without "created_at", which components/schemas/job
		// lists as required (GitHub does send it: the time the job was
		// created, before started_at). The examples get a created_at equal to
		// their started_at.
		name: "job-examples-created_at",
		fix: func(doc *openapi3.T) error {
			addCreatedAt := func(v any) error {
				job, ok := v.(map[string]any)
				if !ok {
					return fmt.Errorf("job example is not an object")
				}
				if _, ok := job["created_at"]; ok {
					return fmt.Errorf("job example has created_at now")
				}
				started, ok := job["started_at"].(string)
				if !ok {
					return fmt.Errorf("job example has no started_at")
				}
				job["created_at"] = started
				return nil
			}
			job := doc.Components.Examples["job"]
			if job == nil || job.Value == nil {
				return fmt.Errorf("components/examples/job missing")
			}
			if err := addCreatedAt(job.Value.Value); err != nil {
				return fmt.Errorf("components/examples/job: %w", err)
			}
			page := doc.Components.Examples["job-paginated"]
			if page == nil || page.Value == nil {
				return fmt.Errorf("components/examples/job-paginated missing")
			}
			obj, _ := page.Value.Value.(map[string]any)
			jobs, _ := obj["jobs"].([]any)
			if len(jobs) == 0 {
				return fmt.Errorf("components/examples/job-paginated has no jobs")
			}
			for i, j := range jobs {
				if err := addCreatedAt(j); err != nil {
					return fmt.Errorf("components/examples/job-paginated jobs[%d]: %w", i, err)
				}
			}
			return nil
		},
	},
}
