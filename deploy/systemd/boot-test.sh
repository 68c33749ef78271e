#!/usr/bin/env bash
# Runs runnerscaler.service for real under systemd: boots a Debian 12 system
# container (debootstrap + systemd-nspawn, no systemd needed on the host),
# with the GitHub simulator as the API, and checks, in two phases:
#
#  1. the unit + local-provisioner.conf: the start waits for READY=1
#     (Type=notify), the daemon runs as the runnerscaler user (sysusers) with
#     no capabilities, NoNewPrivileges and a seccomp filter, reads the App key
#     and the webhook secrets from LoadCredential=, serves /healthz, and runs
#     3 jobs to success on local runners inside the sandbox; no SIGSYS.
#  2. + run-as-user.conf: runners run as the user "runner" without
#     capabilities and cannot read the daemon's state or credentials; a
#     restart in the middle of 2 jobs leaves the runners running
#     (KillMode=process), the new daemon adopts them and the jobs succeed.
#
#   SCALER_BIN=/path/to/scaler deploy/systemd/boot-test.sh
#
# SCALER_BIN defaults to a fresh CGO_ENABLED=0 build of ./cmd/scaler; it must
# send READY=1 (internal/sdnotify), or the start times out. Needs, on the
# host: root, debootstrap, systemd-nspawn (Debian: debootstrap,
# systemd-container), openssl, and Debian's package mirror (debootstrap
# downloads the container's ~240 MB). Installs nothing on the host; everything
# lives in a temporary directory, removed at the end (KEEP=1 keeps it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

fail() {
	echo "boot-test.sh: $*" >&2
	exit 1
}
for tool in debootstrap systemd-nspawn openssl; do
	command -v "$tool" >/dev/null || fail "$tool not found (Debian: apt-get install debootstrap systemd-container openssl)"
done
((EUID == 0)) || fail "must run as root (debootstrap, systemd-nspawn)"

work=$(mktemp -d /tmp/rs-boot-test.XXXXXX)
cleanup() {
	if [[ ${KEEP:-} == 1 ]]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
root=$work/root
results=$work/results
mkdir -p "$results"

if [[ -n ${SCALER_BIN:-} ]]; then
	cp "$SCALER_BIN" "$work/scaler"
else
	(cd "$repo" && CGO_ENABLED=0 go build -o "$work/scaler" ./cmd/scaler)
fi

echo "debootstrap bookworm into $root"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,procps,ca-certificates \
	bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{
		tail -20 "$work/debootstrap.log" >&2
		fail "debootstrap failed"
	}

# nspawn runs a command in the container without booting it (setup steps).
nspawn() {
	systemd-nspawn -q -D "$root" --register=no --keep-unit "$@"
}

# The installation, as deploy/systemd/README.md describes it.
install -m 0755 "$work/scaler" "$root/usr/local/bin/scaler"
install -m 0644 "$here/runnerscaler.sysusers" "$root/usr/lib/sysusers.d/runnerscaler.conf"
install -m 0644 "$here/runnerscaler.service" "$root/etc/systemd/system/runnerscaler.service"
install -d "$root/etc/systemd/system/runnerscaler.service.d" "$root/opt/rs-test"
install -m 0644 "$here/local-provisioner.conf" "$root/etc/systemd/system/runnerscaler.service.d/"
# Phase 2's drop-in waits beside the container's test script.
install -m 0644 "$here/run-as-user.conf" "$root/opt/rs-test/run-as-user.conf"
install -d -m 0755 "$root/etc/runnerscaler"
install -d -m 0700 "$root/etc/runnerscaler/credentials"
openssl genrsa -traditional -out "$root/etc/runnerscaler/credentials/app-private-key" 2048 2>/dev/null
printf 'an-old-secret\nboot-test-webhook-secret\n' >"$root/etc/runnerscaler/credentials/webhook-secret"
chmod 0600 "$root/etc/runnerscaler/credentials/"*
install -d -m 0755 "$root/etc/rs-sim"
openssl rsa -in "$root/etc/runnerscaler/credentials/app-private-key" -pubout -out "$root/etc/rs-sim/app.pem" 2>/dev/null

config() { # config [SETTINGS...]: the configuration, with extra local provisioner settings
	cat <<EOF
github:
  api_url: http://127.0.0.1:9999/
  app: {id: 42}
pools:
  - name: linux-small
    scope: {org: octo-org}
    labels: [linux-small]
    max_runners: 5
    provisioner: local
provisioners:
  local:
    type: local
    settings:
      grace_period: 5s
      nice: 5
EOF
	local s
	for s in "$@"; do
		echo "      $s"
	done
}
config >"$root/etc/runnerscaler/config.yaml"
config "run_as_user: runner" "work_dir: /var/lib/runnerscaler-runners/work" \
	"cache_dir: /var/cache/runnerscaler/runner" >"$root/opt/rs-test/config-run-as-user.yaml"

# Test-only units: the simulator, started before the daemon, and the driver.
cat >"$root/etc/systemd/system/rs-sim.service" <<'EOF'
[Unit]
Description=GitHub simulator (boot test)
[Service]
Environment=SCALER_SIM_WEBHOOK_SECRET=boot-test-webhook-secret
ExecStart=/usr/local/bin/scaler sim -listen 127.0.0.1:9999 -webhook-url http://127.0.0.1:8080/webhook -app-id 42 -app-public-key /etc/rs-sim/app.pem
EOF
cat >"$root/etc/systemd/system/runnerscaler.service.d/zz-boot-test.conf" <<'EOF'
[Unit]
Wants=rs-sim.service
After=rs-sim.service
EOF
cat >"$root/etc/systemd/system/rs-test.service" <<'EOF'
[Unit]
Description=runnerscaler boot test driver
After=runnerscaler.service rs-sim.service
[Service]
Type=oneshot
ExecStart=/opt/rs-test/test.sh
ExecStopPost=/usr/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
EOF
cat >"$root/opt/rs-test/test.sh" <<'INNER'
#!/bin/bash
# Runs inside the container; writes /results/log and one PASS/FAIL line per
# check to /results/checks.
exec >/results/log 2>&1
set -u
pass() { echo "PASS $*" | tee -a /results/checks; }
failc() { echo "FAIL $*" | tee -a /results/checks; }
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then pass "$name"; else failc "$name"; fi
}
main_pid() { systemctl show -p MainPID --value runnerscaler; }
status_field() { grep "^$2:" "/proc/$1/status" | awk '{ print $2 }'; }
sim() { curl -fsS "http://127.0.0.1:9999/_sim/$1"; }
post_jobs() { # post_jobs COUNT DURATION_MS
	curl -fsS -X POST -H 'Content-Type: application/json' \
		-d "{\"repo\":\"octo-org/app\",\"labels\":[\"self-hosted\",\"linux-small\"],\"duration_ms\":$2,\"count\":$1}" \
		http://127.0.0.1:9999/_sim/jobs
	echo
}
jobs_done() { # jobs_done N: waits up to 90s for N jobs completed with success
	local i
	for i in $(seq 1 45); do
		[[ $(sim jobs | grep -o '"status":"completed","conclusion":"success"' | wc -l) -ge $1 ]] && return 0
		sleep 2
	done
	sim jobs
	return 1
}

echo "== phase 1: unit + local-provisioner.conf"
systemctl show runnerscaler -p Type -p ActiveState -p SubState -p User -p NRestarts
check "unit is Type=notify and active after start" \
	test "$(systemctl show -p Type --value runnerscaler)/$(systemctl is-active runnerscaler)" = notify/active
pid=$(main_pid)
check "daemon runs as runnerscaler" test "$(stat -c %U /proc/$pid)" = runnerscaler
check "daemon has no capabilities" test "$(status_field "$pid" CapEff)" = 0000000000000000
check "daemon has NoNewPrivileges" test "$(status_field "$pid" NoNewPrivs)" = 1
check "daemon has a seccomp filter" test "$(status_field "$pid" Seccomp)" = 2
check "/healthz answers" curl -fsS http://127.0.0.1:9102/healthz
check "scaler status answers" /usr/local/bin/scaler status
post_jobs 3 2000
check "3 jobs run to success on local runners (App key and webhook secret from credentials)" jobs_done 3
curl -fsS http://127.0.0.1:9102/metrics | grep '^runnerscaler_runners_created_total'

echo "== phase 2: + run-as-user.conf"
systemctl stop runnerscaler rs-sim
rm -rf /var/lib/runnerscaler /var/cache/runnerscaler
useradd --system --create-home --home-dir /home/runner --shell /bin/sh runner
install -d -m 0755 /var/lib/runnerscaler-runners
install -m 0644 /opt/rs-test/run-as-user.conf /etc/systemd/system/runnerscaler.service.d/run-as-user.conf
install -m 0644 /opt/rs-test/config-run-as-user.yaml /etc/runnerscaler/config.yaml
systemctl daemon-reload
check "unit starts as root with run-as-user.conf" systemctl start rs-sim runnerscaler
pid=$(main_pid)
systemctl show runnerscaler -p User
grep -E 'CapEff|NoNewPrivs' /proc/$pid/status
post_jobs 2 15000
sleep 4
ps -eo user,pid,ppid,ni,cmd | grep '[s]im-runner'
runners=$(pgrep -f 'sim-runner run' | tr '\n' ' ')
check "2 runners started" test "$(wc -w <<<"$runners")" -eq 2
for r in $runners; do
	check "runner $r runs as runner without capabilities" \
		test "$(stat -c %U /proc/$r)/$(status_field "$r" CapEff)" = runner/0000000000000000
done
check "runner user cannot read the daemon's state" \
	bash -c '! su -s /bin/sh runner -c "cat /var/lib/runnerscaler/state.db" >/dev/null 2>&1'
check "runner user cannot read the daemon's credentials" \
	bash -c '! su -s /bin/sh runner -c "ls /run/credentials/runnerscaler.service" >/dev/null 2>&1'
systemctl restart runnerscaler
alive=0
for r in $runners; do kill -0 "$r" 2>/dev/null && alive=$((alive + 1)); done
check "runners survive a daemon restart (KillMode=process)" test "$alive" -eq 2
check "the new daemon adopts them" journalctl -u runnerscaler -o cat --grep 'runner adopted' -q
check "both jobs succeed after the restart" jobs_done 2
sleep 3
check "instance directories removed" test -z "$(ls -A /var/lib/runnerscaler-runners/work/instances)"
check "no system call was refused with SIGSYS" bash -c '! journalctl -b -o cat | grep -q SIGSYS'
check "no failed unit" test -z "$(systemctl --failed --plain --no-legend)"
echo "== daemon log"
journalctl -u runnerscaler -o cat --no-pager | cut -c1-300 | tail -80
INNER
chmod 0755 "$root/opt/rs-test/test.sh"
for u in rs-sim.service runnerscaler.service rs-test.service; do
	ln -sf "/etc/systemd/system/$u" "$root/etc/systemd/system/multi-user.target.wants/$u"
done

echo "booting the container"
timeout 600 systemd-nspawn -q -D "$root" -b --register=no --keep-unit --console=pipe \
	--bind="$results:/results" >"$work/console.log" 2>&1 || true

cat "$results/log" 2>/dev/null || { tail -50 "$work/console.log"; fail "the test did not run (no log)"; }
echo "== checks"
cat "$results/checks"
passed=$(grep -c '^PASS' "$results/checks" || true)
failed=$(grep -c '^FAIL' "$results/checks" || true)
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
