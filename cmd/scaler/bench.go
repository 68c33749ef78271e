package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/store"
	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

const benchUsage = `Usage: scaler bench ingest [flags]

Load generators for measuring a running daemon over loopback.

  ingest   fire signed workflow_job deliveries at the webhook endpoint and
           report throughput, acknowledgement latency and (with -store) how
           many acknowledged deliveries the store holds
`

func benchCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return exitUsage
	}
	switch args[0] {
	case "ingest":
		return benchIngestCmd(ctx, args[1:], environ, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "scaler bench: unknown benchmark %q\n\n%s", args[0], benchUsage)
	return exitUsage
}

func benchIngestCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench ingest", "bench ingest [-url URL] [-secret-env VAR] [-n N] [-c C] [-size BYTES] [-store PATH]", stderr)
	target := fs.String("url", "http://127.0.0.1:8080/webhook", "the daemon's webhook URL (loopback only)")
	secretEnv := fs.String("secret-env", "SCALER_WEBHOOK_SECRET", "environment variable holding the webhook secret (never pass a secret as a flag: the process list shows it)")
	n := fs.Int("n", 20000, "deliveries to send")
	c := fs.Int("c", 64, "concurrent senders")
	size := fs.Int("size", 6<<10, "approximate body size in bytes (GitHub's workflow_job bodies run 7 to 12 KB)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout (GitHub waits 10s)")
	storePath := fs.String("store", "", "after the run, open this store file and count the acknowledged deliveries in it")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "scaler bench ingest: "+format+"\n", a...)
		return exitUsage
	}
	if *n < 1 || *c < 1 || *size < 1024 || *timeout <= 0 {
		return fail("-n and -c must be at least 1, -size at least 1024, -timeout positive")
	}
	if err := checkLoopbackURL(*target); err != nil {
		return fail("%v", err)
	}
	secret := environ[*secretEnv]
	if secret == "" {
		return fail("no webhook secret: set %s (or name another variable with -secret-env)", *secretEnv)
	}
	if *storePath != "" {
		if _, err := os.Stat(*storePath); err != nil {
			return fail("-store: %v", err)
		}
	}

	load := ingestLoad{URL: *target, Secret: secret, N: *n, C: *c, Size: *size, Timeout: *timeout}
	fmt.Fprintf(stdout, "bench ingest: %d workflow_job deliveries of ~%d bytes to %s from %d senders\n", *n, *size, *target, *c)
	res, err := load.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "scaler bench ingest: %v\n", err)
		return exitFail
	}
	res.print(stdout)
	code := exitOK
	if len(res.Acked) == 0 {
		code = exitFail
	}
	if *storePath != "" {
		found, err := countStored(ctx, *storePath, res.Acked)
		if err != nil {
			fmt.Fprintf(stderr, "scaler bench ingest: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "store %s: %d of %d acknowledged deliveries found, %d missing\n",
			*storePath, found, len(res.Acked), len(res.Acked)-found)
		if found != len(res.Acked) {
			code = exitFail
		}
	}
	return code
}

// checkLoopbackURL refuses anything but http(s) to a loopback host: this is
// a load generator, not something to point at other people's servers.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: want http:// or https://", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && !strings.EqualFold(host, "localhost") {
		return fmt.Errorf("-url %q: only loopback addresses (127.0.0.1, ::1, localhost) are allowed", raw)
	}
	return nil
}

// loopbackDialer dials loopback addresses only, whatever a host name
// resolves to.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
			}
			return nil
		},
	}
}

// ingestLoad fires signed workflow_job deliveries, each with a new GUID and
// job id, at a webhook endpoint from C concurrent senders.
type ingestLoad struct {
	URL     string
	Secret  string
	N, C    int
	Size    int
	Timeout time.Duration
	// OnAck, when set, is called after each acknowledged (2xx) delivery
	// with its GUID and the number acknowledged so far (from any sender).
	OnAck func(guid string, acked int)
}

// ingestResult is what a load run saw.
type ingestResult struct {
	Sent      int
	Acked     []string        // GUIDs answered 2xx
	Codes     map[int]int     // by HTTP status; 0 counts transport errors
	Latencies []time.Duration // of the acknowledged deliveries, sorted
	Elapsed   time.Duration
	FirstErr  string // the first transport error, if any
}

func (l ingestLoad) run(ctx context.Context) (ingestResult, error) {
	tmpl, err := webhooktest.NewJobTemplate("queued", l.Size)
	if err != nil {
		return ingestResult{}, err
	}
	tr := &http.Transport{
		DialContext:         loopbackDialer().DialContext,
		MaxIdleConns:        l.C,
		MaxIdleConnsPerHost: l.C,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: l.Timeout}
	// Job ids start from the clock so that runs against one store do not
	// repeat each other's transitions.
	firstJob := time.Now().UnixMilli() * 100_000

	// Build and sign every delivery before the clock starts: the senders
	// share the machine's cores with the daemon, and work they do during
	// the run is CPU the daemon does not get. Memory is n × size.
	type prepared struct {
		guid, sig string
		body      []byte
	}
	work := make([]prepared, l.N)
	for i := range work {
		body := tmpl.Body(firstJob + int64(i))
		work[i] = prepared{guid: webhooktest.NewGUID(), sig: webhooktest.Sign(l.Secret, body), body: body}
	}

	var next, acked atomic.Int64
	var mu sync.Mutex
	res := ingestResult{Codes: map[int]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range l.C {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var guids []string
			var lat []time.Duration
			codes := map[int]int{}
			firstErr := ""
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(l.N) {
					break
				}
				guid, body := work[i].guid, work[i].body
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(body))
				if err != nil {
					firstErr = err.Error()
					codes[0]++
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "runnerscaler-bench/"+version)
				req.Header.Set("X-GitHub-Event", "workflow_job")
				req.Header.Set("X-GitHub-Delivery", guid)
				req.Header.Set("X-GitHub-Hook-ID", "1")
				req.Header.Set("X-Hub-Signature-256", work[i].sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if firstErr == "" {
						firstErr = err.Error()
					}
					codes[0]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				codes[resp.StatusCode]++
				if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
					guids = append(guids, guid)
					lat = append(lat, d)
					k := acked.Add(1)
					if l.OnAck != nil {
						l.OnAck(guid, int(k))
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Acked = append(res.Acked, guids...)
			res.Latencies = append(res.Latencies, lat...)
			for k, v := range codes {
				res.Codes[k] += v
				res.Sent += v
			}
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res, nil
}

// percentile returns the nearest-rank p-th percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

func (r ingestResult) throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Acked)) / r.Elapsed.Seconds()
}

func (r ingestResult) print(w io.Writer) {
	fmt.Fprintf(w, "acknowledged: %d of %d in %s = %.0f deliveries/s\n",
		len(r.Acked), r.Sent, r.Elapsed.Round(time.Millisecond), r.throughput())
	fmt.Fprintf(w, "ack latency: p50 %s  p99 %s  max %s\n",
		fmtMS(percentile(r.Latencies, 50)), fmtMS(percentile(r.Latencies, 99)), fmtMS(percentile(r.Latencies, 100)))
	codes := make([]int, 0, len(r.Codes))
	for c := range r.Codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "transport-error"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, r.Codes[c]))
	}
	fmt.Fprintf(w, "status: %s\n", strings.Join(parts, " "))
	if r.FirstErr != "" {
		fmt.Fprintf(w, "first transport error: %s\n", r.FirstErr)
	}
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// countStored opens the store (a second process may hold it: WAL allows
// that) and counts how many of guids it holds.
func countStored(ctx context.Context, path string, guids []string) (int, error) {
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return 0, err
	}
	found := 0
	for _, g := range guids {
		ok, err := st.HasDelivery(ctx, g)
		if err != nil {
			_ = st.Close()
			return found, err
		}
		if ok {
			found++
		}
	}
	return found, st.Close()
}
