use super::*;
use image::{
    GrayAlphaImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, Rgb32FImage, RgbImage, Rgba,
    Rgba32FImage,
};
use proptest::prelude::*;

// ----- helpers -----

/// Small deterministic PRNG (splitmix64) so tests need no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
    /// Uniform in -k..=k.
    fn noise(&mut self, k: i32) -> i32 {
        (self.next() % (2 * k as u64 + 1)) as i32 - k
    }
}

const BG: [u8; 3] = [240, 230, 220];
// Borders: left 7, top 11, right 13, bottom 17.
const L: u32 = 7;
const T: u32 = 11;
const R: u32 = 13;
const B: u32 = 17;
const CW: u32 = 30;
const CH: u32 = 20;
const W: u32 = L + CW + R;
const H: u32 = T + CH + B;

fn in_content(x: u32, y: u32) -> bool {
    (L..L + CW).contains(&x) && (T..T + CH).contains(&y)
}

/// Content pixels: all far (>100 in red) from BG, varied.
fn content_px(x: u32, y: u32) -> [u8; 3] {
    [20 + ((x * 13 + y * 7) % 60) as u8, 60, 100]
}

/// W×H image with a BG border (plus optional noise of ±`noise`) around content.
fn bordered(noise: i32) -> RgbImage {
    let mut rng = Rng(42);
    RgbImage::from_fn(W, H, |x, y| {
        if in_content(x, y) {
            Rgb(content_px(x, y))
        } else {
            let mut p = BG;
            for c in p.iter_mut() {
                *c = (i32::from(*c) + rng.noise(noise)).clamp(0, 255) as u8;
            }
            Rgb(p)
        }
    })
}

fn trim(threshold: f32) -> Trim {
    Trim {
        threshold,
        ..Trim::default()
    }
}

// ----- trim -----

#[test]
fn trim_removes_known_border_from_top_left() {
    let img = DynamicImage::ImageRgb8(bordered(0));
    assert_eq!(trim_box(&img, &trim(0.0)), Some([L, T, CW, CH]));
    assert_eq!(trim_box(&img, &trim(10.0)), Some([7, 11, 30, 20]));
}

#[test]
fn trim_with_explicit_color() {
    let img = DynamicImage::ImageRgb8(bordered(0));
    let t = Trim {
        threshold: 5.0,
        color: Some(BG),
        ..Trim::default()
    };
    assert_eq!(trim_box(&img, &t), Some([L, T, CW, CH]));
    // A colour that matches nothing: everything is foreground, nothing removed.
    let t = Trim {
        threshold: 5.0,
        color: Some([0, 0, 255]),
        ..Trim::default()
    };
    assert_eq!(trim_box(&img, &t), None);
}

#[test]
fn trim_noise_below_threshold_is_trimmed() {
    // ±4 noise: any two border pixels differ by ≤ 8 ≤ threshold 10.
    let img = DynamicImage::ImageRgb8(bordered(4));
    assert_eq!(trim_box(&img, &trim(10.0)), Some([L, T, CW, CH]));
    let t = Trim {
        threshold: 10.0,
        color: Some(BG),
        ..Trim::default()
    };
    assert_eq!(trim_box(&img, &t), Some([L, T, CW, CH]));
    // With threshold 0 the noise is foreground: almost nothing can go.
    assert_ne!(trim_box(&img, &trim(0.0)), Some([L, T, CW, CH]));
}

#[test]
fn trim_noise_above_threshold_stops_the_cut() {
    let mut buf = bordered(4);
    // One pixel in the left border, 40 off in green, at x = 2.
    buf.put_pixel(2, H / 2, Rgb([BG[0], BG[1] - 40, BG[2]]));
    // And one in the bottom border at y = H - 5 (bottom cut becomes 4).
    buf.put_pixel(W / 2, H - 5, Rgb([BG[0] - 40, BG[1], BG[2]]));
    let img = DynamicImage::ImageRgb8(buf);
    assert_eq!(
        trim_box(&img, &trim(10.0)),
        Some([2, T, W - 2 - R, H - T - 4])
    );
}

#[test]
fn trim_threshold_is_inclusive() {
    let mut buf = bordered(0);
    buf.put_pixel(1, 1, Rgb([BG[0] - 10, BG[1], BG[2]]));
    let img = DynamicImage::ImageRgb8(buf.clone());
    let t = |th| Trim {
        threshold: th,
        color: Some(BG),
        ..Trim::default()
    };
    // diff 10 == threshold 10: background.
    assert_eq!(trim_box(&img, &t(10.0)), Some([L, T, CW, CH]));
    // diff 10 > threshold 9.5: foreground at (1,1).
    assert_eq!(trim_box(&img, &t(9.5)), Some([1, 1, W - 1 - R, H - 1 - B]));
}

#[test]
fn trim_equal_hor_and_ver() {
    let img = DynamicImage::ImageRgb8(bordered(0));
    let hor = Trim {
        equal_hor: true,
        ..trim(0.0)
    };
    // left 7, right 13 -> both 7.
    assert_eq!(trim_box(&img, &hor), Some([7, T, W - 14, CH]));
    let ver = Trim {
        equal_ver: true,
        ..trim(0.0)
    };
    // top 11, bottom 17 -> both 11.
    assert_eq!(trim_box(&img, &ver), Some([L, 11, CW, H - 22]));
    let both = Trim {
        equal_hor: true,
        equal_ver: true,
        ..trim(0.0)
    };
    assert_eq!(trim_box(&img, &both), Some([7, 11, W - 14, H - 22]));
}

#[test]
fn trim_equal_cut_zero_gives_none() {
    // Content touches the left edge: left cut 0, so equal_hor keeps all columns;
    // with no vertical border there is nothing left to remove.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(20, 10, |x, _| {
        if x < 5 {
            Rgb([0, 0, 0])
        } else {
            Rgb(BG)
        }
    }));
    let t = Trim {
        equal_hor: true,
        color: Some(BG),
        ..trim(0.0)
    };
    assert_eq!(trim_box(&img, &t), None);
    // Without equal_hor the right part goes.
    let t = Trim {
        color: Some(BG),
        ..trim(0.0)
    };
    assert_eq!(trim_box(&img, &t), Some([0, 0, 5, 10]));
}

#[test]
fn trim_all_background_is_none() {
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(30, 20, Rgb(BG)));
    assert_eq!(trim_box(&img, &trim(0.0)), None);
    let noisy = DynamicImage::ImageRgb8(bordered(4));
    // Infinite threshold: everything is background.
    assert_eq!(trim_box(&noisy, &trim(f32::INFINITY)), None);
    // Negative threshold: everything is foreground, nothing removed.
    assert_eq!(trim_box(&noisy, &trim(-1.0)), None);
    // NaN behaves like 0.
    assert_eq!(
        trim_box(&DynamicImage::ImageRgb8(bordered(0)), &trim(f32::NAN)),
        Some([L, T, CW, CH])
    );
}

#[test]
fn trim_transparent_border() {
    let mut rng = Rng(7);
    let buf = image::RgbaImage::from_fn(W, H, |x, y| {
        if in_content(x, y) {
            let [r, g, b] = content_px(x, y);
            Rgba([r, g, b, 255])
        } else {
            // Fully transparent with garbage colour.
            Rgba([rng.byte(), rng.byte(), rng.byte(), 0])
        }
    });
    let img = DynamicImage::ImageRgba8(buf);
    assert_eq!(trim_box(&img, &trim(0.0)), Some([L, T, CW, CH]));
}

#[test]
fn trim_luma_and_16_bit() {
    let luma = GrayImage::from_fn(W, H, |x, y| Luma([if in_content(x, y) { 200 } else { 3 }]));
    let img = DynamicImage::ImageLuma8(luma);
    assert_eq!(trim_box(&img, &trim(0.0)), Some([L, T, CW, CH]));
    let rgb16 = DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(bordered(0)).to_rgb16());
    assert_eq!(trim_box(&rgb16, &trim(0.0)), Some([L, T, CW, CH]));
}

#[test]
fn trim_tiny_and_empty() {
    let one = DynamicImage::ImageRgb8(RgbImage::new(1, 1));
    assert_eq!(trim_box(&one, &trim(0.0)), None);
    let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
    assert_eq!(trim_box(&empty, &trim(0.0)), None);
    // 3x1 with a distinct middle pixel.
    let row = DynamicImage::ImageRgb8(RgbImage::from_fn(3, 1, |x, _| {
        Rgb(if x == 1 { [9, 9, 9] } else { [0, 0, 0] })
    }));
    assert_eq!(trim_box(&row, &trim(0.0)), Some([1, 0, 1, 1]));
}

// ----- pixelate -----

/// Reference block mean computed with plain indexing over the original image.
fn reference_pixelate(src: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = src.dimensions();
    let mut out = RgbImage::new(w, h);
    let mut by = 0;
    while by < h {
        let mut bx = 0;
        while bx < w {
            let (x1, y1) = ((bx + size).min(w), (by + size).min(h));
            let mut sum = [0u32; 3];
            for y in by..y1 {
                for x in bx..x1 {
                    let p = src.get_pixel(x, y).0;
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                }
            }
            let n = ((x1 - bx) * (y1 - by)) as f64;
            let mean = sum.map(|s| (f64::from(s) / n).round() as u8);
            for y in by..y1 {
                for x in bx..x1 {
                    out.put_pixel(x, y, Rgb(mean));
                }
            }
            bx += size;
        }
        by += size;
    }
    out
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

#[test]
fn pixelate_two_colour_hand_computed() {
    // 8x4: columns 0..3 red, 3..8 blue. Block size 4.
    let src = RgbImage::from_fn(8, 4, |x, _| Rgb(if x < 3 { RED } else { BLUE }));
    let out = pixelate(DynamicImage::ImageRgb8(src), 4).to_rgb8();
    // Left block: 3/4 red + 1/4 blue = (191.25, 0, 63.75) -> (191, 0, 64).
    for y in 0..4 {
        for x in 0..4 {
            assert_eq!(out.get_pixel(x, y).0, [191, 0, 64], "({x},{y})");
        }
        for x in 4..8 {
            assert_eq!(out.get_pixel(x, y).0, BLUE, "({x},{y})");
        }
    }
}

#[test]
fn pixelate_partial_last_block_is_its_own_mean() {
    // 10 wide, size 4: blocks 0..4, 4..8, 8..10 (partial). 6 high: rows 0..4, 4..6.
    // Column 8 red, column 9 blue -> the partial block is exactly half/half.
    let src = RgbImage::from_fn(10, 6, |x, y| {
        Rgb(if x == 8 || (x + y) % 3 == 0 && x < 8 {
            RED
        } else {
            BLUE
        })
    });
    let out = pixelate(DynamicImage::ImageRgb8(src.clone()), 4).to_rgb8();
    // Right partial block: 1 red + 1 blue per row -> (127.5, 0, 127.5) -> (128, 0, 128).
    for y in 0..6 {
        assert_eq!(out.get_pixel(8, y).0, [128, 0, 128]);
        assert_eq!(out.get_pixel(9, y).0, [128, 0, 128]);
    }
    assert_eq!(out, reference_pixelate(&src, 4));
}

#[test]
fn pixelate_random_matches_reference() {
    let mut rng = Rng(3);
    let src = RgbImage::from_fn(23, 17, |_, _| Rgb([rng.byte(), rng.byte(), rng.byte()]));
    for size in [2, 3, 5, 7, 16] {
        let out = pixelate(DynamicImage::ImageRgb8(src.clone()), size).to_rgb8();
        assert_eq!(out, reference_pixelate(&src, size), "size {size}");
    }
}

#[test]
fn pixelate_size_0_1_unchanged_and_types_kept() {
    let src = RgbImage::from_fn(5, 4, |x, y| Rgb([x as u8 * 40, y as u8 * 50, 7]));
    for size in [0, 1] {
        let out = pixelate(DynamicImage::ImageRgb8(src.clone()), size);
        assert_eq!(out, DynamicImage::ImageRgb8(src.clone()));
    }
    let imgs = [
        DynamicImage::ImageLuma8(GrayImage::new(5, 4)),
        DynamicImage::ImageLumaA8(GrayAlphaImage::new(5, 4)),
        DynamicImage::ImageRgb8(RgbImage::new(5, 4)),
        DynamicImage::ImageRgba8(image::RgbaImage::new(5, 4)),
        DynamicImage::ImageRgb16(ImageBuffer::new(5, 4)),
    ];
    for img in imgs {
        let color = img.color();
        let out = pixelate(img, 2);
        assert_eq!(out.color(), color);
        assert_eq!((out.width(), out.height()), (5, 4));
    }
}

#[test]
fn pixelate_size_capped_at_shorter_side() {
    // 6x2, size 100 -> capped to 2: blocks of 2x2.
    let src = RgbImage::from_fn(6, 2, |x, _| Rgb(if x < 2 { RED } else { BLUE }));
    let out = pixelate(DynamicImage::ImageRgb8(src.clone()), u32::MAX).to_rgb8();
    assert_eq!(out, reference_pixelate(&src, 2));
    assert_eq!(out.get_pixel(0, 0).0, RED);
}

#[test]
fn pixelate_luma_alpha_weighted() {
    // One 2x2 block: opaque 200 (left column) and fully transparent 0 (right).
    let src = GrayAlphaImage::from_fn(2, 2, |x, _| LumaA(if x == 0 { [200, 255] } else { [0, 0] }));
    let out = pixelate(DynamicImage::ImageLumaA8(src), 2);
    let DynamicImage::ImageLumaA8(out) = out else {
        panic!("type changed")
    };
    // Colour from the opaque pixel only; alpha mean 127.5 -> 128.
    assert_eq!(out.get_pixel(0, 0).0, [200, 128]);
    assert_eq!(out.get_pixel(1, 0).0, [200, 128]);
    // Half-opaque weighting: (255 at a=255) and (0 at a=85): 255*1/(1+1/3) = 191.25.
    let src = GrayAlphaImage::from_fn(2, 2, |x, _| {
        LumaA(if x == 0 { [255, 255] } else { [0, 85] })
    });
    let out = pixelate(DynamicImage::ImageLumaA8(src), 2).to_luma_alpha8();
    assert_eq!(out.get_pixel(1, 0).0, [191, 170]);
}

#[test]
fn pixelate_rgba_all_transparent_uses_plain_mean() {
    let src = image::RgbaImage::from_fn(2, 2, |x, _| {
        Rgba(if x == 0 {
            [100, 0, 0, 0]
        } else {
            [200, 0, 0, 0]
        })
    });
    let out = pixelate(DynamicImage::ImageRgba8(src), 2).to_rgba8();
    assert_eq!(out.get_pixel(0, 0).0, [150, 0, 0, 0]);
}

// ----- adjust -----

fn grey100() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, Rgb([100, 100, 100])))
}

#[test]
fn adjust_brightness() {
    let out = adjust(grey100(), 50, 1.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [150, 150, 150]));
    let out = adjust(grey100(), -50, 1.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [50, 50, 50]));
    let out = adjust(grey100(), 200, 1.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [255, 255, 255]));
    // Out of range brightness is clamped to 255.
    let out = adjust(grey100(), i32::MIN, 1.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
}

#[test]
fn adjust_contrast() {
    // (100 - 128) * 2 + 128 = 72.
    let out = adjust(grey100(), 0, 2.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [72, 72, 72]));
    // (200 - 128) * 2 + 128 = 272 -> 255; (10-128)*0.5+128 = 69.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(2, 1, |x, _| {
        Rgb(if x == 0 {
            [200, 200, 200]
        } else {
            [10, 10, 10]
        })
    }));
    let out = adjust(img.clone(), 0, 2.0, 1.0).to_rgb8();
    assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
    let out = adjust(img, 0, 0.5, 1.0).to_rgb8();
    assert_eq!(out.get_pixel(1, 0).0, [69, 69, 69]);
    // Brightness first, then contrast: 100+50 = 150 -> (150-128)*2+128 = 172.
    let out = adjust(grey100(), 50, 2.0, 1.0).to_rgb8();
    assert!(out.pixels().all(|p| p.0 == [172, 172, 172]));
}

#[test]
fn adjust_saturation() {
    let px = [200u8, 100, 50];
    let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        2,
        2,
        Rgba([px[0], px[1], px[2], 77]),
    ));
    // Rec.601 luma: 0.299*200 + 0.587*100 + 0.114*50 = 124.2 -> 124.
    let out = adjust(img.clone(), 0, 1.0, 0.0);
    assert!(matches!(out, DynamicImage::ImageRgba8(_)));
    let out = out.to_rgba8();
    assert!(
        out.pixels().all(|p| p.0 == [124, 124, 124, 77]),
        "{:?}",
        out.get_pixel(0, 0)
    );
    // Saturation 2: luma + (v - luma) * 2 -> 275.8 -> 255, 75.8 -> 76, -24.2 -> 0.
    let out = adjust(img, 0, 1.0, 2.0).to_rgba8();
    assert_eq!(out.get_pixel(0, 0).0, [255, 76, 0, 77]);
}

#[test]
fn adjust_identity_is_untouched_without_copy() {
    let mut rng = Rng(9);
    let src = image::RgbaImage::from_fn(7, 5, |_, _| {
        Rgba([rng.byte(), rng.byte(), rng.byte(), rng.byte()])
    });
    let img = DynamicImage::ImageRgba8(src.clone());
    let ptr = img.as_bytes().as_ptr();
    let out = adjust(img, 0, 1.0, 1.0);
    assert_eq!(out.as_bytes().as_ptr(), ptr, "identity must not copy");
    assert_eq!(out, DynamicImage::ImageRgba8(src.clone()));
    // NaN multipliers count as 1.
    let out = adjust(DynamicImage::ImageRgba8(src.clone()), 0, f32::NAN, f32::NAN);
    assert_eq!(out, DynamicImage::ImageRgba8(src));
}

#[test]
fn adjust_keeps_types_and_alpha() {
    let la = GrayAlphaImage::from_pixel(2, 2, LumaA([100, 33]));
    let out = adjust(DynamicImage::ImageLumaA8(la), 50, 2.0, 0.0);
    let DynamicImage::ImageLumaA8(out) = out else {
        panic!("type changed")
    };
    // (150-128)*2+128 = 172; saturation ignored for luma; alpha kept.
    assert!(out.pixels().all(|p| p.0 == [172, 33]));
    let l = GrayImage::from_pixel(2, 2, Luma([100]));
    let out = adjust(DynamicImage::ImageLuma8(l), 50, 1.0, 0.0);
    assert!(matches!(&out, DynamicImage::ImageLuma8(b) if b.pixels().all(|p| p.0 == [150])));
    // Luma with only a saturation change is returned as is.
    let l = GrayImage::from_pixel(2, 2, Luma([100]));
    let out = adjust(DynamicImage::ImageLuma8(l.clone()), 0, 1.0, 0.0);
    assert_eq!(out, DynamicImage::ImageLuma8(l));
    let rgb = RgbImage::from_pixel(2, 2, Rgb([100, 100, 100]));
    let out = adjust(DynamicImage::ImageRgb8(rgb), 50, 1.0, 1.0);
    assert!(matches!(out, DynamicImage::ImageRgb8(_)));
    // 16-bit: 100*257 + 50*257 = 150*257.
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(2, 2, Rgb([100 * 257, 100 * 257, 100 * 257]));
    let out = adjust(DynamicImage::ImageRgb16(rgb16), 50, 1.0, 1.0);
    let DynamicImage::ImageRgb16(out) = out else {
        panic!("type changed")
    };
    assert!(out.pixels().all(|p| p.0 == [150 * 257; 3]));
}

// ----- summarize -----

fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| (i32::from(*x) - i32::from(*y)).abs() <= tol)
}

/// Base83 decoding as in the BlurHash spec (independent of the crate's).
fn base83(s: &str) -> u32 {
    const ALPHABET: &str =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    s.chars().fold(0, |acc, ch| {
        acc * 83 + ALPHABET.find(ch).expect("base83 character") as u32
    })
}

fn decode_thumbhash(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("valid base64")
}

#[test]
fn summarize_solid_colour() {
    let c = [10u8, 20, 30];
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 12, Rgb(c)));
    let s = summarize(&img);
    assert_eq!(s.average, c);
    assert_eq!(s.dominant, c);

    // 4x3 components: 1 + 1 + 4 + 2 * 11 = 28 characters.
    assert_eq!(s.blurhash.len(), 28);
    let px = blurhash::decode(&s.blurhash, 8, 6, 1.0).expect("blurhash decodes");
    assert_eq!(px.len(), 8 * 6 * 4);
    // The DC term (characters 2..6) holds the mean colour exactly.
    let dc = base83(&s.blurhash[2..6]);
    assert_eq!([(dc >> 16) as u8, (dc >> 8) as u8, dc as u8], c);
    // BlurHash's cosine basis (cos(pi*k*x/w), no half-pixel offset) leaves small
    // AC terms even on a flat image, which matter most for dark colours: allow a
    // few units per pixel, and require the decoded mean to be close.
    let mut sum = [0u32; 3];
    for p in px.chunks_exact(4) {
        assert!(near([p[0], p[1], p[2]], c, 10), "blurhash pixel {p:?}");
        for (s, v) in sum.iter_mut().zip(p) {
            *s += u32::from(*v);
        }
    }
    let mean = sum.map(|v| (v as f32 / 48.0).round() as u8);
    assert!(near(mean, c, 3), "blurhash mean {mean:?}");

    let th = decode_thumbhash(&s.thumbhash);
    let (tw, thh, rgba) = thumbhash::thumb_hash_to_rgba(&th).expect("thumbhash decodes");
    assert_eq!(rgba.len(), tw * thh * 4);
    for p in rgba.chunks_exact(4) {
        assert!(near([p[0], p[1], p[2]], c, 8), "thumbhash pixel {p:?}");
        assert_eq!(p[3], 255);
    }
    let (r, g, b, a) = thumbhash::thumb_hash_to_average_rgba(&th).expect("average");
    let avg = [r, g, b].map(|v| (v * 255.0).round() as u8);
    assert!(near(avg, c, 8), "thumbhash average {avg:?}");
    assert!((a - 1.0).abs() < 1e-6);
}

#[test]
fn summarize_half_red_half_blue() {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(10, 4, |x, _| {
        Rgb(if x < 5 { RED } else { BLUE })
    }));
    let s = summarize(&img);
    assert!(s.dominant == RED || s.dominant == BLUE, "{:?}", s.dominant);
    // (127.5, 0, 127.5).
    assert!(near(s.average, [128, 0, 128], 1), "{:?}", s.average);
    // Left side of the blurhash is reddish, right side bluish.
    let px = blurhash::decode(&s.blurhash, 10, 4, 1.0).expect("decodes");
    let left = &px[40..44]; // (0, 1)
    let right = &px[76..80]; // (9, 1)
    assert!(
        left[0] > left[2] && right[2] > right[0],
        "{left:?} {right:?}"
    );
}

#[test]
fn summarize_dominant_counts_buckets() {
    // 12 pixels in the bucket of (200,100,50)/(205,102,55), 8 exactly blue.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(5, 4, |x, y| {
        let i = y * 5 + x;
        Rgb(if i < 6 {
            [200, 100, 50]
        } else if i < 12 {
            [205, 102, 55]
        } else {
            BLUE
        })
    }));
    let s = summarize(&img);
    // Bucket mean (202.5, 101, 52.5) -> (203, 101, 53).
    assert_eq!(s.dominant, [203, 101, 53]);
}

#[test]
fn summarize_ignores_transparent_pixels() {
    let green = [0u8, 200, 0];
    let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(10, 6, |x, _| {
        if x < 5 {
            Rgba([0, 200, 0, 255])
        } else {
            Rgba([255, 0, 0, 0])
        }
    }));
    let s = summarize(&img);
    assert_eq!(s.average, green);
    assert_eq!(s.dominant, green);
    let th = decode_thumbhash(&s.thumbhash);
    let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&th).expect("average");
    let avg = [r, g, b].map(|v| (v * 255.0).round() as u8);
    assert!(near(avg, green, 12), "{avg:?}");
    // Blurhash is composited over the average: no red anywhere.
    let px = blurhash::decode(&s.blurhash, 10, 6, 1.0).expect("decodes");
    assert!(px.chunks_exact(4).all(|p| p[0] < 40), "{px:?}");
}

#[test]
fn summarize_alpha_weighting_and_all_transparent() {
    // (255,0,0) opaque + (0,0,255) alpha 85: weights 1 and 1/3.
    let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(2, 1, |x, _| {
        Rgba(if x == 0 {
            [255, 0, 0, 255]
        } else {
            [0, 0, 255, 85]
        })
    }));
    let s = summarize(&img);
    // 255 * 1 / (4/3) = 191.25; 255 * (1/3) / (4/3) = 63.75.
    assert_eq!(s.average, [191, 0, 64]);
    // Only the opaque pixel has alpha >= 128.
    assert_eq!(s.dominant, RED);
    // All transparent: plain mean, dominant falls back to it.
    let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(2, 1, |x, _| {
        Rgba(if x == 0 {
            [100, 0, 0, 0]
        } else {
            [200, 0, 0, 0]
        })
    }));
    let s = summarize(&img);
    assert_eq!(s.average, [150, 0, 0]);
    assert_eq!(s.dominant, [150, 0, 0]);
}

#[test]
fn summarize_tiny_images_use_fewer_components() {
    let one = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([1, 2, 3])));
    let s = summarize(&one);
    // 1x1 components: 6 characters, first char '0'.
    assert_eq!(s.blurhash.len(), 6);
    assert!(s.blurhash.starts_with('0'));
    assert!(!s.thumbhash.is_empty());
    // 2x1 -> 2x1 components (size flag 1), 4 + 2*2 = 8 chars.
    let two = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 1, Rgb([1, 2, 3])));
    let s = summarize(&two);
    assert_eq!(s.blurhash.len(), 8);
    assert!(s.blurhash.starts_with('1'));
    // 0x0 still yields something decodable.
    let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
    let s = summarize(&empty);
    assert_eq!(s.average, [0, 0, 0]);
    assert_eq!(s.blurhash.len(), 6);
}

#[test]
fn summarize_downscales_large_input() {
    let c = [90u8, 160, 220];
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(640, 90, Rgb(c)));
    let s = summarize(&img);
    assert_eq!(s.average, c);
    assert_eq!(s.dominant, c);
    let th = decode_thumbhash(&s.thumbhash);
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&th).expect("ratio");
    assert!(ratio > 2.0, "landscape ratio {ratio}");
    let img16 = DynamicImage::ImageRgb16(img.to_rgb16());
    assert_eq!(summarize(&img16).average, c);
}

#[test]
fn float_images_with_nan_do_not_panic() {
    let mut f = Rgba32FImage::new(3, 3);
    for (i, p) in f.pixels_mut().enumerate() {
        p.0 = [f32::NAN, f32::INFINITY, -1.0, i as f32 / 9.0];
    }
    let img = DynamicImage::ImageRgba32F(f);
    let _ = trim_box(&img, &trim(1.0));
    let s = summarize(&img);
    assert!(!s.blurhash.is_empty());
    assert!(matches!(
        pixelate(img.clone(), 2),
        DynamicImage::ImageRgba32F(_)
    ));
    assert!(matches!(
        adjust(img, 10, 2.0, 0.5),
        DynamicImage::ImageRgba32F(_)
    ));
    let g = Rgb32FImage::from_pixel(2, 2, Rgb([0.5, 0.5, 0.5]));
    let out = adjust(DynamicImage::ImageRgb32F(g), 0, 2.0, 1.0);
    let DynamicImage::ImageRgb32F(out) = out else {
        panic!("type changed")
    };
    // 127.5 -> (127.5-128)*2+128 = 127 -> 127/255.
    assert!((out.get_pixel(0, 0).0[0] - 127.0 / 255.0).abs() < 1e-5);
}

// ----- proptests -----

/// Builds an image of pixel type `kind` (0..10) filled from `seed`.
fn random_image(kind: u8, w: u32, h: u32, seed: u64) -> DynamicImage {
    let mut rng = Rng(seed);
    // Mostly small alphabets so trims and buckets actually happen.
    let mut b = move || {
        let v = rng.next();
        if v & 3 == 0 {
            (v >> 8) as u8
        } else {
            ((v >> 8) as u8) & 0x80
        }
    };
    let mut rng16 = Rng(seed ^ 0xABCD);
    let mut s = move || (rng16.next() >> 48) as u16;
    let mut rngf = Rng(seed ^ 0x1234);
    let mut f = move || {
        let v = rngf.next();
        if v & 7 == 0 {
            f32::from_bits((v >> 32) as u32)
        } else {
            (v >> 40) as f32 / 16_777_216.0
        }
    };
    match kind % 10 {
        0 => DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |_, _| Luma([b()]))),
        1 => DynamicImage::ImageLumaA8(GrayAlphaImage::from_fn(w, h, |_, _| LumaA([b(), b()]))),
        2 => DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |_, _| Rgb([b(), b(), b()]))),
        3 => DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |_, _| {
            Rgba([b(), b(), b(), b()])
        })),
        4 => DynamicImage::ImageLuma16(ImageBuffer::from_fn(w, h, |_, _| Luma([s()]))),
        5 => DynamicImage::ImageLumaA16(ImageBuffer::from_fn(w, h, |_, _| LumaA([s(), s()]))),
        6 => DynamicImage::ImageRgb16(ImageBuffer::from_fn(w, h, |_, _| Rgb([s(), s(), s()]))),
        7 => DynamicImage::ImageRgba16(ImageBuffer::from_fn(w, h, |_, _| {
            Rgba([s(), s(), s(), s()])
        })),
        8 => DynamicImage::ImageRgb32F(ImageBuffer::from_fn(w, h, |_, _| Rgb([f(), f(), f()]))),
        _ => DynamicImage::ImageRgba32F(ImageBuffer::from_fn(w, h, |_, _| {
            Rgba([f(), f(), f(), f()])
        })),
    }
}

fn any_size() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..20, any::<u32>()]
}

proptest! {
    #[test]
    fn prop_trim_box_within_image(
        kind in 0u8..10, w in 1u32..64, h in 1u32..64, seed in any::<u64>(),
        threshold in prop::num::f32::ANY,
        color in prop::option::of(any::<[u8; 3]>()),
        equal_hor in any::<bool>(), equal_ver in any::<bool>(),
    ) {
        let img = random_image(kind, w, h, seed);
        let t = Trim { threshold, color, equal_hor, equal_ver };
        if let Some([x, y, bw, bh]) = trim_box(&img, &t) {
            prop_assert!(bw >= 1 && bh >= 1);
            prop_assert!(u64::from(x) + u64::from(bw) <= u64::from(w));
            prop_assert!(u64::from(y) + u64::from(bh) <= u64::from(h));
            prop_assert!((bw, bh) != (w, h), "Some must remove something");
            if equal_hor {
                prop_assert_eq!(x, w - x - bw);
            }
            if equal_ver {
                prop_assert_eq!(y, h - y - bh);
            }
        }
    }

    #[test]
    fn prop_pixelate_keeps_dimensions_and_type(
        kind in 0u8..10, w in 1u32..64, h in 1u32..64, seed in any::<u64>(),
        size in any_size(),
    ) {
        let img = random_image(kind, w, h, seed);
        let color = img.color();
        let out = pixelate(img, size);
        prop_assert_eq!((out.width(), out.height()), (w, h));
        prop_assert_eq!(out.color(), color);
    }

    #[test]
    fn prop_adjust_keeps_dimensions_and_type(
        kind in 0u8..10, w in 1u32..64, h in 1u32..64, seed in any::<u64>(),
        brightness in any::<i32>(),
        contrast in prop::num::f32::ANY,
        saturation in prop::num::f32::ANY,
    ) {
        let img = random_image(kind, w, h, seed);
        let color = img.color();
        let alpha_before: Vec<u8> = img.to_rgba8().pixels().map(|p| p.0[3]).collect();
        let out = adjust(img, brightness, contrast, saturation);
        prop_assert_eq!((out.width(), out.height()), (w, h));
        prop_assert_eq!(out.color(), color);
        if kind < 4 {
            let alpha_after: Vec<u8> = out.to_rgba8().pixels().map(|p| p.0[3]).collect();
            prop_assert_eq!(alpha_before, alpha_after);
        }
    }

    #[test]
    fn prop_summarize_never_panics(
        kind in 0u8..10, w in 1u32..64, h in 1u32..64, seed in any::<u64>(),
    ) {
        let img = random_image(kind, w, h, seed);
        let s = summarize(&img);
        prop_assert!(!s.blurhash.is_empty());
        prop_assert!(blurhash::decode(&s.blurhash, 4, 4, 1.0).is_ok());
        let th = decode_thumbhash(&s.thumbhash);
        prop_assert!(thumbhash::thumb_hash_to_rgba(&th).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn prop_summarize_large_inputs(
        kind in 0u8..10, w in 1u32..400, h in 1u32..400, seed in any::<u64>(),
    ) {
        let img = random_image(kind, w, h, seed);
        let s = summarize(&img);
        prop_assert!(!s.blurhash.is_empty());
        prop_assert!(!s.thumbhash.is_empty());
    }
}
