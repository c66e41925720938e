# Delta CI developer tasks. `make test` is what CI runs after `make check`.
GO          ?= go
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
SQLC        := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1

.PHONY: all test test-stress test-load check generate build fmt bench images

all: check test

## test: every test with the race detector, on SQLite and PostgreSQL
# go test hides the output of passing packages, so the warning about a
# missing PostgreSQL is printed here where it is seen.
test:
	@$(GO) run ./internal/store/storetest/pgcheck || true
	@command -v bwrap >/dev/null || echo "!!! bubblewrap (bwrap) is not installed: the sandbox tests are skipped (they fail under CI=true)" >&2
	@command -v podman >/dev/null || echo "!!! podman is not installed: the image tests are skipped (they fail under CI=true)" >&2
	$(GO) test -race -timeout 30m ./...
	@# Under the race detector the SQLite no-double-lease test runs 400
	@# attempts (the translated SQLite is slow there); this runs all 2,000.
	$(GO) test -count=1 -timeout 10m -run '^TestNoDoubleLease$$' ./internal/api/
	@# Restarting PostgreSQL would break the other packages' tests, so this
	@# one runs alone, after them.
	DELTACI_TEST_PG_RESTART=1 $(GO) test -race -count=1 -timeout 10m -run '^TestPostgresRestartMidRun$$' ./cmd/deltaci/

## test-stress: the whole of `make test` with two CPU-bound processes
## alongside (LOAD_PROCS=N for more), as on a CI machine shared with other
## work; the busy loops end with it, whichever way it ends. -count=1: a
## result cached from a quiet run proves nothing about a busy one.
test-stress:
	GOFLAGS="$(GOFLAGS) -count=1" .ci/with-load $(MAKE) --no-print-directory test

## test-load: once, under the same load, the packages whose tests start
## real processes (sandbox, log shipping, runner, API, the binaries); CI
## runs it after `make test`
LOAD_PKGS := ./internal/executor/ ./internal/logstream/ ./internal/runner/ ./internal/api/ ./cmd/...
test-load:
	.ci/with-load $(GO) test -race -count=1 -timeout 30m $(LOAD_PKGS)

## check: formatting, vet, staticcheck and generated code being current
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(SQLC) diff

## bench: the benchmark harness; prints each figure with its baseline and
## writes bench/results/latest.json (BENCH_FLAGS=-quick for a smoke run)
bench:
	$(GO) run ./bench $(BENCH_FLAGS)

## generate: regenerate the sqlc query code
generate:
	$(SQLC) generate

## build: the deltaci and artifactstore binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -o bin/deltaci ./cmd/deltaci
	CGO_ENABLED=0 $(GO) build -o bin/artifactstore ./cmd/artifactstore

fmt:
	gofmt -w $$(git ls-files '*.go')

## images: the server and runner container images, tagged VERSION and
## VERSION-REVISION (see deploy/build-images for its settings)
images:
	deploy/build-images
