#!/usr/bin/env bash
# Headless Chromium for the test that renders the demo's HTML report (tests/end_to_end/test_demo.py).
# Idempotent: returns at once when `chromium` is on PATH; otherwise installs Debian's package with apt-get
# (needs root, as `make test` on a fresh CI machine has), or says in one line how to install it.
set -euo pipefail

command -v chromium >/dev/null 2>&1 && exit 0
if [[ "$(id -u)" != 0 ]]; then
    echo "chromium.sh: chromium is not installed: run 'apt-get install -y chromium' as root (the report test renders with it)" >&2
    exit 1
fi
echo "chromium.sh: installing chromium with apt-get" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium.sh: apt-get installed chromium but it is not on PATH" >&2; exit 1; }
