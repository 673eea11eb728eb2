#!/usr/bin/env bash
# Stops the stack; data stays in the named volumes.
set -euo pipefail
cd "$(dirname "$0")/.."
docker compose down "$@"
