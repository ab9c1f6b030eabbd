# upbroker — see README.md. `make run` and `make test` are the two set-up
# commands; everything else is optional.
GO        ?= go
BIN       := bin/upbroker
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/upbroker/upbroker/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export GOFLAGS := -buildvcs=false

.PHONY: build run test test-deps unit lint bench release clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/upbroker

# Serves testdata/dev.yaml on 127.0.0.1:8080: file driver under ./data,
# demo page at http://127.0.0.1:8080/.
run: build
	mkdir -p data
	./$(BIN) serve --config testdata/dev.yaml --log-format text

# Installs and starts everything the tests need (MinIO, fake-gcs-server,
# Azurite, Redis, Chromium), then runs every test. Under
# UPBROKER_INTEGRATION=1 an integration test that cannot run fails.
test: test-deps
	$(GO) vet ./...
	UPBROKER_INTEGRATION=1 $(GO) test -count=1 -timeout 40m ./...

test-deps:
	scripts/test-deps.sh

# Unit tests only: integration tests skip when their server is missing.
unit:
	$(GO) test ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	UPBROKER_BENCH=1 scripts/test-deps.sh
	scripts/bench.sh

release:
	scripts/release.sh $(VERSION)

clean:
	rm -rf bin dist
