//! The upload page's three files (src/upload/page.{html,css,js}) keep to what the upload
//! listener's `Content-Security-Policy: default-src 'self'; img-src 'self' blob:` allows: no
//! inline script or style, no event-handler attributes, nothing from another origin; and every
//! element the script and the browser test look up exists.

const HTML: &str = include_str!("../src/upload/page.html");
const CSS: &str = include_str!("../src/upload/page.css");
const JS: &str = include_str!("../src/upload/page.js");

#[test]
fn nothing_inline_and_nothing_from_elsewhere() {
    assert!(HTML.contains(r#"<link rel="stylesheet" href="/page.css">"#));
    assert!(HTML.contains(r#"<script src="/page.js" defer></script>"#));
    assert_eq!(HTML.matches("<script").count(), 1, "one script, external");
    assert!(!HTML.contains("<style"), "inline <style>");
    let lower = HTML.to_ascii_lowercase();
    assert!(!lower.contains(" style="), "a style attribute");
    for handler in [
        " onclick=",
        " onload=",
        " onchange=",
        " onsubmit=",
        " oninput=",
        " onerror=",
    ] {
        assert!(!lower.contains(handler), "{handler}");
    }
    for (name, text) in [("page.html", HTML), ("page.css", CSS), ("page.js", JS)] {
        for external in [
            "http://",
            "https://",
            "url(//",
            "src=\"//",
            "href=\"//",
            "@import",
        ] {
            assert!(!text.contains(external), "{name} refers to {external}");
        }
    }
    // Server text is set as text, never parsed as markup.
    assert!(!JS.contains("innerHTML") && !JS.contains("outerHTML"));
    assert!(!JS.contains("eval(") && !JS.contains("new Function"));
    // The privacy facts come from the API, not from the page.
    assert!(JS.contains("/api/v1/info"));
    for number in ["24 hours", "60 minutes", "1 hour"] {
        assert!(!HTML.contains(number), "hard-coded {number}");
    }
}

#[test]
fn the_ids_the_script_and_the_browser_test_use_exist() {
    let mut ids: Vec<&str> = JS
        .split("$(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    ids.extend([
        "file-input",
        "format",
        "quality",
        "submit",
        "total",
        "error",
        "privacy",
        "width",
        "height",
        "preset",
        "fit",
    ]);
    assert!(ids.len() > 15, "{ids:?}");
    for id in ids {
        assert_eq!(HTML.matches(&format!("id=\"{id}\"")).count(), 1, "#{id}");
    }
    for class in [
        "class=\"result\"",
        "class=\"savings\"",
        "class=\"download\"",
        "class=\"delete\"",
    ] {
        assert!(HTML.contains(class), "{class}");
    }
    // Every control has a label.
    for control in [
        "file-input",
        "format",
        "quality",
        "preset",
        "width",
        "height",
        "fit",
    ] {
        assert!(
            HTML.contains(&format!("for=\"{control}\"")),
            "label for #{control}"
        );
    }
    assert!(HTML.contains(r#"name="viewport" content="width=device-width, initial-scale=1""#));
    assert!(HTML.contains(r#"<html lang="en">"#));
}
