#!/usr/bin/env bash
# The storage and WAL figures of docs/scaling.md's sizing guide, measured on a throwaway
# PostgreSQL cluster of its own (initdb into a temporary directory, port 5499 unless
# SIZING_PORT says otherwise) so that no other database's writes mix into the WAL count:
# uploads CODES_N codes through `promopool upload`, then sends a mailing to CUSTOMERS_N
# customers (one promocode each) through `promopool web` and `promopool worker` with the
# null transport, and prints bytes per code and per message — heap and indexes of each
# table, and WAL written. Redis: SIZING_REDIS_URL (default DB 13 on 127.0.0.1:6379, flushed).
# The cluster, its directory and the processes are removed at the end.
#   scripts/sizing.sh                               5,000,000 codes, 1,000,000 recipients
#   CODES_N=1000000 CUSTOMERS_N=200000 scripts/sizing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh >/dev/null
. scripts/goenv.sh

CODES_N="${CODES_N:-5000000}"
CUSTOMERS_N="${CUSTOMERS_N:-1000000}"
PORT="${SIZING_PORT:-5499}"
export REDIS_URL="${SIZING_REDIS_URL:-redis://127.0.0.1:6379/13}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DIR="$(mktemp -d /tmp/promopool-sizing.XXXXXX)"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"
WEB= WORKER=
cleanup() {
  [ -n "$WEB" ] && kill "$WEB" 2>/dev/null; [ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null
  wait 2>/dev/null || true
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
cat >> "$DIR/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR/data'
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '15min'
CONF
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w start >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/promopool?sslmode=disable"
psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc 'create database promopool'
q() { psql -h 127.0.0.1 -p "$PORT" -U postgres -d promopool -Atqc "$1"; }
redis-cli -u "$REDIS_URL" flushdb >/dev/null

go build -o "$DIR/promopool" ./cmd/promopool
P="$DIR/promopool"
"$P" migrate >/dev/null
"$P" groups create Sizing >/dev/null

lsn0=$(q 'select pg_current_wal_lsn()')
start=$(date +%s.%N)
awk -v n="$CODES_N" 'BEGIN { for (i = 1; i <= n; i++) printf "SZ%011d\n", i }' | "$P" upload Sizing - >/dev/null
end=$(date +%s.%N)
q 'checkpoint'
lsn1=$(q 'select pg_current_wal_lsn()')

q "insert into customers (id, email, first_name) select 'c' || g, 'c' || g || '@example.com', 'N' || g from generate_series(1, $CUSTOMERS_N) g"
q 'vacuum analyze'
KEY="sizing-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export API_KEYS="sizing:$KEY" HTTP_ADDR="127.0.0.1:0" MAILER_URL="null://" WORKER_CONCURRENCY=8
"$P" web >"$DIR/web.log" 2>&1 & WEB=$!
"$P" worker >"$DIR/worker.log" 2>&1 & WORKER=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$DIR/web.log" && break; sleep 0.2; done
BASE=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$DIR/web.log" | head -1)
api() { curl -sfS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
ID=$(api -d '{"name":"sizing","sender":"s@example.com","subject":"code","text":"{{client.first_name}}: {{client.promocode('"'"'Sizing'"'"')}}","audience":{"all":true},"batch_size":1000}' \
  "$BASE/v1/mailings" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -1)
lsn2=$(q 'select pg_current_wal_lsn()')
mstart=$(date +%s.%N)
api -X POST -d '{}' "$BASE/v1/mailings/$ID/start" >/dev/null
until q "select status from mailings where id = $ID" | grep -q finished; do sleep 0.5; done
mend=$(date +%s.%N)
# The worker's folder takes the new issues into the segment summaries (every 5 s).
for _ in $(seq 1 600); do
  [ "$(q "select count(*) from segment_groups")" -ge "$CUSTOMERS_N" ] && break; sleep 0.5
done
q 'checkpoint'
lsn3=$(q 'select pg_current_wal_lsn()')

per() { q "select round(($1)::numeric / $2, 1)"; }
echo "PostgreSQL $(q 'show server_version'), shared_buffers 512MB, max_wal_size 8GB, checkpoint_timeout 15min"
awk -v s="$start" -v e="$end" -v n="$CODES_N" 'BEGIN { printf "upload of %d codes: %.1f s, %.0f codes/s\n", n, e - s, n / (e - s) }'
echo "per code: WAL $(per "pg_wal_lsn_diff('$lsn1', '$lsn0')" "$CODES_N") B (with the checkpoint after it);" \
  "codes heap $(per "pg_relation_size('codes')" "$CODES_N") B + indexes $(per "pg_indexes_size('codes')" "$CODES_N") B"
awk -v s="$mstart" -v e="$mend" -v n="$CUSTOMERS_N" 'BEGIN { printf "mailing to %d recipients (1 worker, null transport): %.1f s, %.0f messages/s\n", n, e - s, n / (e - s) }'
echo "per message: WAL $(per "pg_wal_lsn_diff('$lsn3', '$lsn2')" "$CUSTOMERS_N") B (fold and checkpoint included)"
for t in issues mailing_recipients segment_customers segment_groups customers; do
  rows=$(q "select count(*) from $t")
  echo "  $t: heap $(per "pg_relation_size('$t')" "$rows") B + indexes $(per "pg_indexes_size('$t')" "$rows") B per row ($rows rows)"
done
echo "database total: $(q "select pg_size_pretty(pg_database_size('promopool'))")"
