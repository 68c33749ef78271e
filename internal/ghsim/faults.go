package ghsim

import "net/http"

// faults injects errors, latency and dropped connections into REST routes.
// (Owned by the control work.)
type faults struct{ s *Server }

func newFaults(s *Server) *faults { return &faults{s: s} }

// intercept applies a matching fault rule to a REST request on route
// ("METHOD /templated/path"). It returns true when it has answered (or cut
// the connection) and the request must not be served.
func (f *faults) intercept(w http.ResponseWriter, r *http.Request, route string) bool { return false }
