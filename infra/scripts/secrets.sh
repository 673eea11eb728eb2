#!/usr/bin/env bash
# Makes sure infra/.env holds the stack's secrets, generating what is
# missing: LOGGERHUB_ADMIN_TOKEN (the admin API) and LOGGERHUB_OPERATOR_TOKEN
# (/metrics and /ready's detail). The file is the operator's alone (0600);
# existing values are kept. Prints where the tokens are, never the tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
env_file=.env
if [ ! -f "$env_file" ]; then
  cp .env.example "$env_file"
fi
chmod 600 "$env_file"
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
for var in LOGGERHUB_ADMIN_TOKEN LOGGERHUB_OPERATOR_TOKEN; do
  if ! grep -Eq "^$var=.+" "$env_file"; then
    prefix=lha_
    [ "$var" = LOGGERHUB_OPERATOR_TOKEN ] && prefix=lho_
    echo "$var=$prefix$(token)" >>"$env_file"
    echo "generated $var in $(pwd)/$env_file" >&2
  fi
done
