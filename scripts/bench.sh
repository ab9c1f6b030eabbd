#!/usr/bin/env bash
# make bench: builds upbroker and the harness, then runs every measurement
# (see bench/upbench). Pass flags through: scripts/bench.sh -duration 3s
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-buildvcs=false
mkdir -p bin bench/tmp
go build -trimpath -o bin/upbroker ./cmd/upbroker
go build -trimpath -o bin/upbench ./bench/upbench
exec bin/upbench run "$@"
