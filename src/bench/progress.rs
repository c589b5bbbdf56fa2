//! Live progress through one small reporter: a bar on a terminal, a plain
//! line every few seconds otherwise, nothing with `--quiet` (and in tests).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::units::{micros, si};

/// How often the plain reporter prints.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The run as the progress display sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `warmup`, `measure`, `drain` or `done`.
    pub phase: &'static str,
    /// Since producers started.
    pub elapsed: Duration,
    /// Until the measured window ends.
    pub remaining: Duration,
    /// Messages published in the last full second.
    pub publish_rate: u64,
    /// Messages delivered in the last full second.
    pub deliver_rate: u64,
    /// End-to-end p99 of the last full second, microseconds.
    pub p99_us: Option<f64>,
    /// Errors and nacks so far.
    pub errors: u64,
    /// Published so far.
    pub published: u64,
    /// Delivered so far.
    pub delivered: u64,
}

impl Snapshot {
    fn line(&self) -> String {
        format!(
            "{:<7} pub {}/s  del {}/s  p99 {}  errors {}  (published {}, delivered {})",
            self.phase,
            si(self.publish_rate as f64),
            si(self.deliver_rate as f64),
            self.p99_us.map_or_else(|| "-".to_owned(), micros),
            self.errors,
            si(self.published as f64),
            si(self.delivered as f64),
        )
    }
}

/// Where progress goes.
#[derive(Debug)]
pub enum Reporter {
    /// Nowhere.
    Silent,
    /// A line on stderr every few seconds.
    Plain {
        /// When the last line was printed.
        last: Option<Instant>,
    },
    /// An indicatif bar on stderr.
    Bar(ProgressBar),
}

impl Reporter {
    /// The reporter for this process: silent when `quiet`, a bar when stderr
    /// is a terminal, plain lines otherwise. `total` is warmup + duration.
    pub fn for_stderr(quiet: bool, total: Duration) -> Reporter {
        if quiet {
            return Reporter::Silent;
        }
        if !std::io::stderr().is_terminal() {
            return Reporter::Plain { last: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(u64::try_from(total.as_millis()).unwrap_or(u64::MAX)),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:24}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Reporter::Bar(bar)
    }

    /// Shows a snapshot (the plain reporter only every few seconds).
    pub fn update(&mut self, snapshot: &Snapshot) {
        match self {
            Reporter::Silent => {}
            Reporter::Plain { last } => {
                let due = last.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) || snapshot.phase == "done";
                if due && snapshot.elapsed >= Duration::from_millis(1500) {
                    let left = if snapshot.remaining.is_zero() {
                        String::new()
                    } else {
                        format!(", {}s left", snapshot.remaining.as_secs())
                    };
                    eprintln!("[{:>5.0}s{left}] {}", snapshot.elapsed.as_secs_f64(), snapshot.line());
                    *last = Some(Instant::now());
                }
            }
            Reporter::Bar(bar) => {
                bar.set_position(u64::try_from(snapshot.elapsed.as_millis()).unwrap_or(u64::MAX));
                let remaining = if snapshot.remaining.is_zero() {
                    String::new()
                } else {
                    format!("{}s left  ", snapshot.remaining.as_secs())
                };
                bar.set_message(format!("{remaining}{}", snapshot.line()));
            }
        }
    }

    /// A one-off line: what the run is doing now (applying the topology, cleaning up).
    pub fn note(&mut self, message: &str) {
        match self {
            Reporter::Silent => {}
            Reporter::Plain { .. } => eprintln!("{message}"),
            Reporter::Bar(bar) => bar.println(message),
        }
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
