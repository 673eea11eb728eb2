#!/usr/bin/env bash
# Builds and starts the whole stack (infra/docker-compose.yml) in the
# background; LoggerHub answers on http://localhost:${LOGGERHUB_HTTP_PORT:-8100}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/secrets.sh
docker compose up -d --build "$@"
echo "LoggerHub: http://localhost:${LOGGERHUB_HTTP_PORT:-8100} (admin token: LOGGERHUB_ADMIN_TOKEN in $(pwd)/.env)"
