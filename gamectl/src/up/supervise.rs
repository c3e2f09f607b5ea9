//! The supervisor of `gamectl up`'s children: how a child is started, its output
//! forwarded, restarted with backoff when it dies, stopped in order; and the health watch
//! that reports when each one is SERVING.

use super::*;

/// How to (re)start one child.
#[derive(Debug, Clone)]
pub(super) struct ChildSpec {
    pub(super) name: String,
    pub(super) program: PathBuf,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

impl ChildSpec {
    fn spawn(&self) -> std::io::Result<Child> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: Ctrl-C in the terminal reaches only gamectl, which
            // then stops the children in order instead of them all dying at once and
            // looking like crashes.
            .process_group(0);
        let mut child = cmd.spawn()?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(self.name.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(self.name.clone(), err));
        }
        Ok(child)
    }
}

/// Copies a child's output to our stderr, one prefixed line at a time.
pub(super) async fn forward(name: String, from: impl AsyncRead + Unpin) {
    let mut from = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match from.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                let _ = writeln!(std::io::stderr().lock(), "[{name}] {line}");
            }
        }
    }
}

/// Restart delay: 1 s doubling up to 10 s, back to 1 s after a child ran 30 s.
#[derive(Debug)]
pub(super) struct Backoff {
    pub(super) next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(10);
    const HEALTHY_RUN: Duration = Duration::from_secs(30);

    pub(super) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub(super) fn delay(&mut self, ran: Duration) -> Duration {
        if ran >= Self::HEALTHY_RUN {
            self.next = Self::FIRST;
        }
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        d
    }
}

pub(super) fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("status {c}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => s.to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

/// What every supervisor needs to know about stopping.
#[derive(Clone)]
pub(super) struct Stopping {
    /// Stop this child (services and nats-server have one each, to stop in order).
    pub(super) now: CancellationToken,
    /// A second Ctrl-C: kill instead of waiting.
    pub(super) force: CancellationToken,
    pub(super) grace: Duration,
}

/// SIGTERM, wait up to the grace period (or a second Ctrl-C), then SIGKILL.
pub(super) async fn terminate(child: &mut Child, name: &str, stopping: &Stopping) {
    let Some(pid) = child.id() else { return }; // already reaped
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !sent {
        let _ = child.start_kill();
    }
    let exited = tokio::select! {
        r = tokio::time::timeout(stopping.grace, child.wait()) => r.is_ok(),
        () = stopping.force.cancelled() => false,
    };
    if !exited {
        say(format!("{name} did not stop in time; killing it"));
        let _ = child.kill().await;
    }
}

/// A child kept running until told to stop.
pub(super) struct Supervised {
    pub(super) name: String,
    pub(super) task: JoinHandle<()>,
    /// Asks for a restart (with the reason to print), e.g. when health stays bad.
    pub(super) restart: mpsc::UnboundedSender<String>,
}

/// Starts the child once (so a start failure is reported to the caller), then keeps
/// it running in a task.
pub(super) fn supervise(spec: ChildSpec, stopping: Stopping) -> std::io::Result<Supervised> {
    let child = spec.spawn()?;
    let (restart, requests) = mpsc::unbounded_channel();
    let name = spec.name.clone();
    let task = tokio::spawn(keep_running(spec, child, stopping, requests));
    Ok(Supervised { name, task, restart })
}

pub(super) async fn keep_running(
    spec: ChildSpec,
    mut child: Child,
    stopping: Stopping,
    mut requests: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        tokio::select! {
            biased;
            () = stopping.now.cancelled() => {
                terminate(&mut child, &spec.name, &stopping).await;
                return;
            }
            Some(reason) = requests.recv() => {
                say(format!("{} {reason}; restarting", spec.name));
                terminate(&mut child, &spec.name, &stopping).await;
                backoff = Backoff::new();
            }
            status = child.wait() => {
                if stopping.now.is_cancelled() {
                    return;
                }
                let delay = backoff.delay(started.elapsed());
                say(format!("{} exited ({}); restarting", spec.name, describe(status)));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopping.now.cancelled() => return,
                }
            }
        }
        child = loop {
            match spec.spawn() {
                Ok(c) => break c,
                Err(e) => {
                    let delay = backoff.delay(Duration::ZERO);
                    say(format!("{} cannot be started ({e}); retrying", spec.name));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopping.now.cancelled() => return,
                    }
                }
            }
        };
        // Requests about the previous child are answered by this restart.
        while requests.try_recv().is_ok() {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    Unreachable,
    NotServing,
    Serving,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "unreachable",
            Self::NotServing => "NOT_SERVING",
            Self::Serving => "SERVING",
        })
    }
}

pub(super) async fn check(client: &mut HealthClient<tonic::transport::Channel>, service: &str) -> Health {
    let req = HealthCheckRequest { service: service.to_owned() };
    match tokio::time::timeout(Duration::from_secs(2), client.check(req)).await {
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => Health::Serving,
        Ok(Ok(_)) => Health::NotServing,
        // Up, but the name is not registered (yet).
        Ok(Err(s)) if s.code() == tonic::Code::NotFound => Health::NotServing,
        _ => Health::Unreachable,
    }
}

/// What the health watcher of one service does beyond reporting.
pub(super) struct Watch {
    /// Print changes (only once the system was ready: before, they are start-up noise).
    pub(super) announce: watch::Receiver<bool>,
    /// Restart the service after it has not been SERVING this long (having been SERVING).
    pub(super) restart_after: Option<Duration>,
    pub(super) restart: mpsc::UnboundedSender<String>,
    pub(super) stop: CancellationToken,
}

pub(super) async fn watch_health(
    name: String,
    service: &'static str,
    url: String,
    report: watch::Sender<Health>,
    w: Watch,
) {
    const INTERVAL: Duration = Duration::from_millis(250);
    let Ok(endpoint) = Endpoint::from_shared(url) else {
        return;
    };
    let mut client = HealthClient::new(endpoint.connect_timeout(Duration::from_secs(1)).connect_lazy());
    let mut last = *report.borrow();
    let mut bad_since: Option<Instant> = None;
    let mut was_serving = false;
    loop {
        let h = tokio::select! {
            h = check(&mut client, service) => h,
            () = w.stop.cancelled() => return,
        };
        if h != last {
            if *w.announce.borrow() {
                say(format!("{name} is {h}"));
            }
            report.send_replace(h);
            last = h;
        }
        if h == Health::Serving {
            was_serving = true;
            bad_since = None;
        } else if was_serving && let Some(after) = w.restart_after {
            let since = *bad_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= after {
                let _ = w.restart.send(format!("not SERVING for {} s", after.as_secs_f64()));
                was_serving = false;
                bad_since = None;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = w.stop.cancelled() => return,
        }
    }
}
