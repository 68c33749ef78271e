#!/usr/bin/env bash
# Smoke test of the Kubernetes test infrastructure (issue 9): starts Debian's
# etcd and the kube-apiserver built by build.sh on loopback, waits for /readyz,
# creates a namespace, a Secret and a Pod with curl, shows that a limited token
# gets 403 until an RBAC Role/RoleBinding allows it, drives a pod phase the way
# a test's stand-in kubelet would, then stops both and removes everything.
#
#   bash tools/kube/smoke.sh
#   KUBE_APISERVER_BIN=... KUBE_ETCD_BIN=... bash tools/kube/smoke.sh  # skip build.sh
#   KUBE_ETCD=module bash tools/kube/smoke.sh    # with etcd 3.6.8 built by build.sh
#   KUBE_SMOKE_KEEP=1 bash tools/kube/smoke.sh   # keep the temp dir (logs)
#
# Only 127.0.0.1 is ever contacted. Exits non-zero on the first failed check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "kube/smoke.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

for tool in curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done

if [ -z "${KUBE_APISERVER_BIN:-}" ] || [ -z "${KUBE_ETCD_BIN:-}" ]; then
  eval "$(bash "$here/build.sh" | grep -E '^(KUBE_APISERVER_BIN|KUBE_ETCD_BIN)=')"
fi
log "kube-apiserver: $KUBE_APISERVER_BIN ($("$KUBE_APISERVER_BIN" --version))"
log "etcd:           $KUBE_ETCD_BIN ($("$KUBE_ETCD_BIN" --version | head -1))"

# --- temp dir, cleanup ------------------------------------------------------
# etcd's data dir in /dev/shm when there is one: etcd 3.4 has no
# --unsafe-no-fsync, and a tmpfs makes its fsyncs free.
base="${TMPDIR:-/tmp}"
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
work="$(mktemp -d "$base/kube-smoke.XXXXXX")"
etcd_pid="" apiserver_pid=""
stop() { # stop PID NAME: SIGTERM, then SIGKILL after 10 s
  local pid="$1" name="$2"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop on SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  local t; t=$(now)
  stop "$apiserver_pid" kube-apiserver
  stop "$etcd_pid" etcd
  log "stopped kube-apiserver and etcd in $(since "$t")s"
  if [ "$rc" -ne 0 ]; then
    log "--- last lines of etcd.log";           tail -n 20 "$work/etcd.log" 2>/dev/null >&2 || true
    log "--- last lines of kube-apiserver.log"; tail -n 40 "$work/kube-apiserver.log" 2>/dev/null >&2 || true
  fi
  if [ -n "${KUBE_SMOKE_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- free loopback ports ----------------------------------------------------
# A random port that nothing answers on. (The Go harness should instead
# listen on 127.0.0.1:0, read the port, close, and pass it: same small race.)
used_ports=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    case "$used_ports" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then used_ports+="$p "; echo "$p"; return 0; fi
  done
  die "no free port found"
}
etcd_client_port=$(free_port)
etcd_peer_port=$(free_port)
apiserver_port=$(free_port)

# --- credentials ------------------------------------------------------------
t_gen=$(now)
mkdir -p "$work/pki"
# Service-account token signing key pair (RSA 2048; ECDSA P-256 works too).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/pki/sa.key" 2>/dev/null
openssl pkey -in "$work/pki/sa.key" -pubout -out "$work/pki/sa.pub"
# Serving certificate: a throw-away CA and a leaf for 127.0.0.1/localhost, so
# clients verify TLS with --cacert / rest.Config.TLSClientConfig.CAFile
# instead of -k / Insecure.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=kube-smoke-ca" -keyout "$work/pki/ca.key" -out "$work/pki/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=kube-apiserver" -keyout "$work/pki/apiserver.key" -out "$work/pki/apiserver.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > "$work/pki/apiserver.ext"
openssl x509 -req -in "$work/pki/apiserver.csr" -CA "$work/pki/ca.crt" -CAkey "$work/pki/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/pki/apiserver.ext" -out "$work/pki/apiserver.crt" 2>/dev/null
# Static bearer tokens: token,user,uid,"group1,group2". system:masters is the
# group RBAC always allows everything (cluster-admin without any binding).
admin_token="admin-$(openssl rand -hex 16)"
limited_token="limited-$(openssl rand -hex 16)"
{
  echo "$admin_token,smoke-admin,uid-admin,\"system:masters\""
  echo "$limited_token,runner-provisioner,uid-limited"
} > "$work/pki/tokens.csv"
log "generated keys, certs and tokens in $(since "$t_gen")s"

# --- etcd -------------------------------------------------------------------
t_start=$(now)
etcd_url="http://127.0.0.1:$etcd_client_port"
peer_url="http://127.0.0.1:$etcd_peer_port"
"$KUBE_ETCD_BIN" \
  --name smoke \
  --data-dir "$work/etcd" \
  --listen-client-urls "$etcd_url" \
  --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "$peer_url" \
  --initial-advertise-peer-urls "$peer_url" \
  --initial-cluster "smoke=$peer_url" \
  --initial-cluster-state new \
  --logger zap --log-level warn \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 200); do
  kill -0 "$etcd_pid" 2>/dev/null || die "etcd exited"
  if curl -sf "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"'; then break; fi
  sleep 0.05
done
curl -sf "$etcd_url/health" | grep -q '"health":"true"' || die "etcd not healthy after 10s"
etcd_ready=$(since "$t_start")
log "etcd healthy on $etcd_url after ${etcd_ready}s ($(curl -sf "$etcd_url/version"))"

# --- kube-apiserver ---------------------------------------------------------
t_api=$(now)
"$KUBE_APISERVER_BIN" \
  --etcd-servers="$etcd_url" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$apiserver_port" \
  --tls-cert-file="$work/pki/apiserver.crt" \
  --tls-private-key-file="$work/pki/apiserver.key" \
  --token-auth-file="$work/pki/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$work/pki/sa.pub" \
  --service-account-signing-key-file="$work/pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/24 \
  --endpoint-reconciler-type=none \
  --profiling=false \
  >"$work/kube-apiserver.log" 2>&1 &
apiserver_pid=$!
api="https://127.0.0.1:$apiserver_port"
as_admin()   { curl -sS --cacert "$work/pki/ca.crt" -H "Authorization: Bearer $admin_token" "$@"; }
as_limited() { curl -sS --cacert "$work/pki/ca.crt" -H "Authorization: Bearer $limited_token" "$@"; }
ready=""
for _ in $(seq 1200); do
  kill -0 "$apiserver_pid" 2>/dev/null || die "kube-apiserver exited"
  if [ "$(as_admin -o /dev/null -w '%{http_code}' "$api/readyz" 2>/dev/null)" = 200 ]; then ready=1; break; fi
  sleep 0.05
done
[ -n "$ready" ] || { as_admin "$api/readyz?verbose" >&2 || true; die "kube-apiserver not ready after 60s"; }
api_ready=$(since "$t_api")
total_ready=$(since "$t_start")
log "kube-apiserver ready on $api after ${api_ready}s; etcd+apiserver start-to-ready ${total_ready}s"
log "server version: $(as_admin "$api/version" | tr -d ' \n')"

# --- checks -----------------------------------------------------------------
# expect CODE METHOD PATH [curl args...]: run as admin, check the HTTP status.
expect_code() {
  local who="$1" want="$2" method="$3" path="$4"; shift 4
  local got
  got=$("as_$who" -o "$work/last.json" -w '%{http_code}' -X "$method" "$api$path" "$@")
  if [ "$got" != "$want" ]; then cat "$work/last.json" >&2; echo >&2; die "$who $method $path: HTTP $got, want $want"; fi
  log "ok: $who $method $path -> $got"
}
json=(-H 'Content-Type: application/json')

ns=smoke
expect_code admin 201 POST /api/v1/namespaces "${json[@]}" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"

secret='{"apiVersion":"v1","kind":"Secret","metadata":{"name":"runner-1-jit","labels":{"runnerscaler.io/pool":"smoke"}},
  "type":"Opaque","stringData":{"jitconfig":"not-a-real-jit-config"}}'
pod='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"runner-1","labels":{"runnerscaler.io/pool":"smoke"}},
  "spec":{"restartPolicy":"Never","containers":[{"name":"runner","image":"ghcr.io/actions/actions-runner:latest",
    "command":["/home/runner/run.sh"],
    "env":[{"name":"ACTIONS_RUNNER_INPUT_JITCONFIG","valueFrom":{"secretKeyRef":{"name":"runner-1-jit","key":"jitconfig"}}}]}]}}'

# The limited token: authenticated, but RBAC grants it nothing in the namespace.
expect_code limited 403 GET  "/api/v1/namespaces/$ns/pods"
expect_code limited 403 POST "/api/v1/namespaces/$ns/secrets" "${json[@]}" -d "$secret"
grep -q '"reason": *"Forbidden"' "$work/last.json" || die "403 without reason Forbidden"
log "403 message: $(grep -o '"message": *"\([^"\\]\|\\.\)*"' "$work/last.json")"

# Admin creates the Role/RoleBinding the provisioner needs (docs/kubernetes.md
# will carry the same objects).
expect_code admin 201 POST "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/roles" "${json[@]}" -d '{
  "apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"runnerscaler"},
  "rules":[{"apiGroups":[""],"resources":["pods","secrets"],"verbs":["create","get","list","watch","delete"]}]}'
expect_code admin 201 POST "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/rolebindings" "${json[@]}" -d '{
  "apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"runnerscaler"},
  "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"runnerscaler"},
  "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"runner-provisioner"}]}'

# RBAC reads its objects through an informer: the binding takes effect a
# moment after the 201, not at once. Poll.
t_rbac=$(now)
for _ in $(seq 100); do
  [ "$(as_limited -o /dev/null -w '%{http_code}' "$api/api/v1/namespaces/$ns/pods")" = 200 ] && break
  sleep 0.05
done
log "RoleBinding effective after $(since "$t_rbac")s"
expect_code limited 200 GET  "/api/v1/namespaces/$ns/pods"
expect_code limited 201 POST "/api/v1/namespaces/$ns/secrets" "${json[@]}" -d "$secret"
# No controller-manager, so no serviceaccount controller: a new namespace has
# no "default" ServiceAccount, and the ServiceAccount admission plugin (on by
# default, kept on) rejects every pod in it until someone creates one.
expect_code limited 403 POST "/api/v1/namespaces/$ns/pods" "${json[@]}" -d "$pod"
grep -q 'error looking up service account' "$work/last.json" || die "pod rejected for another reason"
log "pod without a ServiceAccount: $(grep -o '"message": *"\([^"\\]\|\\.\)*"' "$work/last.json")"
expect_code admin 201 POST "/api/v1/namespaces/$ns/serviceaccounts" "${json[@]}" \
  -d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}'
expect_code limited 201 POST "/api/v1/namespaces/$ns/pods" "${json[@]}" -d "$pod"
grep -q '"phase": *"Pending"' "$work/last.json" || die "new pod is not Pending"
# Still nothing outside its namespace, and no verbs it was not given.
expect_code limited 403 GET   "/api/v1/namespaces/default/pods"
expect_code limited 403 PATCH "/api/v1/namespaces/$ns/pods/runner-1" \
  -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"x":"y"}}}'

# Label-selected list, as the provisioner's informer will do.
expect_code limited 200 GET "/api/v1/namespaces/$ns/pods?labelSelector=runnerscaler.io%2Fpool%3Dsmoke"
grep -q '"name": *"runner-1"' "$work/last.json" || die "label-selected list misses runner-1"

# No kubelet: a test's stand-in kubelet sets the phase through the status
# subresource (admin here; the provisioner itself never needs pods/status).
expect_code admin 200 PATCH "/api/v1/namespaces/$ns/pods/runner-1/status" \
  -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Running"}}'
grep -q '"phase": *"Running"' "$work/last.json" || die "status patch did not set Running"
expect_code admin 200 PATCH "/api/v1/namespaces/$ns/pods/runner-1/status" \
  -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Succeeded"}}'

# Delete, as the provisioner: the pod has no spec.nodeName, so it is removed at
# once (a pod bound to a node would wait for the kubelet's final delete).
expect_code limited 200 DELETE "/api/v1/namespaces/$ns/pods/runner-1"
expect_code limited 200 DELETE "/api/v1/namespaces/$ns/secrets/runner-1-jit"
expect_code limited 404 GET    "/api/v1/namespaces/$ns/pods/runner-1"
expect_code limited 404 GET    "/api/v1/namespaces/$ns/secrets/runner-1-jit"

log "all checks passed; etcd ready ${etcd_ready}s, kube-apiserver ready ${api_ready}s, total start-to-ready ${total_ready}s"
