#!/bin/sh
# provisioner-fake.sh: a complete Runnerscaler external provisioner plugin
# that launches nothing. Each "instance" is one line of JSON in a file under a
# state directory, so the whole protocol can be watched with ls and cat. It
# is the worked example of docs/provisioner-protocol.md, and the tests of
# internal/provisioner/external run it for real.
#
# Configuration (provisioners.<name>.settings):
#
#   type: external
#   settings:
#     command: /usr/local/libexec/runnerscaler/provisioner-fake.sh
#     config_file: /etc/runnerscaler/provisioner-fake.conf
#
# where provisioner-fake.conf holds one line:
#
#   state_dir = /var/lib/runnerscaler/provisioner-fake
#
# FAKE_PROVISIONER_DIR, passed with extra_env, overrides state_dir.
#
# Needs only /bin/sh, cat, sed, date, mkdir, mv and rm. The registration
# secret (JIT config or token) arrives on standard input; this script keeps it
# in a shell variable only long enough to check that it is there, and never
# writes it anywhere, puts it in an argument list or exports it.

set -u
umask 077

me=provisioner-fake

# fail CODE MESSAGE: report on stderr and exit. 30 means "not found".
fail() {
	code=$1
	shift
	printf '%s: %s\n' "$me" "$*" >&2
	exit "$code"
}

# GARM's variable names are accepted too, so the script also runs under GARM.
command=${RUNNERSCALER_COMMAND:-${GARM_COMMAND:-}}
daemon=${RUNNERSCALER_DAEMON_ID:-${GARM_CONTROLLER_ID:-}}
config=${RUNNERSCALER_CONFIG_FILE:-${GARM_PROVIDER_CONFIG_FILE:-}}
instance=${RUNNERSCALER_INSTANCE_ID:-${GARM_INSTANCE_ID:-}}

[ -n "$command" ] || fail 2 "RUNNERSCALER_COMMAND is not set; run me from runnerscaler"
[ -n "$daemon" ] || fail 2 "RUNNERSCALER_DAEMON_ID is not set"
case $daemon in
*'"'* | *'\'*) fail 2 "unexpected characters in the daemon id" ;;
esac

dir=${FAKE_PROVISIONER_DIR:-}
if [ -z "$dir" ] && [ -n "$config" ]; then
	[ -r "$config" ] || fail 1 "cannot read config file $config"
	dir=$(sed -n '/^[[:space:]]*state_dir[[:space:]]*=/{s/^[^=]*=[[:space:]]*//;s/[[:space:]]*$//;p;q;}' "$config")
fi
[ -n "$dir" ] || fail 1 "no state directory: set state_dir in the config file or FAKE_PROVISIONER_DIR"
mkdir -p "$dir" || fail 1 "cannot create $dir"

# safe NAME: ids, runner names and pools become file names and JSON strings.
safe() {
	case $1 in
	'' | .* | *[!A-Za-z0-9._-]*) return 1 ;;
	esac
	return 0
}

# ours JSON: is this instance tagged with our daemon id?
ours() {
	case $1 in
	*"\"daemon_id\":\"$daemon\""*) return 0 ;;
	esac
	return 1
}

# find ID: the file of our instance ID (or of runner name ID, which
# DeleteInstance must accept after a failed create), or nothing.
find_instance() {
	safe "$1" || return 1
	for f in "$dir/$1.json" "$dir/fake-$1.json"; do
		if [ -f "$f" ] && ours "$(cat "$f")"; then
			printf '%s\n' "$f"
			return 0
		fi
	done
	return 1
}

case $command in
CreateInstance)
	# One compact JSON object. printf and case are shell builtins: the
	# document reaches sed through a pipe, never through an argument list.
	input=$(cat)
	field() {
		printf '%s' "$input" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
	}
	name=$(field runner_name)
	pool=$(field pool)
	case $input in
	*'"jit_config":"'* | *'"token":"'*) ;;
	*) fail 1 "the spec carries no registration" ;;
	esac
	input= # done with the secret
	safe "$name" || fail 1 "unusable runner name '$name'"
	safe "$pool" || fail 1 "unusable pool '$pool'"

	id="fake-$name"
	[ -e "$dir/$id.json" ] && fail 31 "instance $id already exists"
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	doc=$(printf '{"id":"%s","daemon_id":"%s","pool":"%s","runner_name":"%s","state":"running","addresses":["127.0.0.1"],"created_at":"%s"}' \
		"$id" "$daemon" "$pool" "$name" "$now")
	tmp="$dir/.$id.$$"
	printf '%s\n' "$doc" >"$tmp" && mv "$tmp" "$dir/$id.json" || {
		rm -f "$tmp"
		fail 1 "cannot write $dir/$id.json"
	}
	printf '%s\n' "$doc"
	;;

GetInstance)
	f=$(find_instance "$instance") || fail 30 "no instance $instance"
	case $f in
	"$dir/$instance.json") cat "$f" ;;
	*) fail 30 "no instance $instance" ;; # a runner name is not an id here
	esac
	;;

DeleteInstance)
	# Deleting what is not there succeeds (exiting 30 would do as well).
	if f=$(find_instance "$instance"); then
		rm -f "$f" || fail 1 "cannot remove $f"
	fi
	;;

ListInstances)
	sep=
	printf '['
	for f in "$dir"/*.json; do
		[ -f "$f" ] || continue
		doc=$(cat "$f")
		ours "$doc" || continue
		printf '%s%s' "$sep" "$doc"
		sep=,
	done
	printf ']\n'
	;;

RemoveAllInstances)
	for f in "$dir"/*.json; do
		[ -f "$f" ] || continue
		if ours "$(cat "$f")"; then
			rm -f "$f" || fail 1 "cannot remove $f"
		fi
	done
	;;

*)
	fail 1 "unsupported command '$command'"
	;;
esac
