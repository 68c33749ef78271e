package ghsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
)

// Authentication as GitHub does it for the REST surface:
//
//   - the App's JWT (RS256, signed with the key whose public half is
//     Options.AppPublicKey, issuer = Options.AppID, at most ten minutes of
//     life) for /app, /app/... and the two installation look-ups;
//   - installation access tokens minted by POST /app/installations/{id}/access_tokens
//     (ghs_..., one hour) for everything else, each limited to its account;
//   - Options.PAT ("token X" or "Bearer X") for everything but the JWT routes.
//
// Installations need no stored state: the App is installed on every
// organization and on the enterprise, and an installation's id is derived
// from its account's id by installationIDFor (shared with the webhook
// payloads, which name the installation too).

// installationTokenTTL is how long an installation token lives, as on GitHub.
const installationTokenTTL = time.Hour

// JWT lifetime rules, as GitHub applies them: exp at most ten minutes ahead,
// iat not in the future; both with a little allowance for clock drift.
const (
	jwtMaxLifetime = 10 * time.Minute
	jwtClockDrift  = 60 * time.Second
)

// installation is the App's installation on an organization or the enterprise.
type installation struct {
	ID        int64
	Account   world.Scope // world.Org or world.Enterprise
	AccountID int64
}

// installations lists every installation: the enterprise's first, then one
// per organization by id.
func (a *restAPI) installations() []installation {
	ent := a.s.world.Enterprise()
	out := []installation{{ID: installationIDFor(ent.ID), Account: world.Scope{Kind: world.Enterprise, Name: ent.Login}, AccountID: ent.ID}}
	for _, o := range a.s.world.Orgs() {
		out = append(out, orgInstallation(o))
	}
	return out
}

func orgInstallation(o world.Organization) installation {
	return installation{ID: installationIDFor(o.ID), Account: world.Scope{Kind: world.Org, Name: o.Login}, AccountID: o.ID}
}

// installationByID finds an installation by id.
func (a *restAPI) installationByID(id int64) (installation, bool) {
	acct := id - installationIDFor(0)
	if ent := a.s.world.Enterprise(); ent.ID == acct {
		return installation{ID: id, Account: world.Scope{Kind: world.Enterprise, Name: ent.Login}, AccountID: ent.ID}, true
	}
	if o, ok := a.s.world.OrgByID(acct); ok {
		return orgInstallation(o), true
	}
	return installation{}, false
}

// principalKind says how a request authenticated.
type principalKind int

const (
	principalAnonymous principalKind = iota
	principalPAT
	principalApp
	principalInstallation
)

// principal is who a REST request acts as.
type principal struct {
	kind principalKind
	inst installation // principalInstallation only
}

// bucket is the rate-limit account of the principal. It never contains a credential.
func (p principal) bucket() string {
	switch p.kind {
	case principalPAT:
		return "pat"
	case principalApp:
		return "app"
	case principalInstallation:
		return "installation:" + strconv.FormatInt(p.inst.ID, 10)
	}
	return "anonymous"
}

// String names the principal for logs and messages (never a credential).
func (p principal) String() string { return p.bucket() }

// mayAct reports whether p may act on scope: a PAT on anything, an
// organization's installation on that organization and its repositories, the
// enterprise's installation on the enterprise.
func (p principal) mayAct(s world.Scope) bool {
	switch p.kind {
	case principalPAT:
		return true
	case principalInstallation:
		acct := p.inst.Account
		switch s.Kind {
		case world.Enterprise:
			return acct.Kind == world.Enterprise && strings.EqualFold(acct.Name, s.Name)
		case world.Org:
			return acct.Kind == world.Org && strings.EqualFold(acct.Name, s.Name)
		case world.Repo:
			owner, _, _ := strings.Cut(s.Name, "/")
			return acct.Kind == world.Org && strings.EqualFold(acct.Name, owner)
		}
	}
	return false
}

// tokenGrant is a minted installation token.
type tokenGrant struct {
	installationID int64
	expires        time.Time
}

// tokenStore holds the installation tokens minted so far.
type tokenStore struct {
	mu     sync.Mutex
	grants map[string]tokenGrant
}

func newTokenStore() *tokenStore { return &tokenStore{grants: map[string]tokenGrant{}} }

// mint returns a new random token for inst, valid until now+1h, and forgets
// tokens that have expired.
func (ts *tokenStore) mint(inst installation, now time.Time) (string, time.Time, error) {
	tok, err := randomToken("ghs_", 36)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(installationTokenTTL).Truncate(time.Second)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k, g := range ts.grants {
		if !now.Before(g.expires) {
			delete(ts.grants, k)
		}
	}
	ts.grants[tok] = tokenGrant{installationID: inst.ID, expires: exp}
	return tok, exp, nil
}

// lookup returns the grant of a live token.
func (ts *tokenStore) lookup(tok string, now time.Time) (tokenGrant, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	g, ok := ts.grants[tok]
	if !ok || !now.Before(g.expires) {
		return tokenGrant{}, false
	}
	return g, true
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken is prefix followed by n random base62 characters. Tokens are
// credentials, so they come from crypto/rand rather than the seeded source.
func randomToken(prefix string, n int) (string, error) {
	var b strings.Builder
	b.WriteString(prefix)
	max := big.NewInt(int64(len(tokenAlphabet)))
	for i := 0; i < n; i++ {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random token: %w", err)
		}
		b.WriteByte(tokenAlphabet[v.Int64()])
	}
	return b.String(), nil
}

// authError is a refused credential: the status and GitHub's message.
type authError struct {
	status  int
	message string
}

func (e *authError) Error() string { return e.message }

var (
	errRequiresAuth = &authError{401, "Requires authentication"}
	errBadCreds     = &authError{401, "Bad credentials"}
	errJWTDecode    = &authError{401, "A JSON web token could not be decoded"}
	errNotByApp     = &authError{403, "Resource not accessible by integration"}
)

// credential splits an Authorization header into its scheme ("token" or
// "bearer", lower-cased) and value.
func credential(header string) (scheme, value string, ok bool) {
	scheme, value, ok = strings.Cut(strings.TrimSpace(header), " ")
	value = strings.TrimSpace(value)
	if !ok || value == "" {
		return "", "", false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "token" && scheme != "bearer" {
		return "", "", false
	}
	return scheme, value, true
}

// looksLikeJWT reports whether v has the three dot-separated parts of a JWT.
func looksLikeJWT(v string) bool { return strings.Count(v, ".") == 2 }

// authenticate identifies the caller from the Authorization header. jwtOnly
// routes accept only the App's JWT; the others accept the PAT and
// installation tokens, and (so that GET /rate_limit works for every caller)
// an App JWT, which the route then refuses or accepts.
func (a *restAPI) authenticate(header string, jwtOnly bool, now time.Time) (principal, error) {
	if strings.TrimSpace(header) == "" {
		return principal{}, errRequiresAuth
	}
	scheme, value, ok := credential(header)
	if !ok {
		return principal{}, errBadCreds
	}
	if jwtOnly {
		if scheme != "bearer" || !looksLikeJWT(value) {
			return principal{}, errJWTDecode
		}
		if err := a.verifyAppJWT(value, now); err != nil {
			return principal{}, err
		}
		return principal{kind: principalApp}, nil
	}
	if pat := a.s.opts.PAT; pat != "" && subtle.ConstantTimeCompare([]byte(value), []byte(pat)) == 1 {
		return principal{kind: principalPAT}, nil
	}
	if g, ok := a.tokens.lookup(value, now); ok {
		inst, ok := a.installationByID(g.installationID)
		if !ok { // its organization is gone
			return principal{}, errBadCreds
		}
		return principal{kind: principalInstallation, inst: inst}, nil
	}
	if scheme == "bearer" && looksLikeJWT(value) {
		if err := a.verifyAppJWT(value, now); err != nil {
			return principal{}, err
		}
		return principal{kind: principalApp}, nil
	}
	return principal{}, errBadCreds
}

// verifyAppJWT checks an App JWT the way GitHub does: RS256 signed by the
// App's key, issuer the App id, exp in the future but at most ten minutes
// ahead, iat not in the future and at most ten minutes before exp (each
// with a minute's allowance for clock drift). Times are the simulator's clock.
func (a *restAPI) verifyAppJWT(raw string, now time.Time) error {
	pub := a.s.opts.AppPublicKey
	if pub == nil {
		return errJWTDecode
	}
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	if _, err := parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		return errJWTDecode
	}
	if !issuerIs(claims["iss"], a.s.opts.AppID) {
		return &authError{401, "'Issuer' claim ('iss') must be the App's ID"}
	}
	exp, ok := numericClaim(claims["exp"])
	if !ok {
		return &authError{401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"}
	}
	iat, ok := numericClaim(claims["iat"])
	if !ok {
		return &authError{401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"}
	}
	switch {
	case !exp.After(now):
		return &authError{401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"}
	case exp.Sub(now) > jwtMaxLifetime+jwtClockDrift, exp.Sub(iat) > jwtMaxLifetime+jwtClockDrift:
		return &authError{401, "'Expiration time' claim ('exp') is too far in the future"}
	case iat.Sub(now) > jwtClockDrift:
		return &authError{401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"}
	}
	return nil
}

func issuerIs(v any, appID int64) bool {
	switch iss := v.(type) {
	case string:
		return iss == strconv.FormatInt(appID, 10)
	case json.Number:
		n, err := iss.Int64()
		return err == nil && n == appID
	}
	return false
}

func numericClaim(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
