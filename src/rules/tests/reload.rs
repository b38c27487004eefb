//! Atomic reload, failure handling and the watcher.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::super::{ReloadEvent, Rules};
use super::dir_with;

const ONE: &str = "rules:\n  - name: one\n    paths: [\"/a/**\"]\n";
const TWO: &str = "rules:\n  - name: two\n    paths: [\"/a/b/**\"]\n";
const BAD: &str = "rules:\n  - name: bad\n    quality: { webp: 0 }\n";

#[test]
fn load_is_fatal_on_errors() {
    let dir = dir_with(&[("a.yaml", BAD)]);
    let err = Rules::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("rules[0].quality.webp"), "{err}");
}

#[test]
fn reload_success_swaps() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Rules::load(dir.path()).unwrap();
    assert_eq!(rules.dir(), dir.path());
    assert_eq!(rules.current().len(), 1);
    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();
    assert_eq!(rules.reload().unwrap(), 2);
    let set = rules.current();
    assert_eq!(set.len(), 2);
    assert_eq!(set.find("h", "/a/b/c", None).map(|r| r.id()), Some("two"));
    assert_eq!(rules.reload_errors(), 0);
}

#[test]
fn reload_failure_keeps_old_set_and_counts() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Rules::load(dir.path()).unwrap();
    let before = rules.current();
    std::fs::write(dir.path().join("b.yaml"), BAD).unwrap();
    let err = rules.reload().unwrap_err();
    assert!(err.to_string().contains("b.yaml:3"), "{err}");
    assert_eq!(rules.reload_errors(), 1);
    assert!(
        Arc::ptr_eq(&before, &rules.current()),
        "old set must stay live"
    );
    assert!(rules.reload().is_err());
    assert_eq!(rules.reload_errors(), 2);
    // Fixing the file recovers; the counter is cumulative.
    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();
    assert_eq!(rules.reload().unwrap(), 2);
    assert_eq!(rules.reload_errors(), 2);
}

#[test]
fn arc_taken_before_reload_is_unchanged() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Rules::load(dir.path()).unwrap();
    let old = rules.current();
    let old_fp = old.fingerprint();
    std::fs::write(dir.path().join("a.yaml"), TWO).unwrap();
    assert_eq!(rules.reload().unwrap(), 1);
    let new = rules.current();
    assert!(!Arc::ptr_eq(&old, &new));
    assert_ne!(new.fingerprint(), old_fp);
    // The old snapshot still answers exactly as before.
    assert_eq!(old.fingerprint(), old_fp);
    assert_eq!(old.find("h", "/a/x", None).map(|r| r.id()), Some("one"));
    assert_eq!(new.find("h", "/a/x", None).map(|r| r.id()), None);
    drop(rules);
    assert_eq!(old.rules()[0].id(), "one");
}

/// Waits (at most 5s overall) for an event satisfying `pred`, skipping others
/// (e.g. reloads caused by another test's SIGHUP).
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<ReloadEvent>,
    pred: impl Fn(&ReloadEvent) -> bool,
) -> ReloadEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return ev,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("watcher stopped"),
            Err(_) => panic!("no matching reload event within 5s"),
        }
    }
}

fn spawn_watch(rules: &Arc<Rules>, poll: Duration) -> mpsc::UnboundedReceiver<ReloadEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = Arc::clone(rules).watch(poll, move |ev| {
        let _ = tx.send(ev);
    });
    tokio::spawn(task);
    rx
}

#[tokio::test]
async fn watch_picks_up_file_changes() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Arc::new(Rules::load(dir.path()).unwrap());
    let mut rx = spawn_watch(&rules, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(120)).await;

    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();
    let ev = wait_for(&mut rx, |e| *e == ReloadEvent::Reloaded { rules: 2 }).await;
    assert_eq!(ev, ReloadEvent::Reloaded { rules: 2 });
    assert_eq!(rules.current().len(), 2);

    // A broken edit is reported and the previous set stays.
    std::fs::write(dir.path().join("b.yaml"), BAD).unwrap();
    let ev = wait_for(&mut rx, |e| matches!(e, ReloadEvent::Failed { .. })).await;
    match ev {
        ReloadEvent::Failed { errors } => assert!(errors.contains("b.yaml:3"), "{errors}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(rules.current().len(), 2);
    assert!(rules.reload_errors() >= 1);

    // Deleting the file is a change too.
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    wait_for(&mut rx, |e| *e == ReloadEvent::Reloaded { rules: 1 }).await;
    assert_eq!(rules.current().len(), 1);
}

#[tokio::test]
async fn watch_ignores_non_rule_files() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Arc::new(Rules::load(dir.path()).unwrap());
    let mut rx = spawn_watch(&rules, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(60)).await;
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Only SIGHUP-triggered reloads (from the other test) may have happened.
    while let Ok(ev) = rx.try_recv() {
        assert_eq!(ev, ReloadEvent::Reloaded { rules: 1 });
    }
    std::fs::write(dir.path().join("c.yml"), TWO).unwrap();
    wait_for(&mut rx, |e| *e == ReloadEvent::Reloaded { rules: 2 }).await;
}

#[tokio::test]
async fn watch_reloads_on_sighup() {
    use tokio::signal::unix::{signal, SignalKind};
    // Installing our own listener first makes SIGHUP non-fatal for the test
    // process even before the watcher registers.
    let _keep = signal(SignalKind::hangup()).unwrap();
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Arc::new(Rules::load(dir.path()).unwrap());
    // A one-hour poll: only the signal can trigger this reload.
    let mut rx = spawn_watch(&rules, Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let wait = tokio::time::sleep(Duration::from_millis(250));
        tokio::select! {
            ev = rx.recv() => {
                if ev == Some(ReloadEvent::Reloaded { rules: 2 }) {
                    break;
                }
            }
            _ = wait => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload after SIGHUP within 5s"
        );
    }
    assert_eq!(rules.current().len(), 2);
}

#[tokio::test]
async fn zero_poll_interval_does_not_panic() {
    let dir = dir_with(&[("a.yaml", ONE)]);
    let rules = Arc::new(Rules::load(dir.path()).unwrap());
    let mut rx = spawn_watch(&rules, Duration::ZERO);
    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();
    wait_for(&mut rx, |e| *e == ReloadEvent::Reloaded { rules: 2 }).await;
}
