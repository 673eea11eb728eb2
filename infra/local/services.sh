#!/usr/bin/env bash
# Starts, on this machine and without Docker, the distributed backends the
# tests run against: PostgreSQL 15 and Redis 7 from Debian's packages, and
# Garage (S3; installed by tools.sh), as plain processes on loopback in one
# temp directory (not system services). For the search index: the OpenSearch
# that $OPENSEARCH_URL names if it is set when this starts, else osmem-server
# (installed by tools.sh), an in-memory server of the OpenSearch REST API.
#
#   infra/local/services.sh start   # installs what is missing, starts, writes $DIR/env
#   infra/local/services.sh stop    # stops everything and removes $DIR
#   infra/local/services.sh env     # prints the URLs (source it: set -a; . "$DIR/env")
#
# $LOGGERHUB_SERVICES_DIR (default /tmp/loggerhub-services) holds the data,
# the logs and the env file; ports are $PG_PORT (55432), $REDIS_PORT (56379),
# $GARAGE_PORT (53900, S3; RPC and admin on the next two), $OSMEM_PORT (59200),
# or the next free ones when something else holds them.
#
# `start` always begins from nothing: whatever an earlier run left in $DIR
# (a run cut short, a machine restarted under it) is stopped and removed
# first, because servers reopened on stale state fail in ways that look like
# bugs of LoggerHub (Garage's old node identity, PostgreSQL's stale pid).
set -euo pipefail
# shellcheck source=packages.sh
. "$(dirname "$0")/packages.sh"
DIR="${LOGGERHUB_SERVICES_DIR:-/tmp/loggerhub-services}"
PG_PORT="${PG_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
GARAGE_PORT="${GARAGE_PORT:-53900}"
PG_BIN=/usr/lib/postgresql/15/bin
OSMEM_PORT="${OSMEM_PORT:-59200}"
TOOLS="${LOGGERHUB_TOOLS:-$HOME/.cache/loggerhub-tools}"
GARAGE="$TOOLS/garage/bin/garage"
# Test credentials of the one Garage key (loopback only).
S3_KEY_ID=GK0123456789abcdef01234567
S3_SECRET=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
S3_BUCKET=loggerhub-raw

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  # nginx: the tests run infra/nginx/nginx.conf in it (not as a service).
  need_packages "$PG_BIN/pg_ctl=postgresql" redis-server=redis-server nginx=nginx
}

start_postgres() {
  local data="$DIR/pg"
  mkdir -p "$data"
  chown postgres "$data" 2>/dev/null || true
  as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$DIR/pg-init.log"
  touch "$DIR/pg.log"
  chown postgres "$DIR/pg.log" 2>/dev/null || true
  # fsync off: test data, and it keeps the suite fast on a shared disk.
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/pg.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c fsync=off -c synchronous_commit=off -c max_connections=200" >/dev/null
  as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres loggerhub
}

start_redis() {
  mkdir -p "$DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" \
    --appendonly yes --appendfsync always --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save ""
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "redis did not start: $(tail -5 "$DIR/redis.log")" >&2
  return 1
}

start_garage() {
  if [ ! -x "$GARAGE" ]; then
    echo "garage is not installed at $GARAGE: run infra/local/tools.sh" >&2
    return 1
  fi
  local dir="$DIR/garage" cfg="$DIR/garage/garage.toml"
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$cfg" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((GARAGE_PORT + 1))"
rpc_public_addr = "127.0.0.1:$((GARAGE_PORT + 1))"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$GARAGE_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((GARAGE_PORT + 2))"
TOML
  nohup "$GARAGE" -c "$cfg" server >"$DIR/garage.log" 2>&1 &
  echo $! >"$DIR/garage.pid"
  local node=""
  for _ in $(seq 100); do
    node=$("$GARAGE" -c "$cfg" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
    sleep 0.2
  done
  if [ -z "$node" ]; then
    echo "garage did not start: $(tail -5 "$DIR/garage.log")" >&2
    return 1
  fi
  # `node id` reads the node's key file and answers before the daemon
  # listens: wait for its RPC port, then retry the first RPC (it may still
  # race the listener on a slow or cold machine).
  for _ in $(seq 150); do
    port_free $((GARAGE_PORT + 1)) || break
    sleep 0.2
  done
  # A single-node layout, one key, one bucket.
  local assigned=""
  for _ in $(seq 20); do
    if "$GARAGE" -c "$cfg" layout assign -z dc1 -c 1G "$node" >/dev/null 2>"$DIR/garage-cli.log"; then
      assigned=1
      break
    fi
    sleep 0.5
  done
  if [ -z "$assigned" ]; then
    echo "garage did not take its layout: $(cat "$DIR/garage-cli.log"; tail -5 "$DIR/garage.log")" >&2
    return 1
  fi
  "$GARAGE" -c "$cfg" layout apply --version 1 >/dev/null
  "$GARAGE" -c "$cfg" key import --yes -n loggerhub "$S3_KEY_ID" "$S3_SECRET" >/dev/null
  "$GARAGE" -c "$cfg" bucket create "$S3_BUCKET" >/dev/null
  "$GARAGE" -c "$cfg" bucket allow --read --write --owner "$S3_BUCKET" --key loggerhub >/dev/null
}

# Prints the OpenSearch URL the tests use.
start_opensearch() {
  if [ -n "${OPENSEARCH_URL:-}" ]; then
    echo "search index: the OpenSearch at $OPENSEARCH_URL" >&2
    echo "$OPENSEARCH_URL"
    return 0
  fi
  local url="http://127.0.0.1:$OSMEM_PORT"
  local bin
  if ! bin=$("$TOOLS/python/bin/python" -c 'import osmem_server; print(osmem_server.resolve_binary())' 2>/dev/null); then
    echo "osmem-server is not installed in $TOOLS/python: run infra/local/tools.sh" >&2
    return 1
  fi
  chmod +x "$bin"
  # It keeps every test's documents in memory, and each Go collection
  # marks all of them on the two cores the tests share: a mark phase of
  # 0.4-1 s here, during which bulks wait (measured with GODEBUG=gctrace=1).
  # A larger heap goal means a quarter as many of those pauses.
  GOGC=400 nohup "$bin" -no-stdin-watch -no-ja -addr "127.0.0.1:$OSMEM_PORT" >"$DIR/osmem.log" 2>&1 </dev/null &
  echo $! >"$DIR/osmem.pid"
  for _ in $(seq 100); do
    "$TOOLS/python/bin/python" -c "import urllib.request as u; u.urlopen('$url/', timeout=1)" 2>/dev/null && {
      echo "search index: osmem-server at $url (a stand-in for the OpenSearch API; set OPENSEARCH_URL to use a real OpenSearch)" >&2
      echo "$url"
      return 0
    }
    sleep 0.1
  done
  echo "osmem-server did not start: $(tail -5 "$DIR/osmem.log")" >&2
  return 1
}

write_env() {
  # Quoted: the S3 URL holds '&', and the file is sourced by shells.
  cat >"$DIR/env" <<ENV
DATABASE_URL='postgres://postgres@127.0.0.1:$PG_PORT/loggerhub'
REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
OBJECT_STORE_URL='s3://$S3_BUCKET?endpoint=http://127.0.0.1:$GARAGE_PORT&region=garage'
AWS_ACCESS_KEY_ID='$S3_KEY_ID'
AWS_SECRET_ACCESS_KEY='$S3_SECRET'
OPENSEARCH_URL='$1'
ENV
}

# Stops the process a pid file names, if it is still the program we started:
# after a restart the number may belong to something else.
stop_pidfile() {
  local file="$1" program="$2" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && grep -qa -- "$program" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    # Its ports are free only once it is gone: a `start` right after
    # (make test starts fresh services for the timing suite) needs them.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.1
    done
  fi
}

stop() {
  if [ -f "$DIR/pg/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_pidfile "$DIR/redis.pid" redis-server
  stop_pidfile "$DIR/garage.pid" garage
  stop_pidfile "$DIR/osmem.pid" osmem
  rm -rf "$DIR"
}

# True when nothing accepts connections on 127.0.0.1:$1.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the first port from $1 on with $2 free ports in a row.
free_ports() {
  local port="$1" count="$2" i ok
  for _ in $(seq 200); do
    ok=1
    for ((i = 0; i < count; i++)); do
      port_free $((port + i)) || { ok=0; break; }
    done
    if [ "$ok" = 1 ]; then
      echo "$port"
      return 0
    fi
    port=$((port + count))
  done
  echo "no $count free ports in a row from $1" >&2
  return 1
}

case "${1:-}" in
  start)
    install
    stop
    PG_PORT=$(free_ports "$PG_PORT" 1)
    REDIS_PORT=$(free_ports "$REDIS_PORT" 1)
    GARAGE_PORT=$(free_ports "$GARAGE_PORT" 3)
    OSMEM_PORT=$(free_ports "$OSMEM_PORT" 1)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    start_postgres
    start_redis
    start_garage
    os_url=$(start_opensearch)
    write_env "$os_url"
    echo "services up; environment in $DIR/env" >&2
    ;;
  stop) stop ;;
  env) cat "$DIR/env" ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
