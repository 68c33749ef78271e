package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/runnerscaler/runnerscaler/internal/admin"
	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

// adminTokenEnv holds the admin token for status; a flag would show it in the
// process list.
const adminTokenEnv = "SCALER_ADMIN_TOKEN"

// maxStatusBytes bounds the answer read from the daemon; a real status is a
// few kilobytes, as its lists are bounded.
const maxStatusBytes = 8 << 20

func statusCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "status [-config FILE | -addr HOST:PORT] [-token-file FILE] [-json] [-timeout D]", stderr)
	cfgPath := fs.String("config", "", "read the admin address (admin.listen) and token (admin.token) from this configuration file")
	addrFlag := fs.String("addr", "", "the daemon's admin address, host:port (default: admin.listen from -config, else "+config.Default().Admin.Listen+")")
	tokenFile := fs.String("token-file", "", "file holding the admin token (default: $"+adminTokenEnv+", else admin.token from -config)")
	asJSON := fs.Bool("json", false, "print the daemon's JSON answer instead of a report")
	timeout := fs.Duration("timeout", 5*time.Second, "give up on the daemon after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "scaler status: -timeout must be positive, got %s\n", *timeout)
		fs.Usage()
		return exitUsage
	}
	if *addrFlag != "" {
		if err := checkHostPort(*addrFlag); err != nil {
			fmt.Fprintf(stderr, "scaler status: -addr %q: %v\n", *addrFlag, err)
			fs.Usage()
			return exitUsage
		}
	}

	var cfg *config.Config
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath, environ); err != nil {
			printProblems(stderr, *cfgPath, err)
			return exitFail
		}
	}
	addr, err := statusAddr(*addrFlag, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "scaler status: %v\n", err)
		return exitFail
	}
	token, err := statusToken(*tokenFile, environ, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "scaler status: %v\n", err)
		return exitFail
	}

	body, err := fetchStatus(ctx, addr, token, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "scaler status: %v\n", err)
		return exitFail
	}
	var st admin.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "scaler status: the answer from %s is not a status: %v\n", addr, err)
		return exitFail
	}
	if *asJSON {
		// As served, so that scripts see exactly what the daemon said.
		stdout.Write(body)
		if !strings.HasSuffix(string(body), "\n") {
			fmt.Fprintln(stdout)
		}
		return exitOK
	}
	printStatusReport(stdout, st)
	return exitOK
}

// checkHostPort accepts host:port with a numeric port.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, e.g. 127.0.0.1:9103: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("want host:port with a port from 1 to 65535, got port %q", port)
	}
	return nil
}

// statusAddr picks the address to ask: -addr, else the config's admin.listen,
// else the default. A wildcard listen address (0.0.0.0, ::, or no host) is
// reached through loopback, as on the daemon's own host.
func statusAddr(flagAddr string, cfg *config.Config) (string, error) {
	addr := flagAddr
	switch {
	case addr != "":
	case cfg != nil:
		addr = cfg.Admin.Listen
		if addr == "" {
			return "", errors.New("the configuration turns the admin endpoint off (admin.listen is empty): set it and restart the daemon, or pass -addr")
		}
	default:
		addr = config.Default().Admin.Listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// statusToken picks the token: -token-file, else the environment, else the
// config's admin.token (which config.Load already set from the environment
// when the variable is there). "" means none.
func statusToken(tokenFile string, environ map[string]string, cfg *config.Config) (secret.String, error) {
	var token string
	switch {
	case tokenFile != "":
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("reading the admin token: %w", err)
		}
		// Files written by editors and `echo` end in a newline.
		token = strings.TrimSpace(string(data))
		if token == "" {
			return "", fmt.Errorf("the admin token file %s is empty", tokenFile)
		}
	case environ[adminTokenEnv] != "":
		token = strings.TrimSpace(environ[adminTokenEnv])
	case cfg != nil:
		token = cfg.Admin.Token.Reveal()
	}
	// Checked here because net/http's error for a bad header value would
	// leave the operator guessing which header.
	for _, r := range token {
		if r < '!' || r > '~' {
			return "", errors.New("the admin token holds spaces or characters outside printable ASCII, which a bearer token cannot")
		}
	}
	return secret.String(token), nil
}

// fetchStatus GETs the status from the daemon at addr and returns the body of
// a 200; every other outcome is an error that says what to do.
func fetchStatus(ctx context.Context, addr string, token secret.String, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: addr, Path: admin.Path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("admin address %s: %w", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	transport := &http.Transport{
		// Straight to the daemon: a proxy from HTTP_PROXY would see the token.
		Proxy:             nil,
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		// The daemon never redirects; following one could send the token
		// elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the method and URL; the cause is what matters.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("no answer from the daemon's admin endpoint at %s within %s (raise -timeout if the daemon is busy)", addr, timeout)
		}
		return nil, fmt.Errorf("cannot reach the daemon's admin endpoint at %s: %v (is the daemon running, with admin.listen set to this address?)", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	if len(body) > maxStatusBytes {
		return nil, fmt.Errorf("the answer from %s is larger than %d bytes: is this the daemon's admin address?", addr, maxStatusBytes)
	}

	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusUnauthorized:
		if token == "" {
			return nil, fmt.Errorf("the daemon at %s requires the admin token (401): put it in a file and pass -token-file FILE, or set %s", addr, adminTokenEnv)
		}
		return nil, fmt.Errorf("the daemon at %s refused the admin token (401): it must equal the daemon's admin.token (%s)", addr, adminTokenEnv)
	case http.StatusForbidden:
		return nil, fmt.Errorf("the daemon at %s refused this client (403): without admin.token it answers only loopback clients that call it localhost or 127.0.0.1; run scaler status on the daemon's host, or give the daemon an admin.token and pass it here with -token-file", addr)
	case http.StatusNotFound:
		return nil, fmt.Errorf("no admin endpoint at %s (404): is this the daemon's admin.listen address, not its webhook or metrics one?", addr)
	default:
		return nil, fmt.Errorf("the daemon at %s answered %s%s", addr, resp.Status, errorDetail(body))
	}
}

// errorDetail is ": message" from the daemon's JSON error body, or "".
func errorDetail(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return ""
	}
	return ": " + printable(e.Error)
}

// printStatusReport writes the status for a person: pools, jobs, errors. Ages
// are measured from the status's own time, so the client's clock plays no part.
func printStatusReport(w io.Writer, st admin.Status) {
	now := st.GeneratedAt
	d := st.Daemon
	fmt.Fprintf(w, "Daemon %s", printable(orDash(d.Version)))
	if d.DaemonID != "" {
		fmt.Fprintf(w, " (id %s)", printable(d.DaemonID))
	}
	if !d.StartedAt.IsZero() {
		fmt.Fprintf(w, ", up %s since %s", age(now, d.StartedAt), d.StartedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "; status at %s\n\n", now.UTC().Format(time.RFC3339))

	if len(st.Pools) == 0 {
		fmt.Fprintln(w, "No pools.")
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "POOL\tPROVISIONER\tMIN\tMAX\tDESIRED\tSTARTING\tIDLE\tBUSY\tDRAINING\tQUEUED\tRUNNING")
		for _, p := range st.Pools {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d", printable(p.Name), printable(orDash(p.Provisioner)), p.MinIdle, p.MaxRunners, p.Desired)
			for _, s := range admin.RunnerStates() {
				fmt.Fprintf(tw, "\t%d", p.Runners[s])
			}
			fmt.Fprintf(tw, "\t%d\t%d\n", p.Queued, p.Running)
		}
		tw.Flush()
	}

	j := st.Jobs
	fmt.Fprintf(w, "\nJobs: %d queued", j.Queued)
	if j.Unmatched > 0 {
		fmt.Fprintf(w, " (%d matching no pool)", j.Unmatched)
	}
	fmt.Fprintf(w, ", %d running\n", j.Running)
	if len(j.OldestQueued) > 0 {
		if len(j.OldestQueued) < j.Queued {
			fmt.Fprintf(w, "Oldest %d queued:\n", len(j.OldestQueued))
		} else {
			fmt.Fprintln(w, "Queued:")
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "  JOB\tREPO\tPOOL\tWAITING\tLABELS")
		for _, q := range j.OldestQueued {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", q.ID, printable(orDash(q.Repo)), printable(orDash(q.Pool)), age(now, q.QueuedAt), printable(strings.Join(q.Labels, ",")))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if len(st.RecentErrors) == 0 {
		fmt.Fprintln(w, "No recent errors.")
		return
	}
	fmt.Fprintln(w, "Recent errors:")
	tw := newTable(w)
	fmt.Fprintln(tw, "  AGO\tCOMPONENT\tMESSAGE")
	for _, e := range st.RecentErrors {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", age(now, e.Time), printable(orDash(e.Component)), printable(e.Message))
	}
	tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// age is now - t to the second; "-" for an unknown time, and never negative
// (clocks of different machines may disagree a little).
func age(now, t time.Time) string {
	if t.IsZero() || now.IsZero() {
		return "-"
	}
	return max(0, now.Sub(t)).Round(time.Second).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable replaces control characters, which would break the table's
// columns or drive the terminal: repository names and error messages come
// partly from GitHub.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
