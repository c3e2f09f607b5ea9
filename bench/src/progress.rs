//! The progress bar: one bar over the whole planned run, a message naming the phase (and
//! live figures during the load). Hidden when stderr is not a terminal, where each phase
//! is printed as a line instead.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

struct Phase {
    name: String,
    started: Instant,
    planned: Duration,
    base_ms: u64,
    detail: String,
}

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    tty: bool,
    phase: Arc<Mutex<Phase>>,
    ticker: Arc<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn new(planned: Duration) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty { ProgressBar::new(ms(planned)) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner:.green} {elapsed_precise:.dim} [{wide_bar:.cyan/blue}] {percent:>3}%  {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        let phase = Arc::new(Mutex::new(Phase {
            name: String::new(),
            started: Instant::now(),
            planned: Duration::ZERO,
            base_ms: 0,
            detail: String::new(),
        }));
        let (b, p) = (bar.clone(), phase.clone());
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let (pos, msg) = {
                    let p = p.lock().expect("progress");
                    let into = p.started.elapsed().min(p.planned);
                    let msg = if p.detail.is_empty() { p.name.clone() } else { format!("{} — {}", p.name, p.detail) };
                    (p.base_ms + ms(into), msg)
                };
                b.set_position(pos.min(b.length().unwrap_or(pos)));
                b.set_message(msg);
            }
        });
        Self { bar, tty, phase, ticker: Arc::new(ticker) }
    }

    /// A new phase expected to take about `planned`.
    pub fn phase(&self, name: &str, planned: Duration) {
        let mut p = self.phase.lock().expect("progress");
        p.base_ms += ms(p.planned);
        p.name = name.to_owned();
        p.started = Instant::now();
        p.planned = planned;
        p.detail.clear();
        if self.tty {
            self.bar.set_message(name.to_owned());
        } else {
            eprintln!("bench: {name}");
        }
    }

    /// Live figures shown after the phase's name.
    pub fn detail(&self, detail: String) {
        self.phase.lock().expect("progress").detail = detail;
    }

    pub fn finish(&self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
