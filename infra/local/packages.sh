#!/usr/bin/env bash
# Debian packages the test set-up needs, installed the same way by every
# script (sourced by tools.sh and services.sh; run alone it installs the
# base set):
#
#   need_packages <command-or-path>=<package> ...
#
# installs each package whose command (or file) is missing, in one
# `apt-get install`. A fresh machine has no package lists yet: they are
# fetched first when they are missing or older than a day. Needs root, or
# sudo.
set -euo pipefail
# Where apt keeps its package lists (a test points it elsewhere).
APT_LISTS="${APT_LISTS:-/var/lib/apt/lists}"

# Runs apt-get as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "installing Debian packages needs root or sudo: run as root, or run: $*" >&2
    return 1
  fi
}

apt_lists_fresh() {
  # The lists apt-get update writes; a fresh image ships none.
  [ -n "$(find "$APT_LISTS" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]
}

apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "apt-get not found: the test set-up runs on Debian 12 (or a derivative); install by hand: $*" >&2
    return 1
  fi
  if ! apt_lists_fresh; then
    echo "fetching Debian's package lists (apt-get update)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  fi
  echo "installing from Debian (once): $*" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# need_packages cmd=pkg ...: installs the packages whose command (or, for
# an absolute path, file) is missing.
need_packages() {
  local missing=() item what pkg
  for item in "$@"; do
    what="${item%%=*}"
    pkg="${item#*=}"
    if [[ "$what" == /* ]]; then
      [ -e "$what" ] && continue
    else
      command -v "$what" >/dev/null && continue
    fi
    missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# python3 with a working venv module (Debian splits ensurepip into
# python3-venv).
need_python_venv() {
  need_packages python3=python3
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
}

# What every part of `make test` uses, beyond the Rust toolchain: the
# README's own commands (curl), the servers' clients, and Python.
need_base() {
  need_packages curl=curl git=git make=make cc=gcc pkg-config=pkg-config gzip=gzip
  need_python_venv
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  need_base
fi
