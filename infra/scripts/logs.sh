#!/usr/bin/env bash
# Follows the logs of the stack, or of the services named.
set -euo pipefail
cd "$(dirname "$0")/.."
docker compose logs -f --tail=100 "$@"
