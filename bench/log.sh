#!/usr/bin/env bash
# Partition-log benchmarks on the real disk, interleaved: each round runs
# every benchmark once, so machine noise spreads over all of them instead of
# landing on whichever ran during a busy minute. benchstat summarises.
#
#   bench/log.sh [rounds] [out-file]    (defaults: 6, bench-log.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
out=${2:-bench-log.txt}
: > "$out"
go test -c -o /tmp/sluice-log.test ./internal/log
for i in $(seq 1 "$rounds"); do
	echo "round $i/$rounds" >&2
	(cd internal/log && /tmp/sluice-log.test -test.run '^$' -test.bench 'Append|SequentialRead' -test.count 1 -test.timeout 30m) | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >> "$out"
done
benchstat "$out"
