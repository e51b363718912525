#!/usr/bin/env bash
# Makes sure what promopool needs is here and running: Go, PostgreSQL on
# 127.0.0.1:5432 (trust auth for loopback, user postgres) and Redis on 127.0.0.1:6379.
# Where one is missing it is installed from Debian's packages (apt-get update first)
# and started. On a machine where they already run, it only checks.
#
#   scripts/services.sh [EXTRA...]
#
# Each command asks for the extras it uses, installed only when missing:
#   chromium   the admin pages' browser test (scripts/test.sh asks for it)
#   curl       the demo's calls to the API (scripts/demo.sh asks for it)
#   redis-sentinel, iproute2
#              the scale-out fault scenarios: Sentinel failover, hosts made of network
#              namespaces (scripts/test.sh and scripts/chaos.sh ask for them)
set -euo pipefail
for extra in "$@"; do
  case "$extra" in
    chromium | curl | redis-sentinel | iproute2) ;;
    *) echo "usage: scripts/services.sh [chromium] [curl] [redis-sentinel] [iproute2]  (unknown extra: $extra)" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
. "$(dirname "$0")/goenv.sh"

# Go: go.mod names go1.26.8. Any Go >= 1.21 fetches that toolchain itself through the Go
# module proxy (GOTOOLCHAIN=auto). Debian 12 ships 1.19, so without a Go of our own we
# take golang-1.23 from bookworm-backports.
go_ok() { command -v go >/dev/null 2>&1 && go env GOVERSION 2>/dev/null | grep -Eq '^go1\.(2[1-9]|[3-9][0-9])'; }
if ! GOTOOLCHAIN=local go_ok; then
  echo "services: installing Go from Debian's bookworm-backports (it fetches go1.26.8 itself)"
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
      as_root tee /etc/apt/sources.list.d/promopool-backports.sources >/dev/null
  fi
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports golang-1.23-go
  . "$(dirname "$0")/goenv.sh"
fi

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The extras asked for, by Debian package: chromium (admin/browser_test.go drives it
# headless; about a hundred packages), curl, and for the scale-out tests (faults/,
# docs/scaling.md) redis-sentinel and iproute2 (ip netns, veth, bridge).
for extra in "$@"; do
  cmd=$extra
  [ "$extra" = iproute2 ] && cmd=ip
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$extra")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]} from Debian's packages"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  # Debian starts a sentinel watching 127.0.0.1:6379 on install; the tests run their own.
  case " ${missing[*]} " in *" redis-sentinel "*)
    command -v systemctl >/dev/null 2>&1 && as_root systemctl disable --now redis-sentinel >/dev/null 2>&1 || true ;;
  esac
fi

# PostgreSQL: start every cluster that is down.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  for v in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

# A fresh Debian PostgreSQL asks for passwords on TCP: trust loopback, as a
# development and CI machine does.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  done
  for v in $(ls /etc/postgresql); do as_root pg_ctlcluster --skip-systemctl-redirect "$v" main reload; done
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null ||
    { echo "services: cannot connect to PostgreSQL as postgres on 127.0.0.1" >&2; exit 1; }
fi

# Redis.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/promopool.log
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "services: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }

# The project's own databases (never the postgres database itself).
for db in promopool promopool_test; do
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select 1 from pg_database where datname = '$db'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $db"
done
echo "services: $(go version | cut -d' ' -f3), PostgreSQL and Redis ready on 127.0.0.1"
