package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Signature refusals. Their text is the reason logged and answered; none of
// them carries the signature or a secret.
var (
	errNoSignature        = errors.New("missing X-Hub-Signature-256")
	errMalformedSignature = errors.New("malformed X-Hub-Signature-256: want sha256= and 64 hex digits")
	errBadSignature       = errors.New("X-Hub-Signature-256 matches no configured secret")
	errNoSecrets          = errors.New("no webhook secret configured")
)

const signaturePrefix = "sha256="

// verifySignature checks header, an X-Hub-Signature-256 value, against the
// HMAC-SHA256 of the raw body under each secret; any one matching passes, so
// a secret can be rotated without refusing deliveries. The comparison is in
// constant time (hmac.Equal); the loop runs over every secret even after a
// match, so the time taken does not say which secret matched.
func verifySignature(secrets [][]byte, header string, body []byte) error {
	if len(secrets) == 0 {
		return errNoSecrets
	}
	if header == "" {
		return errNoSignature
	}
	// The prefix is case-sensitive at GitHub; hex digits of either case are
	// accepted by hex.Decode.
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return errMalformedSignature
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return errMalformedSignature
	}
	matched := false
	var sum [sha256.Size]byte
	for _, key := range secrets {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		if hmac.Equal(m.Sum(sum[:0]), want[:]) {
			matched = true
		}
	}
	if !matched {
		return errBadSignature
	}
	return nil
}
