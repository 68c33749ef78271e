package ec2

import (
	"bytes"
	"strings"
	"text/template"
)

// userData is what the bootstrap script is rendered from. Token is the
// one-time registration token: the only secret in user data, and useless
// once fetched or after the bootstrap timeout.
type userData struct {
	RegistrationURL string
	Token           string
	RunnerDir       string
	RunnerUser      string // empty: stay the user running the script
	Shutdown        bool   // shut the machine down when the runner exits or bootstrap fails
}

// bootstrapScript fetches the registration bundle once, installs the runner
// application (download, sha256 check, unpack) unless it is preinstalled, and
// runs it: JIT mode with ACTIONS_RUNNER_INPUT_JITCONFIG, token mode with
// config.sh and ACTIONS_RUNNER_INPUT_TOKEN, so no secret is ever in a
// process's argv. It needs bash, curl, tar, sha256sum and jq or python3.
var bootstrapScript = template.Must(template.New("userdata").Funcs(template.FuncMap{"q": shellQuote}).Parse(`#!/bin/bash
# runnerscaler bootstrap: fetch this instance's one-time registration bundle,
# install the GitHub Actions runner and start it. The registration secret is
# not in this user data; the token below works once, for a limited time.
set -euo pipefail
umask 077

registration_url={{q .RegistrationURL}}
runner_dir={{q .RunnerDir}}
runner_user={{q .RunnerUser}}
shutdown_when_done={{if .Shutdown}}1{{else}}0{{end}}

log() { echo "runnerscaler-bootstrap: $*" >&2; }
finish() {
	status=$?
	if [ "$shutdown_when_done" = 1 ]; then
		log "exiting with status $status; shutting down"
		shutdown -h now || poweroff || true
	fi
}
trap finish EXIT

work=$(mktemp -d)
# The token reaches curl through a header file (printf is a builtin), never argv.
printf 'Authorization: Bearer %s\n' {{q .Token}} >"$work/auth"
if ! curl -fsS --retry 20 --retry-connrefused --retry-delay 3 --max-time 30 \
	-H @"$work/auth" -o "$work/bundle.json" "$registration_url"; then
	log "could not fetch the registration bundle from $registration_url"
	exit 1
fi
rm -f "$work/auth"

field() {
	if command -v jq >/dev/null 2>&1; then
		jq -r --arg k "$1" 'if .[$k] == null then "" elif (.[$k] | type) == "array" then .[$k] | join(",") else .[$k] | tostring end' "$work/bundle.json"
	else
		python3 - "$work/bundle.json" "$1" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
if v is None:
    v = ""
elif isinstance(v, bool):
    v = "true" if v else "false"
elif isinstance(v, list):
    v = ",".join(v)
print(v)
PY
	fi
}

runner_name=$(field runner_name)
scope_url=$(field url)
labels=$(field labels)
group=$(field runner_group)
ephemeral=$(field ephemeral)
package_url=$(field package_url)
package_sha256=$(field package_sha256)
mode=token
[ -z "$(field jit_config)" ] || mode=jit
mkdir -p "$runner_dir"
# The secret goes from the bundle to a file only the runner user can read.
field "$( [ "$mode" = jit ] && echo jit_config || echo token )" | tr -d '\n' >"$runner_dir/.runnerscaler-secret"
rm -f "$work/bundle.json"

if [ -n "$package_url" ]; then
	if [ -z "$package_sha256" ]; then
		log "the runner package has no checksum; refusing it"
		exit 1
	fi
	log "downloading the runner application"
	curl -fsSL --retry 10 --retry-connrefused --retry-delay 3 -o "$work/runner.tar.gz" "$package_url"
	if ! echo "$package_sha256  $work/runner.tar.gz" | sha256sum -c --status -; then
		log "runner package checksum mismatch; refusing it"
		exit 1
	fi
	tar -xzf "$work/runner.tar.gz" -C "$runner_dir"
	rm -f "$work/runner.tar.gz"
elif [ ! -x "$runner_dir/run.sh" ]; then
	log "no runner package was offered and $runner_dir/run.sh is missing"
	exit 1
fi

# Runs as the runner user: moves the secret from its file into the runner's
# environment, where config.sh and run.sh read ACTIONS_RUNNER_INPUT_*.
start='
set -eu
cd "$1"
secret=$(cat .runnerscaler-secret)
rm -f .runnerscaler-secret
if [ "$2" = jit ]; then
	export ACTIONS_RUNNER_INPUT_JITCONFIG="$secret"
	unset secret
	exec ./run.sh
fi
export ACTIONS_RUNNER_INPUT_TOKEN="$secret"
unset secret
args=(--unattended --url "$3" --name "$4" --work _work --disableupdate)
if [ -n "$5" ]; then args+=(--labels "$5"); fi
if [ -n "$7" ]; then args+=(--runnergroup "$7"); fi
if [ "$6" = true ]; then args+=(--ephemeral); fi
./config.sh "${args[@]}"
unset ACTIONS_RUNNER_INPUT_TOKEN
exec ./run.sh
'
set -- "$runner_dir" "$mode" "$scope_url" "$runner_name" "$labels" "$ephemeral" "$group"
if [ -n "$runner_user" ]; then
	id -u "$runner_user" >/dev/null 2>&1 || useradd --create-home "$runner_user"
	chown -R "$runner_user" "$runner_dir"
	log "starting runner $runner_name as $runner_user"
	runuser -u "$runner_user" -- bash -c "$start" runnerscaler-start "$@"
else
	log "starting runner $runner_name"
	bash -c "$start" runnerscaler-start "$@"
fi
log "runner $runner_name exited"
`))

func renderUserData(d userData) (string, error) {
	var b bytes.Buffer
	if err := bootstrapScript.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
