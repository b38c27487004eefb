use super::*;
use crate::image::format::OutputFormat;
use crate::request::options::Gravity;
use crate::security::signing::Signer;

fn parse(p: &str) -> Result<ApiUrl, OptionError> {
    super::parse(p, &|name| {
        (name == "thumb").then(|| "w=50&h=50&fit=cover".to_string())
    })
}

#[test]
fn presets_expand() {
    let u = parse("/s/pr:thumb/q:40/plain/http://x/a").unwrap();
    assert_eq!(
        (u.options.width, u.options.fit, u.options.quality),
        (Some(50), Fit::Cover, Some(40))
    );
    assert_eq!(
        parse("/s/pr:nope/plain/http://x/a").unwrap_err().param,
        "pr"
    );
}

#[test]
fn plain_and_encoded_sources() {
    let u = parse("/sig/rs:fill:300:200/g:sm/q:70/plain/http://img.example.com/a%40b.jpg@webp")
        .unwrap();
    assert_eq!(u.signature, "sig");
    assert_eq!(
        u.signed,
        "/rs:fill:300:200/g:sm/q:70/plain/http://img.example.com/a%40b.jpg@webp"
    );
    assert_eq!(u.source, "http://img.example.com/a@b.jpg");
    assert_eq!(u.options.fit, Fit::Cover);
    assert_eq!((u.options.width, u.options.height), (Some(300), Some(200)));
    assert_eq!(u.options.gravity, Gravity::Smart);
    assert_eq!(u.options.quality, Some(70));
    assert_eq!(u.options.format, FormatReq::Force(OutputFormat::Webp));

    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("http://x.test/p/q.png");
    let (a, b) = enc.split_at(10);
    let u = parse(&format!("/s/w:100/{a}/{b}.avif")).unwrap();
    assert_eq!(u.source, "http://x.test/p/q.png");
    assert_eq!(u.options.width, Some(100));
    assert_eq!(u.options.format, FormatReq::Force(OutputFormat::Avif));
    let u = parse("/s/rs:fit:0:150:1/el:0/plain/http://x.test/a.jpg").unwrap();
    assert_eq!(
        (u.options.width, u.options.height, u.options.enlarge),
        (None, Some(150), false)
    );
    let u = parse("/s/g:fp:0.5:0.25/bg:255:0:0/ex:1/exp:99/plain/http://x/a").unwrap();
    assert_eq!(u.options.gravity, Gravity::Focus(0.5, 0.25));
    assert_eq!(u.options.background, Some([255, 0, 0, 255]));
    assert_eq!(u.options.fit, Fit::Contain);
    assert_eq!(u.expires, Some(99));
    assert!(!u.options.first_frame);
    let u = parse("/s/da:1/w:10/plain/http://x/a.gif").unwrap();
    assert!(u.options.first_frame, "disable_animation");
    assert_eq!(u.options.canonical(), "w=10&anim=0");
}

#[test]
fn unsupported_and_bad_options_are_named() {
    for (path, param) in [
        ("/s/page:2/plain/http://x/a", "page"),
        ("/s/wm:0.5:middle/plain/http://x/a", "wm"),
        ("/s/rs:wide:1:1/plain/http://x/a", "rs"),
        ("/s/w:abc/plain/http://x/a", "w"),
        ("/s/g:sm:10:5/plain/http://x/a", "g"),
        ("/s/g:ce:1:2:3/plain/http://x/a", "g"),
        ("/s/pr:other/plain/http://x/a", "pr"),
        ("/s/plain/http://x/a@gif", "format"),
        ("/s/w:10", "source"),
        ("/s/w:10/!!!notbase64", "source"),
        ("/nosig", "path"),
    ] {
        assert_eq!(parse(path).unwrap_err().param, param, "{path}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_paths_never_panic(p in ".{0,200}") {
        let _ = parse(&p);
        let _ = percent_decode(&p);
        let _ = Signer::new(vec![(b"k".to_vec(), b"s".to_vec())], 32, false).verify(&p, &p);
    }
}

#[test]
fn extend_is_a_flag_whatever_the_order() {
    let a = parse("/s/rs:fit:300:300:0:1:so/bg:0:0:0/plain/http://x/a")
        .unwrap()
        .options;
    assert_eq!((a.fit, a.gravity), (Fit::Contain, Gravity::South));
    assert_eq!(a.background, Some([0, 0, 0, 255]));
    let b = parse("/s/ex:1:so/rs:fit:300:300/plain/http://x/a")
        .unwrap()
        .options;
    assert_eq!((b.fit, b.gravity), (Fit::Contain, Gravity::South));
    let c = parse("/s/ex:1:so/rs:fit:300:300:0:0/plain/http://x/a")
        .unwrap()
        .options;
    assert_eq!(c.fit, Fit::Inside, "a later rs with extend 0 turns it off");
}

#[test]
fn filename_and_attachment_make_a_content_disposition() {
    let a = parse("/s/fn:my%20photo/att:1/plain/http://x/a.jpg").unwrap();
    let d = a.disposition.unwrap();
    assert_eq!(d.filename.as_deref(), Some("my photo"));
    assert_eq!(
        d.header("webp", "/a.jpg"),
        "attachment; filename=\"my photo.webp\"; filename*=UTF-8''my%20photo.webp"
    );
    // base64url-encoded, non-ASCII: an ASCII fallback and the exact UTF-8 name.
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("Café \"1\"");
    let d = parse(&format!("/s/fn:{enc}:1/plain/http://x/a.jpg"))
        .unwrap()
        .disposition
        .unwrap();
    assert_eq!(
        d.header("jpg", "/a.jpg"),
        "inline; filename=\"Caf_ _1_.jpg\"; filename*=UTF-8''Caf%C3%A9%20%221%22.jpg"
    );
    // Without a name: the source's, with the output's extension.
    let d = parse("/s/att:1/plain/http://x/dir/cat%20pic.png")
        .unwrap()
        .disposition
        .unwrap();
    assert_eq!(
        d.header("avif", "/dir/cat%20pic.png?v=2"),
        "attachment; filename=\"cat pic.avif\"; filename*=UTF-8''cat%20pic.avif"
    );
    assert!(parse("/s/plain/http://x/a.jpg")
        .unwrap()
        .disposition
        .is_none());
    for bad in [
        "/s/fn:a%2Fb/plain/http://x/a",
        "/s/fn:%0a/plain/http://x/a",
        "/s/fn:!!:1/plain/http://x/a",
        "/s/att:maybe/plain/http://x/a",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
