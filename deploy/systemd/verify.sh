#!/usr/bin/env bash
# Checks the systemd unit and its drop-ins with systemd's own tools, offline:
# no systemd needs to run (a container where PID 1 is not systemd is fine),
# nothing is installed, nothing outside a temporary directory is touched.
#
#   deploy/systemd/verify.sh            builds ./cmd/scaler (CGO_ENABLED=0)
#   SCALER_BIN=/path/to/scaler deploy/systemd/verify.sh   uses that binary
#
# For each of: the unit alone, the unit + local-provisioner.conf, the unit +
# local-provisioner.conf + run-as-user.conf, it
#   - copies them to a temporary directory with ExecStart pointing at the
#     binary there (`verify` checks that the program exists and is
#     executable),
#   - runs `systemd-analyze verify`, failing on a non-zero exit and on any
#     output at all (it exits 0 after unknown keys and unparsable values,
#     which it only prints),
#   - runs `systemd-analyze security --offline=true` and prints the exposure.
# It fails when the unit alone, or with local-provisioner.conf, is exposed
# more than MAX_EXPOSURE (default 2.5). The run-as-user variant runs as root
# by design; its exposure is printed, not checked.
#
# Needs systemd-analyze from systemd >= 250 (--offline; Debian 12 has 252:
# `apt-get install systemd`, which does not start systemd in a container).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
max_exposure=${MAX_EXPOSURE:-2.5}

fail() {
	echo "verify.sh: $*" >&2
	exit 1
}

command -v systemd-analyze >/dev/null ||
	fail "systemd-analyze not found (Debian: apt-get install systemd)"
version=$(systemd-analyze --version | awk 'NR == 1 { print $2 }')
[[ $version =~ ^[0-9]+$ ]] || fail "cannot read the systemd version from: $(systemd-analyze --version | head -n 1)"
((version >= 250)) || fail "systemd $version is too old: systemd-analyze security --offline needs 250 or later"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bin=$tmp/bin/scaler
mkdir -p "$tmp/bin"
if [[ -n ${SCALER_BIN:-} ]]; then
	cp "$SCALER_BIN" "$bin"
else
	(cd "$repo" && CGO_ENABLED=0 go build -o "$bin" ./cmd/scaler)
fi
chmod 0755 "$bin"

# variant NAME DROPIN...: lays out NAME/runnerscaler.service(.d/DROPIN...).
variant() {
	local name=$1 dir=$tmp/$1
	shift
	mkdir -p "$dir"
	sed "s#^ExecStart=/usr/local/bin/scaler #ExecStart=$bin #" \
		"$here/runnerscaler.service" >"$dir/runnerscaler.service"
	grep -q "^ExecStart=$bin run -config /etc/runnerscaler/config.yaml\$" "$dir/runnerscaler.service" ||
		fail "ExecStart in runnerscaler.service is not '/usr/local/bin/scaler run -config /etc/runnerscaler/config.yaml'"
	if (($#)); then
		mkdir -p "$dir/runnerscaler.service.d"
		local d
		for d in "$@"; do
			cp "$here/$d" "$dir/runnerscaler.service.d/"
		done
	fi
	echo "$dir/runnerscaler.service"
}

status=0
# check NAME ENFORCE DROPIN...
check() {
	local name=$1 enforce=$2
	shift 2
	local unit out exposure
	unit=$(variant "$name" "$@")
	if ! out=$(cd "$(dirname "$unit")" && systemd-analyze verify "$unit" 2>&1) || [[ -n $out ]]; then
		echo "FAIL verify [$name]:" >&2
		echo "$out" >&2
		status=1
	else
		echo "ok   systemd-analyze verify [$name]"
	fi
	out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
	exposure=$(awk '/Overall exposure level/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+$/) print $i }' <<<"$out")
	if [[ -z $exposure ]]; then
		echo "FAIL systemd-analyze security [$name]: no exposure level in:" >&2
		echo "$out" >&2
		status=1
		return
	fi
	if [[ $enforce == yes ]] && awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
		echo "FAIL exposure [$name]: $exposure > $max_exposure; what is exposed:" >&2
		grep '✗' <<<"$out" >&2 || true
		status=1
	elif [[ $enforce == yes ]]; then
		echo "ok   systemd-analyze security --offline=true [$name]: exposure $exposure (limit $max_exposure)"
	else
		echo "info systemd-analyze security --offline=true [$name]: exposure $exposure (not checked)"
	fi
}

echo "systemd $version"
check unit yes
check unit+local-provisioner yes local-provisioner.conf
check unit+local-provisioner+run-as-user no local-provisioner.conf run-as-user.conf
exit $status
