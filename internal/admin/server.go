package admin

import (
	"net/http"
	"time"
)

// Server timeouts. Requests are tiny GETs from `scaler status` or a monitoring
// probe; anything slower is broken or hostile and must not hold a connection.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	// WriteTimeout covers SourceTimeout plus encoding and sending the answer.
	WriteTimeout   = SourceTimeout + 5*time.Second
	IdleTimeout    = 60 * time.Second
	MaxHeaderBytes = 16 << 10
)

// NewServer returns an HTTP server for addr serving h with the timeouts
// above. The caller starts it (Serve on its own listener, or ListenAndServe)
// and stops it with Shutdown.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
