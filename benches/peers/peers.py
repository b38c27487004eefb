"""Measurement half of benches/peers/run.sh (run.sh installs, starts and stops the servers).

    peers.py bench   RUN_DIR    throughput table (wrk) -> RUN_DIR/throughput.md
    peers.py quality RUN_DIR    bytes and DSSIM table  -> RUN_DIR/quality.md
    peers.py photos  RUN_DIR    real photos by class (wrk, CPU, bytes, DSSIM) -> RUN_DIR/photos.md

Ports and settings come from RUN_DIR/env.json, written by run.sh. Runs under thumbor's venv
python, whose Pillow decodes JPEG, PNG, WebP and AVIF (used to check each answer's format and
dimensions and to turn outputs into PNG for the dssim CLI).
"""

import http.client
import io
import json
import math
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

from PIL import Image, ImageOps

BOX = 512
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
PIL_FORMAT = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "AVIF": "avif"}
HERE = pathlib.Path(__file__).resolve().parent

# Transform workloads: (name, source file on the origin, forced format or None, Accept, expected).
# The same-format rows force the format on every server (fm=, filters:format()); the "via
# Accept" rows send no format and let each server negotiate, as a browser's request would.
TRANSFORMS = [
    ("JPEG 2 MP -> JPEG", "retina.jpg", "jpeg", "*/*", "jpeg"),
    ("JPEG 12 MP -> JPEG", "retina-12mp.jpg", "jpeg", "*/*", "jpeg"),
    ("PNG 2 MP -> PNG", "retina.png", "png", "*/*", "png"),
    ("WebP 2 MP -> WebP", "retina.webp", "webp", "*/*", "webp"),
    ("AVIF 2 MP -> AVIF", "retina.avif", "avif", "*/*", "avif"),
    ("JPEG 2 MP -> AVIF via Accept (cold)", "retina.jpg", None, "image/avif,*/*", "avif"),
    ("JPEG 2 MP -> WebP via Accept (cold)", "retina.jpg", None, "image/webp,*/*", "webp"),
]
SERVERS = ["pixgate", "thumbor", "sharp"]
HIT_NAME = "cached hit: 2 MP JPEG as 512 px WebP, 64 conns"


class Env:
    def __init__(self, run_dir):
        self.run = pathlib.Path(run_dir)
        self.__dict__.update(json.loads((self.run / "env.json").read_text()))

    def path(self, server, src, fm, q=None):
        """The request path that asks `server` for `src` fit into 512x512 as `fm`."""
        if server in ("pixgate", "pixgate-hit"):
            p = f"/{src}?w={BOX}&h={BOX}&fit=inside"
            p += f"&fm={fm}" if fm else ""
            return p + (f"&q={q}" if q else "")
        if server == "thumbor":
            filters = ([f"format({fm})"] if fm else []) + ([f"quality({q})"] if q else [])
            f = f"filters:{':'.join(filters)}/" if filters else ""
            return f"/unsafe/fit-in/{BOX}x{BOX}/{f}127.0.0.1:{self.origin_port}/{src}"
        if server == "sharp":
            qs = "&".join(x for x in ([f"fm={fm}"] if fm else []) + ([f"q={q}"] if q else []))
            return f"/{src}" + (f"?{qs}" if qs else "")
        raise ValueError(server)

    def port(self, server):
        return {
            "pixgate": self.pixgate_port,
            "pixgate-hit": self.pixgate_hit_port,
            "thumbor": self.thumbor_port,
            "sharp": self.sharp_port,
            "nginx": self.cache_port,
        }[server]


def get(port, path, accept="*/*", timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers={"Accept": accept})
    r = c.getresponse()
    body = r.read()
    headers = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, headers, body


def probe(body):
    """(format, width, height) of an encoded image, or raises."""
    im = Image.open(io.BytesIO(body))
    im.load()
    return PIL_FORMAT.get(im.format, im.format), im.width, im.height


def check(env, server, path, accept, want):
    """One request before timing: the answer must be `want`, fit into 512x512 with one side 512.
    Returns (body, (width, height), None) or (None, None, why-not)."""
    status, h, body = get(env.port(server), path, accept)
    if status != 200:
        return None, None, f"HTTP {status}: {body[:120]!r}"
    ctype = h.get("content-type", "")
    if ctype != MIME[want]:
        why = f"answered {ctype}"
        if "x-pixgate" in h:
            why += f" (x-pixgate: {h['x-pixgate']})"
        return None, None, why
    try:
        fmt, w, hh = probe(body)
    except Exception as e:  # noqa: BLE001 - any decoding failure disqualifies the cell
        return None, None, f"undecodable {want}: {e}"
    if fmt != want or max(w, hh) != BOX:
        return None, None, f"decodes as {fmt} {w}x{hh}"
    return body, (w, hh), None


def to_ms(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", s)
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(env, port, path, accept, conns, lua, secs=None, paths=None):
    """One bounded wrk run (time: -d, hard stop: timeout; count: count.lua for transforms).
    With `paths`, count.lua asks for them in turn (round robin) instead of `path`."""
    secs = secs or env.secs
    e = dict(os.environ, PEERS_MAX_REQUESTS=str(env.max_requests))
    if paths:
        e["PEERS_PATHS"] = str(env.run / "wrk-paths.txt")
        pathlib.Path(e["PEERS_PATHS"]).write_text("\n".join(paths) + "\n")
    cmd = ["timeout", str(secs + 60), "wrk", "-t2", f"-c{conns}", f"-d{secs}s",
           "--timeout", "60s", "--latency", "-H", f"Accept: {accept}"]
    if lua:
        cmd += ["-s", str(HERE / "count.lua")]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=e, check=True).stdout
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct, key in (("50", "p50"), ("99", "p99")):
        r[key] = to_ms(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    r["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["errors"] = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return r


HZ = os.sysconf("SC_CLK_TCK")


def tree(pid):
    """pid and all its descendants (thumbor's forked workers, nginx's workers)."""
    out = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            for c in pathlib.Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
                out += tree(int(c))
    except OSError:
        pass
    return out


def cpu_seconds(pids):
    """utime + stime of these processes (all their threads)."""
    t = 0
    for p in pids:
        try:
            f = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except OSError:
            pass
    return t / HZ


def machine_busy():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    f = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / HZ


class Meter:
    """CPU used during one cell: by the server under test, by wrk, and by everything else."""

    def __init__(self, env, server):
        self.pids = tree(env.pids[server])
        # The origin (nginx) is part of every transform cell, not interference.
        self.origin = [] if server == "nginx" else tree(env.pids["nginx"])
        self.t0, self.s0, self.m0 = time.time(), cpu_seconds(self.pids), machine_busy()
        self.o0 = cpu_seconds(self.origin)
        self.w0 = os.times().children_user + os.times().children_system

    def done(self, requests):
        dt = time.time() - self.t0
        server = cpu_seconds(self.pids) - self.s0
        wrk_cpu = os.times().children_user + os.times().children_system - self.w0
        origin = cpu_seconds(self.origin) - self.o0
        others = machine_busy() - self.m0 - server - wrk_cpu - origin
        return {"cpu_ms": 1000 * server / max(requests, 1), "server_cores": server / dt,
                "others_cores": max(others, 0) / dt}


def transform_outcomes(env):
    """pixgate's pixgate_image_transforms_total by outcome (to catch fail-open answers)."""
    _, _, body = get(env.pixgate_admin_port, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("pixgate_image_transforms_total{"):
            o = re.search(r'outcome="([^"]+)"', line).group(1)
            out[o] = out.get(o, 0) + float(line.rsplit(" ", 1)[1])
    return out


def load():
    return os.getloadavg()[0]


def fmt_ms(v):
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 1 else f"{v * 1000:.0f} µs"


def fmt_rps(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def timed(env, server, path, accept, conns, lua, secs=None, paths=None):
    """One wrk cell with the server's CPU (Meter); a note on errors and, for pixgate, on fail-open
    answers during the cell (its transform outcomes other than ok)."""
    before = transform_outcomes(env) if server == "pixgate" else None
    meter = Meter(env, server)
    r = wrk(env, env.port(server), path, accept, conns, lua, secs, paths)
    r.update(meter.done(r["requests"]))
    r["load"] = load()
    notes = []
    if before is not None:
        after = transform_outcomes(env)
        failed = {k: after[k] - before.get(k, 0) for k in after if k != "ok"
                  and after[k] - before.get(k, 0) > 0}
        if failed:
            notes.append(f"fail-open answers during the run: {failed}")
    if r["errors"]:
        notes.append(f"{r['errors']} errors")
    if notes:
        r["note"] = " ".join(notes)
    return r


def bench(run_dir):
    env = Env(run_dir)
    rows = []  # dicts: workload, server, rps, p50, p99, bytes, dims, note, load
    print(f"# throughput: {env.secs} s per cell, 2 connections (64 for cached hits)", flush=True)
    for name, src, fm, accept, want in TRANSFORMS:
        for server in SERVERS:
            path = env.path(server, src, fm)
            row = {"workload": name, "server": server}
            body, size, why = check(env, server, path, accept, want)
            if why:
                row["note"] = f"not timed: {why}"
                print(f"{name:40} {server:8} {row['note']}", flush=True)
                rows.append(row)
                continue
            get(env.port(server), path, accept)  # warm-up beyond the check
            # AVIF cells run twice as long: at a few requests/s, `secs` alone gives too few.
            secs = env.secs * (2 if want == "avif" else 1)
            row.update(timed(env, server, path, accept, 2, lua=True, secs=secs))
            row.update(bytes=len(body), dims=f"{size[0]}x{size[1]}")
            rows.append(row)
            print(f"{name:40} {server:8} {row['rps']:9.2f} req/s p50 {fmt_ms(row['p50'])}"
                  f" p99 {fmt_ms(row['p99'])} {row['bytes']} B {row['dims']}"
                  f" CPU {row['cpu_ms']:.1f} ms/req,"
                  f" server {row['server_cores']:.2f} cores, others {row['others_cores']:.2f}", flush=True)

    # Cached hits: pixgate's memory tier and nginx's proxy_cache hold the same bytes.
    path = env.path("pixgate-hit", "retina.jpg", None)
    accept = "image/webp,*/*"
    for _ in range(2):
        get(env.pixgate_hit_port, path, accept)
    status, h, body = get(env.pixgate_hit_port, path, accept)
    assert status == 200 and h.get("x-cache") == "HIT" and h["content-type"] == "image/webp", h
    hit_file = env.run / "www" / "hit" / "retina-512.webp"
    hit_file.parent.mkdir(exist_ok=True)
    hit_file.write_bytes(body)
    nginx_path = "/hit/retina-512.webp"
    for _ in range(2):
        get(env.cache_port, nginx_path, accept)
    status, h2, body2 = get(env.cache_port, nginx_path, accept)
    assert status == 200 and h2.get("x-cache") == "HIT" and body2 == body, h2
    _, w, hh = probe(body)
    for label, server, p in (("pixgate", "pixgate-hit", path), ("nginx", "nginx", nginx_path),
                             ("pixgate (again)", "pixgate-hit", path)):
        row = {"workload": HIT_NAME, "server": label}
        row.update(timed(env, server, p, accept, 64, lua=False))
        row.update(bytes=len(body), dims=f"{w}x{hh}")
        rows.append(row)
        print(f"{HIT_NAME:40} {label:8} {row['rps']:9.0f} req/s p50 {fmt_ms(row['p50'])}"
              f" p99 {fmt_ms(row['p99'])} CPU {1000 * row['cpu_ms']:.0f} µs/req,"
              f" server {row['server_cores']:.2f} cores, others {row['others_cores']:.2f}", flush=True)
    report(env, "throughput", rows, throughput_table(rows))


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "—"


def throughput_table(rows):
    out = ["Each answer was checked before timing: HTTP 200, the format asked for (Content-Type and"
           " decoded), fit into 512x512 (all 512x512 here). req/s, p50, p99 from wrk (2 connections;"
           " 64 for the cached hits). *server CPU per request*: the server's user+system CPU time"
           " (all its processes) over the requests wrk counted, less sensitive to the machine's"
           " other load than req/s; *server cores*: its CPU time over the wall time (2 = both"
           " cores); *other load*: CPU used by everything but the server, wrk and the origin"
           " during the cell.", "",
           "| workload | server | req/s | p50 | p99 | output bytes | vs thumbor | vs sharp"
           " | vs nginx | server CPU per request | server cores | other load (cores) | note |",
           "|" + "---|" * 13]
    by = {}
    for r in rows:
        by.setdefault(r["workload"], {})[r["server"]] = r
    for wl, servers in by.items():
        th = servers.get("thumbor", {}).get("rps")
        sh = servers.get("sharp", {}).get("rps")
        nx = servers.get("nginx", {}).get("rps")
        for s, r in servers.items():
            if "rps" not in r:
                out.append(f"| {wl} | {s} | — | — | — | — | — | — | — | — | — | — | {r['note']} |")
                continue
            hit = wl == HIT_NAME
            out.append(
                f"| {wl} | {s} | {fmt_rps(r['rps'])} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
                f"{r['bytes']:,} | {'—' if hit else ratio(r['rps'], th)} | "
                f"{'—' if hit else ratio(r['rps'], sh)} | {ratio(r['rps'], nx) if hit else '—'} | "
                f"{fmt_ms(r['cpu_ms'])} | {r['server_cores']:.2f} | {r['others_cores']:.2f} | "
                f"{r.get('note', '')} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Quality at size

QUALITY_IMAGES = [("retina.jpg", "2 MP photo 1411x1411"), ("coffee.jpg", "0.24 MP photo 600x400")]
FORMATS = ["jpeg", "webp", "avif", "png"]
SWEEP = list(range(30, 100, 5))


def dssim(ref, imgs):
    out = subprocess.run(["dssim", str(ref)] + [str(i) for i in imgs], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return [float(line.split()[0]) for line in out if line.strip()]


def to_png(body, dest):
    """The image as PNG at `dest`, upright (an EXIF orientation applied); returns its size."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(body)))
    im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    im.save(dest)
    return im.size


class Quality:
    def __init__(self, env, name="quality"):
        self.env = env
        self.dir = env.run / name
        self.dir.mkdir(exist_ok=True)
        self.refs = {}

    def ref(self, src, size):
        """The source, upright, resized by ImageMagick (Lanczos, no server's own resizer) to
        `size`."""
        key = (src, size)
        if key not in self.refs:
            dest = self.dir / f"ref-{src.replace('/', '_')}-{size[0]}x{size[1]}.png"
            subprocess.run([self.env.convert, str(self.env.run / "www" / src), "-auto-orient",
                            "-filter", "Lanczos", "-resize", f"{size[0]}x{size[1]}!", str(dest)],
                           check=True)
            self.refs[key] = dest
        return self.refs[key]

    def one(self, server, src, fm, q=None):
        """(bytes, size, png path) of one output."""
        status, h, body = get(self.env.port(server), self.env.path(server, src, fm, q))
        if status != 200:
            raise RuntimeError(f"{server} {src} {fm} q={q}: HTTP {status} {body[:200]!r}")
        got, w, hh = probe(body)
        if got != fm:
            raise RuntimeError(f"{server} {src} {fm} q={q}: got {got} ({h.get('x-pixgate')})")
        dest = self.dir / f"{server}-{src}-{fm}-{q or 'default'}.png"
        to_png(body, dest)
        (self.dir / f"{server}-{src}-{fm}-{q or 'default'}.{fm}").write_bytes(body)
        return len(body), (w, hh), dest


def interp_bytes(curve, target):
    """Bytes at DSSIM `target` on a (bytes, dssim) sweep, log-linear between neighbours; None if
    the sweep does not reach it."""
    pts = sorted(curve, key=lambda p: p[0])
    for (b0, d0), (b1, d1) in zip(pts, pts[1:]):
        if (d0 - target) * (d1 - target) <= 0 and d0 != d1:
            t = (target - d0) / (d1 - d0)
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None


def quality(run_dir):
    env = Env(run_dir)
    qa = Quality(env)
    rows, matched = [], []
    for src, desc in QUALITY_IMAGES:
        own_png = {}
        for server in SERVERS:
            own_png[server] = qa.one(server, src, "png")
        for fm in FORMATS:
            base = {}
            for server in SERVERS:
                b, size, png = qa.one(server, src, fm)
                d_ref = dssim(qa.ref(src, size), [png])[0]
                own = own_png[server]
                d_own = dssim(own[2], [png])[0] if own[1] == size and fm != "png" else None
                base[server] = (b, d_ref, d_own, size)
                rows.append({"image": f"{src} ({desc})", "format": fm, "server": server,
                             "bytes": b, "dims": f"{size[0]}x{size[1]}", "dssim": d_ref,
                             "dssim_own": d_own})
                print(f"quality {src} {fm:5} {server:8} {b:7} B {size} dssim {d_ref:.5f}"
                      + (f" own {d_own:.5f}" if d_own is not None else ""), flush=True)
            if fm == "png":
                continue
            # q sweeps for pixgate and sharp: bytes each needs to reach the other's default DSSIM.
            curves = {}
            for server in ("pixgate", "sharp"):
                pts_ref, pts_own = [], []
                for q in SWEEP:
                    b, size, png = qa.one(server, src, fm, q)
                    pts_ref.append((b, dssim(qa.ref(src, size), [png])[0]))
                    if own_png[server][1] == size:
                        pts_own.append((b, dssim(own_png[server][2], [png])[0]))
                curves[server] = (pts_ref, pts_own)
            sb, sd, sdo, _ = base["sharp"]
            pb, pd, pdo, _ = base["pixgate"]
            at_ref = interp_bytes(curves["pixgate"][0], sd)
            at_own = interp_bytes(curves["pixgate"][1], sdo) if sdo is not None else None
            sharp_at_px = interp_bytes(curves["sharp"][0], pd)
            matched.append({"image": src, "format": fm, "sharp_bytes": sb, "sharp_dssim": sd,
                            "pixgate_bytes": pb, "pixgate_dssim": pd,
                            "pixgate_at_sharp_dssim": at_ref, "pixgate_at_sharp_own": at_own,
                            "sharp_at_pixgate_dssim": sharp_at_px,
                            "curves": {k: v for k, v in curves.items()}})
    report(env, "quality", {"rows": rows, "matched": matched}, quality_tables(rows, matched))


def quality_tables(rows, matched):
    sharp = {(r["image"], r["format"]): r for r in rows if r["server"] == "sharp"}
    out = ["Defaults of each server, fit into 512x512. DSSIM against the source resized by"
           " ImageMagick (Lanczos) to the output's dimensions; *own* = against the same server's"
           " lossless PNG output (the encoder's loss alone, without resizer differences).", "",
           "| image | format | server | bytes | dims | DSSIM | DSSIM vs own PNG | bytes vs sharp |",
           "|" + "---|" * 8]
    for r in rows:
        s = sharp[(r["image"], r["format"])]
        own = f"{r['dssim_own']:.5f}" if r["dssim_own"] is not None else "—"
        out.append(f"| {r['image']} | {r['format']} | {r['server']} | {r['bytes']:,} | {r['dims']} |"
                   f" {r['dssim']:.5f} | {own} | {r['bytes'] / s['bytes']:.2f} |")
    out += ["", "Matched DSSIM: pixgate's `q` swept over 30..95 (step 5), the bytes it needs to"
            " reach sharp's default DSSIM (log-linear between sweep points), and sharp's sweep at"
            " pixgate's default DSSIM.", "",
            "| image | format | sharp default: bytes, DSSIM | pixgate default: bytes, DSSIM |"
            " pixgate bytes at sharp's DSSIM (ratio) | same, encoder-only DSSIM (ratio) |"
            " sharp bytes at pixgate's DSSIM (pixgate default / it) |", "|" + "---|" * 7]
    for m in matched:
        def r(v, base):
            return f"{v:,.0f} ({v / base:.2f})" if v else "out of sweep"
        inv = (f"{m['sharp_at_pixgate_dssim']:,.0f} ({m['pixgate_bytes'] / m['sharp_at_pixgate_dssim']:.2f})"
               if m["sharp_at_pixgate_dssim"] else "out of sweep")
        out.append(f"| {m['image']} | {m['format']} | {m['sharp_bytes']:,}, {m['sharp_dssim']:.5f} |"
                   f" {m['pixgate_bytes']:,}, {m['pixgate_dssim']:.5f} |"
                   f" {r(m['pixgate_at_sharp_dssim'], m['sharp_bytes'])} |"
                   f" {r(m['pixgate_at_sharp_own'], m['sharp_bytes'])} | {inv} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Real photos by class (benches/peers/photos.sh; run.sh copies the classes to www/photos/<class>/)


def photo_classes(env):
    """{class: [source path on the origin, ...]} from www/photos/<class>/<file>; only the
    classes named in PHOTO_CLASSES (space-separated) when it is set."""
    root = env.run / "www" / "photos"
    only = os.environ.get("PHOTO_CLASSES", "").split()
    return {c.name: sorted(f"photos/{c.name}/{f.name}" for f in c.iterdir())
            for c in sorted(root.iterdir()) if c.is_dir() and (not only or c.name in only)}


def photo_format(cls):
    """The format in and out of a class: png-* and webp keep theirs, the JPEG classes JPEG."""
    head = cls.split("-")[0]
    return head if head in ("png", "webp") else "jpeg"


def landscape(path):
    """Whether the image at `path` is wider than tall once its EXIF orientation is applied."""
    im = Image.open(path)
    w, h = im.size
    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        w, h = h, w
    return w > h


def photo_answer(env, qa, server, src, want):
    """One photo through `server` before timing: check(), then upright (as the source once its
    EXIF orientation is applied). Returns ((bytes, DSSIM), None) or (None, why-not)."""
    body, _, why = check(env, server, env.path(server, src, want), "*/*", want)
    if why:
        return None, why
    png = qa.dir / f"{server}-{src.replace('/', '_')}.png"
    w, h = to_png(body, png)
    if (w > h) != landscape(env.run / "www" / src):
        return None, f"{w}x{h} (upright): not the source's orientation"
    return (len(body), dssim(qa.ref(src, (w, h)), [png])[0]), None


def photo_cell(env, qa, cls, srcs, server):
    """One class through one server: each photo checked once, then wrk asks for them in turn."""
    want = photo_format(cls)
    row = {"class": cls, "server": server, "images": len(srcs), "checked": {}}
    whys = []
    for src in srcs:
        answer, why = photo_answer(env, qa, server, src, want)
        if why:
            whys.append(f"{pathlib.PurePath(src).name}: {why}")
        else:
            row["checked"][src] = answer
    if whys:
        row["note"] = f"not timed: {len(whys)} of {len(srcs)} failed the check, {whys[0]}"
        return row
    row["bytes"] = statistics.mean(b for b, _ in row["checked"].values())
    row["dssim"] = statistics.mean(d for _, d in row["checked"].values())
    paths = [env.path(server, src, want) for src in srcs]
    row.update(timed(env, server, paths[0], "*/*", 2, lua=True, paths=paths))
    return row


def photo_line(r):
    head = f"{r['class']:14} {r['server']:8}"
    if "rps" not in r:
        return f"{head} {r['note']}"
    return (f"{head} {r['rps']:9.2f} req/s CPU {r['cpu_ms']:.1f} ms/req {r['bytes']:,.0f} B"
            f" DSSIM {r['dssim']:.5f}, server {r['server_cores']:.2f} cores,"
            f" others {r['others_cores']:.2f}")


def photos(run_dir):
    env = Env(run_dir)
    qa = Quality(env, "photos")
    rows = []
    print(f"# photos: {env.secs} s per cell, 2 connections, a class's images in turn", flush=True)
    for cls, srcs in photo_classes(env).items():
        for server in SERVERS:
            rows.append(photo_cell(env, qa, cls, srcs, server))
            print(photo_line(rows[-1]), flush=True)
    report(env, "photos", rows, photos_table(rows))


def photos_table(rows):
    out = ["Real photos (benches/peers/photos.sh) by class: each server fits each image of the"
           " class into 512x512, in the class's format (the JPEG classes as JPEG, png-* as PNG,"
           " webp as WebP), at its default quality. Each answer was checked once before timing:"
           " HTTP 200, the format, fit into 512x512 with the longer side 512, upright (the source's"
           " EXIF orientation applied). req/s from wrk asking for the class's images in turn"
           " (2 connections); *CPU per request*: the server's user+system CPU time over the"
           " requests wrk counted; *mean bytes*, *mean DSSIM*: over the class's images, DSSIM"
           " against the source turned upright and resized by ImageMagick (Lanczos) to the"
           " output's dimensions.", "",
           "| class (images) | server | req/s | vs thumbor | CPU per request | CPU vs thumbor |"
           " mean bytes | mean DSSIM | note |", "|" + "---|" * 9]
    thumbor = {r["class"]: r for r in rows if r["server"] == "thumbor"}
    for r in rows:
        head = f"| {r['class']} ({r['images']}) | {r['server']} |"
        if "rps" not in r:
            out.append(f"{head} — | — | — | — | — | — | {r['note']} |")
            continue
        th = thumbor[r["class"]]
        out.append(f"{head} {fmt_rps(r['rps'])} | {ratio(r['rps'], th.get('rps'))} |"
                   f" {fmt_ms(r['cpu_ms'])} | {ratio(r['cpu_ms'], th.get('cpu_ms'))} |"
                   f" {r['bytes']:,.0f} | {r['dssim']:.5f} | {r.get('note', '')} |")
    return "\n".join(out) + "\n"


def report(env, name, data, md):
    """RUN_DIR/<name>.json and RUN_DIR/<name>.md, and the table on stdout."""
    (env.run / f"{name}.json").write_text(json.dumps(data, indent=1))
    (env.run / f"{name}.md").write_text(md)
    print()
    print(md)


def main():
    cmd, run_dir = sys.argv[1], sys.argv[2]
    if shutil.which("dssim") is None and cmd in ("quality", "photos"):
        sys.exit("dssim not on PATH")
    {"bench": bench, "quality": quality, "photos": photos}[cmd](run_dir)


if __name__ == "__main__":
    main()
