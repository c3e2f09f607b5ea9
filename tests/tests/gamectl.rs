//! `gamectl` as an operator uses it: `gamectl up` runs the whole system (nats-server and
//! every service as supervised children), the client commands drive the scenario through
//! the gateway, a crashed or stuck service is restarted by the supervisor and the event
//! flow carries on, the bus admits each service only to its own subjects and no one
//! without credentials, and SIGTERM stops everything, leaving no process behind.
//!
//! Every test runs the real binary in its own data directory with its own ports and reads
//! what it prints: stdout (the lines meant for people and tests: `ready: all services
//! SERVING`, `<name> exited (...); restarting`, `stopping`, `stopped`) and stderr (the
//! children's logs), both kept in memory and shown when a test fails.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead as _, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::up::gamectl;
use serde_json::{Value, json};

/// How long `up` may take to report every service SERVING.
const READY: Duration = Duration::from_secs(45);
/// How long an event may take to go from one end of the flow to the other.
const FLOW: Duration = Duration::from_secs(30);
/// How long one client command may take.
const COMMAND: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery";

/// The port of each service relative to the base port (`gamectl/src/services.rs`).
const GATEWAY: u16 = 0;
const REWARD: u16 = 2;
const WALLET: u16 = 3;
const NATS: u16 = 100;
const SERVICE_OFFSETS: std::ops::RangeInclusive<u16> = 0..=8;

/// Lines read from one of `gamectl up`'s outputs.
type Lines = Arc<Mutex<Vec<String>>>;

fn read_lines(from: impl Read + Send + 'static, into: Lines) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().expect("lines").push(line);
        }
    })
}

/// A base port whose service ports and nats port are free now, below the ephemeral range
/// (so that ports the OS hands out to other tests do not collide with it), random so that
/// tests running at the same time do not pick the same.
fn pick_base_port() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let free = |p: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).is_ok();
    for _ in 0..200 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(uuid::Uuid::new_v4().as_u128());
        let base = 20_000 + u16::try_from(h.finish() % 10_000).expect("below 10000");
        if SERVICE_OFFSETS.chain([NATS]).all(|o| free(base + o)) {
            return base;
        }
    }
    panic!("no free base port found");
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).is_ok()
}

fn signal(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

fn signal_quietly(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Every live process on the machine: its pid, parent and state (from `/proc/<pid>/stat`).
fn processes() -> Vec<(u32, u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = rest.next()?.chars().next()?;
            let ppid = rest.next()?.parse().ok()?;
            Some((pid, ppid, state))
        })
        .collect()
}

/// Whether a process's command line or environment contains `needle`.
fn mentions(pid: u32, needle: &[u8]) -> bool {
    ["cmdline", "environ"]
        .iter()
        .any(|f| std::fs::read(format!("/proc/{pid}/{f}")).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

/// `gamectl up` running in its own data directory, stopped (SIGTERM, then SIGKILL for it
/// and everything it started) when dropped.
struct Up {
    child: Option<Child>,
    pid: u32,
    base: u16,
    /// Canonical, as gamectl writes it into its children's settings.
    data_dir: PathBuf,
    stdout: Lines,
    stderr: Lines,
    _dir: tempfile::TempDir,
}

impl Up {
    /// Starts `gamectl up` with `args` (and `env`), on a free base port (another one when
    /// a port was taken between choosing and starting), and waits until it is ready.
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        for attempt in 1..=3 {
            let up = Self::spawn(args, env);
            match up.ready().await {
                Ok(()) => return up,
                Err(why) if attempt < 3 && why.contains("is not free") => {
                    eprintln!("base port {} collided ({why}); trying another", up.base);
                }
                Err(why) => panic!("gamectl up did not become ready: {why}\n{}", up.transcript()),
            }
        }
        unreachable!()
    }

    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().canonicalize().expect("canonical data dir");
        let base = pick_base_port();
        let mut child = gamectl(&data_dir)
            .arg("up")
            .args(["--base-port", &base.to_string()])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gamectl up");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        read_lines(child.stdout.take().expect("stdout"), stdout.clone());
        read_lines(child.stderr.take().expect("stderr"), stderr.clone());
        Self { pid: child.id(), child: Some(child), base, data_dir, stdout, stderr, _dir: dir }
    }

    /// Waits for `ready: all services SERVING`; the error says why it did not come.
    async fn ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        loop {
            if self.find(0, |l| l == "ready: all services SERVING").is_some() {
                return Ok(());
            }
            if !self.running() {
                // Let the readers take the last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let err = self.stderr.lock().expect("lines").join("\n");
                return Err(format!("gamectl up exited: {err}"));
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {} s", READY.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn running(&self) -> bool {
        // A zombie (exited, not yet reaped by us) is not running.
        processes().iter().any(|&(pid, _, state)| pid == self.pid && state != 'Z')
    }

    /// The index of the first stdout line from `from` on that satisfies `pred`.
    fn find(&self, from: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
        let lines = self.stdout.lock().expect("lines");
        lines.iter().enumerate().skip(from).find(|(_, l)| pred(l)).map(|(i, _)| i)
    }

    fn stdout_len(&self) -> usize {
        self.stdout.lock().expect("lines").len()
    }

    /// Waits for a stdout line from `from` on that satisfies `pred`; returns its index.
    async fn line(&self, from: usize, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.find(from, &pred) {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "gamectl up did not print {what} within {} s\n{}",
                timeout.as_secs(),
                self.transcript()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What gamectl printed: all of stdout, the end of stderr.
    fn transcript(&self) -> String {
        let out = self.stdout.lock().expect("lines").join("\n");
        let err = self.stderr.lock().expect("lines");
        let tail = err[err.len().saturating_sub(80)..].join("\n");
        format!("--- gamectl up stdout ---\n{out}\n--- gamectl up stderr (last 80 lines) ---\n{tail}\n---")
    }

    /// The child `gamectl up` runs on `base + offset`: its own child whose `LISTEN_ADDR`
    /// is that port.
    fn child_on(&self, offset: u16) -> u32 {
        let needle = format!("LISTEN_ADDR=127.0.0.1:{}\0", self.base + offset);
        let found: Vec<u32> = processes()
            .into_iter()
            .filter(|&(pid, ppid, state)| ppid == self.pid && state != 'Z' && mentions(pid, needle.as_bytes()))
            .map(|(pid, _, _)| pid)
            .collect();
        assert_eq!(found.len(), 1, "one child listening on {}: {found:?}", self.base + offset);
        found[0]
    }

    /// Every process started by (or for) this `up`, gamectl itself included: they all
    /// carry the data directory in their command line or environment.
    fn tree(&self) -> Vec<u32> {
        let dir = self.data_dir.display().to_string();
        let me = std::process::id();
        processes()
            .into_iter()
            .filter(|&(pid, _, state)| pid != me && state != 'Z' && mentions(pid, dir.as_bytes()))
            .map(|(pid, _, _)| pid)
            .collect()
    }

    /// SIGTERM; waits for gamectl to exit and returns how it did.
    async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal("TERM", self.pid);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gamectl up did not exit within 40 s of SIGTERM\n{}", self.transcript());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `gamectl --data-dir <data-dir> <args>`.
    async fn ctl(&self, args: &[&str]) -> std::process::Output {
        let cmd = tokio::process::Command::from(gamectl(&self.data_dir))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(COMMAND, cmd).await {
            Ok(out) => out.expect("run gamectl"),
            Err(_) => panic!("gamectl {} took over {} s\n{}", args.join(" "), COMMAND.as_secs(), self.transcript()),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args).await;
        assert!(
            out.status.success(),
            "gamectl {} failed ({}): {}{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.transcript()
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command with `--json` that must succeed; returns what it printed.
    async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("gamectl {}: not JSON ({e}): {text}", args.join(" ")))
    }

    /// A JSON command, when it succeeds (services may be restarting).
    async fn try_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all).await;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    async fn register_and_login(&self, customer: &str) {
        let registered = self.ok(&["register", customer, "--password", PASSWORD]).await;
        assert!(registered.contains(&format!("registered {customer}")), "{registered}");
        let login = self.json(&["login", customer, "--password", PASSWORD]).await;
        assert_eq!(login["customerId"], customer, "{login}");
        let who = self.json(&["whoami"]).await;
        assert_eq!(who["customerId"], customer, "{who}");
    }

    /// `achieve <code>` as the logged-in customer; returns the mission id.
    async fn achieve(&self, code: &str) -> String {
        let m = self.json(&["achieve", code]).await;
        let id = m["mission"]["missionId"].as_str().unwrap_or_default().to_owned();
        assert!(!id.is_empty(), "achieve {code}: {m}");
        id
    }

    /// The logged-in customer's wallet items (retried while the wallet restarts).
    async fn wallet_items(&self) -> Option<Vec<Value>> {
        let w = self.try_json(&["wallet"]).await?;
        w["wallet"]["items"].as_array().cloned().or(Some(Vec::new()))
    }

    /// Waits until the wallet holds exactly the rewards of `missions`, each ISSUED once.
    async fn wallet_issued(&self, missions: &[String]) -> Vec<Value> {
        let want: BTreeSet<&str> = missions.iter().map(String::as_str).collect();
        poll(FLOW, &format!("the wallet shows {} ISSUED items", missions.len()), self, || async {
            let items = self.wallet_items().await?;
            let got: BTreeSet<&str> = items.iter().filter_map(|i| i["missionId"].as_str()).collect();
            let all_issued = items.iter().all(|i| i["status"] == "WALLET_ITEM_STATUS_ISSUED");
            (got == want && items.len() == missions.len() && all_issued).then_some(items)
        })
        .await
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.transcript());
        }
        let Some(mut child) = self.child.take() else { return };
        // A test that failed midway may have left a child stopped.
        let tree = self.tree();
        for &pid in &tree {
            signal_quietly("CONT", pid);
        }
        signal_quietly("TERM", self.pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for pid in self.tree().into_iter().chain(tree) {
            signal_quietly("KILL", pid);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Polls `check` every 200 ms (each poll runs commands: no need to hurry) until it returns
/// `Some`, or fails after `timeout` showing what `up` printed.
async fn poll<T, F, Fut>(timeout: Duration, what: &str, up: &Up, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {} s waiting for: {what}\n{}",
            timeout.as_secs(),
            up.transcript()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `<name> ...; restarting`, printed by the supervisor.
fn restarting(name: &str) -> impl Fn(&str) -> bool + '_ {
    move |l| l.starts_with(&format!("{name} ")) && l.ends_with("; restarting")
}

#[tokio::test]
async fn gamectl_up_runs_the_whole_system_and_the_cli_drives_the_scenario() {
    // nats-server and the nine roles, each `gamectl serve <role>`.
    the_whole_scenario(&[], 10).await;
}

#[tokio::test]
async fn gamectl_up_all_in_one_runs_every_role_in_one_process_and_the_cli_drives_the_scenario() {
    // nats-server and one `gamectl serve --roles ...` process.
    let up = the_whole_scenario(&["--all-in-one"], 2).await;
    assert!(
        up.find(0, |l| l.starts_with("all-in-one ") && l.ends_with("; restarting")).is_none(),
        "{}",
        up.transcript()
    );
}

/// gateway -> achieve -> wallet -> exchange -> use -> e-mail, my page; then a clean stop.
async fn the_whole_scenario(args: &[&str], children: usize) -> Up {
    let started = Instant::now();
    let mut up = Up::start(args, &[]).await;
    let gateway = format!("http://127.0.0.1:{}", up.base + GATEWAY);
    assert!(up.find(0, |l| l.starts_with("gateway") && l.ends_with(&gateway)).is_some(), "{}", up.transcript());

    let endpoints: Value =
        serde_json::from_str(&std::fs::read_to_string(up.data_dir.join("endpoints.json")).expect("endpoints.json"))
            .expect("endpoints.json is JSON");
    assert_eq!(endpoints["gateway"], gateway.as_str(), "{endpoints}");
    assert_eq!(endpoints["nats"], format!("nats://127.0.0.1:{}", up.base + NATS), "{endpoints}");
    let names: BTreeSet<&str> =
        endpoints["services"].as_object().expect("services").keys().map(String::as_str).collect();
    let every = ["auth", "gateway", "gift", "mission", "mypage", "notification", "ops", "reward", "wallet"];
    assert_eq!(names, BTreeSet::from(every), "{endpoints}");

    up.register_and_login("alice").await;
    let mission = up.achieve("daily-login").await;
    // The catalog shows the rules and, logged in, that today's login is used up.
    let catalog = up.json(&["catalog"]).await;
    let daily = |v: &Value, key: &str| {
        v[key].as_array().and_then(|a| a.iter().find(|m| m["missionCode"] == "daily-login")).cloned()
    };
    assert_eq!(daily(&catalog, "missions").map(|m| m["repeat"].clone()), Some(json!("REPEAT_DAILY")), "{catalog}");
    let standing = daily(&catalog["availability"], "missions").unwrap_or_default();
    assert_eq!(
        (standing["available"].clone(), standing["remainingInPeriod"].clone()),
        (json!(false), json!(0)),
        "{catalog}"
    );
    let again = up.ctl(&["achieve", "daily-login"]).await;
    assert_eq!(again.status.code(), Some(1), "a second login today is refused");
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("FAILED_PRECONDITION: daily-login was already achieved today; next from "), "{said}");
    let items = up.wallet_issued(std::slice::from_ref(&mission)).await;
    let reward = items[0]["rewardId"].as_str().expect("reward id").to_owned();
    assert_eq!(items[0]["points"], 10, "{items:?}");

    let exchanged = up.json(&["exchange", &reward, "coffee"]).await;
    let gift = exchanged["giftId"].as_str().unwrap_or_default().to_owned();
    assert!(!gift.is_empty(), "{exchanged}");
    assert_eq!(exchanged["item"]["status"], "WALLET_ITEM_STATUS_EXCHANGED", "{exchanged}");

    let used = up.json(&["use-gift", &gift]).await;
    assert_eq!(used["gift"]["status"], "GIFT_STATUS_USED", "{used}");
    assert_eq!(used["gift"]["giftCode"], "coffee", "{used}");

    // One e-mail for the gift issued, one for the gift used (text output: a table).
    let listed = poll(FLOW, "two notifications", &up, || async {
        let n = up.try_json(&["notifications"]).await?;
        (n["notifications"].as_array()?.len() == 2).then_some(n)
    })
    .await;
    assert!(listed["notifications"].as_array().expect("list").iter().all(|n| n["customerId"] == "alice"), "{listed}");
    let text = up.ok(&["notifications"]).await;
    assert!(text.contains("Your gift: Coffee") && text.contains("You used your gift: Coffee"), "{text}");

    let page = poll(FLOW, "my page shows the gift USED", &up, || async {
        let p = up.try_json(&["mypage"]).await?;
        let entries = p["page"]["entries"].as_array()?;
        (entries.len() == 1 && entries[0]["giftId"] == gift.as_str() && entries[0]["giftStatus"] == "GIFT_STATUS_USED")
            .then_some(p)
    })
    .await;
    assert_eq!(page["page"]["entries"][0]["missionId"], mission.as_str(), "{page}");
    assert_eq!(page["page"]["entries"][0]["rewardStatus"], "REWARD_STATUS_EXCHANGED", "{page}");

    let running = processes().into_iter().filter(|&(_, ppid, s)| ppid == up.pid && s != 'Z').count();
    assert_eq!(running, children, "gamectl's children\n{}", up.transcript());
    let tree = up.tree();
    assert!(tree.len() > children, "gamectl and its children: {tree:?}");

    let from = up.stdout_len();
    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "gamectl up exited with {status}\n{}", up.transcript());
    let stopping = up.line(from, "stopping", Duration::from_secs(5), |l| l == "stopping").await;
    up.line(stopping, "stopped", Duration::from_secs(5), |l| l == "stopped").await;
    assert!(
        up.find(from, |l| l.contains("killing it")).is_none(),
        "every child stopped on SIGTERM\n{}",
        up.transcript()
    );

    let left: Vec<u32> = tree.iter().copied().filter(|pid| up.tree().contains(pid)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(up.tree().is_empty(), "processes left behind: {:?}", up.tree());
    assert!(!accepts(up.base + GATEWAY), "the gateway still accepts connections");
    for offset in SERVICE_OFFSETS.chain([NATS]) {
        assert!(!accepts(up.base + offset), "port {} still accepts connections", up.base + offset);
    }
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    up
}

#[tokio::test]
async fn a_crashed_service_is_restarted_and_the_flow_continues() {
    let started = Instant::now();
    let mut up = Up::start(&[], &[]).await;
    up.register_and_login("bob").await;
    let before = up.achieve("daily-login").await;
    up.wallet_issued(std::slice::from_ref(&before)).await;

    let wallet = up.child_on(WALLET);
    let from = up.stdout_len();
    signal("KILL", wallet);
    let restart = up.line(from, "wallet exited (...); restarting", Duration::from_secs(10), restarting("wallet")).await;
    let said = up.stdout.lock().expect("lines")[restart].clone();
    assert_eq!(said, "wallet exited (signal 9); restarting");
    up.line(restart, "wallet is SERVING", Duration::from_secs(30), |l| l == "wallet is SERVING").await;
    let again = up.child_on(WALLET);
    assert_ne!(again, wallet, "a new wallet process");

    let after = up.achieve("tutorial-complete").await;
    let items = up.wallet_issued(&[before, after.clone()]).await;
    let points: i64 = items.iter().filter_map(|i| i["points"].as_i64()).sum();
    assert_eq!(points, 30, "daily-login 10 + tutorial-complete 20: {items:?}");
    // Only the killed child was restarted.
    let restarts: Vec<String> =
        up.stdout.lock().expect("lines").iter().filter(|l| l.ends_with("; restarting")).cloned().collect();
    assert_eq!(restarts, ["wallet exited (signal 9); restarting"]);

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "gamectl up exited with {status}\n{}", up.transcript());
    assert!(up.tree().is_empty(), "processes left behind: {:?}", up.tree());
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_service_stuck_not_serving_is_restarted_by_the_supervisor() {
    let started = Instant::now();
    // A frozen consumer holds the events JetStream delivered to it until their ack wait
    // runs out; 5 s instead of 30 s keeps the test short (the children inherit it).
    let args = ["--health-restart-after", "2", "--stop-timeout", "3"];
    // A catalog (configuration, as a studio would write it) in which the player reports
    // every mission and may log in any number of times: this test is about the flow, not
    // the rules.
    let catalog = tempfile::NamedTempFile::new().expect("catalog file");
    let mission = |code: &str, points: u32, repeat: &str| {
        format!(
            "[[missions]]\ncode = \"{code}\"\ntitle = \"{code}\"\npoints = {points}\nrepeat = \"{repeat}\"\nreported_by = \"player\"\n"
        )
    };
    let text = [
        mission("daily-login", 10, "unlimited"),
        mission("tutorial-complete", 20, "once"),
        mission("first-win", 50, "once"),
        mission("weekly-streak", 100, "once"),
    ]
    .concat();
    std::fs::write(catalog.path(), text).expect("write the catalog");
    let catalog_path = catalog.path().display().to_string();
    let mut up = Up::start(&args, &[("CONSUMER_ACK_WAIT_SECONDS", "5"), ("MISSION_CATALOG", &catalog_path)]).await;
    up.register_and_login("carol").await;
    let mut missions = vec![up.achieve("daily-login").await];
    up.wallet_issued(&missions).await;

    // SIGSTOP: the process is there, its port accepts connections, nothing answers.
    let reward = up.child_on(REWARD);
    let from = up.stdout_len();
    signal("STOP", reward);
    let frozen = Instant::now();
    // Achievements while the reward service is stuck: the mission service takes them.
    for code in ["tutorial-complete", "first-win", "weekly-streak"] {
        missions.push(up.achieve(code).await);
    }
    let restart = up.line(from, "reward ...; restarting", Duration::from_secs(20), restarting("reward")).await;
    let said = up.stdout.lock().expect("lines")[restart].clone();
    assert_eq!(said, "reward not SERVING for 2 s; restarting");
    assert!(frozen.elapsed() >= Duration::from_secs(2), "restarted after {:?}", frozen.elapsed());
    up.line(restart, "reward is SERVING", Duration::from_secs(30), |l| l == "reward is SERVING").await;
    let again = up.child_on(REWARD);
    assert_ne!(again, reward, "a new reward process");
    assert!(!processes().iter().any(|&(pid, _, s)| pid == reward && s != 'Z'), "the stuck process is gone");

    // And one after: everything is rewarded, once.
    missions.push(up.achieve("daily-login").await);
    let items = up.wallet_issued(&missions).await;
    let points: i64 = items.iter().filter_map(|i| i["points"].as_i64()).sum();
    assert_eq!(points, 10 + 20 + 50 + 100 + 10, "{items:?}");
    let rewards = up.json(&["rewards"]).await;
    let rewards = rewards["rewards"].as_array().cloned().unwrap_or_default();
    let rewarded: HashSet<&str> = rewards.iter().filter_map(|r| r["missionId"].as_str()).collect();
    assert_eq!(rewards.len(), missions.len(), "one reward per mission: {rewards:?}");
    assert_eq!(rewarded, missions.iter().map(String::as_str).collect(), "{rewards:?}");
    // Still once each after an ack wait more, when a duplicate delivery would have landed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(up.wallet_items().await.map(|i| i.len()), Some(missions.len()), "no reward twice");

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "gamectl up exited with {status}\n{}", up.transcript());
    assert!(up.tree().is_empty(), "processes left behind: {:?}", up.tree());
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn gamectl_up_secures_the_bus_with_per_service_keys_kept_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut up = Up::start(&[], &[]).await;
    let nats = format!("nats://127.0.0.1:{}", up.base + NATS);

    // Every key readable by its owner only; the server's configuration holds public keys.
    let auth = up.data_dir.join("nats-auth");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&auth), 0o700);
    let conf = std::fs::read_to_string(auth.join("nats-server.conf")).expect("server configuration");
    assert_eq!(mode(&auth.join("nats-server.conf")), 0o600);
    for user in ["operator", "mission", "reward", "wallet", "gift", "notification", "mypage"] {
        let seed_file = auth.join(format!("{user}.nk"));
        assert_eq!(mode(&seed_file), 0o600, "{user}.nk");
        let seed = std::fs::read_to_string(&seed_file).expect("seed");
        assert!(seed.starts_with("SU") && !conf.contains(seed.trim()), "{user}'s seed stays out of the server's file");
    }
    assert!(up.find(0, |l| l.starts_with("nats: authentication on")).is_some(), "{}", up.transcript());

    // No credentials: no connection.
    let anonymous = async_nats::connect(&nats).await.expect_err("an anonymous client was let in");
    assert_eq!(anonymous.kind(), async_nats::ConnectErrorKind::AuthorizationViolation);

    // A customer with one real reward, then 1,000,000 points allocated with the mission
    // service's key: refused by the server, which says so (its log is on our stderr).
    up.register_and_login("mallory").await;
    let mission = up.achieve("daily-login").await;
    up.wallet_issued(std::slice::from_ref(&mission)).await;
    let (client, mut errors) =
        e2e::nats_connect_as(&nats, "mission", Some(&auth.join("mission.nk"))).await.expect("mission's key");
    let (headers, payload) = e2e::events::reward_allocated("mallory", 1_000_000);
    client.publish_with_headers("game.reward.v1.allocated", headers, payload).await.expect("sent");
    client.flush().await.expect("flushed");
    let refused = tokio::time::timeout(Duration::from_secs(5), errors.recv()).await.expect("refused").expect("error");
    assert!(refused.to_string().contains("Permissions Violation for Publish"), "{refused}");
    poll(Duration::from_secs(5), "nats-server logs the violation", &up, || async {
        let stderr = up.stderr.lock().expect("lines");
        stderr.iter().any(|l| l.starts_with("[nats] ") && l.contains("Publish Violation")).then_some(())
    })
    .await;

    // The operator's key may publish it (after the forged one): it arrives, nothing else.
    let (operator, _) =
        e2e::nats_connect_as(&nats, "operator", Some(&auth.join("operator.nk"))).await.expect("the operator's key");
    let (headers, payload) = e2e::events::reward_allocated("mallory", 500);
    let js = async_nats::jetstream::new(operator);
    js.publish_with_headers("game.reward.v1.allocated", headers, payload).await.unwrap().await.expect("stored");
    let items = poll(FLOW, "the operator's allocation in the wallet", &up, || async {
        let items = up.wallet_items().await?;
        (items.len() == 2).then_some(items)
    })
    .await;
    let points: i64 = items.iter().filter_map(|i| i["points"].as_i64()).sum();
    assert_eq!(points, 510, "the mission's 10 and the operator's 500, nothing forged: {items:?}");

    // The operator's commands on the bus find this system's bus and key in the data dir.
    assert_eq!(up.json(&["dlq", "--bus", "list"]).await["deadLetters"], json!([]), "the system's bus, by default");

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "gamectl up exited with {status}\n{}", up.transcript());
}

#[tokio::test]
async fn a_game_server_logged_in_with_its_service_account_reports_first_win_for_a_player_through_the_gateway() {
    let mut up = Up::start(&[], &[]).await;
    let data = up.data_dir.clone();
    // The operator, logged in as the first admin, creates the game server's account.
    let admin_password = std::fs::read_to_string(data.join("admin.password")).expect("admin.password");
    up.ok(&["login", "admin", "--password", admin_password.trim()]).await;
    let created = up.json(&["service-account", "create", "match-server"]).await;
    let secret = created["clientSecret"].as_str().expect("the secret, shown once").to_owned();
    // The game server logs in with it, into its own token file.
    let gs_file = data.join("match-server.token").display().to_string();
    let gs = |args: &[&'static str]| -> Vec<String> {
        ["--token-file", gs_file.as_str()].iter().chain(args).map(|a| (*a).to_owned()).collect()
    };
    let mut login = gs(&["login", "--service-account", "svc-match-server", "--secret"]);
    login.push(secret);
    let login = up.json(&login.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(login["role"], "game_server", "{login}");

    // A player may not say they won; their game server may, for them.
    up.register_and_login("dana").await;
    let denied = up.ctl(&["achieve", "first-win"]).await;
    let said = String::from_utf8_lossy(&denied.stderr);
    assert!(!denied.status.success() && said.contains("PERMISSION_DENIED") && said.contains("first-win"), "{said}");
    let as_gs = gs(&["achieve", "dana", "first-win"]);
    let as_gs: Vec<&str> = as_gs.iter().map(String::as_str).collect();
    let reported = up.json(&as_gs).await;
    let m = &reported["mission"];
    assert_eq!((m["customerId"].as_str(), m["reportedBy"].as_str()), (Some("dana"), Some("svc-match-server")), "{m}");
    assert_eq!(m["slot"], "once#1", "{m}");
    let mission = m["missionId"].as_str().expect("mission id").to_owned();

    // The reward reaches the player's wallet; a second report of a once mission is refused.
    let items = up.wallet_issued(std::slice::from_ref(&mission)).await;
    assert_eq!(items[0]["points"], 50, "{items:?}");
    let again = up.ctl(&as_gs).await;
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && said.contains("FAILED_PRECONDITION"), "{said}");
    let shown = up.json(&["missions"]).await;
    assert_eq!(shown["missions"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown["missions"][0]["reportedBy"], "svc-match-server", "{shown}");

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "{}", up.transcript());
}

/// The permission bits of a file.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn gamectl_up_makes_the_first_admin_and_keeps_every_secret_private_and_an_operator_manages_identity() {
    let mut up = Up::start(&[], &[]).await;
    let data = up.data_dir.clone();
    let password_file = data.join("admin.password");
    let said =
        up.find(0, |l| l.starts_with("first admin: admin, password in ")).map(|i| up.stdout.lock().unwrap()[i].clone());
    assert!(said.as_deref().is_some_and(|l| l.contains(&password_file.display().to_string())), "{}", up.transcript());

    // Nobody can take `admin`: it exists before the gateway opens.
    let taken = up.ctl(&["register", "admin", "--password", PASSWORD]).await;
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("ALREADY_EXISTS"), "{taken:?}");
    let admin_password = std::fs::read_to_string(&password_file).expect("admin.password");
    let login = up.json(&["login", "admin", "--password", admin_password.trim()]).await;
    assert_eq!((login["customerId"].as_str(), login["role"].as_str()), (Some("admin"), Some("admin")), "{login}");

    // Secrets on disk are readable by their owner only.
    let mut private = vec![
        password_file.clone(),
        data.join("secrets/wallet.secret"),
        data.join("secrets/service-accounts.json"),
        data.join("auth.db"),
        data.join("auth.db-wal"),
        data.join("auth.db-shm"),
        data.join("token"),
    ];
    private.extend(std::fs::read_dir(data.join("keys")).expect("keys").map(|e| e.expect("key").path()));
    assert!(private.iter().any(|p| p.extension().is_some_and(|e| e == "pem")), "a signing key");
    for file in &private {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&data.join("keys")), 0o700);
    assert_eq!(mode(&data.join("secrets")), 0o700);
    let accounts = std::fs::read_to_string(data.join("secrets/service-accounts.json")).unwrap();
    let wallet_secret = std::fs::read_to_string(data.join("secrets/wallet.secret")).unwrap();
    assert!(accounts.contains("svc-wallet") && !accounts.contains(wallet_secret.trim()), "hashes, never secrets");

    // Roles: granted and revoked by the admin, audited.
    let bob_token = data.join("bob.token");
    let bob_file = bob_token.display().to_string();
    up.ok(&["register", "bob", "--password", PASSWORD]).await;
    up.ok(&["--token-file", &bob_file, "login", "bob", "--password", PASSWORD]).await;
    let denied = up.ctl(&["--token-file", &bob_file, "role", "grant", "bob", "admin"]).await;
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"), "{denied:?}");
    let denied = up.ctl(&["--json", "--token-file", &bob_file, "dlq", "list"]).await;
    let error: Value = serde_json::from_slice(&denied.stderr).unwrap_or_else(|e| panic!("{e}: {denied:?}"));
    assert_eq!(
        (error["error"]["code"].as_str(), denied.status.code()),
        (Some("PERMISSION_DENIED"), Some(1)),
        "{error}"
    );
    // The dead letters: the admin's, through the gateway to the ops role; not a player's.
    assert_eq!(up.json(&["dlq", "list"]).await["deadLetters"], json!([]));
    let denied = up.ctl(&["--token-file", &bob_file, "dlq", "list"]).await;
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"), "{denied:?}");
    let granted = up.json(&["role", "grant", "bob", "admin"]).await;
    assert_eq!((granted["role"].as_str(), granted["changed"].as_bool()), (Some("admin"), Some(true)), "{granted}");
    let relogin = up.json(&["--token-file", &bob_file, "login", "bob", "--password", PASSWORD]).await;
    assert_eq!(relogin["role"], "admin", "{relogin}");
    let revoked = up.json(&["role", "revoke", "bob", "admin"]).await;
    assert_eq!(revoked["role"], "player", "{revoked}");
    let audit = up.json(&["audit", "--subject", "bob"]).await;
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["role_revoked", "role_granted"], "{audit}");
    assert!(up.ok(&["audit"]).await.contains("admin_created"));

    // Revocation: bob's token stops working within seconds; a new login works.
    up.ok(&["--token-file", &bob_file, "login", "bob", "--password", PASSWORD]).await;
    up.ok(&["--token-file", &bob_file, "wallet"]).await;
    up.ok(&["revoke", "bob"]).await;
    let mistyped = up.ctl(&["revoke", "bobb"]).await;
    let said = String::from_utf8_lossy(&mistyped.stderr);
    assert!(mistyped.status.code() == Some(1) && said.contains("NOT_FOUND"), "an unknown id revokes nothing: {said}");
    let audit = up.ok(&["audit", "--subject", "bob"]).await;
    let when = audit.lines().find(|l| l.contains("tokens_revoked")).unwrap_or_else(|| panic!("{audit}"));
    assert!(when.contains("issued before 20"), "an RFC 3339 time, not an epoch: {when}");
    poll(Duration::from_secs(5), "bob's token refused", &up, || async {
        let out = up.ctl(&["--token-file", &bob_file, "wallet"]).await;
        String::from_utf8_lossy(&out.stderr).contains("UNAUTHENTICATED").then_some(())
    })
    .await;
    up.ok(&["--token-file", &bob_file, "login", "bob", "--password", PASSWORD]).await;
    up.ok(&["--token-file", &bob_file, "wallet"]).await;

    // A service account for a game server: secret shown once, then a login of its own.
    let created = up.json(&["service-account", "create", "match-server"]).await;
    assert_eq!(
        (created["clientId"].as_str(), created["role"].as_str()),
        (Some("svc-match-server"), Some("game_server"))
    );
    let secret = created["clientSecret"].as_str().expect("secret").to_owned();
    let gs_file = data.join("gs.token").display().to_string();
    let gs = up
        .json(&["--token-file", &gs_file, "login", "--service-account", "svc-match-server", "--secret", &secret])
        .await;
    assert_eq!(
        (gs["customerId"].as_str(), gs["role"].as_str()),
        (Some("svc-match-server"), Some("game_server")),
        "{gs}"
    );
    assert_eq!(mode(Path::new(&gs_file)), 0o600);

    // The wallet, with the service account up provisioned, exchanges.
    up.register_and_login("carol").await;
    let mission = up.achieve("daily-login").await;
    let items = up.wallet_issued(std::slice::from_ref(&mission)).await;
    let reward = items[0]["rewardId"].as_str().expect("reward").to_owned();
    let exchanged = up.json(&["exchange", &reward, "coffee"]).await;
    assert_eq!(exchanged["item"]["status"], "WALLET_ITEM_STATUS_EXCHANGED", "{exchanged}");

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "{}", up.transcript());
}

#[tokio::test]
async fn gamectl_up_nats_cluster_3_replicates_every_stream_thrice_and_survives_losing_a_node() {
    let mut up = Up::start(&["--nats-cluster", "3"], &[]).await;
    let urls: Vec<String> = (0..3).map(|i| format!("nats://127.0.0.1:{}", up.base + NATS + i)).collect();
    let endpoints: Value =
        serde_json::from_slice(&std::fs::read(up.data_dir.join("endpoints.json")).expect("endpoints")).expect("json");
    assert_eq!(endpoints["nats"], urls.join(","), "the services' NATS_URL names every node");

    up.register_and_login("carol").await;
    let first = up.achieve("daily-login").await;
    up.wallet_issued(std::slice::from_ref(&first)).await;

    // Asked on the third node: every stream and the my page bucket on three replicas.
    let auth = up.data_dir.join("nats-auth");
    let (operator, _) =
        e2e::nats_connect_as(&urls[2], "operator", Some(&auth.join("operator.nk"))).await.expect("the operator's key");
    let js = async_nats::jetstream::new(operator);
    for stream in ["MISSION", "REWARD", "WALLET", "GIFT", "KV_mypage"] {
        // A service creates its stream as it starts (on a busy machine, after it is SERVING),
        // and a new replica is listed once it has joined: asked until both are there.
        let deadline = Instant::now() + FLOW;
        loop {
            let seen = match js.get_stream(stream).await {
                Ok(mut s) => {
                    s.info().await.map(|i| (i.config.num_replicas, i.cluster.clone())).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match seen {
                Ok((3, Some(cluster))) if cluster.replicas.len() == 2 => break,
                other if Instant::now() >= deadline => panic!("{stream}: not on three replicas: {other:?}"),
                other => {
                    eprintln!("{stream}: {other:?}; asking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    // The first node dies (SIGKILL): the services move to the others and the flow goes on.
    let n1: Vec<u32> = processes()
        .into_iter()
        .filter(|&(pid, ppid, state)| ppid == up.pid && state != 'Z' && mentions(pid, b"-n\0n1\0"))
        .map(|(pid, _, _)| pid)
        .collect();
    assert_eq!(n1.len(), 1, "one nats-server named n1: {n1:?}");
    signal("KILL", n1[0]);
    let second = up.achieve("tutorial-complete").await;
    up.wallet_issued(&[first, second]).await;

    let status = up.stop().await;
    assert_eq!(status.code(), Some(0), "gamectl up exited with {status}\n{}", up.transcript());
}
