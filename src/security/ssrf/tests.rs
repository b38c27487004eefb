//! The SSRF guard: refused address ranges, CIDRs, source URL parsing and joining, the allowlist.

use super::*;

#[test]
fn the_ssrf_battery_is_refused() {
    for a in [
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.254",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",
        "::ffff:0:7f00:1",
        "::ffff:0:a9fe:a9fe",
        "::ffff:0:a00:1",
        "::ffff:0:5db8:d822",
        "64:ff9b:1::7f00:1",
        "64:ff9b:1:7f00:1::",
        "64:ff9b:1::5db8:d822",
    ] {
        let ip: IpAddr = a.parse().unwrap();
        assert!(forbidden(ip).is_some(), "{a} must be refused");
    }
}

#[test]
fn public_addresses_pass() {
    for a in [
        "93.184.216.34",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    ] {
        let ip: IpAddr = a.parse().unwrap();
        assert_eq!(forbidden(ip), None, "{a} is public");
    }
}

#[test]
fn cidr_ranges() {
    let c = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    assert!(!c.contains("::1".parse().unwrap()));
    let one = Cidr::parse("127.0.0.1").unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    assert!(Cidr::parse("fd00::/8")
        .unwrap()
        .contains("fd12::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    assert!(Cidr::parse("10.0.0.0/33").is_err());
    assert!(Cidr::parse("nope").is_err());
}

#[test]
fn urls_parse_and_join() {
    let u = SourceUrl::parse("HTTPS://Images.Example.com./a/b.jpg?x=1").unwrap();
    assert_eq!(
        (
            u.scheme.as_str(),
            u.host.as_str(),
            u.port,
            u.path_and_query.as_str()
        ),
        ("https", "images.example.com", 443, "/a/b.jpg?x=1")
    );
    assert!(SourceUrl::parse("ftp://x/y").is_err());
    assert!(SourceUrl::parse("http://user:pw@x/y").is_err());
    assert!(SourceUrl::parse("/relative").is_err());
    let v6 = SourceUrl::parse("http://[::1]:8080/x").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
    assert_eq!(v6.origin(), "http://[::1]:8080");
    assert_eq!(
        u.join("/c.png").unwrap().as_string(),
        "https://images.example.com/c.png"
    );
    assert_eq!(
        u.join("d.png").unwrap().as_string(),
        "https://images.example.com/a/d.png"
    );
    assert_eq!(
        u.join("//other.net/e").unwrap().as_string(),
        "https://other.net/e"
    );
    assert_eq!(
        u.join("http://h:81/f").unwrap().as_string(),
        "http://h:81/f"
    );
}

#[test]
fn allowlist_matches_components_not_strings() {
    let a = Allowed::parse("https://images.example.com").unwrap();
    let ok = |s: &str| a.matches(&SourceUrl::parse(s).unwrap());
    assert!(ok("https://images.example.com/x.jpg"));
    assert!(
        !ok("https://images.example.com.evil.net/x.jpg"),
        "the trailing-slash pitfall"
    );
    assert!(!ok("http://images.example.com/x.jpg"), "scheme matters");
    assert!(!ok("https://evil.net/images.example.com/x.jpg"));
    let g = Allowed::parse("https://*.cdn.example.org/media").unwrap();
    let ok = |s: &str| g.matches(&SourceUrl::parse(s).unwrap());
    assert!(ok("https://a.cdn.example.org/media/x.jpg"));
    assert!(ok("https://a.cdn.example.org/media"));
    assert!(
        !ok("https://a.cdn.example.org/media-private/x.jpg"),
        "a folder, not a prefix"
    );
    assert!(!ok("https://cdn.example.org.evil.net/media/x.jpg"));
    let p = Allowed::parse("http://10.0.0.5:8080/").unwrap();
    assert!(p.matches(&SourceUrl::parse("http://10.0.0.5:8080/a").unwrap()));
    assert!(!p.matches(&SourceUrl::parse("http://10.0.0.5/a").unwrap()));
    // No port: the scheme's default port, not every port (issue 17 item 6).
    let d = Allowed::parse("http://10.0.0.5/media/").unwrap();
    assert!(d.matches(&SourceUrl::parse("http://10.0.0.5/media/a").unwrap()));
    assert!(d.matches(&SourceUrl::parse("http://10.0.0.5:80/media/a").unwrap()));
    assert!(!d.matches(&SourceUrl::parse("http://10.0.0.5:18090/media/a").unwrap()));
    let s = Allowed::parse("https://img.example.com/").unwrap();
    assert!(s.matches(&SourceUrl::parse("https://img.example.com:443/a").unwrap()));
    assert!(!s.matches(&SourceUrl::parse("https://img.example.com:8443/a").unwrap()));
    let v6 = Allowed::parse("http://[FD00::5]:*/").unwrap();
    assert!(v6.matches(&SourceUrl::parse("http://[fd00::5]:8080/a").unwrap()));
    assert!(!v6.matches(&SourceUrl::parse("http://d:6379/a").unwrap()));
    assert!(!v6.matches(&SourceUrl::parse("http://[fd00::6]/a").unwrap()));
    assert!(Allowed::parse("http://fd00::5/").is_err());
    let any = Allowed::parse("http://10.0.0.5:*/").unwrap();
    assert!(any.matches(&SourceUrl::parse("http://10.0.0.5:18090/a").unwrap()));
    // Dot segments are resolved before matching; encoded ones are refused.
    assert!(!d.matches(&SourceUrl::parse("http://10.0.0.5/media/../secret/x.png").unwrap()));
    assert_eq!(
        SourceUrl::parse("http://10.0.0.5/media/../secret/x.png")
            .unwrap()
            .path_and_query,
        "/secret/x.png"
    );
    for bad in [
        "http://10.0.0.5/media/%2e%2e/secret/x.png",
        "http://10.0.0.5/media/%252e%252e/secret/x.png",
        "http://10.0.0.5/media/..%252f..%252fsecret/x.png",
        "http://10.0.0.5/media/%2e%2e%2fsecret/x.png",
    ] {
        let parsed = SourceUrl::parse(bad);
        assert!(
            parsed.as_ref().map_or(true, |u| !d.matches(u)),
            "{bad} must not pass as /media/: {parsed:?}"
        );
    }
    assert!(Allowed::parse("images.example.com").is_err());
    assert!(Allowed::parse("gopher://x").is_err());
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(s in ".{0,120}") {
        let _ = SourceUrl::parse(&s);
        let _ = Allowed::parse(&s);
        let _ = Cidr::parse(&s);
    }

    #[test]
    fn mapped_v4_is_judged_like_v4(a: u8, b: u8, c: u8, d: u8) {
        let v4 = Ipv4Addr::new(a, b, c, d);
        proptest::prop_assert_eq!(
            forbidden(IpAddr::V6(v4.to_ipv6_mapped())).is_some(),
            forbidden(IpAddr::V4(v4)).is_some()
        );
    }
}
