#!/usr/bin/env bash
# Stops the stack and deletes its volumes: every tenant, key and log is gone.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -p "delete all LoggerHub data (volumes)? [y/N] " answer
[ "$answer" = y ] || { echo "nothing deleted"; exit 1; }
docker compose down --volumes --remove-orphans
