"""Cold AVIF latency (issue 22 item 5): how long the first AVIF-capable visitor of a variant
waits, against the first WebP-only visitor, and how many AVIF-capable requests get AVIF once
the variant is warm.

    python3 benches/peers/cold_avif.py PIXGATE_BIN PHOTOS_DIR [rounds] [width]

PHOTOS_DIR is benches/peers/photos.sh's output; its JPEG classes are used (2-18 MP photos).
An origin (a thread of this script, serving PHOTOS_DIR) and a pixgate on the embedded defaults
(cache on, cache.avif_budget 800ms) are started on free loopback ports, once with
`cache.avif_margin: null` (no prediction: every cold AVIF races the budget) and once with the
default margin. For each photo and round, a WebP-only request and an AVIF-capable (Chrome)
request for two new variants (`?w=WIDTH&v=...`: cold) are timed one after the other, each
after the pool is idle (no background encode left running). Then every AVIF-capable URL is
asked again once the pool is idle: the share answered with AVIF is the warm figure.
Prints a markdown table.
"""

import http.client
import http.server
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
WEBP_ONLY = "image/webp,*/*"
CLASSES = ["jpeg-420", "jpeg-422", "jpeg-444", "jpeg-big-prog", "jpeg-20mp", "jpeg-exif"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_origin(root):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def metric(admin, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def idle(admin, limit=120):
    """Waits until no transform is queued or running (background AVIF encodes included)."""
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if metric(admin, "pixgate_transforms_in_flight") == 0 and \
                metric(admin, "pixgate_transforms_queued") == 0:
            return
        time.sleep(0.05)
    raise SystemExit("the pool never went idle")


def get(port, path, accept):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.monotonic()
    c.request("GET", path, headers={"Accept": accept})
    r = c.getresponse()
    body = r.read()
    took = time.monotonic() - t
    c.close()
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}")
    return took, r.getheader("content-type"), len(body)


class Pixgate:
    def __init__(self, binary, origin_port, margin):
        self.port, self.admin = free_port(), free_port()
        self.dir = tempfile.TemporaryDirectory()
        cfg = pathlib.Path(self.dir.name) / "pixgate.yaml"
        cfg.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f'origin: {{ url: "http://127.0.0.1:{origin_port}" }}\n'
            f'admin: {{ listen: "127.0.0.1:{self.admin}" }}\n'
            f"server: {{ grace_period: 0s, upgrade_sock: {self.dir.name}/u.sock }}\n"
            f"cache: {{ avif_margin: {margin} }}\n"
            "log: { level: warn, access: { enabled: false } }\n")
        self.proc = subprocess.Popen([binary, "--config", str(cfg)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("pixgate did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.dir.cleanup()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(px, photos, rounds, width):
    rows = {}  # class -> dict of lists
    warm = []
    for r in range(rounds):
        for cls, rel in photos:
            row = rows.setdefault(cls, {"webp": [], "avif": [], "first_avif": 0, "n": 0})
            base = f"/{rel}?w={width}&v=r{r}"
            idle(px.admin)
            took_w, ct_w, _ = get(px.port, base + "w", WEBP_ONLY)
            assert ct_w == "image/webp", (rel, ct_w)
            idle(px.admin)
            took_a, ct_a, _ = get(px.port, base + "a", CHROME)
            row["webp"].append(took_w)
            row["avif"].append(took_a)
            row["first_avif"] += ct_a == "image/avif"
            row["n"] += 1
            warm.append((cls, base + "a"))
    idle(px.admin)
    got = {}
    for cls, path in warm:
        _, ct, _ = get(px.port, path, CHROME)
        g = got.setdefault(cls, [0, 0])
        g[0] += ct == "image/avif"
        g[1] += 1
    return rows, got


def main():
    binary, root = sys.argv[1], pathlib.Path(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    width = int(sys.argv[4]) if len(sys.argv) > 4 else 1200
    photos = [(c, f"{c}/{f.name}") for c in CLASSES for f in sorted((root / c).glob("*.jpg"))]
    if not photos:
        raise SystemExit(f"no photos under {root} (run benches/peers/photos.sh)")
    origin = start_origin(root)
    out = [f"Cold {width} px variants, {rounds} rounds over {len(photos)} photos "
           f"({', '.join(CLASSES)}); each request alone on an idle pool. Seconds.", "",
           "| cache.avif_margin | class | n | WebP-only p50 / p95 | AVIF-capable p50 / p95 | "
           "difference p50 / p95 | AVIF in the first answer | AVIF once warm |",
           "|---|---|---|---|---|---|---|---|"]
    for margin in ["null", "50ms"]:
        px = Pixgate(binary, origin.server_address[1], margin)
        try:
            rows, warm = measure(px, photos, rounds, width)
        finally:
            px.stop()
        all_w, all_a, first, n, wa, wn = [], [], 0, 0, 0, 0
        for cls, row in rows.items():
            all_w += row["webp"]
            all_a += row["avif"]
            first += row["first_avif"]
            n += row["n"]
            wa += warm[cls][0]
            wn += warm[cls][1]
            out.append(line(margin, cls, row["n"], row["webp"], row["avif"], row["first_avif"],
                            warm[cls]))
        out.append(line(margin, "**all**", n, all_w, all_a, first, (wa, wn)))
    origin.shutdown()
    print("\n".join(out))


def line(margin, cls, n, w, a, first, warm):
    d50 = pct(a, 50) - pct(w, 50)
    d95 = pct(a, 95) - pct(w, 95)
    return (f"| {margin} | {cls} | {n} | {pct(w, 50):.3f} / {pct(w, 95):.3f} | "
            f"{pct(a, 50):.3f} / {pct(a, 95):.3f} | {d50:+.3f} / {d95:+.3f} | "
            f"{first}/{n} | {warm[0]}/{warm[1]} |")


if __name__ == "__main__":
    main()
