#!/usr/bin/env bash
# Cross-compiles upbroker for release: static binaries (CGO off) for linux
# and darwin on amd64 and arm64, with the version stamped in, packed as
# dist/upbroker_<version>_<os>_<arch>.tar.gz with a SHA256SUMS file.
#
#   scripts/release.sh v1.2.3        # or: make release VERSION=v1.2.3
#   RELEASE_TARGETS="linux/amd64" scripts/release.sh v1.2.3   # a subset
set -euo pipefail

version=${1:-}
if [ -z "$version" ]; then
  echo "usage: $0 VERSION   (e.g. v1.2.3)" >&2
  exit 2
fi
# The version goes into -ldflags and file names: no spaces, quotes or slashes.
if ! [[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
  echo "release: VERSION $version may only hold letters, digits and . _ + -" >&2
  exit 2
fi
targets=${RELEASE_TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}

cd "$(dirname "$0")/.."
dist=${RELEASE_DIST:-dist}   # tests write elsewhere
rm -rf "$dist"
mkdir -p "$dist"

ldflags="-s -w -X github.com/upbroker/upbroker/internal/version.Version=$version"
for target in $targets; do
  os=${target%/*}
  arch=${target#*/}
  name="upbroker_${version}_${os}_${arch}"
  echo "release: building $name" >&2
  mkdir -p "$dist/$name"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "$ldflags" -o "$dist/$name/upbroker" ./cmd/upbroker
  for f in README.md LICENSE config/example.yaml; do
    if [ -f "$f" ]; then cp "$f" "$dist/$name/"; fi
  done
  # Sorted, owner-neutral archives: the same input gives the same bytes.
  tar -C "$dist" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime='2000-01-01 00:00:00Z' -czf "$dist/$name.tar.gz" "$name"
  rm -rf "${dist:?}/$name"
done
(cd "$dist" && sha256sum -- *.tar.gz > SHA256SUMS)
echo "release: $(ls "$dist" | wc -l) files in $dist/" >&2
