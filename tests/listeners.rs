//! The listeners against a real pixgate (issue 17): the graceful-upgrade socket lives in a
//! directory only pixgate's user can write.

mod common;

use common::{Pixgate, Route, TestOrigin};
use pixgate::config::{Config, Dur};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_default_upgrade_socket_lives_in_a_private_runtime_directory() {
    let default = pixgate::upgrade::default_path(&pixgate::upgrade::Env::current());
    assert_ne!(default.parent(), Some(Path::new("/tmp")), "{default:?}");
    assert_eq!(Config::default().server.upgrade_sock, None);

    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let runtime = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.origin.url = format!("http://{}", origin.addr);
    cfg.server.grace_period = Dur::secs(0);
    let px = Pixgate::launch(cfg, &[("XDG_RUNTIME_DIR", runtime.path())], None);
    let dir = runtime.path().join("pixgate");
    let meta = std::fs::symlink_metadata(&dir).expect("$XDG_RUNTIME_DIR/pixgate was not created");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let r = common::get(&px.url("/page.html"), None).await;
    assert_eq!(r.status(), 200);
}

#[test]
fn an_upgrade_socket_in_a_directory_others_can_write_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let mut socks = vec![open.join("upgrade.sock")];
    // The old default, where /tmp is world-writable (as it nearly always is).
    let tmp_mode = std::fs::metadata("/tmp").map_or(0, |m| m.permissions().mode());
    if tmp_mode & 0o002 != 0 {
        socks.push("/tmp/pixgate_upgrade.sock".into());
    }
    for sock in socks {
        let cfg = tmp.path().join("pixgate.yaml");
        let yaml = format!(
            "listen: 127.0.0.1:{}\norigin:\n  url: http://127.0.0.1:9\nserver:\n  upgrade_sock: {}\n",
            common::free_port(),
            sock.display()
        );
        std::fs::write(&cfg, yaml).expect("config");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
            .arg("--config")
            .arg(&cfg)
            .env("PIXGATE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let t = Instant::now();
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pixgate started with the upgrade socket at {}",
                    sock.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(!status.success(), "{}: {err}", sock.display());
        assert!(
            err.contains("server.upgrade_sock") && err.contains("writable"),
            "{}: {err}",
            sock.display()
        );
    }
}
