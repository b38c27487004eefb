#!/usr/bin/env bash
# Installs the system packages pixgate's build and tests need, when missing (Debian/Ubuntu):
#   cmake, nasm   - build rav1e's assembly and libwebp/mozjpeg (see ../shared/FACTS.md)
#   pkg-config, libheif-dev - the `heif` feature (on by default): AVIF and HEIC sources are
#                   decoded by Debian's libheif (found through pkg-config)
#   libavif-bin   - avifdec, the independent AVIF decoder the tests check outputs with, and
#                   avifenc, which makes AVIF sources for tests/heif.rs
#   libheif-examples - heif-enc, which makes HEIC sources for tests/heif.rs
#   libjxl-dev    - the `jxl` feature (JPEG XL output through libjxl 0.7), which the test
#                   command builds and tests
#   webp          - webpinfo and img2webp: libwebp's tools, which read animated outputs and
#                   make animated WebP fixtures in tests/animation.rs
#   prometheus    - promtool, which checks deploy/'s alert rules and dashboard queries
#   python3       - scripts/module-deps.py, the check that module dependencies point one way
#   exiftool      - reads the copyright pixgate writes (keep_copyright), independently
#   chromium, chromium-driver - headless Chromium and chromedriver (WebDriver), which
#                   tests/browser.rs drives to test the upload page in a real browser
#   redis-server  - the Redis the shared cache tier's tests run against
#   yamllint, haproxy - scripts/check-deploy.sh: lints deploy/'s YAML and checks the compose
#                   stack's load-balancer config (`haproxy -c`; no service is started by it)
# Usage: scripts/deps.sh [build|test]
set -euo pipefail
want=(cmake nasm python3 pkg-config)
[ "${1:-build}" = test ] && want+=(avifdec avifenc heif-enc webpinfo img2webp promtool chromium chromedriver exiftool redis-server yamllint haproxy)
missing=()
for bin in "${want[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
# Libraries, not programs: asked of pkg-config (when that is missing, they are too).
pkg-config --exists libheif 2>/dev/null || missing+=(libheif)
[ "${1:-build}" = test ] && { pkg-config --exists libjxl 2>/dev/null || missing+=(libjxl); }
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=()
for bin in "${missing[@]}"; do
  case "$bin" in
    avifdec | avifenc) pkgs+=(libavif-bin) ;;
    libheif) pkgs+=(libheif-dev) ;;
    libjxl) pkgs+=(libjxl-dev) ;;
    heif-enc) pkgs+=(libheif-examples) ;;
    webpinfo | img2webp) pkgs+=(webp) ;;
    promtool) pkgs+=(prometheus) ;;
    exiftool) pkgs+=(libimage-exiftool-perl) ;;
    chromedriver) pkgs+=(chromium-driver) ;;
    *) pkgs+=("$bin") ;;
  esac
done
echo "installing: ${pkgs[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
