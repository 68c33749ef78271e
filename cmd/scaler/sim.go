package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/runnerscaler/runnerscaler/internal/ghsim"
	"github.com/runnerscaler/runnerscaler/internal/ghsim/world"
	"github.com/runnerscaler/runnerscaler/internal/logging"
)

const simSynopsis = `sim [-listen ADDR] [-webhook-url URL] [-webhook-secret S] [-pat TOKEN]
           [-app-id N -app-public-key FILE] [-world FILE] [-seed N] [-busy-lag D]
           [-rate-limit N] [-jit-budget N] [-secondary-limit N] [-runner-command PATH]

Runs the GitHub simulator until SIGINT or SIGTERM and prints one line on
stdout, "simulator listening on URL", where URL is its base URL (REST API,
control API under _sim/, runner packages under _downloads/). Secrets may come
from the environment instead of flags, which keeps them out of the process
list: SCALER_SIM_WEBHOOK_SECRET, SCALER_SIM_PAT. The world file (YAML or JSON)
describes the whole world: enterprise, orgs with their repos, runner groups;
without one the default world serves (octo-ent; octo-org with app and website;
octo-labs with ml).`

// Environment variables scaler sim reads.
const (
	envSimWebhookSecret = "SCALER_SIM_WEBHOOK_SECRET"
	envSimPAT           = "SCALER_SIM_PAT"
)

// wallClock is the real time, for a world built from a file.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// simCmd is `scaler sim`.
func simCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sim", simSynopsis, stderr)
	listen := fs.String("listen", "127.0.0.1:9999", "address to serve on (port 0 picks a free port)")
	webhookURL := fs.String("webhook-url", "", "where workflow_job deliveries go (none when empty)")
	webhookSecret := fs.String("webhook-secret", "", "signs deliveries (default $"+envSimWebhookSecret+")")
	pat := fs.String("pat", "", "a personal access token the REST API accepts (default $"+envSimPAT+")")
	appID := fs.Int64("app-id", 0, "GitHub App id whose JWTs the REST API accepts (with -app-public-key)")
	appKey := fs.String("app-public-key", "", "PEM file with the App's public key (a private key or certificate also works)")
	worldFile := fs.String("world", "", "YAML or JSON world file (default: the built-in world)")
	seed := fs.Int64("seed", 0, "seeds every random choice (faults, dropped webhooks)")
	busyLag := fs.Duration("busy-lag", 0, "how long list/get report busy=false after a runner takes a job, and deletes succeed")
	rateLimit := fs.Int("rate-limit", 5000, "core requests per hour per installation")
	jitBudget := fs.Int("jit-budget", 0, "generate-jitconfig calls per hour per installation (0: unlimited)")
	secondary := fs.Int("secondary-limit", 0, "requests per minute per installation before a secondary limit (0: off)")
	runnerCommand := fs.String("runner-command", "", "program the runner packages' run.sh and config.sh exec as `PROGRAM sim-runner` (default: this binary)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or console")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "scaler sim: %s\n", msg)
		fs.Usage()
		return exitUsage
	}
	if (*appID == 0) != (*appKey == "") {
		return usageErr("-app-id and -app-public-key go together")
	}
	if *rateLimit <= 0 || *jitBudget < 0 || *secondary < 0 || *busyLag < 0 {
		return usageErr("-rate-limit must be positive; -jit-budget, -secondary-limit and -busy-lag must not be negative")
	}
	if *webhookSecret == "" {
		*webhookSecret = environ[envSimWebhookSecret]
	}
	if *pat == "" {
		*pat = environ[envSimPAT]
	}
	log, err := logging.New(*logLevel, *logFormat, stderr)
	if err != nil {
		return usageErr(err.Error())
	}
	defer func() { _ = log.Sync() }()

	opts := ghsim.Options{
		Seed: *seed, PAT: *pat, AppID: *appID, WebhookURL: *webhookURL, WebhookSecret: *webhookSecret,
		RateLimit: *rateLimit, JITBudget: *jitBudget, SecondaryLimit: *secondary, BusyLag: *busyLag,
		RunnerCommand: *runnerCommand, Logger: log.Named("sim"),
	}
	if *appKey != "" {
		if opts.AppPublicKey, err = loadRSAPublicKey(*appKey); err != nil {
			fmt.Fprintf(stderr, "scaler sim: -app-public-key %s: %v\n", *appKey, err)
			return exitFail
		}
	}
	if *worldFile != "" {
		if opts.World, err = loadWorld(*worldFile); err != nil {
			fmt.Fprintf(stderr, "scaler sim: -world %s: %v\n", *worldFile, err)
			return exitFail
		}
	}
	if *webhookURL != "" && *webhookSecret == "" {
		log.Warn("webhook deliveries will be unsigned: no -webhook-secret or " + envSimWebhookSecret)
	}
	if host, _, err := net.SplitHostPort(*listen); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			log.Warn("the simulator is meant for loopback: its control API needs no credentials", zap.String("listen", *listen))
		}
	}

	sim, err := ghsim.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "scaler sim: %v\n", err)
		return exitFail
	}
	url, err := sim.Start(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "scaler sim: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "simulator listening on %s\n", url)
	log.Info("simulator started", zap.String("url", url), zap.Bool("pat", opts.PAT != ""),
		zap.Int64("app_id", opts.AppID), zap.String("webhook_url", opts.WebhookURL), zap.Int64("seed", opts.Seed))
	<-ctx.Done()
	log.Info("simulator stopping")
	if err := sim.Close(); err != nil {
		log.Error("simulator stopped with an error", zap.Error(err))
		return exitFail
	}
	log.Info("simulator stopped")
	return exitOK
}

// loadWorld reads a world.Spec from YAML or JSON (JSON is YAML), refusing
// unknown keys.
func loadWorld(path string) (*world.World, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec world.Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return world.NewFromSpec(wallClock{}, spec)
}

// loadRSAPublicKey reads an RSA public key from a PEM file holding a public
// key (PKIX or PKCS#1), a certificate, or a private key.
func loadRSAPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "RSA PRIVATE KEY":
		var k *rsa.PrivateKey
		if k, err = x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			key = &k.PublicKey
		}
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok {
				key = &rk.PublicKey
			}
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE or a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return pub, nil
}
