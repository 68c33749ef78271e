package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

// The test vector GitHub documents ("Validating webhook deliveries").
const (
	vectorSecret    = "It's a Secret to Everybody"
	vectorPayload   = "Hello, World!"
	vectorSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSignatureTestVector(t *testing.T) {
	if err := verifySignature([][]byte{[]byte(vectorSecret)}, vectorSignature, []byte(vectorPayload)); err != nil {
		t.Fatalf("documented vector refused: %v", err)
	}
	if got := webhooktest.Sign(vectorSecret, []byte(vectorPayload)); got != vectorSignature {
		t.Errorf("webhooktest.Sign = %s, want %s", got, vectorSignature)
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"zen":"Design for failure."}`)
	good := webhooktest.Sign("s3cret", body)
	one := [][]byte{[]byte("s3cret")}
	tests := []struct {
		name    string
		secrets [][]byte
		header  string
		body    []byte
		want    error
	}{
		{"good", one, good, body, nil},
		{"upper-case hex", one, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, nil},
		{"rotation: old secret", [][]byte{[]byte("s3cret"), []byte("new")}, good, body, nil},
		{"rotation: new secret", [][]byte{[]byte("old"), []byte("s3cret")}, good, body, nil},
		{"missing", one, "", body, errNoSignature},
		{"sha1 prefix", one, "sha1=" + strings.TrimPrefix(good, "sha256="), body, errMalformedSignature},
		{"no prefix", one, strings.TrimPrefix(good, "sha256="), body, errMalformedSignature},
		{"prefix case", one, "SHA256=" + strings.TrimPrefix(good, "sha256="), body, errMalformedSignature},
		{"short", one, good[:len(good)-2], body, errMalformedSignature},
		{"long", one, good + "00", body, errMalformedSignature},
		{"not hex", one, good[:len(good)-1] + "g", body, errMalformedSignature},
		{"trailing space", one, good + " ", body, errMalformedSignature},
		{"wrong secret", [][]byte{[]byte("other")}, good, body, errBadSignature},
		{"body changed", one, good, append([]byte{' '}, body...), errBadSignature},
		{"no secrets", nil, good, body, errNoSecrets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifySignature(tc.secrets, tc.header, tc.body)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(good, "sha256=")) {
				t.Error("the error repeats the signature")
			}
		})
	}
}
