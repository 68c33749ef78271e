package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

// Fuzz targets (issue #4 item 4). CI runs each for a bounded number of
// executions (a duration bound can fail spuriously before Go 1.27,
// golang/go#75804):
//
//	go test -run '^$' -fuzz '^FuzzVerifySignature$' -fuzztime 100000x ./internal/webhook/
//	go test -run '^$' -fuzz '^FuzzDecodeWorkflowJob$' -fuzztime 100000x ./internal/webhook/
//
// Without -fuzz, `go test` runs them over their seed corpus only.

// FuzzVerifySignature: no input panics; a signature made with the secret
// always verifies; anything that verifies is the body's signature under one
// of the secrets.
func FuzzVerifySignature(f *testing.F) {
	f.Add(vectorSecret, []byte(vectorPayload), vectorSignature)
	f.Add(vectorSecret, []byte(vectorPayload), strings.ToUpper(vectorSignature))
	f.Add("s", []byte(""), "sha256=")
	f.Add("s", []byte("x"), "sha1=757107ea0eb2509fc211221cce984b8a37570b6d")
	f.Add("s", []byte("x"), "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add("", []byte("x"), "")
	for name, body := range examples(f) {
		f.Add("whsec_"+name, body, webhooktest.Sign("whsec_"+name, body))
	}
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		secrets := [][]byte{[]byte(secret)}
		err := verifySignature(secrets, header, body)
		good := webhooktest.Sign(secret, body)
		if err == nil && !strings.EqualFold(header, good) {
			t.Fatalf("header %q verified, but the signature is %q", header, good)
		}
		if err := verifySignature(secrets, good, body); err != nil {
			t.Fatalf("the body's own signature refused: %v", err)
		}
		// Rotation: an unrelated second secret changes nothing.
		if err2 := verifySignature(append(secrets, []byte(secret+"-next")), header, body); (err == nil) != (err2 == nil) && !strings.EqualFold(header, webhooktest.Sign(secret+"-next", body)) {
			t.Fatalf("a second secret changed the verdict: %v vs %v", err, err2)
		}
	})
}

// FuzzDecodeWorkflowJob: no payload panics the decoder, and whatever it
// accepts as a job transition carries what the store needs.
func FuzzDecodeWorkflowJob(f *testing.F) {
	for _, body := range examples(f) {
		f.Add(body)
	}
	f.Add([]byte(`{"action":"queued","workflow_job":{"id":1,"status":"queued","labels":[]},"repository":{"id":1,"full_name":"a/b"}}`))
	f.Add([]byte(`{"action":"completed","workflow_job":{"id":1,"status":"completed","labels":null,"completed_at":"x"},"repository":{"id":1,"full_name":"a/b","owner":null}}`))
	f.Add([]byte(`{"action":"queued","workflow_job":null}`))
	f.Add([]byte(`{"action":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(` {`))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		action, ev, err := decodeWorkflowJob(payload, now)
		if err != nil {
			if ev != nil {
				t.Fatal("an event with an error")
			}
			if _, ok := err.(payloadError); !ok {
				t.Fatalf("error of type %T", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("reason too long to answer: %d bytes", len(err.Error()))
			}
			return
		}
		if action == "" {
			t.Fatal("accepted without an action")
		}
		if ev == nil {
			if jobActions[action] {
				t.Fatalf("job action %q without an event", action)
			}
			return
		}
		if ev.Action != action || !jobActions[ev.Action] || ev.JobID <= 0 || ev.RepoID <= 0 || ev.Repo == "" || ev.Labels == nil || ev.At.IsZero() {
			t.Fatalf("accepted an incomplete event %+v", ev)
		}
		// The other events' decoder must hold up on the same input.
		_, _ = decodeAction(payload)
	})
}
