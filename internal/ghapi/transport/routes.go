// Code generated from the paths of github-runners-openapi.json. DO NOT EDIT.
//
// Source: the "paths" keys of the runners OpenAPI subset (the reference copy
// is mirrored in internal/oapitest/spec). To regenerate, list those keys in
// sorted order, one quoted string per line. The templates are compiled into a
// matcher at init; the spec is never read at run time or in tests.

package transport

// routeTemplates holds every path template of the runners OpenAPI subset,
// without the /api/v3 prefix used by GitHub Enterprise Server.
var routeTemplates = []string{
	"/app",
	"/app/hook/deliveries",
	"/app/hook/deliveries/{delivery_id}",
	"/app/hook/deliveries/{delivery_id}/attempts",
	"/app/installations",
	"/app/installations/{installation_id}/access_tokens",
	"/enterprises/{enterprise}/actions/runner-groups",
	"/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}",
	"/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/organizations",
	"/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/organizations/{org_id}",
	"/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/runners",
	"/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}/runners/{runner_id}",
	"/enterprises/{enterprise}/actions/runners",
	"/enterprises/{enterprise}/actions/runners/deprecations/{version}",
	"/enterprises/{enterprise}/actions/runners/downloads",
	"/enterprises/{enterprise}/actions/runners/generate-jitconfig",
	"/enterprises/{enterprise}/actions/runners/registration-token",
	"/enterprises/{enterprise}/actions/runners/remove-token",
	"/enterprises/{enterprise}/actions/runners/{runner_id}",
	"/enterprises/{enterprise}/actions/runners/{runner_id}/labels",
	"/enterprises/{enterprise}/actions/runners/{runner_id}/labels/{name}",
	"/installation/repositories",
	"/orgs/{org}/actions/runner-groups",
	"/orgs/{org}/actions/runner-groups/{runner_group_id}",
	"/orgs/{org}/actions/runner-groups/{runner_group_id}/repositories",
	"/orgs/{org}/actions/runner-groups/{runner_group_id}/repositories/{repository_id}",
	"/orgs/{org}/actions/runner-groups/{runner_group_id}/runners",
	"/orgs/{org}/actions/runner-groups/{runner_group_id}/runners/{runner_id}",
	"/orgs/{org}/actions/runners",
	"/orgs/{org}/actions/runners/downloads",
	"/orgs/{org}/actions/runners/generate-jitconfig",
	"/orgs/{org}/actions/runners/registration-token",
	"/orgs/{org}/actions/runners/remove-token",
	"/orgs/{org}/actions/runners/{runner_id}",
	"/orgs/{org}/actions/runners/{runner_id}/labels",
	"/orgs/{org}/actions/runners/{runner_id}/labels/{name}",
	"/orgs/{org}/installation",
	"/rate_limit",
	"/repos/{owner}/{repo}/actions/jobs/{job_id}",
	"/repos/{owner}/{repo}/actions/runners",
	"/repos/{owner}/{repo}/actions/runners/downloads",
	"/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
	"/repos/{owner}/{repo}/actions/runners/registration-token",
	"/repos/{owner}/{repo}/actions/runners/remove-token",
	"/repos/{owner}/{repo}/actions/runners/{runner_id}",
	"/repos/{owner}/{repo}/actions/runners/{runner_id}/labels",
	"/repos/{owner}/{repo}/actions/runners/{runner_id}/labels/{name}",
	"/repos/{owner}/{repo}/actions/runs",
	"/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
	"/repos/{owner}/{repo}/installation",
}
