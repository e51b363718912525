#!/usr/bin/env bash
# The test command: makes sure PostgreSQL and Redis run, then formats-checks, vets and
# runs every test against them (race detector on), plus a short fuzz of the macro
# engine: 600,000 inputs (about 15-20 s here). A count, not a duration: a duration-bounded
# -fuzztime can fail with a bare "context deadline exceeded" when it ends on a loaded
# machine (golang/go#75804, not fixed in go1.26). Then govulncheck (scripts/vulncheck.sh),
# skipped with a printed notice when its database cannot be reached. Long benchmarks and
# fault suites have their own commands (README, docs/benchmarks.md, docs/faults.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh chromium
. scripts/goenv.sh
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promopool_test?sslmode=disable}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...
go test -race -count=1 -timeout 15m ./...
go test ./macros -run '^$' -fuzz FuzzParseRender -fuzztime "${FUZZTIME:-600000x}"
scripts/vulncheck.sh
