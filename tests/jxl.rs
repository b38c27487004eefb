//! JPEG XL output (issue 21 item 3, the `jxl` feature): Safari's exact Accept string gets JPEG
//! XL when `jxl` is among `images.formats`; Chrome, which does not name it, does not. Outputs
//! decoded by jxl-oxide, a decoder that shares no code with libjxl.
#![cfg(feature = "jxl")]

mod common;
use common::*;

fn jxl_decode(bytes: &[u8]) -> image::RgbaImage {
    let img = jxl_oxide::JxlImage::builder()
        .read(bytes)
        .expect("a JPEG XL");
    let render = img.render_frame(0).expect("frame");
    let fb = render.image_all_channels();
    let (w, h, c) = (fb.width() as u32, fb.height() as u32, fb.channels());
    let px: Vec<u8> = fb
        .buf()
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    match c {
        3 => image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, px).expect("rgb"))
            .to_rgba8(),
        4 => image::RgbaImage::from_raw(w, h, px).expect("rgba"),
        n => panic!("{n} channels"),
    }
}

#[tokio::test]
async fn safari_gets_jpeg_xl_when_it_is_enabled() {
    let photo = photo(640, 480, 7);
    let png = fixture("alpha.png");
    let origin = TestOrigin::start(vec![
        ("/p.jpg", Route::ok("image/jpeg", photo.clone())),
        ("/a.png", Route::ok("image/png", png.clone())),
    ]);
    let px = Pixgate::start_with(&origin, |c| {
        use pixgate::image::format::OutputFormat as F;
        c.images.formats = vec![F::Jxl, F::Avif, F::Webp, F::Jpeg, F::Png];
        c.cache.avif_budget = None;
    });
    let r = get(&px.url("/p.jpg?w=320"), Some(SAFARI)).await;
    assert_eq!(r.headers()["content-type"], "image/jxl");
    assert_eq!(r.headers()["x-pixgate"], "jxl");
    let body = r.bytes().await.expect("body");
    assert!(body.len() < photo.len());
    let out = jxl_decode(&body);
    assert_eq!(out.dimensions(), (320, 240));
    // Close to the source's pixels at the same size.
    let reference = decode(&photo).resize_exact(320, 240, image::imageops::FilterType::Lanczos3);
    let reference = reference.to_rgba8();
    let mean_err: f64 = out
        .pixels()
        .zip(reference.pixels())
        .map(|(a, b)| (0..3).map(|i| f64::from(a[i].abs_diff(b[i]))).sum::<f64>() / 3.0)
        .sum::<f64>()
        / f64::from(320 * 240);
    assert!(mean_err < 12.0, "mean error {mean_err:.1}");

    // Chrome does not name image/jxl: AVIF.
    let r = get(&px.url("/p.jpg?w=320"), Some(CHROME)).await;
    assert_eq!(r.headers()["content-type"], "image/avif");

    // Transparency survives, and lossless keeps every pixel.
    let r = get(&px.url("/a.png?fm=jxl&lossless=1"), Some(SAFARI)).await;
    assert_eq!(r.headers()["content-type"], "image/jxl");
    let out = jxl_decode(&r.bytes().await.expect("body"));
    let src = decode(&png).to_rgba8();
    assert_eq!(out.dimensions(), src.dimensions());
    let differing = out
        .pixels()
        .zip(src.pixels())
        .filter(|(a, b)| a[3] != b[3] || (b[3] > 0 && a.0[..3] != b.0[..3]))
        .count();
    assert_eq!(differing, 0, "lossless JPEG XL keeps every visible pixel");
}
