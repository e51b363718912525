#!/usr/bin/env bash
# promopool's main job, end to end on this machine: make sure PostgreSQL and Redis run,
# build, migrate, start the web and worker processes, then over the API: create a group,
# upload generated codes (with duplicates and an invalid line), import customers, create
# a mailing whose template draws a code per customer, start it, watch it finish through
# the file transport, and print the outcome, a segment count and one delivered message.
#
# It honours DATABASE_URL (default: the promopool database on 127.0.0.1:5432; it must
# exist), REDIS_URL (default redis://127.0.0.1:6379/0), HTTP_ADDR (default
# 127.0.0.1:8080: set another when that port is taken), CODES_N (100000) and
# CUSTOMERS_N (20000). The processes' logs and the delivered messages stay in a
# directory of their own under /tmp, named at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh curl
. scripts/goenv.sh

CODES_N="${CODES_N:-100000}"
CUSTOMERS_N="${CUSTOMERS_N:-20000}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promopool?sslmode=disable}"
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
WORK="$(mktemp -d /tmp/promopool-demo.XXXXXX)"
OUTBOX="$WORK/outbox"
mkdir "$OUTBOX"
export MAILER_URL="file://$OUTBOX"
KEY="demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export API_KEYS="demo:$KEY:admin"
BASE="http://$HTTP_ADDR"

mkdir -p bin
go build -o bin/promopool ./cmd/promopool
bin/promopool migrate

bin/promopool web >"$WORK/web.log" 2>&1 &
WEB=$!
bin/promopool worker >"$WORK/worker.log" 2>&1 &
WORKER=$!
trap 'kill $WEB $WORKER 2>/dev/null; wait $WEB $WORKER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done

api() { curl -sS -H "Authorization: Bearer $KEY" "$@"; }
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -1; }
TAG="$(date +%s)"
NAME="Demo $TAG"

GROUP=$(api -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$NAME\",\"low_balance_threshold\":1000}" "$BASE/v1/groups" | field id)
echo "== created group $GROUP \"$NAME\""

CODES=$(mktemp)
awk -v n="$CODES_N" -v tag="$TAG" 'BEGIN { for (i = 1; i <= n; i++) printf "D%s-%07d\n", tag, i;
  printf "D%s-%07d\n", tag, 1; printf "D%s-%07d\n", tag, 2; printf "bad\tline\n" }' > "$CODES"
echo "== uploading $CODES_N codes (+2 duplicates, +1 invalid line)"
START=$(date +%s.%N)
api -X POST -H 'Content-Type: text/plain' --data-binary @"$CODES" "$BASE/v1/groups/$GROUP/codes?filename=demo.txt"; echo
END=$(date +%s.%N)
rm -f "$CODES"
awk -v s="$START" -v e="$END" -v n="$CODES_N" 'BEGIN { printf "upload took %.2f s (%.0f codes/s)\n", e - s, n / (e - s) }'

echo "== importing $CUSTOMERS_N customers"
CUST=$(mktemp)
awk -v n="$CUSTOMERS_N" -v tag="$TAG" 'BEGIN { for (i = 1; i <= n; i++)
  printf "{\"id\":\"demo%s-%d\",\"email\":\"customer%d@example.com\",\"first_name\":\"Customer %d\",\"attributes\":{\"city\":\"Lyon\"}}\n", tag, i, i, i }' > "$CUST"
api -X PUT -H 'Content-Type: application/x-ndjson' --data-binary @"$CUST" "$BASE/v1/customers"; echo
IDS=$(awk -v n="$CUSTOMERS_N" -v tag="$TAG" 'BEGIN { for (i = 1; i <= n; i++) printf "%s\"demo%s-%d\"", (i > 1 ? "," : ""), tag, i }')
rm -f "$CUST"

echo "== creating and starting a mailing to $CUSTOMERS_N customers"
cat > "$WORK/mailing.json" <<JSON
{"name": "Spring sale $TAG", "sender": "Shop <news@shop.example>",
 "subject": "{{client.first_name}}, your spring code",
 "html": "<p>Hello {{client.first_name}} from {{client.attr('city')}},</p><p>your code: <b>{{client.promocode('$NAME')}}</b></p>",
 "text": "Hello {{client.first_name}}, your code: {{client.promocode('$NAME')}}",
 "audience": {"customer_ids": [$IDS]}}
JSON
MAILING=$(api -X POST -H 'Content-Type: application/json' --data-binary @"$WORK/mailing.json" "$BASE/v1/mailings" | field id)
api -X POST "$BASE/v1/mailings/$MAILING/start" >/dev/null
for _ in $(seq 1 600); do
  STATE=$(api "$BASE/v1/mailings/$MAILING")
  echo "$STATE" | grep -q '"status":"finished"' && break
  sleep 0.5
done
echo "mailing $MAILING: $(echo "$STATE" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')"
echo "$STATE" | sed -n 's/.*"progress":\({[^}]*}[^}]*}\).*/progress: \1/p'
echo "== group after the mailing"
api "$BASE/v1/groups/$GROUP"; echo
echo "== segment: customers issued a code from the group (the worker folds issues in every 5 s)"
for _ in $(seq 1 30); do
  SEGMENT=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"filter\":{\"issued_from\":{\"groups\":[$GROUP]}}}" "$BASE/v1/segments/count")
  [ "$(echo "$SEGMENT" | field count)" = "$CUSTOMERS_N" ] && break
  sleep 0.5
done
echo "$SEGMENT"
case "$SEGMENT" in *'"count":'*) ;; *) echo "demo: the segment count failed" >&2; exit 1 ;; esac
echo "== one delivered message ($(ls "$OUTBOX" | wc -l) files in $OUTBOX)"
cat "$OUTBOX/$(ls "$OUTBOX" | head -1)"
echo "== logs: $WORK/web.log, $WORK/worker.log"
