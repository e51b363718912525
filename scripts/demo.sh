#!/usr/bin/env bash
# promopool's main job, end to end on this machine: make sure PostgreSQL and Redis run,
# build, migrate, start the web process, create a group over the API, upload generated
# codes (with a few duplicates and an invalid line), show the upload report and the
# group's balance, then stop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
[ -d /usr/local/go/bin ] && export PATH="/usr/local/go/bin:$PATH"

N="${N:-100000}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promopool?sslmode=disable}"
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
KEY="demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export API_KEYS="demo:$KEY"

mkdir -p bin
go build -o bin/promopool ./cmd/promopool
bin/promopool migrate

bin/promopool web >/tmp/promopool-demo-web.log 2>&1 &
WEB=$!
trap 'kill $WEB 2>/dev/null; wait $WEB 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "http://$HTTP_ADDR/healthz" >/dev/null && break; sleep 0.2; done

api() { curl -sS -H "Authorization: Bearer $KEY" "$@"; }
NAME="Demo $(date +%Y-%m-%dT%H:%M:%S)"
GROUP=$(api -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$NAME\",\"low_balance_threshold\":1000}" \
  "http://$HTTP_ADDR/v1/groups" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
echo "created group $GROUP \"$NAME\""

CODES=$(mktemp)
awk -v n="$N" -v tag="$(date +%s%N)" 'BEGIN { for (i = 1; i <= n; i++) printf "D%s-%07d\n", tag, i;
  printf "D%s-%07d\n", tag, 1; printf "D%s-%07d\n", tag, 2; printf "bad\tline\n" }' > "$CODES"
echo "uploading $N codes (+2 duplicates, +1 invalid line) through the API…"
START=$(date +%s.%N)
api -X POST -H 'Content-Type: text/plain' --data-binary @"$CODES" "http://$HTTP_ADDR/v1/groups/$GROUP/codes?filename=demo.txt" > /tmp/promopool-demo-report.json
END=$(date +%s.%N)
rm -f "$CODES"
echo "upload report:"; cat /tmp/promopool-demo-report.json
awk -v s="$START" -v e="$END" -v n="$N" 'BEGIN { printf "upload took %.2f s (%.0f codes/s)\n", e - s, n / (e - s) }'
echo "group:"; api "http://$HTTP_ADDR/v1/groups/$GROUP"; echo
echo "all groups:"; bin/promopool groups list
