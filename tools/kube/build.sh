#!/usr/bin/env bash
# Builds kube-apiserver from the k8s.io/kubernetes Go module (this tools
# module, see go.mod) into a cache directory, and installs Debian's etcd-server
# when etcd is not on PATH. Idempotent: a second run finds the binary and
# skips the build. See README.md for timings, sizes and the flags to run them.
#
#   bash tools/kube/build.sh            # build (or reuse) + etcd
#   KUBE_BIN_DIR=/some/dir bash tools/kube/build.sh
#   KUBE_FORCE_BUILD=1 bash tools/kube/build.sh   # rebuild even if present
#   KUBE_ETCD=module bash tools/kube/build.sh      # etcd 3.6.8 from go.mod instead
#                                                  # of Debian's 3.4.23 (README)
#   KUBE_ETCD=none bash tools/kube/build.sh        # kube-apiserver only
#
# The last two lines it prints are machine-readable (stdout; logs go to stderr):
#   KUBE_APISERVER_BIN=/abs/path/kube-apiserver
#   KUBE_ETCD_BIN=/abs/path/etcd
# (Not ETCD_BIN: etcd reads every ETCD_* environment variable as a flag.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Must match k8s.io/kubernetes in go.mod (and the v0.X.Y staging replaces).
KUBE_VERSION="v1.36.3"
KUBE_BIN_DIR="${KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runnerscaler/kube/${KUBE_VERSION}}"
apiserver="$KUBE_BIN_DIR/kube-apiserver"

log() { echo "kube/build.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root (or sudo) to run: $*"; return 1
  fi
}

# --- kube-apiserver ---------------------------------------------------------
if [ -z "${KUBE_FORCE_BUILD:-}" ] && [ -x "$apiserver" ] && "$apiserver" --version >/dev/null 2>&1; then
  log "kube-apiserver already built: $apiserver ($("$apiserver" --version)); skipping the build"
else
  command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }
  mod_version="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  if [ "$mod_version" != "$KUBE_VERSION" ]; then
    log "go.mod has k8s.io/kubernetes $mod_version but build.sh says $KUBE_VERSION: update both (and the v0.X.Y replaces)"
    exit 1
  fi
  mkdir -p "$KUBE_BIN_DIR"
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  # The same version stamps as Kubernetes' own hack/lib/version.sh, so that
  # /version and `kube-apiserver --version` say v1.36.3 instead of
  # v0.0.0-master+$Format:%H$.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  tmp="$apiserver.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  log "building kube-apiserver $KUBE_VERSION into $KUBE_BIN_DIR (cold: a few minutes)"
  start=$(date +%s)
  # CGO_ENABLED=0 as upstream ships it: static, and needs no C compiler.
  # -mod=readonly: go.sum in this directory must already be complete.
  # -gcflags=all=-N -l (no optimisation, no inlining): a test server does
  # not need the speed, and on a 2-core machine with an empty build cache it
  # built in 2m28s instead of 3m14s (4.6 instead of 6.1 CPU-minutes), for
  # 0.6 s more start-up per server (BENCHMARKS.md, issue 9).
  (cd "$here" && CGO_ENABLED=0 go build -mod=readonly -gcflags=all='-N -l' -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$tmp" "$apiserver"
  trap - EXIT
  end=$(date +%s)
  log "built $apiserver in $((end - start))s ($("$apiserver" --version))"
fi

# --- etcd -------------------------------------------------------------------
case "${KUBE_ETCD:-debian}" in
debian)
  if ! command -v etcd >/dev/null 2>&1; then
    # Debian bookworm: package etcd-server (3.4.23) ships /usr/bin/etcd; there
    # is no package named "etcd". Its postinst does not start a daemon where
    # systemd is not running (as here and in CI).
    log "etcd not on PATH: installing Debian's etcd-server"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2
  fi
  etcd_bin="$(command -v etcd)"
  ;;
module)
  # etcd's own server (go.etcd.io/etcd/server/v3, a main package), at the
  # version k8s.io/kubernetes requires; shares most dependencies with
  # kube-apiserver, so it costs seconds once kube-apiserver is built.
  etcd_bin="$KUBE_BIN_DIR/etcd"
  if [ -n "${KUBE_FORCE_BUILD:-}" ] || ! [ -x "$etcd_bin" ] || ! "$etcd_bin" --version >/dev/null 2>&1; then
    mkdir -p "$KUBE_BIN_DIR"
    tmp="$etcd_bin.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    start=$(date +%s)
    (cd "$here" && CGO_ENABLED=0 go build -mod=readonly -ldflags "-s -w" -o "$tmp" go.etcd.io/etcd/server/v3)
    mv -f "$tmp" "$etcd_bin"
    trap - EXIT
    log "built $etcd_bin in $(( $(date +%s) - start ))s"
  fi
  ;;
none)
  # The caller installs etcd itself (.ci/run does, in one apt-get with its
  # other packages, so that two apt-gets never race for the dpkg lock).
  etcd_bin=""
  ;;
*) log "KUBE_ETCD must be debian, module or none, not ${KUBE_ETCD}"; exit 1 ;;
esac
[ -z "$etcd_bin" ] || log "etcd: $etcd_bin ($("$etcd_bin" --version 2>/dev/null | head -1))"

echo "KUBE_APISERVER_BIN=$apiserver"
[ -z "$etcd_bin" ] || echo "KUBE_ETCD_BIN=$etcd_bin"
