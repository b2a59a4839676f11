//! Progress on stderr for the commands that take more than a few seconds.
//!
//! On a terminal: an indicatif bar per engine run, fed by the run's pulse
//! (`streamlab_scenarios::watch`) — its clock against its duration plus drain (virtual on the
//! simulated clock, wall on the live one), events read, outputs, the p99 of the latest outputs,
//! and micro-batches falling behind or checkpoints completed — and, for a command made of
//! steps (capacity probes, crash points, calibration measurements, validation runs), a bar
//! counting them above. Elsewhere (a pipe, a file, CI) no bar: one line per step instead, and
//! for `streamlab run` one line as each engine run starts and one with its figures as it ends.
//!
//! The display only reads: the drivers publish into atomics per batch, step or chunk, and a
//! ticker thread here redraws four times a second.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use streamlab_engines::pulse::PulseReading;
use streamlab_scenarios::watch::{self, RunEvent, WatchedRun};

/// How often the bars are redrawn.
const TICK: Duration = Duration::from_millis(250);

/// What the display shows of the engine runs a command starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineRuns {
    /// A bar per run, kept when it ends; off a terminal, a line as each starts and ends
    /// (`streamlab run`, `validate`).
    Kept,
    /// A bar per run, cleared when it ends; off a terminal, nothing (commands that run many
    /// short engine runs: `capacity`, `crash-sweep`).
    Cleared,
}

/// The engine runs on display: their bar and when it appeared, by pulse.
type Bars = Arc<Mutex<HashMap<usize, (WatchedRun, ProgressBar, Instant)>>>;

/// The progress display of one command.
pub struct Progress {
    terminal: bool,
    multi: MultiProgress,
    steps: Option<ProgressBar>,
    bars: Bars,
    ticker: Option<std::thread::JoinHandle<()>>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    /// A display that shows engine runs as `runs` says.
    pub fn new(runs: EngineRuns) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let bars: Bars = Arc::default();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let observer = {
            let (multi, bars) = (multi.clone(), bars.clone());
            move |run: &WatchedRun, event: RunEvent| {
                let key = Arc::as_ptr(&run.pulse) as usize;
                match (event, terminal) {
                    (RunEvent::Started, true) => {
                        let bar = engine_bar(run);
                        draw(run, &bar, Instant::now());
                        let bar = multi.add(bar);
                        bars.lock()
                            .expect("progress bars")
                            .insert(key, (run.clone(), bar, Instant::now()));
                    }
                    (RunEvent::Ended, true) => {
                        if let Some((run, bar, start)) = bars.lock().expect("progress bars").remove(&key) {
                            bar.finish_and_clear();
                            // A finished run's figures stay, as a line above the bars.
                            if runs == EngineRuns::Kept {
                                let line = figures(&run, run.pulse.read(), start);
                                multi.suspend(|| eprintln!("  `{}`: {line}", run.engine));
                            }
                        }
                    }
                    (RunEvent::Started, false) => {
                        bars.lock()
                            .expect("progress bars")
                            .insert(key, (run.clone(), ProgressBar::hidden(), Instant::now()));
                    }
                    (RunEvent::Ended, false) => {
                        let started = bars.lock().expect("progress bars").remove(&key);
                        if let (EngineRuns::Kept, Some((run, _, start))) = (runs, started) {
                            eprintln!("  `{}`: {}", run.engine, figures(&run, run.pulse.read(), start));
                        }
                    }
                }
            }
        };
        watch::observe(Arc::new(observer));
        let ticker = terminal.then(|| {
            let (bars, done) = (bars.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    for (run, bar, start) in bars.lock().expect("progress bars").values() {
                        draw(run, bar, *start);
                    }
                    std::thread::sleep(TICK);
                }
            })
        });
        Self {
            terminal,
            multi,
            steps: None,
            bars,
            ticker,
            done,
        }
    }

    /// A step of the command begins, or is reported (`total`: how many there are, when known):
    /// counted on the step bar on a terminal, a line of its own elsewhere.
    pub fn step(&mut self, line: &str, total: Option<u64>) {
        if !self.terminal {
            eprintln!("{line}");
            return;
        }
        let bar = self.steps.get_or_insert_with(|| {
            let bar = match total {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::hidden()).with_style(
                    ProgressStyle::with_template("[{bar:24}] {pos}/{len} {elapsed}  {msg}")
                        .expect("a valid progress template")
                        .progress_chars("=> "),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(
                    ProgressStyle::with_template("{spinner} {pos} done {elapsed}  {msg}")
                        .expect("a valid progress template"),
                ),
            };
            let bar = self.multi.insert(0, bar);
            bar.enable_steady_tick(TICK);
            bar.set_position(0);
            bar
        });
        bar.inc(1);
        bar.set_message(line.to_string());
    }

    /// A line printed above the bars (or plainly, off a terminal).
    pub fn println(&self, line: &str) {
        if self.terminal {
            self.multi.suspend(|| eprintln!("{line}"));
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends the display: the step bar is cleared, the engine bars left as they are.
    pub fn finish(mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.steps.take() {
            bar.finish_and_clear();
        }
        for (run, bar, start) in self.bars.lock().expect("progress bars").values() {
            draw(run, bar, *start);
            bar.finish();
        }
    }
}

fn engine_bar(run: &WatchedRun) -> ProgressBar {
    // Hidden until the multi-bar adopts it: a bar draws itself on every change.
    let bar = ProgressBar::with_draw_target(Some((run.until / 1_000_000).max(1)), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:20}] {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(run.engine.clone());
    bar
}

/// Redraws `run`'s bar from its pulse.
fn draw(run: &WatchedRun, bar: &ProgressBar, start: Instant) {
    let reading = run.pulse.read();
    bar.set_position(clock(run, &reading, start) / 1_000_000);
    bar.set_message(figures(run, reading, start));
}

/// Whether `run` is one of streamlab's own engines (not a real Spark, Flink or Kafka Streams).
fn native(run: &WatchedRun) -> bool {
    matches!(run.model.as_str(), "micro-batch" | "per-record")
}

/// The run's clock: the pulse's, and for a native engine on the live clock at least the wall
/// time since it began (before its first batch or step has published anything). A real
/// engine's clock starts with its schedule, once the engine has started.
fn clock(run: &WatchedRun, reading: &PulseReading, start: Instant) -> u64 {
    if run.simulated || !native(run) {
        reading.clock
    } else {
        reading.clock.max(start.elapsed().as_nanos() as u64)
    }
    .min(run.until)
}

/// What a user watches, in one line: `12.0 s of 22.0 s (live) · 240 k events · 1.2 k outputs ·
/// p99 35 ms · 0 falling behind`.
pub fn figures(run: &WatchedRun, r: PulseReading, start: Instant) -> String {
    let secs = |ns: u64| ns as f64 / 1e9;
    let mut line = if native(run) || r.clock > 0 || r.events > 0 {
        format!(
            "{:.1} s of {:.1} s ({})",
            secs(clock(run, &r, start)),
            secs(run.until),
            if run.simulated { "virtual" } else { "wall" }
        )
    } else {
        // Its JVM, session and planning: not part of the run's clock.
        format!("starting the engine ({:.0} s)", start.elapsed().as_secs_f64())
    };
    // A real engine's events are those streamlab's feeder or producer sent it, its outputs those
    // received back; only the engine knows what it has read and processed.
    match run.model.as_str() {
        _ if native(run) => line.push_str(&format!(
            " · {} events read · {} outputs",
            count(r.events),
            count(r.outputs)
        )),
        _ => line.push_str(&format!(
            " · {} events sent · {} outputs received",
            count(r.events),
            count(r.outputs)
        )),
    }
    if let Some(p99) = r.p99 {
        line.push_str(&format!(" · p99 ≈{}", millis(p99)));
    }
    match run.model.as_str() {
        "micro-batch" => line.push_str(&format!(" · {} batches falling behind", r.falling_behind)),
        "per-record" => line.push_str(&format!(" · {} checkpoints", r.checkpoints)),
        _ => {}
    }
    if run.pulse.stopped_at().is_some() {
        line.push_str(" · interrupted");
    }
    line
}

fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1} k", n as f64 / 1e3),
        _ => format!("{:.1} M", n as f64 / 1e6),
    }
}

fn millis(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
