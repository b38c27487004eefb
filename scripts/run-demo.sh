#!/usr/bin/env bash
# Runs pixgate on its embedded default: a built-in demo origin with sample images behind the
# proxy on 127.0.0.1:8080 and the upload page on 127.0.0.1:8082. Installs the build's system packages first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
exec cargo run --release --locked -- "$@"
