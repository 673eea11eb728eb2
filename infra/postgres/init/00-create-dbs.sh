#!/usr/bin/env bash
# First start of the postgres container: the LoggerHub database (named by
# $LOGGERHUB_DB, default loggerhub) owned by $POSTGRES_USER. The official
# image runs this as the postgres user with psql on the local socket; the
# tests run it against their own server through PGHOST/PGPORT.
set -euo pipefail
db="${LOGGERHUB_DB:-loggerhub}"
owner="${POSTGRES_USER:-postgres}"
exists=$(psql -v ON_ERROR_STOP=1 --username "$owner" --dbname postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$db'")
if [ "$exists" != 1 ]; then
  psql -v ON_ERROR_STOP=1 --username "$owner" --dbname postgres -c "CREATE DATABASE \"$db\" OWNER \"$owner\""
fi
