package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/runnerscaler/runnerscaler/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes: 0 success, 1 failure (including an invalid config), 2 usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `scaler keeps the right number of GitHub Actions self-hosted runners alive.

Usage:
  scaler demo [-jobs N] [-json]     the whole loop on this machine: simulator, daemon, local runners
  scaler run [-config FILE]        run the daemon
  scaler validate -config FILE     check a configuration file and print every problem
  scaler version                   print the version
  scaler sim [-listen ADDR] ...    run the GitHub simulator (for tests, demos, trying a config)
  scaler sim-runner ...            a simulated runner process for the simulator (its run.sh and config.sh run it)
  scaler bench ingest ...          fire signed deliveries at a running daemon over loopback; report throughput and latency
  scaler COMMAND -h                help for a command

Environment variables override the file (see config.example.yaml); secrets
belong there, not in the file: SCALER_GITHUB_APP_PRIVATE_KEY,
SCALER_GITHUB_TOKEN, SCALER_WEBHOOK_SECRET.
`

// cli runs one subcommand and returns the process exit code.
func cli(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		return versionCmd(rest, stdout, stderr)
	case "validate":
		return validateCmd(rest, environ, stdout, stderr)
	case "run":
		return runCmd(ctx, rest, environ, stdout, stderr)
	case "status":
		return statusCmd(ctx, rest, environ, stdout, stderr)
	case "demo":
		return demoCmd(ctx, rest, environ, stdout, stderr)
	case "sim":
		return simCmd(ctx, rest, environ, stdout, stderr)
	case "sim-runner":
		return simRunnerCmd(ctx, rest, environ, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, environ, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "scaler: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// newFlagSet returns a flag set that reports -h as exit 0 and errors as exit 2.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: scaler %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags returns (exit code, done): done is true when the caller must return.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "scaler %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, true
	}
	return 0, false
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "version", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintf(stdout, "scaler %s (revision %s, %s)\n", version, revision(), runtime.Version())
	return exitOK
}

// revision is the VCS revision embedded by the Go toolchain, if any.
func revision() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func validateCmd(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate -config FILE [-runtime]", stderr)
	path := fs.String("config", "", "configuration file to check (required)")
	runtimeChecks := fs.Bool("runtime", false, "also check what run needs: a readable App private key and a webhook secret")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "scaler validate: -config FILE is required")
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*path, environ)
	if err == nil && *runtimeChecks {
		err = cfg.CheckRuntime()
	}
	if err != nil {
		printProblems(stderr, *path, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: valid (%d pools, %d runner groups, %d provisioners)\n",
		*path, len(cfg.Pools), len(cfg.RunnerGroups), len(cfg.Provisioners))
	return exitOK
}

// printProblems writes one line per problem so each can be read and fixed.
func printProblems(w io.Writer, path string, err error) {
	var verr *config.ValidationError
	if errors.As(err, &verr) {
		for _, p := range verr.Problems {
			fmt.Fprintf(w, "%s: %s\n", path, p)
		}
		return
	}
	fmt.Fprintln(w, strings.TrimSpace(err.Error()))
}
