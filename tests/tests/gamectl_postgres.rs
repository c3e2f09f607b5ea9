//! `gamectl up --database postgres`: every relational role on its own database of the
//! PostgreSQL server named by `DATABASE_URL` (created when missing, named with the
//! system's id), none on SQLite; the scenario runs through the gateway as on SQLite.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use e2e::up::{self, RELATIONAL, gamectl, psql};
const PASSWORD: &str = "correct horse battery";

/// A base port whose service ports, those of their second replicas (+0..=18) and NATS
/// port (+100) are free now.
fn pick_base_port() -> u16 {
    let free = |p: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).is_ok();
    for _ in 0..200 {
        let base = 20_000 + (uuid::Uuid::new_v4().as_u128() % 10_000) as u16;
        if (0..=18).chain([100]).all(|o| free(base + o)) {
            return base;
        }
    }
    panic!("no free base port");
}

/// `gamectl up` and what it printed; stopped (and its databases dropped) when dropped.
struct Up {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    data_dir: tempfile::TempDir,
    prefix: String,
}

impl Up {
    fn ctl(&self, args: &[&str]) -> std::process::Output {
        gamectl(self.data_dir.path()).args(args).stdin(Stdio::null()).output().expect("gamectl runs")
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let out = self.ctl(&[&["--json"], args].concat());
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        up::stop(&mut self.child);
        up::drop_databases(&self.prefix);
    }
}

#[tokio::test]
async fn gamectl_up_database_postgres_puts_every_relational_role_on_its_own_database() {
    let prefix = format!("gt{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut child = gamectl(data_dir.path())
        .args(["up", "--base-port", &pick_base_port().to_string()])
        .args(["--database", "postgres", "--database-prefix", &prefix])
        .env("DATABASE_URL", store_adapter::testing::postgres_server())
        // Two replicas of each role on the machine's PostgreSQL, which other tests share.
        .env("DATABASE_POOL_SIZE", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gamectl up starts");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let lines = child.stdout.take().expect("stdout");
    let into = stdout.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
    let up = Up { child, stdout, data_dir, prefix: prefix.clone() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up.stdout.lock().unwrap().iter().any(|l| l == "ready: all services SERVING") {
        assert!(Instant::now() < deadline, "not ready in 60 s: {:?}", up.stdout.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each relational role on its own database, named with the system's id, announced.
    let printed = up.stdout.lock().unwrap().clone();
    let id = std::fs::read_to_string(up.data_dir.path().join("system-id")).expect("system-id").trim().to_owned();
    for role in RELATIONAL {
        let db = format!("{prefix}_{id}_{role}");
        assert!(
            printed.iter().any(|l| l.starts_with(&format!("{role} database: postgres://")) && l.ends_with(&db)),
            "{role}'s database announced: {printed:?}"
        );
        assert_eq!(psql(&format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")), "1", "{db} exists");
    }
    let sqlite: Vec<_> = std::fs::read_dir(up.data_dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db"))
        .collect();
    assert_eq!(sqlite, Vec::<String>::new(), "no role keeps its data in SQLite");

    // The scenario's first steps through the gateway: a player registers, achieves a
    // mission, and its reward arrives in the wallet (mission, reward and wallet on PostgreSQL).
    let registered = up.ctl(&["register", "pat", "--password", PASSWORD]);
    assert!(registered.status.success(), "{}", String::from_utf8_lossy(&registered.stderr));
    assert!(up.json(&["login", "pat", "--password", PASSWORD]).is_some(), "pat logs in");
    let mission = up.json(&["achieve", "daily-login"]).expect("achieve");
    let mission_id = mission["mission"]["missionId"].as_str().expect("a mission id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = up.json(&["wallet"]).and_then(|w| w["wallet"]["items"].as_array().cloned()).unwrap_or_default();
        if items.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the reward of {mission_id} reaches the wallet: {items:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The mission is in the mission role's own database.
    let mission_db = store_adapter::connection::postgres_database_url(
        &store_adapter::testing::postgres_server(),
        &format!("{prefix}_{id}_mission"),
    );
    let out = Command::new("psql")
        .args([mission_db.as_str(), "-tAc", &format!("SELECT count(*) FROM missions WHERE id = '{mission_id}'")])
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{}", String::from_utf8_lossy(&out.stderr));
    drop(up);
    assert_eq!(up::databases_of(&prefix), Vec::<String>::new(), "dropped");
}
