# sluice build and test entry points. `make test` is what CI runs (through
# .ci/run, which first installs the client tools the compatibility suite
# drives).

GO      ?= go
PKGS    ?= ./...
TIMEOUT ?= 30m

.PHONY: test fmt-check vet unit allocs build serve bench fuzz-short

test: fmt-check vet unit allocs

# gofmt over every tracked Go file; fails listing the files that need it.
fmt-check:
	@files=$$(git ls-files '*.go'); out=$$(gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# The whole suite under the race detector (compatibility suite included).
unit:
	$(GO) test -race -count=1 -timeout $(TIMEOUT) $(PKGS)

# Allocation guards need a run without -race (the race detector allocates).
allocs:
	$(GO) test -count=1 -run 'Allocs' $(PKGS)

build:
	$(GO) build -o sluice ./cmd/sluice

serve:
	$(GO) run ./cmd/sluice serve

# Benchmarks of the partition log on the real disk; see BENCHMARKS.md.
bench:
	bench/log.sh 6 bench-log.txt

# A short fuzzing pass over every target (the long runs are documented in
# BENCHMARKS.md and RELIABILITY.md).
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzValidateRecordSet$$' -fuzztime 20s ./internal/log
	$(GO) test -run '^$$' -fuzz '^FuzzRecovery$$' -fuzztime 20s ./internal/log
