package webhook

import (
	"net/http"
	"time"
)

// Server timeouts. GitHub waits 10 s for an answer (30 s on GHES) and sends
// small requests, so a client slower than these is broken or hostile and
// must not hold a connection.
const (
	// ReadHeaderTimeout bounds reading the request line and headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading the whole request, body included (25 MB
	// at GitHub's cap still arrives well within it on any real link).
	ReadTimeout = 15 * time.Second
	// WriteTimeout bounds the time from the end of the headers to the end
	// of the answer: the store's commit (capped at 9 s) and the reply.
	WriteTimeout = 15 * time.Second
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout = 60 * time.Second
	// MaxHeaderBytes bounds the request headers; GitHub's are under 2 KB.
	MaxHeaderBytes = 64 << 10
)

// NewServer returns an HTTP server for addr that serves h at path (exactly,
// as written: not a ServeMux pattern; every other path is 404), with the
// timeouts above. The caller starts it
// (ListenAndServe or Serve) and stops it with Shutdown.
func NewServer(addr string, h http.Handler, path string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           onlyPath{path: path, h: h},
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// onlyPath serves h at one path.
type onlyPath struct {
	path string
	h    http.Handler
}

func (o onlyPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != o.path {
		http.NotFound(w, r)
		return
	}
	o.h.ServeHTTP(w, r)
}
