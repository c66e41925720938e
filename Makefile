# Delta CI developer tasks. `make test` is what CI runs after `make check`.
GO          ?= go
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
SQLC        := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1

.PHONY: all test check generate build fmt bench

all: check test

## test: every test with the race detector, on SQLite and PostgreSQL
# go test hides the output of passing packages, so the warning about a
# missing PostgreSQL is printed here where it is seen.
test:
	@$(GO) run ./internal/store/storetest/pgcheck || true
	@command -v bwrap >/dev/null || echo "!!! bubblewrap (bwrap) is not installed: the sandbox tests are skipped (they fail under CI=true)" >&2
	$(GO) test -race -timeout 30m ./...
	@# Under the race detector the SQLite no-double-lease test runs 400
	@# attempts (the translated SQLite is slow there); this runs all 2,000.
	$(GO) test -count=1 -timeout 10m -run '^TestNoDoubleLease$$' ./internal/api/
	@# Restarting PostgreSQL would break the other packages' tests, so this
	@# one runs alone, after them.
	DELTACI_TEST_PG_RESTART=1 $(GO) test -race -count=1 -timeout 10m -run '^TestPostgresRestartMidRun$$' ./cmd/deltaci/

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

## build: the deltaci binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -o bin/deltaci ./cmd/deltaci

fmt:
	gofmt -w $$(git ls-files '*.go')
