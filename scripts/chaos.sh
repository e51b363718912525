#!/usr/bin/env bash
# The fault suite, long version: a 200,000-recipient mailing through two workers
# (concurrency 8) under SIGKILLs, Redis restarts with and without data, terminated
# PostgreSQL backends, network cuts and latency, redelivered batches and graceful stops;
# a 5,000,000-code upload whose web process is killed mid-way; the bad-input probes; and
# the scale-out scenarios (docs/scaling.md): the Redis primary SIGKILLed three times under
# Sentinel, a read replica paused, stopped and restarted, workers in network namespaces
# with one's link cut and restored and the other's cut (needs root for ip netns).
# Prints the report table (fault | tried | invariant checks passed | lost | duplicated).
# Uses its own schema in promopool_test and Redis DB 13 (FAULTS_REDIS_URL), which it flushes.
#   scripts/chaos.sh              the long version (about 15–30 minutes here)
#   scripts/chaos.sh -short       the version `go test ./...` runs (under a minute)
#   scripts/chaos.sh -run Redis   only the scenarios whose test name matches
#   scripts/chaos.sh -run 'Sentinel|ReadReplica|SeparateHosts'   the scale-out ones
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh redis-sentinel iproute2
. scripts/goenv.sh
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promopool_test?sslmode=disable}"
export FAULTS_REDIS_URL="${FAULTS_REDIS_URL:-redis://127.0.0.1:6379/13}"
export FAULTS_LONG=1
run='.'
while [ $# -gt 0 ]; do
  case "$1" in
    -short) unset FAULTS_LONG ;;
    -run) run="$2"; shift ;;
    *) echo "usage: scripts/chaos.sh [-short] [-run REGEXP]" >&2; exit 2 ;;
  esac
  shift
done
# -v streams the scenarios' progress; the table is printed at the end either way.
go test -count=1 -timeout 90m -v -run "$run" ./faults 2>&1 | grep -v -E 'level=(DEBUG|INFO)|^=== RUN'
