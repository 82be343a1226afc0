# syntax=docker/dockerfile:1
# fleetwatt-collector's image: the static binary on distroless, as a non-root user, for
# linux/amd64 and linux/arm64. From the repository's root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=$(git describe --tags --always) \
#     -f deploy/docker/collector.Dockerfile -t fleetwatt-collector .
#
# The builder runs on the build machine's own platform and cross-compiles for each target
# (CGO off), so no stage runs under emulation. The write-ahead log is on by default in
# /var/lib/fleetwatt-collector/wal, owned by the image's user: mount a volume there.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
COPY internal/ internal/
COPY collector/ collector/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=$VERSION" -o /out/fleetwatt-collector ./collector
# The log's directory, empty: a volume mounted on it starts with its owner.
RUN mkdir -p /out/wal

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="fleetwatt-collector" \
      org.opencontainers.image.description="OTLP into InfluxDB, report and plan API" \
      org.opencontainers.image.source="https://github.com/fleetwatt/fleetwatt"
COPY --from=build /out/fleetwatt-collector /usr/bin/fleetwatt-collector
COPY --from=build --chown=65532:65532 /out/wal /var/lib/fleetwatt-collector/wal
USER 65532:65532
# OTLP/gRPC, OTLP/HTTP, and /healthz, /readyz, /metrics, the report and plan API.
EXPOSE 4317 4318 8090
ENTRYPOINT ["/usr/bin/fleetwatt-collector"]
CMD ["--wal-dir", "/var/lib/fleetwatt-collector/wal"]
