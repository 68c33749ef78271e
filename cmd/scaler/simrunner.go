package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/runnerscaler/runnerscaler/internal/ghsim/simrunner"
	"github.com/runnerscaler/runnerscaler/internal/logging"
	"github.com/runnerscaler/runnerscaler/internal/secret"
)

const simRunnerSynopsis = `sim-runner [--jitconfig CONFIG]
       scaler sim-runner --url URL --token TOKEN [config flags]     register, then run
       scaler sim-runner configure --url URL --token TOKEN [config flags]
       scaler sim-runner run [--jitconfig CONFIG]
       scaler sim-runner remove --token REMOVE_TOKEN

Emulates the GitHub Actions runner application against the simulator (scaler
sim): the runner packages it serves run this through config.sh and run.sh.
The JIT config may come from ACTIONS_RUNNER_INPUT_JITCONFIG instead of
--jitconfig, which keeps it out of the process list. configure and remove
keep the runner's .runner and .credentials files in the current directory;
run uses them when no JIT config is given. An ephemeral runner exits 0 after
its job; SIGTERM or SIGINT takes the runner offline and exits 0.
Exit codes: 0 ok, 1 error, 2 usage, 5 session conflict.`

// Environment variables sim-runner reads.
const (
	envJITConfig = "ACTIONS_RUNNER_INPUT_JITCONFIG"
	envSimURL    = "SCALER_SIM_URL"
	exitConflict = 5
)

// simRunnerFlags are config.sh's flags (and the simulator's additions).
type simRunnerFlags struct {
	url, token, name, labels, group, work, serverURL, osName, arch string
	ephemeral, noDefaultLabels, replace, unattended, disableUpdate bool
}

func (f *simRunnerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "GitHub URL of the runner's scope: https://github.com/ORG, .../OWNER/REPO or .../enterprises/SLUG")
	fs.StringVar(&f.token, "token", "", "registration token")
	fs.StringVar(&f.name, "name", "", "runner name (default: the host name)")
	fs.StringVar(&f.labels, "labels", "", "extra labels, comma-separated")
	fs.StringVar(&f.group, "runnergroup", "", `runner group name (default "Default")`)
	fs.StringVar(&f.work, "work", "_work", "work folder")
	fs.BoolVar(&f.ephemeral, "ephemeral", false, "run one job, then be removed")
	fs.BoolVar(&f.noDefaultLabels, "no-default-labels", false, "do not add self-hosted, the OS and the architecture as labels")
	fs.BoolVar(&f.replace, "replace", false, "replace a runner with the same name")
	fs.BoolVar(&f.unattended, "unattended", false, "accepted for compatibility (never prompts)")
	fs.BoolVar(&f.disableUpdate, "disableupdate", false, "accepted for compatibility (never updates)")
	fs.StringVar(&f.serverURL, "server-url", "", "simulator base URL (default $"+envSimURL+", else the --url host unless it is github.com)")
	fs.StringVar(&f.osName, "os", "", "runner OS: linux, osx or win (default: this machine's)")
	fs.StringVar(&f.arch, "arch", "", "runner architecture: x64, arm64 or arm (default: this machine's)")
}

func (f *simRunnerFlags) registration(environ map[string]string) (simrunner.Registration, error) {
	if f.url == "" || f.token == "" {
		return simrunner.Registration{}, errors.New("--url and --token are required")
	}
	server, err := simrunner.ResolveServerURL(f.serverURL, environ[envSimURL], f.url)
	if err != nil {
		return simrunner.Registration{}, err
	}
	name := f.name
	if name == "" {
		if name, err = os.Hostname(); err != nil || name == "" {
			name = "sim-runner"
		}
	}
	var labels []string
	for _, l := range strings.Split(f.labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	osName, arch := f.osName, f.arch
	if osName == "" {
		osName = simrunner.HostOS()
	}
	if arch == "" {
		arch = simrunner.HostArch()
	}
	return simrunner.Registration{
		ServerURL: server, URL: f.url, Token: secret.String(f.token), Name: name, Labels: labels,
		RunnerGroup: f.group, Work: f.work, Ephemeral: f.ephemeral, NoDefaultLabels: f.noDefaultLabels,
		Replace: f.replace, OS: osName, Arch: arch,
	}, nil
}

// simRunnerCmd is `scaler sim-runner`.
func simRunnerCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		switch args[0] {
		case "configure", "run", "remove":
			sub, args = args[0], args[1:]
		}
	}
	name := "sim-runner"
	if sub != "" {
		name += " " + sub
	}
	fs := newFlagSet(name, simRunnerSynopsis, stderr)
	var cf simRunnerFlags
	var jit string
	if sub == "" || sub == "configure" {
		cf.register(fs)
	}
	if sub == "" || sub == "run" {
		fs.StringVar(&jit, "jitconfig", "", "encoded JIT config (prefer $"+envJITConfig+")")
	}
	var removeToken string
	if sub == "remove" {
		fs.StringVar(&removeToken, "token", "", "remove token (required)")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// As the runner application does, take any flag not given on the command
	// line from ACTIONS_RUNNER_INPUT_<NAME> (e.g. the token), which keeps
	// secrets out of the process list.
	if err := simrunner.ApplyEnvInputs(fs, environ); err != nil {
		fmt.Fprintf(stderr, "scaler %s: %v\n", fs.Name(), err)
		return exitUsage
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "scaler %s: %s\n", name, msg)
		fs.Usage()
		return exitUsage
	}
	if jit == "" && sub != "configure" && sub != "remove" {
		jit = environ[envJITConfig]
	}

	log, err := logging.New("info", "console", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scaler %s: %v\n", name, err)
		return exitFail
	}
	defer func() { _ = log.Sync() }()
	opts := simrunner.Options{Logger: log}
	fail := func(err error) int {
		log.Error("sim-runner failed", zap.Error(err))
		if errors.Is(err, simrunner.ErrSessionConflict) {
			return exitConflict
		}
		return exitFail
	}

	switch sub {
	case "configure":
		reg, err := cf.registration(environ)
		if err != nil {
			return usageErr(err.Error())
		}
		if _, err := simrunner.Load("."); err == nil {
			return fail(simrunner.ErrAlreadyConfigured)
		}
		cfg, err := simrunner.Register(ctx, reg, opts)
		if err != nil {
			return fail(err)
		}
		if err := simrunner.Save(".", cfg); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "Runner successfully added\nSettings Saved.\n")
		return exitOK
	case "remove":
		if removeToken == "" {
			return usageErr("--token is required")
		}
		if err := simrunner.Remove(ctx, ".", secret.String(removeToken), opts); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "Runner removed successfully\n")
		return exitOK
	}

	var cfg simrunner.Config
	switch {
	case jit != "" && cf.url != "":
		return usageErr("give either a JIT config or --url/--token, not both")
	case jit != "":
		if cfg, err = simrunner.DecodeJIT(jit); err != nil {
			return fail(err)
		}
	case cf.url != "" || cf.token != "":
		reg, err := cf.registration(environ)
		if err != nil {
			return usageErr(err.Error())
		}
		if cfg, err = simrunner.Register(ctx, reg, opts); err != nil {
			return fail(err)
		}
	default:
		if cfg, err = simrunner.Load("."); err != nil {
			if errors.Is(err, simrunner.ErrNotConfigured) {
				return usageErr(err.Error())
			}
			return fail(err)
		}
	}
	if err := simrunner.Run(ctx, cfg, opts); err != nil {
		return fail(err)
	}
	return exitOK
}
