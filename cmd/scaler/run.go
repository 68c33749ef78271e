package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/logging"
	"github.com/runnerscaler/runnerscaler/internal/store"
	"github.com/runnerscaler/runnerscaler/internal/webhook"
)

const defaultConfigPath = "/etc/runnerscaler/config.yaml"

func runCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "run [-config FILE]", stderr)
	path := fs.String("config", defaultConfigPath, "configuration file")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := config.Load(*path, environ)
	if err == nil {
		err = cfg.CheckRuntime()
	}
	if err != nil {
		printProblems(stderr, *path, err)
		return exitFail
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scaler run: %v\n", err)
		return exitFail
	}
	defer func() { _ = log.Sync() }()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("scaler stopped with an error", zap.Error(err))
		return exitFail
	}
	log.Info("scaler stopped")
	return exitOK
}

// run starts the daemon's parts and blocks until ctx ends or one part fails,
// then stops them in reverse order.
func run(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "runnerscaler", Name: "build_info",
		Help: "Always 1; labels say which build is running.",
	}, []string{"version", "revision", "goversion"})
	reg.MustRegister(buildInfo)
	buildInfo.WithLabelValues(version, revision(), runtime.Version()).Set(1)

	gh, err := newGitHubClient(cfg, reg, log)
	if err != nil {
		return err
	}
	log.Info("scaler starting",
		zap.String("version", version),
		zap.String("github_api", cfg.GitHub.APIURL),
		zap.Bool("github_app", gh.IsApp()),
		zap.Int("pools", len(cfg.Pools)),
		zap.String("metrics_listen", cfg.Metrics.Listen),
		zap.String("webhook_listen", cfg.Webhook.Listen))

	st, err := store.Open(ctx, cfg.Store.Path, store.Options{
		Sync:      cfg.Store.Sync,
		Retention: cfg.Store.Retention.D(),
		Logger:    log.Named("store"),
	})
	if err != nil {
		return err // "store: open PATH: why"
	}
	log.Info("store open", zap.String("path", cfg.Store.Path), zap.String("sync", cfg.Store.Sync),
		zap.Int("schema_version", st.SchemaVersion()))
	// The store closes last, once nothing can write to it any more.
	err = serve(ctx, cfg, log, reg, st, gh)
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	return err
}

// retentionInterval is how often old jobs, deliveries and decisions are
// pruned (store.retention says how old).
const retentionInterval = 10 * time.Minute

// serve runs the servers and the background loops over an open store until
// ctx ends or one of them fails, then stops them in reverse start order: the
// webhook server first (it stops taking deliveries and waits for those in
// flight to be committed and answered), then the metrics server.
func serve(ctx context.Context, cfg *config.Config, log *zap.Logger, reg *prometheus.Registry, st *store.Store, gh *ghapi.Client) error {
	whMetrics, err := webhook.NewPrometheusMetrics(reg)
	if err != nil {
		return fmt.Errorf("webhook metrics: %w", err)
	}
	intake := webhook.New(webhook.Config{Secrets: cfg.Webhook.Secrets, MaxBodyBytes: cfg.Webhook.MaxBodyBytes}, st,
		webhook.WithLogger(log.Named("webhook")), webhook.WithMetrics(whMetrics),
		// An installation event may move the App: look installations up afresh.
		webhook.WithInvalidator(gh))

	// Both listeners are bound before either server answers, so a
	// successful /healthz means the webhook port is open too.
	metricsLn, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener on %s: %w", cfg.Metrics.Listen, err)
	}
	webhookLn, err := net.Listen("tcp", cfg.Webhook.Listen)
	if err != nil {
		metricsLn.Close()
		return fmt.Errorf("webhook listener on %s: %w", cfg.Webhook.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	webhookSrv := webhook.NewServer(cfg.Webhook.Listen, intake, cfg.Webhook.Path)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info("metrics listening", zap.String("addr", metricsLn.Addr().String()))
		if err := metricsSrv.Serve(metricsLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		log.Info("webhook listening", zap.String("addr", webhookLn.Addr().String()), zap.String("path", cfg.Webhook.Path))
		if err := webhookSrv.Serve(webhookLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("webhook server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := st.RunRetention(gctx, retentionInterval); err != nil {
			return fmt.Errorf("store retention: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		whErr := webhookSrv.Shutdown(shutdownCtx)
		if whErr != nil {
			whErr = fmt.Errorf("webhook server shutdown: %w", whErr)
		}
		mErr := metricsSrv.Shutdown(shutdownCtx)
		if mErr != nil {
			mErr = fmt.Errorf("metrics server shutdown: %w", mErr)
		}
		return errors.Join(whErr, mErr)
	})
	return g.Wait()
}

// newGitHubClient builds the GitHub client from the configuration, with its
// request metrics on reg.
func newGitHubClient(cfg *config.Config, reg prometheus.Registerer, log *zap.Logger) (*ghapi.Client, error) {
	rec, err := ghapi.NewPrometheusRecorder(reg)
	if err != nil {
		return nil, fmt.Errorf("github metrics: %w", err)
	}
	opts := ghapi.Options{
		APIURL:         cfg.GitHub.APIURL,
		APIVersion:     cfg.GitHub.APIVersion,
		UserAgent:      "runnerscaler/" + version,
		MaxInFlight:    cfg.GitHub.MaxInFlight,
		MaxAttempts:    cfg.GitHub.MaxAttempts,
		RequestTimeout: cfg.GitHub.RequestTimeout.D(),
		Recorder:       rec,
		Logger:         log.Named("github"),
	}
	if cfg.GitHub.Token != "" {
		opts.Token = cfg.GitHub.Token.Reveal()
	} else {
		key, err := cfg.GitHub.App.PrivateKeyPEM()
		if err != nil {
			return nil, fmt.Errorf("github app: %w", err)
		}
		opts.App = &ghapi.AppAuth{ID: cfg.GitHub.App.ID, PrivateKey: key, InstallationID: cfg.GitHub.App.InstallationID}
	}
	return ghapi.New(opts)
}
