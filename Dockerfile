# syntax=docker/dockerfile:1
# flowgate's container image: one static binary (no cgo) on distroless, run
# as a numeric non-root user, for linux/amd64 and linux/arm64. The build
# stage runs on the builder's own platform and cross-compiles, so an arm64
# image builds quickly on an x86-64 machine and the reverse:
#   docker build -t flowgate .                                   (this machine's platform)
#   docker buildx build --platform linux/amd64,linux/arm64 -t REPO/flowgate --push .
# Without a Docker daemon, `make image` (scripts/image, deploy/image) builds
# the same image offline; it reads USER, WORKDIR, VOLUME, EXPOSE,
# HEALTHCHECK, ENTRYPOINT and CMD from the final stage below.
# Run it with deploy/docker-compose.yml, or:
#   docker run -v ./intakes.yaml:/intakes.yaml:ro -v flowgate-data:/var/lib/flowgate \
#     -p 2055:2055/udp flowgate
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION=devel
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/flowgate ./cmd/flowgate \
 && mkdir /out/data

# static-debian13: CA certificates, tzdata, /etc/passwd with nonroot (65532);
# no shell, no libc.
FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/flowgate /usr/bin/flowgate
# The buffer. Owned by the runtime user so that a named volume, which takes
# the image's ownership when first created, starts writable; a bind mount
# must be chowned to 65532 on the host.
COPY --from=build --chown=65532:65532 /out/data /var/lib/flowgate
USER 65532:65532
WORKDIR /var/lib/flowgate
VOLUME ["/var/lib/flowgate"]
# Syslog (514, 6514 TLS), NetFlow v5/v9 (2055), IPFIX (4739), sFlow (6343),
# monitoring (9740), and the old forwarder's per-intake range. Inside a
# container a non-root process may bind 514: Docker lets unprivileged
# processes bind any port in the container's network namespace.
EXPOSE 514/tcp 514/udp 6514/tcp 2055/udp 4739/udp 6343/udp 9740/tcp 20516-20566/tcp 20516-20566/udp
# /readyz, not only "the process runs": a stalled output turns the
# container unhealthy. The config path must match the one CMD runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m --retries=3 \
  CMD ["/usr/bin/flowgate", "healthcheck", "--config", "/intakes.yaml"]
# The old forwarder's path for the file, so its compose file mounts it unchanged.
ENTRYPOINT ["/usr/bin/flowgate"]
CMD ["run", "--config", "/intakes.yaml"]
