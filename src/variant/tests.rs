use super::*;
use crate::image::plan::Choice;
use crate::rules::RuleSet;
use std::sync::Arc;
use OutputFormat::*;

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const FIREFOX: &str = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
const SAFARI: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
const OLD: &str = "image/png,image/*;q=0.8,*/*;q=0.5";
const ACCEPTS: [Option<&str>; 5] = [Some(CHROME), Some(FIREFOX), Some(SAFARI), Some(OLD), None];
const ALL: [OutputFormat; 4] = [Avif, Webp, Jpeg, Png];

/// Rules for host `h` (one per path), loaded from YAML as pixgate loads them.
const RULES: &str = r#"
rules:
  - name: signed
    hosts: ["h"]
    paths: ["/signed/**"]
    require_signature: true
  - name: through
    hosts: ["h"]
    paths: ["/through/**"]
    bypass: true
  - name: narrow
    hosts: ["h"]
    paths: ["/narrow/**"]
    formats: [webp, jpeg]
    quality: { webp: 61, jpeg: 62 }
    max_width: 300
    ttl: 1h
  - name: png-only
    hosts: ["h"]
    paths: ["/src/**"]
    source_formats: [png]
    formats: [jpeg, png]
    max_width: 100
  - name: png-through
    hosts: ["h"]
    paths: ["/keep/**"]
    source_formats: [png]
    bypass: true
"#;

fn rules() -> Arc<RuleSet> {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("r.yaml"), RULES).expect("rules written");
    Arc::new(RuleSet::load_dir(dir.path()).expect("the rules load"))
}

fn rule(path: &str) -> Applied {
    Applied::find(Some(rules()), "h", path)
}

fn ask(query: &str, accept: Option<&str>, route: Route) -> Ask {
    let (options, _) = Options::from_query(query).expect("valid options");
    Ask {
        options,
        hints: None,
        accept: Accept::parse(accept),
        route,
    }
}

fn settings(t: &TransformConfig) -> Settings<'_> {
    Settings {
        formats: &ALL,
        transform: t,
        marks: None,
    }
}

fn width(v: &Variant) -> Option<u32> {
    v.transform.resize.and_then(|r| r.width)
}

#[test]
fn every_format_request_and_browser_without_a_rule() {
    let t = TransformConfig::default();
    let none = Applied::find(None, "h", "/a.jpg");
    let enabled_sets: [&[OutputFormat]; 4] = [&ALL, &[Webp, Jpeg, Png], &[Jpeg, Png], &[Avif]];
    let fms = ["", "fm=avif", "fm=webp", "fm=jpeg", "fm=png"];
    for enabled in enabled_sets {
        let s = Settings {
            formats: enabled,
            transform: &t,
            marks: None,
        };
        for fm in fms {
            for accept in ACCEPTS {
                for route in [Route::Proxy, Route::Api { signed: true }] {
                    let a = ask(fm, accept, route);
                    let got = decide(&a, &none, s);
                    let named = fm.strip_prefix("fm=");
                    match (named, got) {
                        (None, Ok(v)) => {
                            assert!(v.budgeted, "negotiated formats may use the AVIF budget");
                            for c in [v.plan.jpeg, v.plan.png] {
                                if let Choice::Encode(f) = c {
                                    assert!(enabled.contains(&f), "{f:?} not enabled");
                                    let explicit = accept.is_some_and(|h| h.contains(f.mime()));
                                    assert!(!f.is_modern() || explicit, "{f:?} for {accept:?}");
                                }
                            }
                            if accept == Some(CHROME) && enabled.contains(&Avif) {
                                assert!(v.plan.wants_avif());
                            }
                        }
                        (Some(name), Ok(v)) => {
                            let f = v.plan.jpeg;
                            assert_eq!(v.plan.png, f, "a named format is forced for every source");
                            let Choice::Encode(f) = f else {
                                panic!("forced plans encode")
                            };
                            assert_eq!(f.name(), name);
                            assert!(enabled.contains(&f));
                            assert!(!v.budgeted, "fm={name} waits for its format");
                        }
                        (Some(name), Err(r)) => {
                            assert!(!enabled.iter().any(|f| f.name() == name));
                            assert_eq!(r.status(), 400);
                            assert!(r.message().contains(&format!("`{name}`")), "{r:?}");
                        }
                        (None, Err(r)) => panic!("negotiation never refuses: {r:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn key_part_names_the_options_and_the_rule() {
    let t = TransformConfig::default();
    let none = Applied::find(None, "h", "/a.jpg");
    let v = decide(&ask("w=200&q=70", None, Route::Proxy), &none, settings(&t)).unwrap();
    assert_eq!(
        v.key_options,
        ask("q=70&w=200", None, Route::Proxy).options.canonical()
    );
    let narrow = rule("/narrow/a.jpg");
    let v = decide(&ask("w=200", None, Route::Proxy), &narrow, settings(&t)).unwrap();
    assert!(v.key_options.contains(";rule=narrow@"), "{}", v.key_options);
}

#[test]
fn signed_only_rules_judge_the_url_not_the_hints() {
    let t = TransformConfig {
        client_hints: true,
        ..TransformConfig::default()
    };
    let signed = rule("/signed/a.jpg");
    // No options: the image is still optimised (format only), even with a DPR hint.
    let mut a = ask("", Some(CHROME), Route::Proxy);
    a.hints = Some(Hints {
        dpr: Some(2.0),
        ..Hints::default()
    });
    assert!(decide(&a, &signed, settings(&t)).is_ok());
    let r = decide(&ask("w=10", None, Route::Proxy), &signed, settings(&t)).unwrap_err();
    assert_eq!(r, Refusal::SignatureRequired(Route::Proxy));
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.message(),
        "this path only allows signed transforms (the URL API)"
    );
    let api = |signed| ask("w=10", None, Route::Api { signed });
    let r = decide(&api(false), &signed, settings(&t)).unwrap_err();
    assert_eq!(r.message(), "this source requires a signed URL");
    assert!(decide(&api(true), &signed, settings(&t)).is_ok());
}

#[test]
fn bypassing_rules_refuse_the_url_api() {
    let t = TransformConfig::default();
    let r = decide(
        &ask("w=10", None, Route::Api { signed: true }),
        &rule("/through/a.jpg"),
        settings(&t),
    )
    .unwrap_err();
    assert_eq!((r.status(), r.label()), (403, "rule_refuses_api"));
    assert_eq!(r.message(), "a rule excludes this source from transforms");
}

#[test]
fn a_rule_narrows_formats_caps_size_and_sets_quality_and_ttl() {
    let t = TransformConfig::default();
    let narrow = rule("/narrow/a.jpg");
    let v = decide(
        &ask("w=1000", Some(CHROME), Route::Proxy),
        &narrow,
        settings(&t),
    )
    .unwrap();
    assert_eq!(
        v.plan.jpeg,
        Choice::Encode(Webp),
        "AVIF is not in the rule's formats"
    );
    assert_eq!(width(&v), Some(300));
    assert_eq!(v.qualities, vec![(Webp, 61), (Jpeg, 62)]);
    assert_eq!(v.rule_ttl, Some(Duration::from_secs(3600)));
    let r = decide(&ask("fm=avif", None, Route::Proxy), &narrow, settings(&t)).unwrap_err();
    assert_eq!(
        r.message(),
        "parameter `fm`: `avif` is not enabled here (images.formats or the path's rule)"
    );
    let r = decide(
        &ask("fm=avif", None, Route::Api { signed: true }),
        &narrow,
        settings(&t),
    )
    .unwrap_err();
    assert_eq!(r.message(), "format `avif` is not enabled here");
}

#[test]
fn client_hints_fill_the_gaps_only_when_enabled() {
    let off = TransformConfig::default();
    let on = TransformConfig {
        client_hints: true,
        ..TransformConfig::default()
    };
    let none = Applied::find(None, "h", "/a.jpg");
    let mut a = ask("w=100", None, Route::Proxy);
    a.hints = Some(Hints {
        dpr: Some(2.0),
        ..Hints::default()
    });
    assert_eq!(
        width(&decide(&a, &none, settings(&off)).unwrap()),
        Some(100)
    );
    assert_eq!(width(&decide(&a, &none, settings(&on)).unwrap()), Some(200));
}

#[test]
fn after_the_fetch_a_source_format_rule_redecides_but_keeps_the_key() {
    let t = TransformConfig::default();
    let set = rules();
    let before_rule = Applied::find(Some(set.clone()), "h", "/src/a.png");
    assert!(
        before_rule.rule().is_none(),
        "source_formats rules wait for the format"
    );
    let a = ask("w=1000", Some(CHROME), Route::Proxy);
    let before = decide(&a, &before_rule, settings(&t)).unwrap();
    assert!(before.plan.wants_avif());
    let over = before_rule.for_source("h", "/src/a.png", crate::image::format::SourceFormat::Png);
    let AfterFetch::Under(v) = a.under_source_rule(over.as_ref(), &before, settings(&t)) else {
        panic!("the png rule applies")
    };
    assert_eq!(
        v.plan.png,
        Choice::Encode(Png),
        "the rule allows jpeg and png only"
    );
    assert_eq!(width(&v), Some(100));
    assert_eq!(
        v.key_options, before.key_options,
        "the key was named before the fetch"
    );
    // A named format the new rule forbids keeps the agreed plan.
    let forced = ask("fm=avif", None, Route::Proxy);
    let before = decide(&forced, &before_rule, settings(&t)).unwrap();
    let AfterFetch::Under(v) = forced.under_source_rule(over.as_ref(), &before, settings(&t))
    else {
        panic!("the png rule applies")
    };
    assert_eq!(v.plan, Plan::forced(Avif));
    // No rule for the format: nothing changes; a bypassing one sends the original.
    assert_eq!(
        a.under_source_rule(None, &before, settings(&t)),
        AfterFetch::Same
    );
    let keep = Applied::find(Some(set), "h", "/keep/a.png");
    let over = keep.for_source("h", "/keep/a.png", crate::image::format::SourceFormat::Png);
    assert_eq!(
        a.under_source_rule(over.as_ref(), &before, settings(&t)),
        AfterFetch::Original
    );
}
