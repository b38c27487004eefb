#!/usr/bin/env bash
# Installs the system packages pixgate's build and tests need, when missing (Debian/Ubuntu):
#   cmake, nasm   - build rav1e's assembly and libwebp/mozjpeg (see ../shared/FACTS.md)
#   libavif-bin   - avifdec, the independent AVIF decoder the tests check outputs with
#   prometheus    - promtool, which checks deploy/'s alert rules and dashboard queries
#   python3       - scripts/module-deps.py, the check that module dependencies point one way
#   chromium, chromium-driver - headless Chromium and chromedriver (WebDriver), which
#                   tests/browser.rs drives to test the upload page in a real browser
# Usage: scripts/deps.sh [build|test]
set -euo pipefail
want=(cmake nasm python3)
[ "${1:-build}" = test ] && want+=(avifdec promtool chromium chromedriver)
missing=()
for bin in "${want[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=()
for bin in "${missing[@]}"; do
  case "$bin" in
    avifdec) pkgs+=(libavif-bin) ;;
    promtool) pkgs+=(prometheus) ;;
    chromedriver) pkgs+=(chromium-driver) ;;
    *) pkgs+=("$bin") ;;
  esac
done
echo "installing: ${pkgs[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
