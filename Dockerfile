# syntax=docker/dockerfile:1
#
# Runnerscaler container image: a static scaler binary on distroless, as a
# non-root user.
#
#   docker build -t runnerscaler:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d --name runnerscaler \
#     -p 8080:8080 -p 127.0.0.1:9102:9102 \
#     -v "$PWD/config.yaml:/etc/runnerscaler/config.yaml:ro" \
#     -v "$PWD/secrets:/run/secrets:ro" -e CREDENTIALS_DIRECTORY=/run/secrets \
#     -v runnerscaler-state:/var/lib/runnerscaler \
#     runnerscaler:dev
#
# deploy/docker/compose.yaml is a fuller example (secrets, health check,
# read-only root file system). Listeners: webhook :8080 (webhook.listen),
# metrics and /healthz :9102 (metrics.listen), admin 127.0.0.1:9103 inside
# the container only (`docker exec runnerscaler scaler status`).
#
# Provisioners: ec2 and external work in this image (an external provider
# must be a static executable added in a derived image: there is no shell).
# The local provisioner does not: GitHub's runner application needs a
# glibc-based system with a shell, which distroless is not.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
# VERSION becomes `scaler version` and runnerscaler_build_info{version}.
ARG VERSION=dev
# CGO_ENABLED=0: a static binary (the store's SQLite is pure Go), which the
# runtime image's missing libc requires. -trimpath drops build paths; -s -w
# drops the symbol table and DWARF (stack traces keep function names).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/usr/local/bin/scaler ./cmd/scaler
# The state directory, private (0700); given to the runtime user below.
RUN install -d -m 0700 /out/state

# static-debian12: CA certificates, /etc/passwd with nonroot, tzdata; no
# shell, no package manager. Pin by digest in production.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/scaler /usr/local/bin/scaler
# Owned by the runtime user (distroless "nonroot", 65532) so that a fresh
# named volume mounted on it is writable: Docker copies the image
# directory's ownership and mode into an empty volume. (A bind mount keeps
# the host directory's: chown it to 65532 on the host.)
COPY --from=build --chown=65532:65532 /out/state/ /var/lib/runnerscaler/
USER 65532:65532
WORKDIR /var/lib/runnerscaler
# store.path (state.db) and daemon-id live here; keep it on a volume so that
# a new container does not forget deliveries, jobs and runners.
VOLUME ["/var/lib/runnerscaler"]
# 8080: webhook.listen (GitHub deliveries; EC2 runners' registration).
# 9102: metrics.listen (/metrics, /healthz, /readyz).
EXPOSE 8080 9102
# Health: the image has no shell or curl, so it defines no HEALTHCHECK.
# Orchestrators probe over HTTP: GET :9102/healthz (liveness: the process
# serves) and GET :9102/readyz (readiness). Docker's own health check needs
# a command in the image: see deploy/docker/compose.yaml.
# Stop: SIGTERM lets the daemon finish in-flight work within
# lifecycle.shutdown_timeout (30s); give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/scaler"]
CMD ["run", "-config", "/etc/runnerscaler/config.yaml"]
