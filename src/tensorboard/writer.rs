//! `SummaryWriter`: event files that TensorBoard reads, like `torch.utils.tensorboard`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::hparams::{self, HParam};
use super::proto::{event::What, Event, Summary};
use super::record::write_record;
use super::summary;
use crate::error::Result;
use crate::nn::{Forward, Module};
use crate::tensor::Tensor;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `$HOSTNAME`, else `localhost`).
pub(crate) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `secs` (since the epoch, UTC) as PyTorch's run-name timestamp `%b%d_%H-%M-%S`,
/// e.g. `Nov25_14-03-09`.
pub(crate) fn run_timestamp(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian calendar
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{}{:02}_{:02}-{:02}-{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// PyTorch's default log directory: `runs/<%b%d_%H-%M-%S>_<hostname><comment>` (the time in UTC).
pub fn default_logdir(comment: &str) -> PathBuf {
    let secs = now() as u64;
    PathBuf::from("runs").join(format!("{}_{}{}", run_timestamp(secs), hostname(), comment))
}

static FILE_UID: AtomicU64 = AtomicU64::new(0);

/// One event file: `events.out.tfevents.<secs>.<host>.<pid>.<n>`, opened with its
/// `file_version` event.
struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    fn create(dir: &Path) -> Result<EventFile> {
        fs::create_dir_all(dir)?;
        let wall = now();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}",
            wall as u64,
            hostname(),
            std::process::id(),
            FILE_UID.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let out = BufWriter::new(File::create(&path)?);
        let mut f = EventFile { path, out };
        f.write(&Event {
            wall_time: wall,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".to_owned())),
        })?;
        f.out.flush()?;
        Ok(f)
    }

    fn write(&mut self, e: &Event) -> Result<()> {
        write_record(&mut self.out, &e.encode_to_vec())?;
        Ok(())
    }

    fn summary(&mut self, s: Summary, step: i64) -> Result<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(s)),
        })
    }
}

/// Writes TensorBoard event files, like PyTorch's `torch.utils.tensorboard.SummaryWriter`.
///
/// Each writer creates one event file `events.out.tfevents.<time>.<host>.<pid>.<n>` in its log
/// directory; [`add_scalars`](SummaryWriter::add_scalars) and
/// [`add_hparams`](SummaryWriter::add_hparams) write to sub-runs in subdirectories, as PyTorch
/// does. Events are buffered: [`flush`](SummaryWriter::flush) makes them visible to TensorBoard,
/// and dropping or [`close`](SummaryWriter::close)-ing the writer flushes too. View with
/// `tensorboard --logdir runs`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::tensorboard::SummaryWriter;
/// # fn main() -> tapegrad::Result<()> {
/// let dir = std::env::temp_dir().join(format!("tapegrad-doc-tb-{}", std::process::id()));
/// let mut w = SummaryWriter::new(&dir)?;
/// for step in 0..3 {
///     w.add_scalar("loss/train", 1.0 / (step as f64 + 1.0), step)?;
/// }
/// w.add_histogram("weights", &Tensor::randn(&[100]), 0)?;
/// w.add_text("notes", "first run", 0)?;
/// w.close()?;
/// let events = tapegrad::tensorboard::read_events(&std::fs::read_dir(&dir)?.next().unwrap()?.path())?;
/// assert_eq!(events.len(), 1 + 3 + 1 + 1); // file_version, 3 scalars, histogram, text
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub struct SummaryWriter {
    logdir: PathBuf,
    file: EventFile,
    /// Sub-run writers of `add_scalars`, by directory.
    subruns: BTreeMap<PathBuf, EventFile>,
}

impl SummaryWriter {
    /// A writer logging to `logdir` (created if missing), like `SummaryWriter(log_dir)`.
    ///
    /// # Errors
    /// If the directory or the event file cannot be created.
    pub fn new(logdir: impl AsRef<Path>) -> Result<SummaryWriter> {
        let logdir = logdir.as_ref().to_path_buf();
        let file = EventFile::create(&logdir)?;
        Ok(SummaryWriter {
            logdir,
            file,
            subruns: BTreeMap::new(),
        })
    }

    /// A writer logging to PyTorch's default directory, `runs/<datetime>_<hostname>` (see
    /// [`default_logdir`]), like `SummaryWriter()`.
    ///
    /// # Errors
    /// If the directory or the event file cannot be created.
    #[allow(clippy::should_implement_trait)] // fallible, so not `Default`
    pub fn default() -> Result<SummaryWriter> {
        SummaryWriter::new(default_logdir(""))
    }

    /// A writer logging to `runs/<datetime>_<hostname><comment>`, like
    /// `SummaryWriter(comment=...)`.
    ///
    /// # Errors
    /// If the directory or the event file cannot be created.
    pub fn with_comment(comment: &str) -> Result<SummaryWriter> {
        SummaryWriter::new(default_logdir(comment))
    }

    /// The log directory.
    pub fn logdir(&self) -> &Path {
        &self.logdir
    }

    /// The path of this writer's event file.
    pub fn file_path(&self) -> &Path {
        &self.file.path
    }

    /// Logs a scalar (stored as f32) at `step`, like `add_scalar(tag, value, global_step)`.
    ///
    /// # Errors
    /// On a write failure.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        self.file.summary(summary::scalar(tag, value), step)
    }

    /// Logs several scalars under one chart, like `add_scalars(main_tag, tag_scalar_dict, step)`:
    /// each `(tag, value)` goes to the sub-run `<logdir>/<main_tag>_<tag>` (a `/` in `main_tag`
    /// becomes `_`) under the tag `main_tag`, so TensorBoard draws them as runs on one chart.
    ///
    /// # Errors
    /// If a sub-run's event file cannot be created or written.
    pub fn add_scalars(
        &mut self,
        main_tag: &str,
        scalars: &[(&str, f64)],
        step: i64,
    ) -> Result<()> {
        for &(tag, value) in scalars {
            let dir = self
                .logdir
                .join(format!("{}_{}", main_tag.replace('/', "_"), tag));
            let f = match self.subruns.entry(dir) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let f = EventFile::create(v.key())?;
                    v.insert(f)
                }
            };
            f.summary(summary::scalar(main_tag, value), step)?;
        }
        Ok(())
    }

    /// Logs a histogram of the tensor's values, like `add_histogram(tag, values, step)`, with
    /// TensorFlow's default buckets (exponentially spaced by factor 1.1 from ±1e-12 to ±1e20;
    /// runs of empty buckets are merged).
    ///
    /// # Errors
    /// On a write failure.
    pub fn add_histogram(&mut self, tag: &str, values: &Tensor, step: i64) -> Result<()> {
        let v = values.to_vec_f64();
        self.file.summary(summary::histogram(tag, &v), step)
    }

    /// Logs text (shown as Markdown in the Text tab) under `<tag>/text_summary`, like
    /// `add_text(tag, text_string, step)`.
    ///
    /// # Errors
    /// On a write failure.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        self.file.summary(summary::text(tag, text), step)
    }

    /// Logs an image, like `add_image(tag, img_tensor, step, dataformats=...)`: `image` laid out
    /// as `dataformats` `"CHW"`, `"HWC"` or `"HW"`, with 1, 3 or 4 channels (gray, RGB, RGBA).
    /// Float values are taken in `[0, 1]` and scaled by 255; integer values as `0..=255`. Stored
    /// PNG-encoded.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) for a shape that does not fit `dataformats` or a
    /// channel count other than 1, 3 or 4; otherwise a write failure.
    pub fn add_image(
        &mut self,
        tag: &str,
        image: &Tensor,
        step: i64,
        dataformats: &str,
    ) -> Result<()> {
        let s = summary::image(tag, image, dataformats)?;
        self.file.summary(s, step)
    }

    /// Logs the graph of `model` applied to `input` for TensorBoard's Graphs tab, like
    /// `add_graph(model, input_to_model)`: runs `model.forward(input)` with gradients enabled and
    /// exports the tape behind the output, naming parameters by their module path (`fc1.weight`
    /// shows as `fc1/weight`, so TensorBoard groups a module's parameters).
    ///
    /// Only ops that touch a parameter requiring grad are on the tape; a model whose parameters
    /// are all frozen shows as its output alone.
    ///
    /// # Errors
    /// On a write failure.
    pub fn add_graph<M: Module + Forward + ?Sized>(
        &mut self,
        model: &M,
        input: &Tensor,
    ) -> Result<()> {
        let out = {
            let _g = crate::autograd::enable_grad();
            model.forward(input)
        };
        self.add_graph_of(&out, &model.named_parameters())
    }

    /// Logs the graph (the tape) behind `output`, naming the leaves found in `params` by their
    /// names (pass `&[]` to name them by [`Tensor::name`] or `param_<n>`).
    ///
    /// # Errors
    /// On a write failure.
    pub fn add_graph_of(&mut self, output: &Tensor, params: &[(String, Tensor)]) -> Result<()> {
        let g = crate::autograd::graph::TapeGraph::new(output, params);
        let graph = super::graph::graph_def(&g);
        self.file.write(&Event {
            wall_time: now(),
            step: 0,
            what: Some(What::GraphDef(graph.encode_to_vec())),
        })
    }

    /// Logs a set of hyperparameters and the metrics they reached, like
    /// `add_hparams(hparam_dict, metric_dict)`: writes to a new sub-run `<logdir>/<run_name>`
    /// (PyTorch's default run name is the current time in seconds, used when `run_name` is
    /// `None`) the hparams plugin's experiment, session-start and session-end summaries, then
    /// each metric as a scalar at step 0. TensorBoard's HParams tab then shows one row per call.
    ///
    /// ```
    /// use tapegrad::tensorboard::{HParam, SummaryWriter};
    /// # fn main() -> tapegrad::Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("tapegrad-doc-hp-{}", std::process::id()));
    /// let mut w = SummaryWriter::new(&dir)?;
    /// w.add_hparams(
    ///     &[("lr", HParam::from(0.01)), ("optimizer", "adam".into()), ("nesterov", false.into())],
    ///     &[("hparam/accuracy", 0.93)],
    ///     Some("trial0"),
    /// )?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// If the sub-run cannot be created or written.
    pub fn add_hparams(
        &mut self,
        hparams: &[(&str, HParam)],
        metrics: &[(&str, f64)],
        run_name: Option<&str>,
    ) -> Result<()> {
        let run = match run_name {
            Some(r) => r.to_owned(),
            None => format!("{}", now()),
        };
        let mut f = EventFile::create(&self.logdir.join(run))?;
        for s in hparams::summaries(hparams, metrics) {
            f.summary(s, 0)?;
        }
        for &(tag, v) in metrics {
            f.summary(summary::scalar(tag, v), 0)?;
        }
        f.out.flush()?;
        Ok(())
    }

    /// Writes buffered events to disk, like `flush()`.
    ///
    /// # Errors
    /// On a write failure.
    pub fn flush(&mut self) -> Result<()> {
        self.file.out.flush()?;
        for f in self.subruns.values_mut() {
            f.out.flush()?;
        }
        Ok(())
    }

    /// Flushes and closes the event files, like `close()`. (Dropping the writer also flushes, but
    /// cannot report a failure.)
    ///
    /// # Errors
    /// On a write failure.
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_timestamps_follow_pytorchs_format_in_utc() {
        // 2026-11-25 14:03:09 UTC = 20782 days · 86400 + 50589 s
        assert_eq!(run_timestamp(20_782 * 86_400 + 50_589), "Nov25_14-03-09");
        assert_eq!(run_timestamp(0), "Jan01_00-00-00");
        // 2024-02-29 (a leap day) 23:59:59 UTC
        assert_eq!(run_timestamp(19_782 * 86_400 + 86_399), "Feb29_23-59-59");
    }

    #[test]
    fn default_logdir_is_under_runs_and_ends_with_host_and_comment() {
        let d = default_logdir("_lr0.1");
        assert!(d.starts_with("runs"));
        let name = d.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.ends_with(&format!("_{}_lr0.1", hostname())), "{name}");
    }
}
