package ghsim

import "net/http"

// newControl serves the /_sim/ control API. (Owned by the control work.)
func newControl(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not implemented", http.StatusNotImplemented)
	})
}
