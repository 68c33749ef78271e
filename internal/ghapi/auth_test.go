package ghapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/oapitest"
)

const testAppID = 12345

func newKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// verifyAppJWT checks an "Authorization: Bearer <jwt>" header the way GitHub
// does: RS256 signed by the App's key, issuer the App id, short lifetime.
func verifyAppJWT(header string, pub *rsa.PublicKey) error {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return fmt.Errorf("authorization %q is not a bearer JWT", strings.SplitN(header, " ", 2)[0])
	}
	claims := &jwt.RegisteredClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"}))
	if err != nil || !tok.Valid {
		return fmt.Errorf("jwt invalid: %v", err)
	}
	if claims.Issuer != fmt.Sprint(testAppID) {
		return fmt.Errorf("jwt issuer %q, want %d", claims.Issuer, testAppID)
	}
	if claims.ExpiresAt == nil || claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 11*time.Minute {
		return fmt.Errorf("jwt lifetime must be at most 10 minutes")
	}
	return nil
}

// tokenIssuer is the access_tokens endpoint: it verifies the App JWT and
// hands out numbered installation tokens living ttl.
type tokenIssuer struct {
	pub *rsa.PublicKey
	ttl time.Duration

	mu     sync.Mutex
	issued int
	errs   []error
}

func (ti *tokenIssuer) handle(w http.ResponseWriter, r *http.Request) {
	if err := verifyAppJWT(r.Header.Get("Authorization"), ti.pub); err != nil {
		ti.mu.Lock()
		ti.errs = append(ti.errs, err)
		ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"A JSON web token could not be decoded","documentation_url":"https://docs.github.com/rest"}`))
		return
	}
	ti.mu.Lock()
	ti.issued++
	n := ti.issued
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      fmt.Sprintf("ghs_installation%d", n),
		"expires_at": time.Now().Add(ti.ttl).UTC().Format(time.RFC3339),
	})
}

func (ti *tokenIssuer) count() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.issued
}

func newAppClient(t *testing.T, srv *oapitest.Server, keyPEM []byte) *ghapi.Client {
	t.Helper()
	c, err := ghapi.New(ghapi.Options{APIURL: srv.URL, App: &ghapi.AppAuth{ID: testAppID, PrivateKey: keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppAuthEndToEnd(t *testing.T) {
	key, keyPEM := newKey(t)
	srv := oapitest.NewServer(t)
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: time.Hour}
	srv.Handle("apps/create-installation-access-token", issuer.handle)
	c := newAppClient(t, srv, keyPEM)
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, err := c.ListRunners(ctx, orgScope, ghapi.ListRunnersOptions{}); err != nil {
			t.Fatalf("list runners #%d: %v", i, err)
		}
	}
	// A second repository of the same owner resolves to the same installation.
	if _, err := c.ListRunners(ctx, repoScope, ghapi.ListRunnersOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := issuer.count(); got != 1 {
		t.Errorf("access_tokens called %d times, want 1 (token reused until near expiry)", got)
	}
	if got := srv.Count("apps/get-org-installation"); got != 1 {
		t.Errorf("org installation looked up %d times, want 1 (cached)", got)
	}
	for _, r := range srv.Requests() {
		switch r.OperationID {
		case "apps/get-org-installation", "apps/get-repo-installation", "apps/create-installation-access-token":
			if err := verifyAppJWT(r.Header.Get("Authorization"), &key.PublicKey); err != nil {
				t.Errorf("%s: %v", r.OperationID, err)
			}
		default:
			if got := r.Header.Get("Authorization"); got != "token ghs_installation1" {
				t.Errorf("%s sent Authorization %q, want the installation token", r.OperationID, got)
			}
		}
	}
	issuer.mu.Lock()
	defer issuer.mu.Unlock()
	if len(issuer.errs) > 0 {
		t.Errorf("server rejected JWTs: %v", issuer.errs)
	}
}

func TestAppAuthRefreshesNearExpiry(t *testing.T) {
	key, keyPEM := newKey(t)
	srv := oapitest.NewServer(t)
	// Tokens that expire in 30 s are inside the refresh margin, so each call
	// must fetch a fresh one instead of using a token about to die.
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: 30 * time.Second}
	srv.Handle("apps/create-installation-access-token", issuer.handle)
	c := newAppClient(t, srv, keyPEM)
	for i := 0; i < 3; i++ {
		if _, err := c.GetRunner(context.Background(), orgScope, 23); err != nil {
			t.Fatal(err)
		}
	}
	if got := issuer.count(); got != 3 {
		t.Errorf("access_tokens called %d times, want 3", got)
	}
}

func TestAppAuthWrongKeyRejected(t *testing.T) {
	key, _ := newKey(t)
	_, otherPEM := newKey(t)
	srv := oapitest.NewServer(t)
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: time.Hour}
	srv.Handle("apps/create-installation-access-token", issuer.handle)
	c := newAppClient(t, srv, otherPEM)
	_, err := c.ListRunners(context.Background(), orgScope, ghapi.ListRunnersOptions{})
	if err == nil {
		t.Fatal("a JWT signed with the wrong key was accepted")
	}
	if issuer.count() != 0 {
		t.Error("token issued for a bad JWT")
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error leaks key material: %v", err)
	}
}

func TestEnterpriseInstallationDiscovery(t *testing.T) {
	key, keyPEM := newKey(t)
	srv := oapitest.NewServer(t)
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: time.Hour}
	srv.Handle("apps/create-installation-access-token", issuer.handle)

	// Two installations: a user one and the enterprise one we want.
	items := exampleJSON(t, "/app/installations", "get", "200").([]any)
	user := items[0].(map[string]any)
	ent := cloneJSON(t, user)
	ent["id"] = float64(77)
	ent["target_type"] = "Enterprise"
	ent["account"].(map[string]any)["login"] = "big-corp"
	body, _ := json.Marshal([]any{user, ent})
	srv.Reply("apps/list-installations", oapitest.Response{Status: 200, Body: body})

	c := newAppClient(t, srv, keyPEM)
	id, err := c.InstallationID(context.Background(), entScope)
	if err != nil {
		t.Fatal(err)
	}
	if id != 77 {
		t.Errorf("installation %d, want 77", id)
	}
	if _, err := c.ListRunners(context.Background(), entScope, ghapi.ListRunnersOptions{}); err != nil {
		t.Fatal(err)
	}
	if last := srv.Last(t); last.Header.Get("Authorization") != "token ghs_installation1" {
		t.Errorf("enterprise call not authenticated with the installation token")
	}
	var tokenPaths []string
	for _, r := range srv.Requests() {
		if r.OperationID == "apps/create-installation-access-token" {
			tokenPaths = append(tokenPaths, r.Path)
		}
	}
	if len(tokenPaths) != 1 || tokenPaths[0] != "/app/installations/77/access_tokens" {
		t.Errorf("token requests %v, want one for installation 77", tokenPaths)
	}
}

func TestConfiguredInstallationSkipsDiscovery(t *testing.T) {
	key, keyPEM := newKey(t)
	srv := oapitest.NewServer(t)
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: time.Hour}
	srv.Handle("apps/create-installation-access-token", issuer.handle)
	c, err := ghapi.New(ghapi.Options{APIURL: srv.URL, App: &ghapi.AppAuth{ID: testAppID, PrivateKey: keyPEM, InstallationID: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListRunners(context.Background(), orgScope, ghapi.ListRunnersOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("apps/get-org-installation"); n != 0 {
		t.Errorf("looked up the installation %d times although it was configured", n)
	}
}

// exampleJSON returns the documented example of an operation's response.
func exampleJSON(t *testing.T, path, method, status string) any {
	t.Helper()
	op := oapitest.Spec(t).Paths.Value(path).GetOperation(strings.ToUpper(method))
	mt := op.Responses.Value(status).Value.Content.Get("application/json")
	for _, ex := range mt.Examples {
		return cloneJSON(t, ex.Value.Value)
	}
	t.Fatalf("no example for %s %s", method, path)
	return nil
}

func cloneJSON[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInvalidateInstallationsLooksUpAgain(t *testing.T) {
	key, keyPEM := newKey(t)
	srv := oapitest.NewServer(t)
	issuer := &tokenIssuer{pub: &key.PublicKey, ttl: time.Hour}
	srv.Handle("apps/create-installation-access-token", issuer.handle)
	c := newAppClient(t, srv, keyPEM)
	ctx := context.Background()
	if _, err := c.InstallationID(ctx, orgScope); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstallationID(ctx, orgScope); err != nil {
		t.Fatal(err)
	}
	c.InvalidateInstallations()
	if _, err := c.InstallationID(ctx, orgScope); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("apps/get-org-installation"); n != 2 {
		t.Errorf("%d lookups, want 2 (cached, then looked up again after invalidation)", n)
	}
}
