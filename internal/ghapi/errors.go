package ghapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
)

// Sentinels for the HTTP outcomes callers branch on. An *APIError matches the
// one for its status with errors.Is.
var (
	ErrUnauthorized = errors.New("unauthorized")      // 401: bad or expired credentials
	ErrForbidden    = errors.New("forbidden")         // 403 without a rate limit: missing permission
	ErrNotFound     = errors.New("not found")         // 404
	ErrConflict     = errors.New("conflict")          // 409, e.g. a runner name already taken
	ErrValidation   = errors.New("validation failed") // 422
	// ErrRunnerBusy is a 422 from DELETE runner: GitHub refuses because the
	// runner is running a job. It also matches ErrValidation.
	ErrRunnerBusy = errors.New("runner is busy")
)

// RateLimitError is returned when the API budget is exhausted and waiting for
// the reset would overrun the caller's deadline. It carries the reset time.
type RateLimitError = transport.RateLimitError

// APIError is an error answer from GitHub with what is needed to act on it
// and to find the request in GitHub's logs.
type APIError struct {
	Status           int
	Method           string
	Route            string // templated, e.g. "DELETE /orgs/{org}/actions/runners/{runner_id}"
	RequestID        string // X-GitHub-Request-Id
	Message          string
	Details          []string
	DocumentationURL string
	kind             error
	busy             bool
	cause            error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "github %s: %d %s", e.Route, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.Details) > 0 {
		b.WriteString(" (" + strings.Join(e.Details, "; ") + ")")
	}
	if e.RequestID != "" {
		b.WriteString(" [request id " + e.RequestID + "]")
	}
	return b.String()
}

// Is lets callers test the outcome with errors.Is(err, ghapi.ErrNotFound).
func (e *APIError) Is(target error) bool {
	if target == ErrRunnerBusy {
		return e.busy
	}
	return e.kind != nil && target == e.kind
}

func (e *APIError) Unwrap() error { return e.cause }

func kindForStatus(status int) error {
	switch status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusUnprocessableEntity:
		return ErrValidation
	}
	return nil
}

// convertError turns what go-github returned into our error types. Transport
// errors (rate limits, deadlines) pass through wrapped, so errors.As finds them.
func convertError(method, path string, err error) error {
	if err == nil {
		return nil
	}
	route := transport.Route(method, path)
	var ger *github.ErrorResponse
	if errors.As(err, &ger) && ger.Response != nil {
		apiErr := &APIError{
			Status:           ger.Response.StatusCode,
			Method:           method,
			Route:            route,
			RequestID:        ger.Response.Header.Get("X-GitHub-Request-Id"),
			Message:          ger.Message,
			DocumentationURL: ger.DocumentationURL,
			kind:             kindForStatus(ger.Response.StatusCode),
			cause:            err,
		}
		for _, d := range ger.Errors {
			switch {
			case d.Message != "":
				apiErr.Details = append(apiErr.Details, d.Message)
			case d.Field != "":
				apiErr.Details = append(apiErr.Details, d.Field+" "+d.Code)
			}
		}
		return apiErr
	}
	// go-github reports rate limits itself only if it saw the headers, which
	// the transport strips; map them anyway so no status escapes untyped.
	var grl *github.RateLimitError
	if errors.As(err, &grl) {
		return &RateLimitError{Limit: grl.Rate.Limit, Reset: grl.Rate.Reset.Time, Route: route}
	}
	return fmt.Errorf("github %s: %w", route, err)
}
