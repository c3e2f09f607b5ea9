//! `gamectl up` checks the nats-server it is about to start (`NATS_SERVER_BIN`, else the
//! PATH's): it says which one it found, path and version, and refuses one older than the
//! supported minimum (`config/nats-version`) before it starts or makes anything, naming
//! the version found, the minimum and the install line of the pinned release.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use e2e::up::{gamectl, pick_base_port, stop};
use nats_adapter::server_version::{install_line, minimum};

/// A fake `nats-server` in `dir`: `--version` prints `version`; started any other way it
/// leaves `dir/started` (its arguments) and sleeps.
fn fake_nats_server(dir: &Path, version: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("nats-server");
    let started = dir.join("started");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{version}'; exit 0; fi\necho \"$@\" > '{}'\nexec sleep 60\n",
        started.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The test's PATH with `dir` first.
fn path_with(dir: &Path) -> OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest))).unwrap()
}

/// What a refused `up` must show: it failed, named the version, the path, the minimum and
/// the fix, started no nats-server and made no data dir.
fn assert_refused(out: &Output, fake: &Path, data_dir: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "gamectl up must fail\n{stdout}\n{stderr}");
    for needle in [
        "nats-server 2.9.10".to_owned(),
        fake.display().to_string(),
        format!("supported minimum {}", minimum()),
        install_line(),
        "NATS_SERVER_BIN=".to_owned(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} not in what up said:\n{stderr}");
    }
    let dir = fake.parent().unwrap();
    assert!(!dir.join("started").exists(), "the old nats-server was started\n{stdout}\n{stderr}");
    assert!(!data_dir.exists(), "up made its data dir before refusing\n{stdout}");
    assert!(!stdout.contains("system:"), "up went on after the check:\n{stdout}");
}

#[test]
fn gamectl_up_refuses_a_nats_server_older_than_the_minimum_naming_it_and_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let fake = fake_nats_server(&bin, "nats-server: v2.9.10");
    let data_dir = tmp.path().join("data");

    // Debian's 2.9.10 first on the PATH, no NATS_SERVER_BIN.
    let base = pick_base_port();
    let out = gamectl(&data_dir)
        .args(["up", "--base-port", &base.to_string()])
        .env("PATH", path_with(&bin))
        .env_remove("NATS_SERVER_BIN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_refused(&out, &fake, &data_dir);

    // The same one named by NATS_SERVER_BIN, whatever the PATH holds.
    let base = pick_base_port();
    let out = gamectl(&data_dir)
        .args(["up", "--base-port", &base.to_string()])
        .env("NATS_SERVER_BIN", &fake)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_refused(&out, &fake, &data_dir);
}

#[test]
fn gamectl_up_says_which_nats_server_it_starts_and_accepts_the_minimum() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let fake = fake_nats_server(&bin, &format!("nats-server: v{}", minimum()));
    let data_dir = tmp.path().join("data");
    let base = pick_base_port();
    let mut child = gamectl(&data_dir)
        .args(["up", "--base-port", &base.to_string()])
        .env("NATS_SERVER_BIN", &fake)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let expected = format!("nats-server: {} (version {})", fake.display(), minimum());
    let mut said = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        let found = line == expected;
        said.push(line);
        if found {
            break;
        }
    }
    let started = bin.join("started");
    for _ in 0..200 {
        if started.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    assert!(said.contains(&expected), "{expected:?} not said:\n{}", said.join("\n"));
    let args = std::fs::read_to_string(&started).unwrap_or_default();
    assert!(args.contains("-js"), "the nats-server at the minimum was not started as up's server: {args:?}");
}
