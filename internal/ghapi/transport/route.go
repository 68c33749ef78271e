package transport

import (
	"net/http"
	"strings"
)

// ghesPrefix is the path prefix of the REST API on GitHub Enterprise Server.
const ghesPrefix = "/api/v3"

// otherRoute is the template used for paths that match no known template.
const otherRoute = "other"

// routeNode is one segment of the route trie compiled from routeTemplates.
type routeNode struct {
	literal  map[string]*routeNode
	param    *routeNode // child matching any single non-empty segment
	template string     // non-empty when a template ends here
}

var routeTrie = compileRoutes(routeTemplates)

func compileRoutes(templates []string) *routeNode {
	root := &routeNode{}
	for _, tpl := range templates {
		n := root
		for _, seg := range splitPath(tpl) {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				if n.param == nil {
					n.param = &routeNode{}
				}
				n = n.param
				continue
			}
			if n.literal == nil {
				n.literal = map[string]*routeNode{}
			}
			child, ok := n.literal[seg]
			if !ok {
				child = &routeNode{}
				n.literal[seg] = child
			}
			n = child
		}
		n.template = tpl
	}
	return root
}

func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match returns the template matching segs, preferring literal segments over
// parameters at every level and backtracking when a literal branch dead-ends.
func (n *routeNode) match(segs []string) string {
	if len(segs) == 0 {
		return n.template
	}
	seg := segs[0]
	if seg == "" {
		return ""
	}
	if child, ok := n.literal[seg]; ok {
		if tpl := child.match(segs[1:]); tpl != "" {
			return tpl
		}
	}
	if n.param != nil {
		return n.param.match(segs[1:])
	}
	return ""
}

// normMethod upper-cases method, maps "" to GET (as net/http does) and maps
// non-standard methods to OTHER so that a route label stays bounded.
func normMethod(method string) string {
	switch m := strings.ToUpper(method); m {
	case "":
		return http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	default:
		return "OTHER"
	}
}

// Route returns the templated route of a request for metrics and logs, for
// example
//
//	Route("POST", "/api/v3/orgs/acme/actions/runners/generate-jitconfig")
//	  == "POST /orgs/{org}/actions/runners/generate-jitconfig"
//
// A leading /api/v3 (GitHub Enterprise Server) is stripped, a query string or
// a single trailing slash is ignored, and the path is matched segment by
// segment against the OpenAPI templates in routes.go; a literal segment beats
// a {param}, so ".../runners/downloads" is not ".../runners/{runner_id}".
// Paths matching no template map to "METHOD other", so raw ids never become
// label values.
func Route(method, path string) string {
	m := normMethod(method)
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == ghesPrefix || strings.HasPrefix(path, ghesPrefix+"/") {
		path = path[len(ghesPrefix):]
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	if !strings.HasPrefix(path, "/") {
		return m + " " + otherRoute
	}
	if tpl := routeTrie.match(splitPath(path)); tpl != "" {
		return m + " " + tpl
	}
	return m + " " + otherRoute
}

// retrySafePOST lists the POST routes that may be sent again after the first
// attempt may have reached GitHub:
//
//   - registration-token and remove-token at repository, organization and
//     enterprise scope: a second token is harmless (the first simply expires);
//   - POST /app/installations/{installation_id}/access_tokens: a second
//     installation token is harmless;
//   - adding custom labels (POST .../runners/{runner_id}/labels) at all three
//     scopes: adding labels that are already present is a no-op.
//
// Deliberately NOT retry-safe (sent exactly once unless the failure proves the
// request never left this process, such as a refused connection):
//
//   - generate-jitconfig: a retry after an unseen success gets 409 (name
//     taken) and the JIT config of the first attempt is lost;
//   - creating a runner group: a retry can create a duplicate;
//   - POST /app/hook/deliveries/{delivery_id}/attempts: a retry triggers a
//     second redelivery.
//
// Every other POST, including "POST other", is treated as not retry-safe.
var retrySafePOST = map[string]bool{
	"POST /repos/{owner}/{repo}/actions/runners/registration-token":     true,
	"POST /orgs/{org}/actions/runners/registration-token":               true,
	"POST /enterprises/{enterprise}/actions/runners/registration-token": true,
	"POST /repos/{owner}/{repo}/actions/runners/remove-token":           true,
	"POST /orgs/{org}/actions/runners/remove-token":                     true,
	"POST /enterprises/{enterprise}/actions/runners/remove-token":       true,
	"POST /app/installations/{installation_id}/access_tokens":           true,
	"POST /repos/{owner}/{repo}/actions/runners/{runner_id}/labels":     true,
	"POST /orgs/{org}/actions/runners/{runner_id}/labels":               true,
	"POST /enterprises/{enterprise}/actions/runners/{runner_id}/labels": true,
}

// RetrySafe reports whether a request on route (as returned by Route) may be
// re-sent after it may already have reached GitHub. GET, HEAD, OPTIONS, PUT,
// DELETE and PATCH are idempotent in GitHub's runner API and always safe; a
// POST is safe only on the routes listed in retrySafePOST (see its comment
// for the reasoning, route by route).
func RetrySafe(route string) bool {
	method, _, _ := strings.Cut(route, " ")
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions,
		http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	case http.MethodPost:
		return retrySafePOST[route]
	default:
		return false
	}
}
