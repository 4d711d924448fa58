//! Training progress: a bar with the rate, the ETA and the running loss when stderr is a terminal,
//! one plain line per epoch when it is not (a log file, CI, a notebook). Like `tqdm` around a
//! PyTorch training loop, on top of [`indicatif`].
//!
//! ```
//! use tapegrad::progress::{Metric, Progress};
//!
//! let (epochs, batches) = (2, 3);
//! let mut progress = Progress::new(epochs, batches);
//! for _epoch in 0..epochs {
//!     for batch in 0..batches {
//!         let loss = 1.0 / (batch as f64 + 1.0); // loss.item() in a real loop
//!         progress.step(loss);
//!     }
//!     // prints e.g. `epoch 1/2  loss 0.6111  acc 97.1%  812.3 it/s  0.0s`
//!     progress.end_epoch(&[Metric::percent("acc", 97.1)]);
//! }
//! progress.finish();
//! ```
//!
//! Epoch lines go to stdout in both modes (above the bar on a terminal, which keeps redrawing on
//! stderr). The mode is chosen by [`ProgressMode::detect`]: the environment variable
//! `TAPEGRAD_PROGRESS` (`bar`, `lines` or `off`) overrides the terminal check.
//!
//! This module is behind the cargo feature `progress` (on by default).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How a [`Progress`] shows itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar redrawn on stderr (rate, ETA, running loss), and a line per epoch on stdout.
    Bar,
    /// A line per epoch on stdout, nothing in between.
    Lines,
    /// Nothing.
    Off,
}

impl ProgressMode {
    /// [`Bar`](ProgressMode::Bar) when stderr is a terminal, else [`Lines`](ProgressMode::Lines);
    /// the environment variable `TAPEGRAD_PROGRESS` set to `bar`, `lines` or `off` overrides that.
    pub fn detect() -> ProgressMode {
        match std::env::var("TAPEGRAD_PROGRESS").as_deref() {
            Ok("bar") => ProgressMode::Bar,
            Ok("lines") => ProgressMode::Lines,
            Ok("off") => ProgressMode::Off,
            _ if std::io::stderr().is_terminal() => ProgressMode::Bar,
            _ => ProgressMode::Lines,
        }
    }
}

/// A named number shown at the end of an epoch line, such as a test accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    name: String,
    value: f64,
    percent: bool,
}

impl Metric {
    /// A percentage, shown with one decimal and a `%` sign: `acc 97.1%`.
    pub fn percent(name: &str, value: f64) -> Metric {
        Metric {
            name: name.to_string(),
            value,
            percent: true,
        }
    }

    /// A plain number, shown with four significant decimals: `test loss 0.1234`.
    pub fn value(name: &str, value: f64) -> Metric {
        Metric {
            name: name.to_string(),
            value,
            percent: false,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.percent {
            write!(f, "{} {:.1}%", self.name, self.value)
        } else {
            write!(f, "{} {}", self.name, format_loss(self.value))
        }
    }
}

/// Reports the progress of a training run of `epochs` epochs of `steps_per_epoch` optimizer
/// steps: call [`step`](Progress::step) after each batch with its loss and
/// [`end_epoch`](Progress::end_epoch) after each epoch.
///
/// The running loss is the mean loss of the batches seen so far in the current epoch, which is
/// also the loss printed on the epoch's line.
pub struct Progress {
    epochs: usize,
    steps_per_epoch: usize,
    /// The current epoch, counted from 1.
    epoch: usize,
    steps_in_epoch: usize,
    loss_sum: f64,
    loss_count: usize,
    start: Instant,
    epoch_start: Instant,
    bar: Option<ProgressBar>,
    mode: ProgressMode,
    out: Box<dyn Write + Send>,
}

impl Progress {
    /// A reporter in the mode [`ProgressMode::detect`] picks, printing epoch lines to stdout.
    pub fn new(epochs: usize, steps_per_epoch: usize) -> Progress {
        Progress::with_mode(epochs, steps_per_epoch, ProgressMode::detect())
    }

    /// A reporter in the given mode, printing epoch lines to stdout.
    pub fn with_mode(epochs: usize, steps_per_epoch: usize, mode: ProgressMode) -> Progress {
        let target = match mode {
            ProgressMode::Bar => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        Progress::build(
            epochs,
            steps_per_epoch,
            mode,
            target,
            Box::new(std::io::stdout()),
        )
    }

    /// A reporter that writes its epoch lines to `out` (a file, a buffer) and draws no bar.
    pub fn to_writer(
        epochs: usize,
        steps_per_epoch: usize,
        out: impl Write + Send + 'static,
    ) -> Progress {
        Progress::build(
            epochs,
            steps_per_epoch,
            ProgressMode::Lines,
            ProgressDrawTarget::hidden(),
            Box::new(out),
        )
    }

    fn build(
        epochs: usize,
        steps_per_epoch: usize,
        mode: ProgressMode,
        target: ProgressDrawTarget,
        out: Box<dyn Write + Send>,
    ) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let total = (epochs * steps_per_epoch) as u64;
            let bar = ProgressBar::with_draw_target(Some(total), target);
            bar.set_style(bar_style());
            bar
        });
        let now = Instant::now();
        let progress = Progress {
            epochs,
            steps_per_epoch,
            epoch: 1,
            steps_in_epoch: 0,
            loss_sum: 0.0,
            loss_count: 0,
            start: now,
            epoch_start: now,
            bar,
            mode,
            out,
        };
        progress.update_message();
        progress
    }

    /// The mode this reporter runs in.
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// Records one optimizer step with the loss of its batch (non-finite losses are counted as
    /// steps but left out of the running mean, which would otherwise stay NaN for the epoch).
    pub fn step(&mut self, loss: f64) {
        self.steps_in_epoch += 1;
        if loss.is_finite() {
            self.loss_sum += loss;
            self.loss_count += 1;
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            self.update_message();
        }
    }

    /// The mean loss of the current epoch's batches so far (NaN before the first).
    pub fn running_loss(&self) -> f64 {
        if self.loss_count == 0 {
            f64::NAN
        } else {
            self.loss_sum / self.loss_count as f64
        }
    }

    /// How far training is, in epochs: `epoch - 1 + steps / steps_per_epoch` (2.5 is the middle
    /// of the third epoch). A good x coordinate for a per-step loss in a
    /// [`plot::History`](crate::plot) next to per-epoch accuracies.
    pub fn position(&self) -> f64 {
        let frac = if self.steps_per_epoch == 0 {
            0.0
        } else {
            self.steps_in_epoch as f64 / self.steps_per_epoch as f64
        };
        (self.epoch - 1) as f64 + frac
    }

    /// Ends the current epoch: prints its line (the mean training loss, then `metrics`, the rate
    /// in steps per second and the time since the start) and returns that line.
    pub fn end_epoch(&mut self, metrics: &[Metric]) -> String {
        let rate = rate(self.steps_in_epoch, self.epoch_start.elapsed());
        let line = epoch_line(
            self.epoch,
            self.epochs,
            self.running_loss(),
            metrics,
            rate,
            self.start.elapsed(),
        );
        self.println(&line);
        if let Some(bar) = &self.bar {
            // a short epoch leaves the bar behind: keep it at the epoch boundary
            bar.set_position((self.epoch * self.steps_per_epoch) as u64);
        }
        self.epoch += 1;
        self.steps_in_epoch = 0;
        self.loss_sum = 0.0;
        self.loss_count = 0;
        self.epoch_start = Instant::now();
        self.update_message();
        line
    }

    /// Prints a line (on stdout, or the writer) without breaking the bar.
    pub fn println(&mut self, line: &str) {
        if self.mode == ProgressMode::Off {
            return;
        }
        let out = &mut self.out;
        let mut write = || {
            // like println!, a closed stdout is not worth stopping training for
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Removes the bar and returns the time since the reporter was made.
    pub fn finish(self) -> Duration {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.start.elapsed()
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            let mut msg = format!("epoch {}/{}", self.epoch.min(self.epochs), self.epochs);
            if self.loss_count > 0 {
                let _ = write!(msg, "  loss {}", format_loss(self.running_loss()));
            }
            bar.set_message(msg);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .field("epoch", &self.epoch)
            .field("epochs", &self.epochs)
            .field("steps_in_epoch", &self.steps_in_epoch)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .finish()
    }
}

/// `epoch 3/10  loss 0.1234  [####>    ] 130/450  12.3 it/s  ETA 27s`
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}  [{bar:30}] {pos}/{len}  {rate}  ETA {eta}")
        .expect("the progress template is valid")
        .progress_chars("#> ")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", format_rate(state.per_sec()));
            },
        )
}

/// Steps per second over `elapsed` (0 for no time at all).
fn rate(steps: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        steps as f64 / secs
    } else {
        0.0
    }
}

/// `12.3 it/s`, or `4.12 s/it` when a step takes longer than a second (as tqdm does).
fn format_rate(per_sec: f64) -> String {
    if per_sec >= 1.0 || per_sec == 0.0 || !per_sec.is_finite() {
        format!("{per_sec:.1} it/s")
    } else {
        format!("{:.2} s/it", 1.0 / per_sec)
    }
}

/// Four decimals for ordinary losses, scientific notation for tiny or huge ones.
fn format_loss(loss: f64) -> String {
    let a = loss.abs();
    if a != 0.0 && a.is_finite() && !(1e-3..1e5).contains(&a) {
        format!("{loss:.3e}")
    } else {
        format!("{loss:.4}")
    }
}

/// `epoch  3/10  loss 0.1234  acc 97.1%  12.3 it/s  4.5s`, the epoch padded to the width of
/// the number of epochs so that the columns line up.
fn epoch_line(
    epoch: usize,
    epochs: usize,
    loss: f64,
    metrics: &[Metric],
    rate: f64,
    elapsed: Duration,
) -> String {
    let width = epochs.to_string().len();
    let mut line = format!("epoch {epoch:>width$}/{epochs}  loss {}", format_loss(loss));
    for m in metrics {
        let _ = write!(line, "  {m}");
    }
    let _ = write!(
        line,
        "  {}  {:.1}s",
        format_rate(rate),
        elapsed.as_secs_f64()
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn epoch_line_has_padded_epoch_loss_metrics_rate_and_time() {
        let line = epoch_line(
            3,
            10,
            0.123449,
            &[Metric::percent("acc", 97.06), Metric::value("lr", 0.003)],
            12.34,
            Duration::from_millis(4500),
        );
        assert_eq!(
            line,
            "epoch  3/10  loss 0.1234  acc 97.1%  lr 0.0030  12.3 it/s  4.5s"
        );
    }

    #[test]
    fn slow_steps_are_shown_as_seconds_per_step() {
        // 0.25 it/s = 4 s/it
        assert_eq!(format_rate(0.25), "4.00 s/it");
        assert_eq!(format_rate(2.0), "2.0 it/s");
        assert_eq!(format_rate(0.0), "0.0 it/s");
    }

    #[test]
    fn tiny_and_huge_losses_use_scientific_notation() {
        assert_eq!(format_loss(0.5), "0.5000");
        assert_eq!(format_loss(0.0), "0.0000");
        assert_eq!(format_loss(2.5e-5), "2.500e-5");
        assert_eq!(format_loss(3.0e6), "3.000e6");
        assert_eq!(format_loss(f64::NAN), "NaN");
    }

    #[test]
    fn lines_mode_prints_the_mean_loss_of_each_epoch() {
        let out = Shared::default();
        let mut p = Progress::to_writer(2, 2, out.clone());
        p.step(1.0);
        p.step(0.5);
        let first = p.end_epoch(&[Metric::percent("acc", 50.0)]);
        p.step(0.25);
        p.step(f64::NAN); // counted as a step, not in the mean
        p.end_epoch(&[]);
        p.finish();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // (1.0 + 0.5) / 2 = 0.75
        assert!(
            lines[0].starts_with("epoch 1/2  loss 0.7500  acc 50.0%  "),
            "{text}"
        );
        assert_eq!(lines[0], first);
        assert!(lines[1].starts_with("epoch 2/2  loss 0.2500  "), "{text}");
        assert!(lines[1].contains(" it/s  "), "{text}");
    }

    #[test]
    fn position_counts_epochs_and_fractions_of_an_epoch() {
        let mut p = Progress::to_writer(3, 4, std::io::sink());
        assert_eq!(p.position(), 0.0);
        p.step(1.0);
        assert_eq!(p.position(), 0.25);
        for _ in 0..3 {
            p.step(1.0);
        }
        assert_eq!(p.position(), 1.0);
        p.end_epoch(&[]);
        assert_eq!(p.position(), 1.0);
        p.step(1.0);
        p.step(1.0);
        assert_eq!(p.position(), 1.5);
        assert_eq!(p.running_loss(), 1.0);
    }

    #[test]
    fn bar_mode_keeps_the_bar_at_epoch_boundaries_and_still_prints_lines() {
        let out = Shared::default();
        let mut p = Progress::build(
            2,
            5,
            ProgressMode::Bar,
            ProgressDrawTarget::hidden(),
            Box::new(out.clone()),
        );
        for _ in 0..3 {
            p.step(2.0);
        }
        let bar = p.bar.clone().unwrap();
        assert_eq!(bar.position(), 3);
        assert_eq!(bar.message(), "epoch 1/2  loss 2.0000");
        p.end_epoch(&[]);
        // an epoch of 3 steps out of 5 moves the bar to the end of the epoch
        assert_eq!(bar.position(), 5);
        assert_eq!(bar.message(), "epoch 2/2");
        assert!(out.text().starts_with("epoch 1/2  loss 2.0000  "));
    }

    #[test]
    fn off_mode_prints_nothing() {
        let out = Shared::default();
        let mut p = Progress::build(
            1,
            1,
            ProgressMode::Off,
            ProgressDrawTarget::hidden(),
            Box::new(out.clone()),
        );
        p.step(1.0);
        p.end_epoch(&[]);
        assert_eq!(out.text(), "");
    }
}
