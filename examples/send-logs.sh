#!/usr/bin/env bash
# Sends examples/sample.ndjson to a running LoggerHub.
# Usage: LOGGERHUB_API_KEY=lh_... examples/send-logs.sh [URL]
set -euo pipefail
url="${1:-http://127.0.0.1:8080}"
: "${LOGGERHUB_API_KEY:?set LOGGERHUB_API_KEY to a tenant key}"
curl -sS -X POST "$url/v1/logs" \
  -H "Authorization: Bearer $LOGGERHUB_API_KEY" \
  -H 'content-type: application/x-ndjson' \
  --data-binary @"$(dirname "$0")/sample.ndjson"
echo
