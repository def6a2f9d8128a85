# sluice build and test entry points. `make test` is what CI runs (through
# .ci/run, which first installs the client tools the compatibility suite
# drives).

GO             ?= go
# Every package but the compatibility suite, which runs on its own after.
UNIT_PKGS      ?= $(shell $(GO) list ./... | grep -v '/test/compat')
UNIT_TIMEOUT   ?= 10m
COMPAT_TIMEOUT ?= 15m

.PHONY: test fmt-check vet unit allocs fuzz-ci compat build serve bench fuzz-short reliability-long

test: fmt-check vet unit allocs fuzz-ci compat

# gofmt over every tracked Go file; fails listing the files that need it.
fmt-check:
	@files=$$(git ls-files '*.go'); out=$$(gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi; \
	echo "gofmt: clean"

vet:
	$(GO) vet ./...

# Unit, property and integration tests under the race detector.
unit:
	$(GO) test -race -count=1 -timeout $(UNIT_TIMEOUT) $(UNIT_PKGS)

# Without -race: allocation guards (the race detector allocates; request
# decoding and decompression memory bounds included) and the full power-loss
# runs: 10,000 points of the partition log (the race pass runs 2,000) and
# 1,000 of broker + group coordinator (the race pass runs 200).
allocs:
	$(GO) test -count=1 -run 'Allocs|PowerLoss' $(UNIT_PKGS)

# The compatibility suite: real Kafka clients against a `sluice serve` child
# process (test/compat/doc.go). CI=true turns a missing client tool into a
# failure. SLUICE_COMPAT_BROKERS=host:port points it at a running broker.
# -parallel 8: the consumer-group clients (mostly waiting out session
# timeouts) run side by side, each with its own broker.
compat:
	$(GO) test -count=1 -parallel 8 -timeout $(COMPAT_TIMEOUT) -v ./test/compat/

build:
	$(GO) build -o sluice ./cmd/sluice

serve:
	$(GO) run ./cmd/sluice serve

# Benchmarks of the partition log on the real disk (go test -bench over
# ./internal/log, six interleaved rounds, summarised by benchstat); see
# BENCHMARKS.md.
bench:
	@command -v benchstat >/dev/null 2>&1 || { echo "make bench needs benchstat on PATH: go install golang.org/x/perf/cmd/benchstat@latest"; exit 1; }
	bench/log.sh 6 bench-log.txt

# A short fuzzing pass over every fuzz target, FUZZTIME each (the seed
# corpora in testdata/fuzz run first; the long runs are documented in
# RELIABILITY.md).
FUZZTIME       ?= 5s
FUZZ_TARGETS   ?= internal/log:FuzzValidateRecordSet internal/log:FuzzRecovery \
	internal/kafka:FuzzRequestDecode internal/kafka:FuzzParseHeader internal/kafka:FuzzDecompress \
	internal/kafka:FuzzConvertLegacy internal/kafka:FuzzDownConvert internal/kafka:FuzzValidateCompressed \
	internal/broker:FuzzDecodeMetadata internal/group:FuzzDecodeRecords
fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		bench/fuzz-one.sh $${t%%:*} $${t#*:} $(FUZZTIME); \
	done

# CI's fuzzing pass: every target, 3 s each.
fuzz-ci:
	$(MAKE) --no-print-directory fuzz-short FUZZTIME=3s

# The long run of the SIGKILL harness (RELIABILITY.md section 1); `make
# test` runs it at CI size (20 kills) with the unit tests.
reliability-long:
	SLUICE_KILL_CYCLES=200 $(GO) test -count=1 -run '^TestSIGKILL$$' -v -timeout 30m ./test/reliability/
