#!/usr/bin/env bash
# Installs, once, the tools the tests use that Debian does not package:
# cargo-component (crates.io) and componentize-py (PyPI) to build plugins,
# Garage (crates.io), the S3 server of the object-store tests, and
# osmem-server (PyPI), an in-memory server of the OpenSearch REST API that the
# OpenSearch index's wire-level tests run against when no real OpenSearch is
# named by OPENSEARCH_URL. They land
# in a cache ($LOGGERHUB_TOOLS, default ~/.cache/loggerhub-tools) that later
# runs reuse. They are test tools, not what we ship, and they build in a
# fraction of a release build's time: cargo-component without
# optimisations (3.5 min instead of 10; the SDK tests take 3 s longer),
# Garage at opt-level 1 (it serves every S3 test and the distributed
# bench) and with only what the tests use (the LMDB metadata engine;
# libsodium and zstd from Debian instead of compiled from source; no
# SQLite, K2V or metrics); neither with debug info or LTO.
set -euo pipefail
# shellcheck source=packages.sh
. "$(dirname "$0")/packages.sh"
need_base
TOOLS="${LOGGERHUB_TOOLS:-$HOME/.cache/loggerhub-tools}"
CARGO_COMPONENT_VERSION=0.21.1
COMPONENTIZE_PY_VERSION=0.25.1
GARAGE_VERSION=2.5.0
OSMEM_VERSION=0.1.6

# cargo component builds for wasm32-wasip1 and adapts the module to p2.
for target in wasm32-wasip1 wasm32-wasip2; do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

# `cargo install` in a cheap profile (see above), in its own target
# directory: the project's shared one is not for tools.
cheap() {
  env -u CARGO_TARGET_DIR \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    CARGO_PROFILE_DEV_DEBUG=0 \
    CARGO_PROFILE_DEV_INCREMENTAL=false \
    "$@"
}

cc="$TOOLS/cargo-component/bin/cargo-component"
if ! "$cc" component --version 2>/dev/null | grep -q " $CARGO_COMPONENT_VERSION"; then
  echo "installing cargo-component $CARGO_COMPONENT_VERSION into $TOOLS (once)" >&2
  cheap cargo install cargo-component --version "$CARGO_COMPONENT_VERSION" \
    --locked --root "$TOOLS/cargo-component" --debug
fi

py="$TOOLS/python"
if ! "$py/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
  echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $TOOLS (once)" >&2
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

if ! "$py/bin/pip" show osmem-server 2>/dev/null | grep -qx "Version: $OSMEM_VERSION"; then
  echo "installing osmem-server $OSMEM_VERSION into $TOOLS (once)" >&2
  "$py/bin/pip" install --quiet --disable-pip-version-check "osmem-server==$OSMEM_VERSION"
fi

# The real clients the shipper-protocol tests send with (issue 12), the
# validator /openapi.json is checked with, and Playwright, which drives
# Debian's Chromium in the dashboard's tests (its own browser downloads
# are never used), pinned.
CLIENTS="opensearch-py==3.2.0 elasticsearch==8.19.3 opentelemetry-sdk==1.45.2 \
opentelemetry-exporter-otlp-proto-http==1.45.2 python-logging-loki==0.3.1 \
openapi-spec-validator==0.7.2 playwright==1.65.2"
clients_marker="$py/.clients-$(echo "$CLIENTS" | sha256sum | cut -c1-12)"
if [ ! -f "$clients_marker" ]; then
  echo "installing the shipper clients into $TOOLS (once): $CLIENTS" >&2
  # shellcheck disable=SC2086
  "$py/bin/pip" install --quiet --disable-pip-version-check $CLIENTS
  touch "$clients_marker"
fi

# Debian's shippers: rsyslog with its Elasticsearch output, run by the tests
# as a plain process on their own config (the package starts no service
# without an init system), and logger (bsdutils) to feed it.
if ! dpkg -s rsyslog-elasticsearch >/dev/null 2>&1; then
  apt_install rsyslog rsyslog-elasticsearch
fi
need_packages logger=bsdutils

# The browser of the dashboard's tests: Debian's Chromium, headless.
need_packages chromium=chromium

garage="$TOOLS/garage/bin/garage"
if ! "$garage" --version 2>/dev/null | grep -q ":$GARAGE_VERSION "; then
  echo "installing garage $GARAGE_VERSION into $TOOLS (once)" >&2
  if ! pkg-config --exists libsodium libzstd 2>/dev/null; then
    apt_install pkg-config libsodium-dev libzstd-dev
  fi
  cheap cargo install garage --version "$GARAGE_VERSION" --locked --root "$TOOLS/garage" \
    --no-default-features --features lmdb,system-libs
fi
