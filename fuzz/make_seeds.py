#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets under fuzz/corpus/<target>/ (deterministic).

Needs Pillow for the image seeds (`pip install pillow`). The image_entry seeds are one control
byte (Accept header in bits 0-1, URL options in bits 2-4; see pixgate::fuzz_entry) followed by
a tiny image. Run from anywhere: `python3 fuzz/make_seeds.py`.
"""
import io
import pathlib
import shutil

from PIL import Image, ImageCms

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def text_seeds():
    # Query strings of proxied image URLs (docs/url-api.md), good and bad.
    for i, q in enumerate([
        "w=640&h=480&fit=cover&g=sm&q=70&fm=auto&dpr=2",
        "width=10&gravity=fp:0.25:0.75&bg=ff000080&v=3",
        "w=400&h=300&fit=contain&bg=transparent&enlarge=1&blur=2.5&sharpen=0.5",
        "h=%32%30&fit=crop&g=north&fm=webp&x=%ZZ&&=",
        "fit=banana",
        "w=0",
        "dpr=NaN",
    ]):
        write("url_options", f"q{i}", q)
    # Paths after the URL API prefix: plain and base64 sources, presets, errors.
    for i, p in enumerate([
        "/sig/rs:fill:300:200/g:sm/q:70/plain/http://img.example.com/a%40b.jpg@webp",
        "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        "/insecure/pr:thumb/g:fp:0.5:0.25/bg:255:0:0/ex:1/exp:99/plain/https://[::1]:8443/x.png?a=b",
        "/s/s:100:0:1:1/el:1/dpr:2/bl:1/sh:0.5/sm:1/cb:7/f:jpg/plain/http://x/a",
        "/s/wm:0.5/plain/http://x/a",
        "/s/w:10/!!!notbase64",
        "/nosig",
    ]):
        write("imgproxy_path", f"p{i}", p)
    # Accept headers: browsers, q-values, malformed members.
    for i, a in enumerate([
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "image/webp,image/avif,image/jxl,image/heic,video/*;q=0.8,image/png,image/*;q=0.8,*/*;q=0.5",
        "image/avif;q=0, image/webp;q=0.9, IMAGE/PNG ; Q=0.7 ;level=1, */*;q=0.1",
        "garbage, image/webp;q=2, image/avif;q=abc, */png, ,image/png",
        "*/*",
        "1.5",
        "65535",
    ]):
        write("accept", f"a{i}", a)
    # Rules files: the shipped examples and a few broken ones.
    for f in sorted((ROOT / "rules").glob("*.yaml")):
        write("rules_loader", f.name, f.read_bytes())
    write("rules_loader", "bad-keys.yaml", (
        "presets:\n  thumb: \"w=1\"\n  thumb: \"w=2\"\n  bad name: \"a b\"\n"
        "rules:\n- name: a\n  hosts: [\"*.Example.com\", \"x/y\"]\n  paths:\n    - /img/**\n"
        "    - \"no-slash\"\n  quality: { webp: 500, avif: 0 }\n  max_width: 0\n"
        "  ttl: 1ms\n  formats: []\n  tenant: \"t!\"\n- name: a\n"
    ))
    write("rules_loader", "flow.yaml", (
        "---\nrules: [{name: b, source_formats: [jpeg, png], formats: [webp], ttl: \"1h 30m\","
        " bypass: false, require_signature: true, presets: {hero: \"w=1200&q=70\"}}]\n...\n"
    ))
    write("rules_loader", "unknown-key.yaml", "rules:\n- name: c\n  colour: red\n")
    write("rules_loader", "not-yaml.yaml", "rules:\n  - name: [unclosed\n\t- x: 'y\n")


def img(im, fmt, **kw):
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def pattern(w, h, mode="RGB"):
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 37) % 256, (y * 53) % 256, ((x + y) * 29) % 256)
                for y in range(h) for x in range(w)])
    return im.convert(mode)


def control(query, accept):
    return bytes([(query << 2) | accept])


def image_seeds():
    rgb = pattern(8, 8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    jpeg = img(rgb, "JPEG", quality=50)
    rgba = pattern(8, 8, "RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((8, 8)))
    srgb = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    srgb[24:36] = b"\x07\xea\x00\x01\x00\x01" + bytes(6)  # fixed creation date: 2026-01-01
    srgb = bytes(srgb)
    frames = [pattern(8, 8, "P"), pattern(8, 8).transpose(Image.Transpose.ROTATE_90).convert("P")]
    seeds = {
        "jpeg-identity": control(0, 0) + jpeg,
        "jpeg-exif6-progressive": control(1, 1) + img(pattern(16, 8), "JPEG", quality=40,
                                                      progressive=True, exif=exif.tobytes()),
        "jpeg-gray-cover-smart": control(2, 2) + img(pattern(8, 8, "L"), "JPEG", quality=40),
        "jpeg-cmyk-contain": control(3, 0) + img(pattern(8, 8, "CMYK"), "JPEG", quality=40),
        "jpeg-truncated": control(1, 0) + jpeg[:-10],
        "jpeg-bomb": control(0, 0) + (ROOT / "tests/fixtures/bomb.jpg").read_bytes(),
        "png-bomb": control(0, 0) + (ROOT / "tests/fixtures/bomb.png").read_bytes(),
        "png-rgb-blur": control(4, 3) + img(rgb, "PNG"),
        "png-alpha-contain-jpeg": control(3, 1) + img(rgba, "PNG"),
        "png-16bit": control(1, 0) + img(pattern(4, 4, "I;16"), "PNG"),
        "png-palette-trns": control(2, 3) + img(pattern(8, 8, "P"), "PNG", transparency=0),
        "png-icc-srgb": control(7, 1) + img(rgb, "PNG", icc_profile=srgb),
        "png-strip-enlarge": control(5, 0) + img(pattern(1, 8), "PNG"),
        "apng": control(0, 0) + img(frames[0], "PNG", save_all=True,
                                    append_images=frames[1:], duration=100),
        "gif-outside": control(6, 1) + img(frames[0], "GIF"),
        "gif-animated": control(0, 0) + img(frames[0], "GIF", save_all=True,
                                            append_images=frames[1:], duration=100, loop=0),
        "webp-lossy-fill": control(7, 0) + img(rgb, "WEBP", quality=50),
        "webp-lossless-alpha": control(2, 1) + img(rgba, "WEBP", lossless=True),
        "webp-animated": control(0, 1) + img(frames[0].convert("RGB"), "WEBP", save_all=True,
                                             append_images=[frames[1].convert("RGB")],
                                             duration=100),
        "avif-header": control(0, 1) + b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf",
        "empty": control(0, 0),
        "html": control(0, 0) + b"<!doctype html><title>x</title>",
    }
    for name, data in seeds.items():
        write("image_entry", name, data)


if __name__ == "__main__":
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    text_seeds()
    image_seeds()
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
