package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerscaler/runnerscaler/internal/webhook/webhooktest"
)

// benchSenders is the number of concurrent senders BenchmarkIngest aims at
// (issue #4: 64 concurrent senders).
const benchSenders = 64

// BenchmarkIngest sends signed ~6 KB workflow_job deliveries, each with its
// own GUID and job id, through the real handler into a real SQLite file, from
// about 64 goroutines at once. It reports deliveries/s and the p50/p99 time
// from the start of ServeHTTP to its return (the acknowledgement). Building
// and signing each body is part of every op, as it is part of a sender's work.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 20000x ./internal/webhook/
func BenchmarkIngest(b *testing.B) {
	st := openStore(b)
	h := New(testConfig(), st)
	tmpl, err := webhooktest.NewJobTemplate("queued", 6<<10)
	if err != nil {
		b.Fatal(err)
	}
	target, _ := url.Parse("http://127.0.0.1/webhook")
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration

	b.SetBytes(int64(tmpl.Size()))
	b.SetParallelism((benchSenders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			n := seq.Add(1)
			body := tmpl.Body(1_000_000_000 + n)
			req := &http.Request{
				Method: http.MethodPost, URL: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{
					"Content-Type":        {"application/json"},
					"X-Github-Event":      {"workflow_job"},
					"X-Github-Delivery":   {"bench-" + strconv.FormatInt(n, 10)},
					"X-Hub-Signature-256": {webhooktest.Sign(testSecret, body)},
				},
				Body:          io.NopCloser(bytes.NewReader(body)),
				ContentLength: int64(len(body)),
			}
			req = req.WithContext(context.Background())
			w.code = 0
			start := time.Now()
			h.ServeHTTP(w, req)
			mine = append(mine, time.Since(start))
			if w.code != http.StatusAccepted {
				b.Errorf("delivery %d: status %d", n, w.code)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if b.Elapsed() > 0 {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	if got := countDeliveries(b, st); got != b.N {
		b.Errorf("%d deliveries stored after %d acknowledged", got, b.N)
	}
}

// discardWriter is the least an http.ResponseWriter can be.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (w *discardWriter) WriteHeader(code int) { w.code = code }
