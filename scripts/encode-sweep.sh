#!/usr/bin/env bash
# Encoder settings compared at matched DSSIM: runs examples/encode_sweep (every setting over
# q = 30..95), scores each output against the lossless resize with the dssim CLI, and prints,
# per setting, the bytes it needs to reach the DSSIM of the default setting at its default q.
# Usage: scripts/encode-sweep.sh IMAGE [FIT] [SETTING-PREFIX]   (needs dssim, avifdec)
# Writes target/encode-sweep/<image>/ (outputs and sweep.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."
img=$1
fit=${2:-512}
export SWEEP_ONLY=${3:-}
export PATH="$HOME/.cargo/bin:$PATH"
command -v dssim >/dev/null || cargo install --locked --quiet dssim
out=target/encode-sweep/$(basename "$img")-$fit
rm -rf "$out"
mkdir -p "$out"
cargo run --release --locked --quiet --example encode_sweep -- "$img" "$out" "$fit" > "$out/raw.txt"
while read -r name q bytes ms; do
  png=$out/$name-q$q.png
  if [ ! -f "$png" ]; then avifdec -j 1 "$out/$name-q$q.avif" "$png" >/dev/null; fi
  d=$(dssim "$out/ref.png" "$png" | awk '{print $1}')
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$q" "$bytes" "$ms" "$d"
done < "$out/raw.txt" > "$out/sweep.tsv"
python3 - "$out/sweep.tsv" <<'EOF'
import math, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
curves = {}
for name, q, b, ms, d in rows:
    curves.setdefault(name, []).append((int(q), int(b), float(ms), float(d)))
# The reference point per format: the first setting listed (the default) at its default q.
default_q = {"jpeg": 80, "webp": 78, "avif": 60}
def at(curve, target):
    """Bytes at DSSIM `target`, log-linear between sweep points (DSSIM falls as q rises)."""
    pts = sorted(curve, key=lambda p: p[3], reverse=True)
    for (q0, b0, _, d0), (q1, b1, _, d1) in zip(pts, pts[1:]):
        if d1 <= target <= d0 and d0 > d1:
            t = (math.log(d0) - math.log(target)) / (math.log(d0) - math.log(d1))
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None
refs = {}
print("| setting | bytes at the reference DSSIM | vs reference setting | mean encode ms (q 70-85) |")
print("|---|---|---|---|")
for name, c in curves.items():
    fmt = name.split("-")[0]
    if fmt not in refs:
        q = default_q[fmt]
        near = min(c, key=lambda p: abs(p[0] - q))
        lo = [p for p in c if p[0] <= q]
        hi = [p for p in c if p[0] >= q]
        # The default q may fall between sweep points (WebP 78): interpolate DSSIM in q.
        if lo and hi and lo[-1][0] != hi[0][0]:
            (qa, _, _, da), (qb, _, _, db) = lo[-1], hi[0]
            d = da + (db - da) * (q - qa) / (qb - qa)
        else:
            d = near[3]
        refs[fmt] = (name, d, at(c, d))
    ref_name, d, ref_b = refs[fmt]
    b = at(c, d)
    ms = [p[2] for p in c if 70 <= p[0] <= 85]
    ratio = f"{b / ref_b:.3f}" if b and ref_b else "out of sweep"
    bs = f"{b:,.0f}" if b else "out of sweep"
    print(f"| {name} (DSSIM {d:.5f}) | {bs} | {ratio} | {sum(ms) / len(ms):.1f} |")
EOF
