# syntax=docker/dockerfile:1
# fleetwatt-agent's image: the static binary on distroless, as a non-root user, for
# linux/amd64 and linux/arm64. From the repository's root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=$(git describe --tags --always) \
#     -f deploy/docker/agent.Dockerfile -t fleetwatt-agent .
#
# The builder runs on the build machine's own platform and cross-compiles for each target
# (CGO off), so no stage runs under emulation. Reading a host's energy counters from a
# container needs the host's /sys and /proc mounted under /host (--root /host) and read
# access to them: see docs/install.md.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
COPY internal/ internal/
COPY agent/ agent/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=$VERSION" -o /out/fleetwatt-agent ./agent

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="fleetwatt-agent" \
      org.opencontainers.image.description="Server power and CPU counters over OpenTelemetry" \
      org.opencontainers.image.source="https://github.com/fleetwatt/fleetwatt"
COPY --from=build /out/fleetwatt-agent /usr/bin/fleetwatt-agent
USER 65532:65532
ENTRYPOINT ["/usr/bin/fleetwatt-agent"]
