package ghsim

import "net/http"

// restAPI serves GitHub's REST surface. (Owned by the REST work: rest*.go,
// auth.go, ratelimit.go.)
type restAPI struct{ s *Server }

func newRESTAPI(s *Server) *restAPI { return &restAPI{s: s} }

func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
