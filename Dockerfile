# syntax=docker/dockerfile:1
#
# upbroker container image: a static binary on distroless, run as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t upbroker .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/config.yaml:/etc/upbroker/config.yaml:ro" \
#     -e UPBROKER_TICKET_KEY="$(openssl rand -base64 48)" upbroker
#
# The config must listen on 0.0.0.0:8080 (server.addr) to be reachable
# from outside the container.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary that needs no libc, so it runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/upbroker/upbroker/internal/version.Version=${VERSION}" \
      -o /out/upbroker ./cmd/upbroker

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/upbroker /usr/local/bin/upbroker
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/upbroker"]
CMD ["serve", "--config", "/etc/upbroker/config.yaml"]
