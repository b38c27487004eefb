//! The Grafana dashboard and the Prometheus alert rules in deploy/ are checked against a real
//! pixgate: every metric they name exists in its `/metrics`, every panel query and rule parses
//! (promtool), and the alerts fire on the series they are meant for (promtool's rule tests).

mod common;

use common::{Pixgate, Route, TestOrigin};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// Metric names (`pixgate_...`) in `text`, with histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("pixgate_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        out.insert(base);
    }
    out
}

/// Metric families pixgate exports (`# TYPE name kind`).
async fn exported() -> BTreeSet<String> {
    let origin = TestOrigin::start(vec![("/a.html", Route::ok("text/html", "hi"))]);
    let px = Pixgate::start(&origin);
    px.metrics()
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (apt-get install prometheus; scripts/deps.sh test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[tokio::test]
async fn dashboard_and_alerts_name_only_real_metrics_and_parse() {
    let have = exported().await;
    let dash_text = std::fs::read_to_string(deploy("grafana/pixgate-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dash_text).expect("dashboard is JSON");
    let alerts = std::fs::read_to_string(deploy("prometheus/pixgate-alerts.yml")).unwrap();

    for (file, text) in [("dashboard", &dash_text), ("alerts", &alerts)] {
        let named = metric_names(text);
        assert!(named.len() >= 8, "{file} names {named:?}");
        let missing: Vec<_> = named.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics pixgate does not export: {missing:?}"
        );
    }

    // What the issue asks the dashboard to show.
    let titles: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for want in [
        "requests",
        "savings",
        "latency",
        "hit ratio",
        "retention",
        "errors",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel about {want}: {titles:?}"
        );
    }

    // Every panel query parses as PromQL: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap().replace("$job", ".*");
            rules.push_str(&format!(
                "      - record: dashboard:q{n}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
            n += 1;
        }
    }
    assert!(n >= 14);
    std::fs::write(dir.path().join("dash.yml"), rules).unwrap();
    let out = promtool(&["check", "rules", "dash.yml"], dir.path());
    assert!(out.contains(&format!("{n} rules found")), "{out}");

    let prom = deploy("prometheus");
    let out = promtool(&["check", "rules", "pixgate-alerts.yml"], &prom);
    assert!(out.contains("8 rules found"), "{out}");
    for alert in [
        "PixgateRetentionBreached",
        "PixgateHighErrorRate",
        "PixgateTransformQueueSaturated",
        "PixgateSharedBreakerOpen",
        "PixgateSharedErrors",
    ] {
        assert!(alerts.contains(&format!("alert: {alert}")));
    }
    let out = promtool(&["test", "rules", "pixgate-alerts.test.yml"], &prom);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The configs deploy/ ships load: the container's demo, the compose nodes' and the Kubernetes
/// ConfigMap's (its admin-token placeholder replaced as the init container does).
#[test]
fn deploy_configs_load() {
    let bin = env!("CARGO_BIN_EXE_pixgate");
    let dir = tempfile::tempdir().unwrap();
    let cm = std::fs::read_to_string(deploy("k8s/configmap.yaml")).unwrap();
    let body: String = cm
        .split_once("pixgate.yaml: |\n")
        .expect("configmap.yaml holds pixgate.yaml")
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let k8s = dir.path().join("k8s.yaml");
    std::fs::write(
        &k8s,
        body.replace("@ADMIN_TOKEN@", "0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    for file in [
        deploy("docker/demo.yaml"),
        deploy("compose/pixgate.yaml"),
        k8s,
    ] {
        let out = Command::new(bin)
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
