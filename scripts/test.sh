#!/usr/bin/env bash
# The test command: makes sure PostgreSQL and Redis run, then formats-checks, lints the
# OpenAPI document, vets and runs every test against them (race detector on), plus a
# short fuzz of the macro engine: 600,000 inputs (about 15-20 s here). A count, not a
# duration: a duration-bounded -fuzztime can fail with a bare "context deadline exceeded"
# when it ends on a loaded machine (golang/go#75804, not fixed in go1.26). Then
# govulncheck (scripts/vulncheck.sh), skipped with a printed notice when its database
# cannot be reached. Long benchmarks and fault suites have their own commands (README,
# docs/benchmarks.md, docs/faults.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh chromium redis-sentinel iproute2
. scripts/goenv.sh
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promopool_test?sslmode=disable}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi

# The OpenAPI document, linted as integrators lint it: Redocly CLI (pinned) with its
# recommended rules and every warning an error (recommended-strict; the reviewed
# exceptions are in .redocly.lint-ignore.yaml). npx keeps the package in npm's cache, so
# later runs start without downloading it. Without npm or its registry this step is
# skipped with a notice; the same rules are also checked in Go (api TestOpenAPIDocument,
# kin-openapi) by the go test run below, which needs no network.
REDOCLY_CLI="@redocly/cli@2.77.0"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
if command -v npx >/dev/null && timeout 180 npx --yes --prefer-offline "$REDOCLY_CLI" --version >/dev/null 2>&1; then
  npx --yes --prefer-offline "$REDOCLY_CLI" lint --extends recommended-strict --format=stylish api/openapi.json
else
  echo "notice: $REDOCLY_CLI is not available (no npx, or no npm registry): api/openapi.json is checked by the Go validator only (go test ./api -run TestOpenAPI)" >&2
fi
go vet ./...
go test -race -count=1 -timeout 15m ./...
go test ./macros -run '^$' -fuzz FuzzParseRender -fuzztime "${FUZZTIME:-600000x}"
scripts/vulncheck.sh
