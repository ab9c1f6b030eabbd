#!/usr/bin/env bash
# Installs every server and tool that `make test` needs, into the
# git-ignored .cache folder (Go tools, npm packages) or from Debian's
# packages (redis-server, chromium). Idempotent: a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .cache/bin

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

log() { printf '[test-deps] %s\n' "$*" >&2; }

# Debian packages. apt-get needs root and an updated index.
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${UPBROKER_BENCH:-}" = 1 ]; then
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# MinIO's server is AGPL: built as a separate program and only ever run as
# a process by the tests, never imported.
stamp() { [ -x ".cache/bin/$1" ] && [ "$(cat ".cache/bin/$1.version" 2>/dev/null)" = "$2" ]; }
if ! stamp minio "$MINIO_VERSION"; then
  log "go install minio@$MINIO_VERSION (a few minutes the first time)"
  GOBIN="$root/.cache/bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > .cache/bin/minio.version
fi
if ! stamp fake-gcs-server "$FAKE_GCS_VERSION"; then
  log "go install fake-gcs-server@$FAKE_GCS_VERSION"
  GOBIN="$root/.cache/bin" GOFLAGS=-buildvcs=false go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  echo "$FAKE_GCS_VERSION" > .cache/bin/fake-gcs-server.version
fi

# npm packages: Azurite (the Azure Blob emulator) and, for the browser
# tests, Uppy. Each in its own folder so their dependency trees stay apart.
npm_pkg() { # folder, then package@version...
  local dir=".cache/npm/$1"; shift
  local want="$*"
  if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
    log "npm install $want"
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$@" >/dev/null)
    echo "$want" > "$dir/.installed"
  fi
}
npm_pkg azurite "azurite@$AZURITE_VERSION"
if [ -f scripts/npm-packages.sh ]; then
  # shellcheck source=/dev/null
  . scripts/npm-packages.sh
fi
log "ready"
