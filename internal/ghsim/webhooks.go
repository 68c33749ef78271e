package ghsim

import (
	"encoding/json"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// webhooks sends workflow_job deliveries and keeps the delivery log.
// (Owned by the webhook work: webhooks*.go.)
type webhooks struct{ s *Server }

func newWebhooks(s *Server) *webhooks { return &webhooks{s: s} }

// onEvent sends the delivery for one job transition (asynchronously).
func (h *webhooks) onEvent(e world.Event) {}

// close waits for deliveries in flight.
func (h *webhooks) close() {}

// Delivery is one recorded webhook delivery attempt.
type Delivery struct {
	ID              int64
	GUID            string
	DeliveredAt     time.Time
	Redelivery      bool
	Duration        time.Duration
	Status          string // "OK", or the failure text
	StatusCode      int    // 0 when no HTTP answer (dropped, refused)
	Event           string
	Action          string
	InstallationID  int64
	RepositoryID    int64
	URL             string
	RequestHeaders  map[string]string
	RequestPayload  json.RawMessage
	ResponseHeaders map[string]string
	ResponseBody    string
}

// List returns deliveries newest first from cursor ("" = newest), at most
// perPage (1..100), filtered by status "success"/"failure" ("" = all), and the
// cursor of the next page ("" at the end).
func (h *webhooks) List(cursor string, perPage int, status string) ([]Delivery, string, error) {
	return nil, "", nil
}

// Get returns one delivery.
func (h *webhooks) Get(id int64) (Delivery, bool) { return Delivery{}, false }

// Redeliver resends a delivery with the same GUID and body, recorded as a new
// delivery with Redelivery set; world.ErrNotFound for an unknown id.
func (h *webhooks) Redeliver(id int64) error { return world.ErrNotFound }
