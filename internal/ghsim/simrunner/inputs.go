package simrunner

import (
	"flag"
	"fmt"
	"strings"
)

// EnvInputPrefix is how the runner application takes any config.sh or run.sh
// argument from the environment: ACTIONS_RUNNER_INPUT_<NAME> stands for
// --<name> (the name upper-cased, "-" written as "_"), so a secret such as
// the registration token (ACTIONS_RUNNER_INPUT_TOKEN) or a JIT config
// (ACTIONS_RUNNER_INPUT_JITCONFIG) stays out of the process list.
const EnvInputPrefix = "ACTIONS_RUNNER_INPUT_"

// EnvInputName is the environment variable that stands for flag name.
func EnvInputName(flagName string) string {
	return EnvInputPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnvInputs sets every flag of fs (parsed already) that the command
// line left unset from its ACTIONS_RUNNER_INPUT_<NAME> variable in environ,
// as the runner application does. The command line wins; empty values are
// ignored; boolean flags take "true" or "false". An invalid value is an
// error naming the variable, never quoting the value, which may be a secret.
func ApplyEnvInputs(fs *flag.FlagSet, environ map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvInputName(f.Name)
		v := strings.TrimSpace(environ[name])
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%s: not a valid value for --%s", name, f.Name)
		}
	})
	return err
}
