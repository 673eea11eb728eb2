#!/usr/bin/env bash
# First start of the postgres container: the shared tables (public.tenants,
# public.api_keys) in the LoggerHub database, from templates/public_schema.sql
# (copied to /templates by the Dockerfile; $LOGGERHUB_TEMPLATES overrides).
# LoggerHub runs the same file as its first migration, so a database made
# either way ends the same.
set -euo pipefail
db="${LOGGERHUB_DB:-loggerhub}"
templates="${LOGGERHUB_TEMPLATES:-/templates}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
  -f "$templates/public_schema.sql"
