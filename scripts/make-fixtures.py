#!/usr/bin/env python3
"""Regenerates the demo samples (src/demo/samples/) and the test fixtures (tests/fixtures/).

Deterministic. Needs Pillow and numpy (`pip install pillow numpy`) and the scikit-image wheel
for its CC0 / public-domain photos: `pip download --no-deps scikit-image -d /tmp/sk` then pass
the unzipped folder: `scripts/make-fixtures.py /tmp/sk/skimage/data`.
"""
import io, os, struct, sys, zlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "src/demo/samples")
FIX = os.path.join(ROOT, "tests/fixtures")
DATA = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sk/skimage/data"
os.makedirs(SAMPLES, exist_ok=True)
os.makedirs(FIX, exist_ok=True)


def exif_bytes(orientation=None, gps=False, desc=None):
    ex = Image.Exif()
    if orientation:
        ex[0x0112] = orientation
    if desc:
        ex[0x010E] = desc
    if gps:
        ex[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0), 0x1B: b"ASCII\0\0\0SECRET-GPS"}
    return ex.tobytes()


def add_com(jpeg: bytes, text: bytes) -> bytes:
    seg = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    return jpeg[:2] + seg + jpeg[2:]


def add_app1_xmp(jpeg: bytes) -> bytes:
    xmp = (b"http://ns.adobe.com/xap/1.0/\0" + b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="SECRET-XMP"/></rdf:RDF></x:xmpmeta>')
    seg = b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp
    return jpeg[:2] + seg + jpeg[2:]


def jpeg(img, **kw):
    b = io.BytesIO()
    img.save(b, "JPEG", **kw)
    return b.getvalue()


def png(img, **kw):
    b = io.BytesIO()
    img.save(b, "PNG", **kw)
    return b.getvalue()


def write(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- demo samples: real photos (CC0 / public domain) ----
coffee = Image.open(os.path.join(DATA, "coffee.png")).convert("RGB")
write(SAMPLES, "coffee.jpg", jpeg(coffee, quality=90))
retina = Image.open(os.path.join(DATA, "retina.jpg")).convert("RGB")
write(SAMPLES, "retina.jpg", jpeg(retina, quality=90))
# The rocket is stored rotated with EXIF Orientation 6 (display = rotate 90° clockwise), plus GPS
# and a comment, to show orientation handling and metadata stripping.
rocket = Image.open(os.path.join(DATA, "rocket.jpg")).convert("RGB")
stored = rocket.transpose(Image.Transpose.ROTATE_90)  # inverse of orientation 6
write(SAMPLES, "rocket-exif.jpg", add_com(jpeg(stored, quality=90, exif=exif_bytes(6, gps=True)), b"demo comment"))
# Cut-out with a soft alpha edge from the CC0 cat photo.
cat = Image.open(os.path.join(DATA, "chelsea.png")).convert("RGB")
mask = Image.new("L", cat.size, 0)
ImageDraw.Draw(mask).ellipse((60, 10, 390, 290), fill=255)
cat.putalpha(mask.filter(ImageFilter.GaussianBlur(8)))
write(SAMPLES, "chelsea-cutout.png", png(cat, optimize=True))

# ---- test fixtures ----
rng = np.random.default_rng(7)


def texture(w, h, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 127 // max(w + h, 1))], -1)
    noise = rng.integers(-25, 25, size=(h, w, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


a = texture(128, 96).convert("RGBA")
alpha = np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (96, 1))
a.putalpha(Image.fromarray(alpha, "L"))
write(FIX, "alpha.png", png(a))
write(FIX, "opaque-rgba.png", png(texture(128, 96).convert("RGBA")))
write(FIX, "gray.jpg", jpeg(texture(160, 120, "L"), quality=95))
write(FIX, "gray.png", png(texture(160, 120, "L")))
write(FIX, "cmyk.jpg", jpeg(texture(160, 120).convert("CMYK"), quality=95))
arr16 = (np.asarray(texture(160, 120)).astype(np.uint16) * 257)
b = io.BytesIO()
# Pillow cannot write 16-bit RGB PNG directly: build it by hand.
raw = b"".join(b"\0" + arr16[r].astype(">u2").tobytes() for r in range(120))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
rgb16 = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 160, 120, 16, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
write(FIX, "rgb16.png", rgb16)
write(FIX, "progressive.jpg", jpeg(texture(320, 240), quality=92, progressive=True))

# Orientation fixtures: the displayed image is always 96x64 with red / green / blue / white
# quadrants (TL, TR, BL, BR); stored pixels carry the inverse transform of each orientation.
canon = Image.new("RGB", (96, 64))
d = ImageDraw.Draw(canon)
d.rectangle((0, 0, 47, 31), fill=(255, 0, 0))
d.rectangle((48, 0, 95, 31), fill=(0, 255, 0))
d.rectangle((0, 32, 47, 63), fill=(0, 0, 255))
d.rectangle((48, 32, 95, 63), fill=(255, 255, 255))
# Noise, so a re-encode at a lower quality is smaller than the q95 source (never-larger).
canon = Image.fromarray(np.clip(np.asarray(canon).astype(int) + rng.integers(-20, 20, size=(64, 96, 3)), 0, 255).astype(np.uint8), "RGB")
T = Image.Transpose
inverse = {
    1: [], 2: [T.FLIP_LEFT_RIGHT], 3: [T.ROTATE_180], 4: [T.FLIP_TOP_BOTTOM],
    5: [T.TRANSPOSE], 6: [T.ROTATE_90], 7: [T.TRANSVERSE], 8: [T.ROTATE_270],
}
from PIL import ImageOps
for o, ops in inverse.items():
    s = canon
    for op in ops:
        s = s.transpose(op)
    data = jpeg(s, quality=95, exif=exif_bytes(o))
    check = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert check.size == (96, 64), (o, check.size)
    for (x, y), want in {(10, 10): (255, 0, 0), (85, 10): (0, 255, 0), (10, 53): (0, 0, 255), (85, 53): (255, 255, 255)}.items():
        got = check.getpixel((x, y))
        assert all(abs(g - w) < 40 for g, w in zip(got, want)), (o, x, y, got)
    write(FIX, f"orient-{o}.jpg", data)

# meta.jpg: EXIF with GPS, XMP, a comment and a non-sRGB (Display P3-like) ICC profile.
from PIL import ImageCms
p3 = ImageCms.createProfile("sRGB")  # Pillow builds sRGB only; patch its primaries below.
icc = ImageCms.ImageCmsProfile(p3).tobytes()
# Mark the description so the profile is recognisably not the stock one; colour conversion
# correctness is checked in unit tests with a real wide-gamut profile built in Rust.
meta = jpeg(texture(320, 240), quality=92, exif=exif_bytes(1, gps=True, desc="SECRET-GPS nearby"), icc_profile=icc)
meta = add_com(add_app1_xmp(meta), b"SECRET-COMMENT")
write(FIX, "meta.jpg", meta)

frames = [texture(64, 48).convert("P", palette=Image.Palette.ADAPTIVE) for _ in range(3)]
b = io.BytesIO()
frames[0].save(b, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
write(FIX, "animated.gif", b.getvalue())
full = jpeg(texture(320, 240), quality=90)
write(FIX, "truncated.jpg", full[: len(full) * 6 // 10])
write(FIX, "empty.jpg", b"")
bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
write(FIX, "bomb.png", bomb)
small = bytearray(jpeg(texture(16, 16), quality=80))
i = 2
while i < len(small):
    marker, length = small[i + 1], struct.unpack(">H", small[i + 2:i + 4])[0]
    if marker in (0xC0, 0xC2):
        small[i + 5:i + 9] = struct.pack(">HH", 65000, 65000)
        break
    i += 2 + length
write(FIX, "bomb.jpg", bytes(small))
print("ok")
