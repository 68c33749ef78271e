package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/runnerscaler/runnerscaler/internal/admin"
	"github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/ghapi"
	"github.com/runnerscaler/runnerscaler/internal/ghapi/transport"
	"github.com/runnerscaler/runnerscaler/internal/logging"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
	"github.com/runnerscaler/runnerscaler/internal/provisioner/ec2"
	"github.com/runnerscaler/runnerscaler/internal/provisioner/external"
	"github.com/runnerscaler/runnerscaler/internal/provisioner/kubernetes"
	"github.com/runnerscaler/runnerscaler/internal/provisioner/local"
	"github.com/runnerscaler/runnerscaler/internal/recovery"
	"github.com/runnerscaler/runnerscaler/internal/scaler"
	"github.com/runnerscaler/runnerscaler/internal/sdnotify"
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
	routeKlog(cfg, log)
	if err := run(ctx, cfg, filepath.Dir(*path), environ["NOTIFY_SOCKET"], log); err != nil {
		log.Error("scaler stopped with an error", zap.Error(err))
		return exitFail
	}
	log.Info("scaler stopped")
	return exitOK
}

// run starts the daemon's parts and blocks until ctx ends or one part fails,
// then stops them in reverse order.
// notifySocket is systemd's $NOTIFY_SOCKET ("" outside systemd or with
// Type=simple): the daemon says READY=1 there once it serves.
func run(ctx context.Context, cfg *config.Config, configDir, notifySocket string, log *zap.Logger) error {
	// The metrics listener answers first: /healthz at once, /readyz 503
	// until the store is open and start-up is done.
	metricsLn, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener on %s: %w", cfg.Metrics.Listen, err)
	}
	ready := newReadiness()
	sw := &handlerSwitch{}
	sw.set(earlyMux(ready))
	metricsSrv := &http.Server{Handler: sw, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- metricsSrv.Serve(metricsLn) }()
	log.Info("metrics listening", zap.String("addr", metricsLn.Addr().String()))
	stopMetrics := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := metricsSrv.Shutdown(sctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	// The webhook port is bound now too, so a successful /healthz means it
	// is open: deliveries arriving during start-up wait in its backlog.
	webhookLn, err := net.Listen("tcp", cfg.Webhook.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("webhook listener on %s: %w", cfg.Webhook.Listen, err), stopMetrics())
	}
	d, err := newDaemon(ctx, cfg, configDir, log, ready)
	if err != nil {
		webhookLn.Close()
		return errors.Join(err, stopMetrics())
	}
	d.metrics, d.metricsSwitch = metricsSrv, sw
	d.notifySocket = notifySocket
	// The store closes last, once nothing can write to it any more.
	return errors.Join(d.serve(ctx, metricsLn, webhookLn), stopMetrics(), d.close())
}

// daemonParts is the daemon's parts, built and not yet serving.
type daemonParts struct {
	cfg       *config.Config
	configDir string
	log       *zap.Logger
	reg       *prometheus.Registry
	ready     *readiness
	// metrics, when set, is the metrics listener's server, already
	// serving (run starts it before the store opens); serve switches its
	// handler instead of starting one.
	metrics       *http.Server
	metricsSwitch *handlerSwitch
	notifySocket  string // systemd's, for READY=1 and STOPPING=1
	daemonID      string
	gh            *ghapi.Client
	st            *store.Store
	provs         map[string]provisioner.Provisioner
	regs          *ec2.RegistrationServer
	groups        *scaler.GroupKeeper
	access        *scaler.AccessCache
	engine        *scaler.Engine
	closers       []func() error // in the order to call them
}

// newDaemon builds the daemon's parts from the configuration: the GitHub
// client, the store, the provisioners, the runner-group keeper, the access
// cache and the scaling engine. It does not listen.
// newDaemon builds the daemon's parts; ready (nil: one of its own) learns
// as each is in place.
func newDaemon(ctx context.Context, cfg *config.Config, configDir string, log *zap.Logger, ready *readiness) (_ *daemonParts, err error) {
	if ready == nil {
		ready = newReadiness()
	}
	ready.config.Store(true)
	d := &daemonParts{cfg: cfg, configDir: configDir, log: log, reg: prometheus.NewRegistry(), ready: ready}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.close())
		}
	}()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "runnerscaler", Name: "build_info",
		Help: "Always 1; labels say which build is running.",
	}, []string{"version", "revision", "goversion"})
	d.reg.MustRegister(buildInfo)
	buildInfo.WithLabelValues(version, revision(), runtime.Version()).Set(1)

	if d.gh, err = newGitHubClient(cfg, d.reg, ready.github, log); err != nil {
		return nil, err
	}
	log.Info("scaler starting",
		zap.String("version", version),
		zap.String("github_api", cfg.GitHub.APIURL),
		zap.Bool("github_app", d.gh.IsApp()),
		zap.Int("pools", len(cfg.Pools)),
		zap.String("metrics_listen", cfg.Metrics.Listen),
		zap.String("webhook_listen", cfg.Webhook.Listen))

	d.st, err = store.Open(ctx, cfg.Store.Path, store.Options{
		Sync:      cfg.Store.Sync,
		Retention: cfg.Store.Retention.D(),
		Logger:    log.Named("store"),
	})
	if err != nil {
		return nil, err // "store: open PATH: why"
	}
	d.closers = append(d.closers, func() error {
		if err := d.st.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		return nil
	})
	log.Info("store open", zap.String("path", cfg.Store.Path), zap.String("sync", cfg.Store.Sync),
		zap.Int("schema_version", d.st.SchemaVersion()))
	ready.store.Store(true)

	pools, err := scaler.PoolsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.buildProvisioners(pools); err != nil {
		return nil, err
	}
	ready.provisioners.Store(true)
	d.access = scaler.NewAccessCache(d.gh, scaler.WithAccessLogger(log.Named("access")))
	d.groups = scaler.NewGroupKeeper(d.gh, cfg.RunnerGroups, log.Named("groups"))
	d.groups.SetObserver(d.access.Seed)
	metrics, err := scaler.NewPrometheusMetrics(d.reg)
	if err != nil {
		return nil, fmt.Errorf("scaler metrics: %w", err)
	}
	d.engine, err = scaler.New(scaler.EngineConfig{
		Pools:        pools,
		Store:        d.st,
		GitHub:       d.gh,
		Provisioners: d.provs,
		Groups:       d.groups,
		Access:       d.access,
		Metrics:      metrics,
		Logger:       log.Named("scaler"),
		DaemonID:     d.daemonID,

		ConfirmInterval:   cfg.Lifecycle.ConfirmInterval.D(),
		RemovalSettle:     cfg.Lifecycle.RemovalSettle.D(),
		ReconcileInterval: cfg.Lifecycle.ReconcileInterval.D(),
		BootstrapTimeout:  cfg.Lifecycle.BootstrapTimeout.D(),
		OfflineTimeout:    cfg.Lifecycle.OfflineTimeout.D(),
		OrphanGrace:       cfg.Lifecycle.OrphanGrace.D(),
		ShutdownTimeout:   cfg.Lifecycle.ShutdownTimeout.D(),
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// buildProvisioners builds the provisioners the pools use, each wrapped with
// metrics and retries.
func (d *daemonParts) buildProvisioners(pools []scaler.Pool) error {
	stateDir := filepath.Dir(d.cfg.Store.Path)
	daemonID, err := loadDaemonID(stateDir)
	if err != nil {
		return err
	}
	d.daemonID = daemonID
	rec, err := provisioner.NewPrometheusRecorder(d.reg)
	if err != nil {
		return fmt.Errorf("provisioner metrics: %w", err)
	}
	d.regs = ec2.NewRegistrationServer()
	registry := provisioner.NewRegistry()
	registry.Register("local", local.Factory)
	registry.Register("external", external.Factory)
	registry.Register("ec2", ec2.NewFactory(d.regs))
	registry.Register("kubernetes", kubernetes.Factory)
	var downloads provisioner.RunnerDownloads
	if len(pools) > 0 {
		downloads = scaler.RunnerDownloads(d.gh, pools[0].Scope)
	}
	d.provs = map[string]provisioner.Provisioner{}
	for _, p := range pools {
		if _, done := d.provs[p.Provisioner]; done {
			continue
		}
		pc, ok := d.cfg.Provisioners[p.Provisioner]
		if !ok {
			return fmt.Errorf("pool %s: provisioner %q is not configured", p.Name, p.Provisioner)
		}
		built, err := registry.Build(pc.Type, pc.Settings, provisioner.Env{
			Name: p.Provisioner, DaemonID: daemonID, StateDir: stateDir, ConfigDir: d.configDir,
			Downloads: downloads, Logger: d.log.Named("provisioner"),
			BootstrapTimeout: d.cfg.Lifecycle.BootstrapTimeout.D(),
		})
		if err != nil {
			return fmt.Errorf("provisioners.%s: %w", p.Provisioner, err)
		}
		if c, ok := built.(io.Closer); ok {
			d.closers = append([]func() error{c.Close}, d.closers...)
		}
		d.provs[p.Provisioner] = provisioner.Instrument(p.Provisioner, built, rec, provisioner.RetryPolicy{}, d.log.Named("provisioner"))
	}
	return nil
}

// loadDaemonID reads the daemon's id from stateDir/daemon-id, making one the
// first time. Every instance is tagged with it.
func loadDaemonID(stateDir string) (string, error) {
	path := filepath.Join(stateDir, "daemon-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("daemon id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("daemon id: %w", err)
	}
	id := "rs-" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("daemon id: %w", err)
	}
	return id, nil
}

// close releases what newDaemon opened, the store last.
func (d *daemonParts) close() error {
	var errs []error
	for _, c := range d.closers {
		errs = append(errs, c())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// retentionInterval is how often old jobs, deliveries and decisions are
// pruned (store.retention says how old).
const retentionInterval = 10 * time.Minute

// serve runs the servers and the background loops until ctx ends or one of
// them fails, then stops them in reverse start order: the webhook server
// first (it stops taking deliveries and waits for those in flight to be
// committed and answered), then the metrics server, then the engine (which
// waits for the creates and deletes in flight).
func (d *daemonParts) serve(ctx context.Context, metricsLn, webhookLn net.Listener) error {
	cfg, log, st := d.cfg, d.log, d.st
	whMetrics, err := webhook.NewPrometheusMetrics(d.reg)
	if err != nil {
		metricsLn.Close()
		webhookLn.Close()
		return fmt.Errorf("webhook metrics: %w", err)
	}
	intake := webhook.New(webhook.Config{Secrets: cfg.Webhook.Secrets, MaxBodyBytes: cfg.Webhook.MaxBodyBytes}, st,
		webhook.WithLogger(log.Named("webhook")), webhook.WithMetrics(whMetrics),
		// An installation event may move the App and change which
		// repositories it sees: look installations and access up afresh.
		webhook.WithInvalidator(invalidators{d.gh, d.access}),
		webhook.WithNotifier(d.engine))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/readyz", d.ready)
	metricsSrv := d.metrics
	if metricsSrv == nil {
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	} else {
		d.metricsSwitch.set(mux)
	}
	webhookSrv := webhook.NewServer(cfg.Webhook.Listen, intake, cfg.Webhook.Path)
	// EC2 instances fetch their registration from the webhook listener.
	whHandler := webhookSrv.Handler
	// From SIGTERM on, deliveries are refused with 503 and Retry-After:
	// GitHub records them as failed, and the next start redelivers them.
	var stopping atomic.Bool
	webhookSrv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ec2.RegistrationPath {
			d.regs.ServeHTTP(w, r)
			return
		}
		if stopping.Load() {
			w.Header().Set("Retry-After", "60")
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		whHandler.ServeHTTP(w, r)
	})
	src := &statusSource{engine: d.engine, st: st, daemonID: d.daemonID, started: time.Now()}
	if err := d.reg.Register(newStateCollector(src)); err != nil {
		metricsLn.Close()
		webhookLn.Close()
		return fmt.Errorf("state metrics: %w", err)
	}
	var adminSrv *http.Server
	var adminLn net.Listener
	if cfg.Admin.Listen != "" {
		adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			metricsLn.Close()
			webhookLn.Close()
			return fmt.Errorf("admin listener on %s: %w", cfg.Admin.Listen, err)
		}
		adminSrv = admin.NewServer(cfg.Admin.Listen, admin.Handler(src, cfg.Admin.Token, log.Named("admin")))
	}

	// Groups in shape and their access lists cached before the first job
	// is matched; failures are retried by the keeper's loop and on demand.
	// The provisioners' one-time work (the local provisioner's runner
	// package) is done meanwhile, so the first creates do not wait for it.
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		d.engine.Warm(ctx)
	}()
	if err := d.groups.Reconcile(ctx); err != nil {
		log.Warn("runner groups not in shape yet; retrying", zap.Error(err))
	}
	if err := d.access.Warm(ctx, d.engine.Pools()); err != nil {
		log.Warn("runner group access not cached yet", zap.Error(err))
	}
	<-warmed
	// Runners and instances from before a restart (or a crash mid-create)
	// are accounted for before the first job is planned.
	if _, err := d.engine.Reconcile(ctx); err != nil {
		log.Warn("start-up reconciliation failed; the loop retries", zap.Error(err))
	}
	d.ready.started.Store(true)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.Info("metrics listening", zap.String("addr", metricsLn.Addr().String()))
		if d.metrics != nil {
			return nil // serving since before the store opened
		}
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
	// The groups were reconciled above: the keeper's next pass is one
	// interval away (GroupKeeper.Run would reconcile again at once, two
	// more API calls for nothing).
	g.Go(func() error {
		t := time.NewTicker(scaler.DefaultGroupReconcileInterval)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			if err := d.groups.Reconcile(gctx); err != nil && gctx.Err() == nil {
				log.Warn("runner groups not in shape; retrying on the next pass", zap.Error(err))
			}
		}
	})
	if adminSrv != nil {
		g.Go(func() error {
			log.Info("admin listening", zap.String("addr", adminLn.Addr().String()))
			if err := adminSrv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin server: %w", err)
			}
			return nil
		})
	}
	// Missed webhooks: failed deliveries redelivered (App only: the
	// deliveries API needs the App's JWT), stale queued jobs checked.
	recMetrics, err := recovery.NewPrometheusMetrics(d.reg)
	if err != nil {
		return fmt.Errorf("recovery metrics: %w", err)
	}
	apply := &jobApplier{st: st, engine: d.engine}
	if cfg.GitHub.UsesApp() && cfg.Lifecycle.RedeliverInterval > 0 {
		red := recovery.NewRedeliverer(d.gh, st, recovery.RedelivererConfig{
			Interval: cfg.Lifecycle.RedeliverInterval.D(), MaxPerCycle: cfg.Lifecycle.MaxRedeliveriesPerCycle, Metrics: recMetrics,
			// A failure younger than this is judged on the next cycle.
			SettleDelay: min(10*time.Second, cfg.Lifecycle.RedeliverInterval.D()/2),
		}, log.Named("redeliver"))
		g.Go(func() error { return red.Run(gctx) })
	} else {
		log.Info("webhook redelivery off (it needs a GitHub App and lifecycle.redeliver_interval > 0); stale queued jobs are still checked")
	}
	stale := recovery.NewStaleJobs(st, d.gh, apply, recovery.StaleJobsConfig{
		Interval: min(time.Minute, cfg.Lifecycle.StaleJobAfter.D()/2), StaleAfter: cfg.Lifecycle.StaleJobAfter.D(), Metrics: recMetrics,
	}, log.Named("stale-jobs"))
	g.Go(func() error { return stale.Run(gctx) })

	// The engine outlives gctx: on SIGTERM it may first drain idle runners,
	// and its creates and removals in flight get shutdown_timeout to end.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan struct{})
	g.Go(func() error {
		defer close(engineDone)
		return d.engine.Run(engineCtx)
	})
	// Start-up is done (groups, reconciliation): tell systemd (Type=notify).
	if sent, err := sdnotify.Notify(d.notifySocket, sdnotify.Ready); err != nil {
		log.Warn("cannot tell systemd the daemon is ready", zap.Error(err))
	} else if sent {
		log.Info("told systemd the daemon is ready")
	}
	g.Go(func() error {
		<-gctx.Done()
		stopping.Store(true)
		_, _ = sdnotify.Notify(d.notifySocket, sdnotify.Stopping)
		deadline := cfg.Lifecycle.ShutdownTimeout.D()
		log.Info("shutting down: webhooks answered 503 from now on", zap.Duration("shutdown_timeout", deadline),
			zap.Bool("drain_on_shutdown", cfg.Lifecycle.DrainOnShutdown))
		shutdownCtx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if cfg.Lifecycle.DrainOnShutdown {
			n := d.engine.Drain(shutdownCtx)
			log.Info("idle runners drained", zap.Int("removed", n))
		}
		stopEngine()
		select {
		case <-engineDone:
		case <-shutdownCtx.Done():
			log.Warn("work still in flight at the shutdown deadline; it is cut short")
			<-engineDone
		}
		srvCtx, cancelSrv := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelSrv()
		var errs []error
		servers := map[string]*http.Server{"webhook": webhookSrv, "metrics": metricsSrv, "admin": adminSrv}
		if d.metrics != nil {
			delete(servers, "metrics") // run started it and stops it, after the store's last writer
		}
		for name, srv := range servers {
			if srv == nil {
				continue
			}
			if err := srv.Shutdown(srvCtx); err != nil {
				errs = append(errs, fmt.Errorf("%s server shutdown: %w", name, err))
			}
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

// invalidators tells every cache of an installation change.
type invalidators struct {
	gh     *ghapi.Client
	access *scaler.AccessCache
}

func (i invalidators) InvalidateInstallations() {
	i.gh.InvalidateInstallations()
	i.access.Invalidate()
}

// newGitHubClient builds the GitHub client from the configuration, with its
// request metrics on reg.
// newGitHubClient builds the GitHub client from the configuration, with its
// request metrics on reg; seen (if not nil) also learns of every answer.
func newGitHubClient(cfg *config.Config, reg prometheus.Registerer, seen *githubSeen, log *zap.Logger) (*ghapi.Client, error) {
	prom, err := ghapi.NewPrometheusRecorder(reg)
	if err != nil {
		return nil, fmt.Errorf("github metrics: %w", err)
	}
	var rec transport.Recorder = prom
	if seen != nil {
		seen.next = prom
		rec = seen
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

// klogRouted makes routeKlog act once per process: klog's logger is
// process-wide and may only be set before anything logs through it.
var klogRouted sync.Once

// routeKlog sends client-go's klog output (the kubernetes provisioner)
// into the daemon's logger, so stderr stays one JSON record per line.
func routeKlog(cfg *config.Config, log *zap.Logger) {
	for _, p := range cfg.Provisioners {
		if p.Type == "kubernetes" {
			klogRouted.Do(func() { klog.SetLogger(logging.Logr(log.Named("client-go"))) })
			return
		}
	}
}
