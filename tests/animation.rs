//! Animations (issue 21 item 1): animated GIF, WebP and APNG sources keep their frames,
//! per-frame delays and loop counts, read back by tools that share no code with pixgate's
//! encoders (libwebp's `webpinfo`, the image crate's WebP decoder, a GIF block walk); bombs
//! get the original at once; `anim=false` gives a still of the first frame.

mod common;
use common::*;
use image::AnimationDecoder;

/// An animated GIF of `frames` frames of `w`×`h` with the given delays (cycled, in ms) and
/// loop count (`None`: for ever); each frame a different colour, a transparent border.
fn animated_gif(w: u32, h: u32, frames: usize, delays: &[u32], repeat: Option<u16>) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 30);
        enc.set_repeat(repeat.map_or(Repeat::Infinite, Repeat::Finite))
            .expect("repeat");
        let list = (0..frames).map(|i| {
            let c = [(i * 80 % 256) as u8, (i * 40 % 256) as u8, 200, 255];
            let buf = image::RgbaImage::from_fn(w, h, |x, y| {
                if x < 2 || y < 2 {
                    image::Rgba([0, 0, 0, 0])
                } else {
                    image::Rgba(c)
                }
            });
            let d = delays[i % delays.len()];
            image::Frame::from_parts(buf, 0, 0, image::Delay::from_numer_denom_ms(d, 1))
        });
        enc.encode_frames(list).expect("gif frames");
    }
    out
}

/// `webpinfo` (libwebp's inspector, an independent reading of the container): frame
/// durations and the loop count.
fn webpinfo(bytes: &[u8]) -> (Vec<u32>, u32) {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("a.webp");
    std::fs::write(&p, bytes).expect("write");
    let out = std::process::Command::new("webpinfo")
        .arg(&p)
        .output()
        .expect("webpinfo (apt-get install webp)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |l: &str, k: &str| {
        l.trim()
            .strip_prefix(k)
            .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse::<u32>().ok())
    };
    let durations = text.lines().filter_map(|l| field(l, "Duration")).collect();
    let loops = text
        .lines()
        .find_map(|l| field(l, "Loop count"))
        .unwrap_or(u32::MAX);
    (durations, loops)
}

/// Issue 21 item 1: an animated GIF resized for a WebP client keeps its frames, per-frame
/// delays (the last included) and loop count, read back by libwebp's `webpinfo` and decoded
/// by the image crate's own WebP decoder; a client without WebP gets a resized GIF, or the
/// GIF as it is without a resize; a frame bomb gets the original at once, counted, with
/// bounded memory.
#[tokio::test]
async fn animated_gifs_become_animated_webp_with_their_timing() {
    let gif = animated_gif(120, 80, 4, &[50, 120, 300, 70], Some(3));
    let bomb = animated_gif(2, 2, 10_000, &[10], None);
    let origin = TestOrigin::start(vec![
        ("/a.gif", Route::ok("image/gif", gif.clone())),
        ("/bomb.gif", Route::ok("image/gif", bomb.clone())),
    ]);
    let px = Pixgate::start(&origin);
    let r = get(&px.url("/a.gif?w=60"), Some(SAFARI)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/webp");
    let body = r.bytes().await.expect("body").to_vec();
    let (durations, loops) = webpinfo(&body);
    assert_eq!(
        durations,
        vec![50, 120, 300, 70],
        "every delay, the last too"
    );
    assert_eq!(loops, 3);
    let frames = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&body))
        .expect("webp")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 4);
    for f in &frames {
        assert_eq!(f.buffer().dimensions(), (60, 40));
    }
    // Frame 2 is its own colour, and the border stays transparent.
    let px2 = frames[2].buffer().get_pixel(30, 20).0;
    assert!(
        px2[0].abs_diff(160) < 24 && px2[2].abs_diff(200) < 24,
        "{px2:?}"
    );
    assert!(
        frames[0].buffer().get_pixel(0, 0).0[3] < 32,
        "transparent corner"
    );

    // A client without WebP: a resize stays an animated GIF, delays and loops read from its
    // blocks; without one the GIF goes as it is.
    let r = get(&px.url("/a.gif?w=60"), Some("image/png,*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/gif");
    let small = r.bytes().await.expect("body").to_vec();
    assert_eq!(gif_blocks(&small), (vec![50, 120, 300, 70], Some(3)));
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&small))
        .expect("gif")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3].buffer().dimensions(), (60, 40));
    let r = get(&px.url("/a.gif"), Some("image/png,*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(r.bytes().await.expect("body").to_vec(), gif);

    let rss0 = px.peak_rss_kib();
    let t0 = std::time::Instant::now();
    let r = get(&px.url("/bomb.gif"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=too_many_frames");
    assert_eq!(r.bytes().await.expect("body").len(), bomb.len());
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        px.peak_rss_kib() < rss0 + 64 * 1024,
        "peak RSS {} KiB after the bomb, {rss0} before",
        px.peak_rss_kib()
    );
    let m = px.metrics().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_image_transforms_total",
            &[("output", "original"), ("outcome", "too_many_frames")]
        ),
        1.0
    );
}

/// Frame delays (ms) and the NETSCAPE loop count of a GIF, read by walking its blocks.
fn gif_blocks(d: &[u8]) -> (Vec<u32>, Option<u16>) {
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let skip = |mut i: usize| {
        while d[i] != 0 {
            i += d[i] as usize + 1;
        }
        i + 1
    };
    let (mut delays, mut loops) = (Vec::new(), None);
    let mut i = 13 + table(d[10]);
    while i < d.len() {
        match d[i] {
            0x21 if d[i + 1] == 0xF9 => {
                delays.push(u32::from(u16::from_le_bytes([d[i + 4], d[i + 5]])) * 10);
                i = skip(i + 2);
            }
            0x21 if d[i + 1] == 0xFF && &d[i + 3..i + 14] == b"NETSCAPE2.0" => {
                loops = Some(u16::from_le_bytes([d[i + 16], d[i + 17]]));
                i = skip(i + 2);
            }
            0x21 => i = skip(i + 2),
            0x2C => i = skip(i + 10 + table(d[i + 9]) + 1),
            _ => break,
        }
    }
    (delays, loops)
}

/// A 40×40 GIF over a transparent background whose frames need every disposal method:
/// 0: left half red (keep); 1: top-left quarter blue (restore to background); 2: bottom-right
/// green (restore to previous); 3: top-right yellow (keep). 100 ms each, looping for ever.
fn disposal_gif() -> Vec<u8> {
    use gif::{DisposalMethod as D, Encoder, Frame, Repeat};
    let palette = [0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 255, 0, 255, 255, 0];
    let mut out = Vec::new();
    {
        let mut enc = Encoder::new(&mut out, 40, 40, &palette).expect("gif");
        enc.set_repeat(Repeat::Infinite).expect("repeat");
        let left_half: Vec<u8> = (0..1600).map(|i| u8::from(i % 40 < 20)).collect();
        let frames = [
            (0, 0, 40, left_half, D::Keep),
            (0, 0, 20, vec![2; 400], D::Background),
            (20, 20, 20, vec![3; 400], D::Previous),
            (20, 0, 20, vec![4; 400], D::Keep),
        ];
        for (left, top, side, buf, dispose) in frames {
            let f = Frame {
                left,
                top,
                width: side,
                height: side,
                delay: 10,
                dispose,
                transparent: Some(0),
                buffer: buf.into(),
                ..Frame::default()
            };
            enc.write_frame(&f).expect("frame");
        }
    }
    out
}

/// A 400×400 screen-recording-like GIF: one full frame, then 60 frames that each change a
/// 4×4 square (the rest of the canvas kept): a few KB that whole-canvas frames would multiply.
fn small_changes_gif() -> Vec<u8> {
    use gif::{DisposalMethod, Encoder, Frame, Repeat};
    let palette = [255, 255, 255, 0, 0, 0, 200, 30, 30];
    let mut out = Vec::new();
    {
        let mut enc = Encoder::new(&mut out, 400, 400, &palette).expect("gif");
        enc.set_repeat(Repeat::Infinite).expect("repeat");
        let first: Vec<u8> = (0..160_000).map(|i| u8::from(i % 400 < 8)).collect();
        let mut frames = vec![Frame {
            width: 400,
            height: 400,
            delay: 4,
            buffer: first.into(),
            ..Frame::default()
        }];
        for i in 0..60u16 {
            frames.push(Frame {
                left: 20 + i * 6,
                top: 200,
                width: 4,
                height: 4,
                delay: 4,
                dispose: DisposalMethod::Keep,
                buffer: vec![2u8; 16].into(),
                ..Frame::default()
            });
        }
        for f in &frames {
            enc.write_frame(f).expect("frame");
        }
    }
    out
}

/// A resized GIF for a client without WebP that would come out larger than its source (whole
/// frames against changed rectangles) is not sent: the original goes, reason `not_smaller`.
#[tokio::test]
async fn a_resized_gif_larger_than_its_source_gives_the_original() {
    let gif = small_changes_gif();
    let origin = TestOrigin::start(vec![("/rec.gif", Route::ok("image/gif", gif.clone()))]);
    let px = Pixgate::start(&origin);
    let r = get(&px.url("/rec.gif?w=300"), Some("image/png,*/*")).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=not_smaller");
    assert_eq!(r.bytes().await.expect("body").to_vec(), gif);
    // A WebP client gets the animation resized (libwebp's encoder writes changed rectangles;
    // resized pixels are the client's ask, as for stills).
    let r = get(&px.url("/rec.gif?w=300"), Some(CHROME)).await;
    assert_eq!(r.headers()["content-type"], "image/webp");
    let body = r.bytes().await.expect("body");
    assert_eq!(webpinfo(&body).0.len(), 61);
}

/// Which of transparent, red, blue, green, yellow a pixel is closest to.
fn colour_name(p: [u8; 4]) -> &'static str {
    if p[3] < 64 {
        return "clear";
    }
    let named = [
        ("red", [255, 0, 0]),
        ("blue", [0, 0, 255]),
        ("green", [0, 255, 0]),
        ("yellow", [255, 255, 0]),
    ];
    named
        .iter()
        .min_by_key(|(_, c)| (0..3).map(|i| u32::from(p[i].abs_diff(c[i]))).sum::<u32>())
        .map_or("?", |(n, _)| n)
}

/// Disposal modes and the transparent background survive the resize: every output frame,
/// decoded by the image crate's WebP decoder, shows each quarter as a browser shows the GIF.
#[tokio::test]
async fn gif_disposal_and_transparency_survive_as_webp() {
    let gif = disposal_gif();
    let origin = TestOrigin::start(vec![("/d.gif", Route::ok("image/gif", gif))]);
    let px = Pixgate::start(&origin);
    let r = get(&px.url("/d.gif?w=20"), Some(CHROME)).await;
    assert_eq!(r.headers()["content-type"], "image/webp");
    let body = r.bytes().await.expect("body").to_vec();
    assert_eq!(webpinfo(&body), (vec![100; 4], 0));
    let frames = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&body))
        .expect("webp")
        .into_frames()
        .collect_frames()
        .expect("frames");
    // Top-left, top-right, bottom-left, bottom-right quarter of each frame.
    let quarters: Vec<[&str; 4]> = frames
        .iter()
        .map(|f| {
            let b = f.buffer();
            assert_eq!(b.dimensions(), (20, 20));
            [(5, 5), (15, 5), (5, 15), (15, 15)].map(|(x, y)| colour_name(b.get_pixel(x, y).0))
        })
        .collect();
    assert_eq!(
        quarters,
        vec![
            ["red", "clear", "red", "clear"],
            ["blue", "clear", "red", "clear"],
            ["clear", "clear", "red", "green"],
            ["clear", "yellow", "red", "clear"],
        ]
    );
}

/// `img2webp` (libwebp's own tool) makes an animated WebP from PNG frames.
fn img2webp(frames: &[(image::RgbaImage, u32)], loops: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = std::process::Command::new("img2webp");
    cmd.args(["-loop", &loops.to_string(), "-lossy", "-q", "90"]);
    for (i, (img, d)) in frames.iter().enumerate() {
        let p = dir.path().join(format!("{i}.png"));
        img.save(&p).expect("png frame");
        cmd.args(["-d", &d.to_string()]).arg(&p);
    }
    let out = dir.path().join("a.webp");
    let st = cmd
        .arg("-o")
        .arg(&out)
        .output()
        .expect("img2webp (apt-get install webp)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read(out).expect("webp")
}

/// An APNG (the png crate's encoder) of `frames` with their delays in ms.
fn apng(frames: &[(image::RgbaImage, u32)], plays: u32) -> Vec<u8> {
    let (w, h) = frames[0].0.dimensions();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_animated(frames.len() as u32, plays).expect("apng");
        let mut wr = enc.write_header().expect("header");
        for (img, d) in frames {
            wr.set_frame_delay(u16::try_from(*d).expect("delay"), 1000)
                .expect("delay");
            wr.write_image_data(img.as_raw()).expect("frame");
        }
        wr.finish().expect("finish");
    }
    out
}

/// Three frames of a gradient photo-like texture, each tinted: red, green, blue.
fn tinted_frames(w: u32, h: u32) -> Vec<(image::RgbaImage, u32)> {
    (0..3u32)
        .map(|i| {
            let img = image::RgbaImage::from_fn(w, h, |x, y| {
                let mut c = [(x * 255 / w) as u8 / 4, (y * 255 / h) as u8 / 4, 40, 255];
                c[i as usize] = 230;
                image::Rgba(c)
            });
            (img, 80 * (i + 1))
        })
        .collect()
}

/// Animated WebP and APNG sources stay animated for WebP clients, frames, delays and loops
/// kept; an APNG goes to a client without WebP as it is.
#[tokio::test]
async fn animated_webp_and_apng_sources_stay_animated() {
    let frames = tinted_frames(160, 120);
    let webp = img2webp(&frames, 2);
    let png = apng(&frames, 5);
    let origin = TestOrigin::start(vec![
        ("/a.webp", Route::ok("image/webp", webp.clone())),
        ("/a.png", Route::ok("image/png", png.clone())),
    ]);
    let px = Pixgate::start(&origin);
    for (path, loops) in [("/a.webp?w=80", 2), ("/a.png?w=80", 5)] {
        let r = get(&px.url(path), Some(FIREFOX)).await;
        assert_eq!(r.headers()["content-type"], "image/webp", "{path}");
        let body = r.bytes().await.expect("body").to_vec();
        assert_eq!(webpinfo(&body), (vec![80, 160, 240], loops), "{path}");
        let out = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&body))
            .expect("webp")
            .into_frames()
            .collect_frames()
            .expect("frames");
        assert_eq!(out.len(), 3, "{path}");
        for (i, f) in out.iter().enumerate() {
            assert_eq!(f.buffer().dimensions(), (80, 60), "{path}");
            let p = f.buffer().get_pixel(40, 30).0;
            assert!(p[i] > 180, "{path} frame {i} keeps its tint: {p:?}");
        }
    }
    // Without a resize the animated WebP is re-encoded only when that is smaller.
    let r = get(&px.url("/a.webp"), Some(CHROME)).await;
    let body = r.bytes().await.expect("body").to_vec();
    assert!(body.len() <= webp.len());
    assert_eq!(webpinfo(&body).0.len(), 3);
    let r = get(&px.url("/a.png?w=80"), Some("image/png,*/*")).await;
    assert_eq!(r.headers()["x-pixgate"], "original; reason=animated");
    assert_eq!(r.bytes().await.expect("body").to_vec(), png);
}

/// `anim=false` (imgproxy's `disable_animation`): a still of the first frame, resized.
#[tokio::test]
async fn anim_false_gives_a_still_of_the_first_frame() {
    let frames = tinted_frames(160, 120);
    let origin = TestOrigin::start(vec![(
        "/a.webp",
        Route::ok("image/webp", img2webp(&frames, 0)),
    )]);
    let px = Pixgate::start(&origin);
    let r = get(&px.url("/a.webp?w=40&anim=false"), Some("image/webp,*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/webp");
    let body = r.bytes().await.expect("body").to_vec();
    assert!(webpinfo(&body).0.is_empty(), "a still: no frame durations");
    let img = decode(&body).to_rgba8();
    assert_eq!(img.dimensions(), (40, 30));
    let p = img.get_pixel(20, 15).0;
    assert!(p[0] > 180 && p[1] < 120, "the first (red) frame: {p:?}");
    let r = get(&px.url("/a.webp?anim=maybe"), Some(CHROME)).await;
    assert_eq!(r.status(), 400);
}
