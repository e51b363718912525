#!/usr/bin/env bash
# Known vulnerabilities in promopool's dependencies and the Go standard library it
# calls: govulncheck (golang.org/x/vuln, fetched through the Go module proxy) against
# the Go vulnerability database, reporting only vulnerable code that promopool can reach.
# The database is a separate service: when it cannot be reached (an offline machine, a
# CI without that access) the check is skipped with a notice, never silently passed.
# GOVULNDB may name a mirror (https://… or file:///path/to/db).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/goenv.sh
version=v1.9.0
db="${GOVULNDB:-https://vuln.go.dev}"
case "$db" in
  file://*) reachable=$([ -d "${db#file://}" ] && echo yes || echo no) ;;
  *) reachable=$(curl -fsS --max-time 10 -o /dev/null "$db/index/db.json.gz" 2>/dev/null && echo yes || echo no) ;;
esac
if [ "$reachable" != yes ]; then
  echo "NOTICE: govulncheck skipped: the vulnerability database at $db is not reachable from here (set GOVULNDB to a mirror to run it)" >&2
  exit 0
fi
go run "golang.org/x/vuln/cmd/govulncheck@$version" -db "$db" ./...
