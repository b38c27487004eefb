#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy (warnings are errors), unit, property and
# integration tests. Installs the system packages it needs first when missing (scripts/deps.sh
# test: among them chromium and chromium-driver, which tests/browser.rs drives).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cargo fmt --all -- --check
# Dependencies between top-level modules point one way (docs/architecture.md).
python3 scripts/module-deps.py
# deploy/ (container image, compose, Kubernetes, dashboard, alerts) checked offline; seconds.
scripts/check-deploy.sh
# --features fuzzing: the fuzz targets' entry points (src/fuzz_entry.rs) and
# tests/fuzz_regressions.rs, which replays their corpus and findings, are built and run too.
# --release: shares build-script outputs (the C codecs) with the test build below.
# --features jxl: JPEG XL output (off by default) is built and tested too.
cargo clippy --release --locked --all-targets --features fuzzing,jxl -- -D warnings
# Release profile: the codecs run as in production and CI builds the dependencies once.
# The copyright tests check their output with exiftool (installed above): require it.
PIXGATE_REQUIRE_EXIFTOOL=1 cargo test --release --locked --all-targets --features fuzzing,jxl
