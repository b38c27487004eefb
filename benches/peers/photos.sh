#!/usr/bin/env bash
# The real-photo set for the peer benchmarks (issue 22 item 1): photographs, screenshots and
# graphics of 1.2-20 MP from three sources: the Debian packages mate-backgrounds,
# plasma-workspace-wallpapers and lomiri-wallpapers-20.04 (downloaded with apt-get download,
# unpacked with dpkg-deb; nothing is installed from them and nothing large is committed), and
# the Rust toolchain's own documentation (screenshots), in classes:
#
#   jpeg-420       camera photos, 4:2:0 baseline, 4.1 MP (mate-backgrounds nature/)
#   jpeg-422       4:2:2 baseline: photos of 1.8-4.9 MP (mate-backgrounds) and a 14.7 MP
#                  rendered illustration (plasma Honeywave 5120x2880)
#   jpeg-444       camera photos, 4:4:4 baseline and progressive, 4.1 MP (plasma-workspace-
#                  wallpapers Kite, Path, ColdRipple, Autumn)
#   jpeg-big-prog  progressive 4:2:2, 17.9 MP: digital art with a photographic texture
#                  (mate-backgrounds Elephants 5640x3172); no camera photo over 5 MP is in
#                  these packages
#   jpeg-20mp      a 20.4 MP camera photo, 4:2:2 baseline (lomiri Kleiber 6028x3391)
#   jpeg-exif      the 4:2:0 photos turned on their side with EXIF orientation 6/8 (jpegtran
#                  -rotate, exiftool -Orientation): upright they are the originals
#   png-photo      the 4:2:0 photos decoded to PNG (cwebp -lossless, then dwebp: exact pixels)
#   png-graphic    rendered art shipped as PNG, 8.3-14.7 MP (plasma Altai, Canopee, Cluster,
#                  IceCold: smooth gradients and flat shapes, not photographs)
#   png-screenshot screenshots of terminals and editors, 1.2-4.9 MP, 556-2,575 colours (the
#                  rustc book's and rustc guide's, share/doc/rust/html of `rustc --print sysroot`)
#   webp           the 4:2:0 photos as WebP q90 (cwebp)
#
# Usage: benches/peers/photos.sh [dir]   (default target/peers/photos; prints the set)
# Installs when missing: libjpeg-turbo-progs (jpegtran), libimage-exiftool-perl, webp.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-target/peers/photos}")
mkdir -p "$out/debs"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
command -v jpegtran >/dev/null || need+=(libjpeg-turbo-progs)
command -v exiftool >/dev/null || need+=(libimage-exiftool-perl)
command -v cwebp >/dev/null || need+=(webp)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
root=$out/debs/root
if ! [ -d "$root/usr/share/backgrounds/mate" ] || ! [ -d "$root/usr/share/wallpapers" ] ||
  ! [ -f "$root/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg" ]; then
  (cd "$out/debs" && apt-get download mate-backgrounds plasma-workspace-wallpapers \
    lomiri-wallpapers-20.04 >/dev/null)
  for d in "$out"/debs/*.deb; do dpkg-deb -x "$d" "$root"; done
fi
mate=$root/usr/share/backgrounds/mate
kde=$root/usr/share/wallpapers
put() { # class source [name]
  mkdir -p "$out/$1"
  cp "$2" "$out/$1/${3:-$(basename "$2")}"
}
for n in Aqua Garden LadyBird TwoWings YellowFlower; do put jpeg-420 "$mate/nature/$n.jpg"; done
for n in Dune Storm Wood; do put jpeg-422 "$mate/nature/$n.jpg"; done
put jpeg-422 "$kde/Honeywave/contents/images/5120x2880.jpg" Honeywave.jpg
for n in Kite Path ColdRipple; do put jpeg-444 "$kde/$n/contents/images/2560x1600.jpg" "$n.jpg"; done
put jpeg-444 "$kde/Autumn/contents/images/2560x1600.jpg" Autumn-progressive.jpg
put jpeg-big-prog "$mate/abstract/Elephants_5640x3172.jpg" Elephants.jpg
put jpeg-20mp "$root/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg" Kleiber.jpg
docs=$(rustc --print sysroot)/share/doc/rust/html
for f in rustc/images/llvm-cov-show-01.png rustc/images/image1.png rustc/images/image2.png \
  book/img/trpl14-01.png book/img/trpl14-02.png book/img/trpl14-03.png book/img/trpl14-04.png; do
  put png-screenshot "$docs/$f"
done
for n in Altai Canopee Cluster IceCold; do
  f=$(ls "$kde/$n/contents/images/"*.png | sort -t x -k1 -n | tail -1)
  put png-graphic "$f" "$n.png"
done
mkdir -p "$out/jpeg-exif" "$out/webp" "$out/png-photo"
i=0
for f in "$out"/jpeg-420/*.jpg; do
  n=$(basename "$f" .jpg)
  # Stored turned by 90 or 270 degrees, with the EXIF tag that turns it back.
  if [ $((i % 2)) -eq 0 ]; then rot=270 tag=6; else rot=90 tag=8; fi
  i=$((i + 1))
  jpegtran -copy none -rotate "$rot" -outfile "$out/jpeg-exif/$n-o$tag.jpg" "$f"
  exiftool -q -overwrite_original -n -Orientation="$tag" "$out/jpeg-exif/$n-o$tag.jpg"
  cwebp -quiet -q 90 "$f" -o "$out/webp/$n.webp"
  cwebp -quiet -lossless -z 0 "$f" -o "$out/png-photo/$n.tmp.webp"
  dwebp -quiet "$out/png-photo/$n.tmp.webp" -o "$out/png-photo/$n.png"
  rm "$out/png-photo/$n.tmp.webp"
done
for c in "$out"/*/; do
  [ "$(basename "$c")" = debs ] && continue
  printf '%-14s %s\n' "$(basename "$c")" "$(cd "$c" && ls | tr '\n' ' ')"
done
