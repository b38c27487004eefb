#!/usr/bin/env bash
# Shrink-on-load's trade (issue 22 item 2): runs examples/shrink_sweep over the JPEG classes of
# the real-photo set (benches/peers/photos.sh), scores each margin's 512 px output against the
# whole decode's with the dssim CLI, and prints per class the mean DSSIM and decode+resize time
# of each `images.shrink_on_load` margin.
# Usage: scripts/shrink-sweep.sh [PHOTOS_DIR] [FIT]   (default target/peers/photos, 512)
# Writes target/shrink-sweep/ (PNGs and sweep.tsv). Needs dssim (cargo install dssim).
set -euo pipefail
cd "$(dirname "$0")/.."
photos=$(realpath -m "${1:-target/peers/photos}")
fit=${2:-512}
export PATH="$HOME/.cargo/bin:$PATH"
command -v dssim >/dev/null || cargo install --locked --quiet dssim
[ -d "$photos/jpeg-420" ] || benches/peers/photos.sh "$photos" >/dev/null
out=target/shrink-sweep
rm -rf "$out"
mkdir -p "$out"
: > "$out/sweep.tsv"
for class in jpeg-420 jpeg-422 jpeg-444 jpeg-big-prog jpeg-20mp jpeg-exif webp; do
  cargo run --release --locked --quiet --example shrink_sweep -- "$out/$class" "$fit" \
    "$photos/$class"/* > "$out/$class.txt"
  while read -r name setting dims ms; do
    d=0
    [ "$setting" = whole ] || d=$(dssim "$out/$class/$name-whole.png" "$out/$class/$name-$setting.png" | awk '{print $1}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$class" "$name" "$setting" "$dims" "$ms" "$d" >> "$out/sweep.tsv"
  done < "$out/$class.txt"
done
python3 - "$out/sweep.tsv" <<'PY'
import sys, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
by = collections.defaultdict(list)
for cls, name, setting, dims, ms, d in rows:
    by[(cls, setting)].append((float(ms), float(d)))
settings = ["whole", "m1", "m1.5", "m2", "m3"]
print("| class | " + " | ".join(f"{s}: ms / DSSIM" for s in settings) + " |")
print("|---|" + "---|" * len(settings))
for cls in dict.fromkeys(c for c, _ in by):
    cells = []
    for s in settings:
        v = by.get((cls, s), [])
        if not v:
            cells.append("—"); continue
        ms = sum(x for x, _ in v) / len(v); d = sum(y for _, y in v) / len(v)
        cells.append(f"{ms:.1f} / {d:.5f}")
    print(f"| {cls} | " + " | ".join(cells) + " |")
PY
