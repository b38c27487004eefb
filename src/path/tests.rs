use super::*;

const REFUSE: Form = Form::request(EncodedSlashes::Refuse);
const KEEP: Form = Form::request(EncodedSlashes::Keep);

fn n(p: &str) -> Result<String, PathError> {
    normalize(p)
}

#[test]
fn the_review_s_paths_are_one_path() {
    for p in [
        "/private/a.png",
        "/%70rivate/a.png",
        "//private/a.png",
        "/x/../private/a.png",
        "/./private//./a.png",
        "/%2e%2e/private/a.png",
        "/x/%2E%2E/private/a.png",
        "/../../private/a.png",
        "/priv%61te/a%2Epng",
    ] {
        assert_eq!(n(p).as_deref(), Ok("/private/a.png"), "{p}");
    }
}

#[test]
fn the_common_target_needs_no_rewrite() {
    for t in [
        "/",
        "/img/a.jpg",
        "/a/b/?w=40&h=30",
        "/a;jsessionid=1/b.png",
        "/.well-known/x",
    ] {
        assert!(is_normal_target(t.as_bytes(), REFUSE), "{t}");
    }
    for t in [
        "/a//b", "/a/./b", "/a/../b", "/%70", "/é", "a", "/a b", "/..;x/", "/x?a b",
    ] {
        assert!(!is_normal_target(t.as_bytes(), REFUSE), "{t}");
    }
}

#[test]
fn trailing_slashes_and_roots() {
    assert_eq!(n("/").as_deref(), Ok("/"));
    assert_eq!(n("//").as_deref(), Ok("/"));
    assert_eq!(n("/..").as_deref(), Ok("/"));
    assert_eq!(n("/a/").as_deref(), Ok("/a/"));
    assert_eq!(n("/a/.").as_deref(), Ok("/a/"));
    assert_eq!(n("/a/b/..").as_deref(), Ok("/a/"));
    assert_eq!(n("/a//").as_deref(), Ok("/a/"));
}

#[test]
fn escapes_are_canonical_and_raw_bytes_encoded() {
    assert_eq!(n("/a%20b%3f").as_deref(), Ok("/a%20b%3F"));
    assert_eq!(n("/%C3%A9t%c3%a9").as_deref(), Ok("/%C3%A9t%C3%A9"));
    // Raw UTF-8 and spaces are the same path as their escapes (not mojibake).
    assert_eq!(n("/é.jpg").as_deref(), Ok("/%C3%A9.jpg"));
    assert_eq!(n("/%c3%a9.jpg").as_deref(), Ok("/%C3%A9.jpg"));
    assert_eq!(
        normalize_bytes(b"/caf\xe9 x.jpg", REFUSE).as_deref(),
        Ok("/caf%E9%20x.jpg")
    );
    assert_eq!(n("/a;jsessionid=1/b").as_deref(), Ok("/a;jsessionid=1/b"));
    assert_eq!(
        normalize_target(b"/%70ic.jpg?w=40&x=%2F&y=\xc3\xa9", REFUSE).as_deref(),
        Ok("/pic.jpg?w=40&x=%2F&y=%C3%A9")
    );
}

#[test]
fn what_cannot_be_normalised_is_refused() {
    use PathError::*;
    for (p, e) in [
        ("/a%2", BadEscape),
        ("/a%zz", BadEscape),
        ("/a%00b", Nul),
        ("/x%2Fprivate", Separator),
        ("/x%5c..%5cprivate", Separator),
        ("/x/..\\private\\a.png", Separator),
        ("/%252Fprivate/a.png", Separator),
        ("/media/%252e%252e/secret", HiddenDotSegment),
        ("/%252E/x", HiddenDotSegment),
        ("/public/..;/private/a.png", HiddenDotSegment),
        ("/public/.;x/a.png", HiddenDotSegment),
        ("relative", NotAbsolute),
        ("", NotAbsolute),
    ] {
        assert_eq!(n(p), Err(e), "{p}");
    }
    // Three dots are a name, not a dot segment, however they are written.
    assert_eq!(n("/%252e%252e%252e").as_deref(), Ok("/%252e%252e%252e"));
}

#[test]
fn kept_encoded_slashes_are_data_but_hide_no_dot_segment() {
    assert_eq!(
        normalize_bytes(b"/api/projects/group%2fproj", KEEP).as_deref(),
        Ok("/api/projects/group%2Fproj")
    );
    assert_eq!(
        normalize_bytes(b"/a/..%2Fsecret", KEEP),
        Err(PathError::HiddenDotSegment)
    );
    assert_eq!(
        normalize_bytes(b"/a/x%252Fy", KEEP),
        Err(PathError::Separator)
    );
    // A source path keeps `//` and its encoded slashes.
    assert_eq!(
        normalize_bytes(b"/web/2020/http://ex.com/a.jpg", Form::SOURCE).as_deref(),
        Ok("/web/2020/http://ex.com/a.jpg")
    );
    assert_eq!(
        normalize_bytes(b"/v0/b/o/images%2Fphoto.jpg", Form::SOURCE).as_deref(),
        Ok("/v0/b/o/images%2Fphoto.jpg")
    );
    assert_eq!(
        normalize_bytes(b"/media/../secret", Form::SOURCE).as_deref(),
        Ok("/secret")
    );
}

proptest::proptest! {
    #[test]
    fn normal_forms_are_fixed_points(s in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
        let mut p = b"/".to_vec();
        p.extend(s);
        for form in [REFUSE, KEEP, Form::SOURCE] {
            // The allocation-free check never calls a path normal that the full one changes.
            if is_normal_target(&p, form) {
                let as_sent = String::from_utf8_lossy(&p).into_owned();
                proptest::prop_assert_eq!(normalize_target(&p, form), Ok(as_sent));
            }
            if let Ok(n) = normalize_bytes(&p, form) {
                proptest::prop_assert!(is_normal_target(n.as_bytes(), form) || n.contains('%') || n.contains(';'));
                proptest::prop_assert_eq!(normalize_bytes(n.as_bytes(), form), Ok(n.clone()));
                proptest::prop_assert!(n.starts_with('/'));
                proptest::prop_assert!(n.is_ascii());
                proptest::prop_assert!(!n.split('/').any(|x| x == "." || x == ".."));
                if form.merge_slashes {
                    proptest::prop_assert!(!n.contains("//"));
                }
                proptest::prop_assert!(n.parse::<http::uri::PathAndQuery>().is_ok(), "{}", n);
            }
        }
    }
}
