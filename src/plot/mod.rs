//! Loss and accuracy curves of a training run as a PNG or SVG picture, like the matplotlib
//! figure at the end of a PyTorch tutorial: record points in a [`History`], then call
//! [`save_png`] (or [`render_svg`], which a notebook can show inline).
//!
//! ```no_run
//! use tapegrad::plot::{self, History};
//!
//! let mut history = History::new();
//! for step in 1..=100 {
//!     let epoch = step as f64 / 10.0;
//!     history.push_loss("train", epoch, 2.0 / epoch.sqrt());
//!     if step % 10 == 0 {
//!         history.push_accuracy("test", epoch, 100.0 - 20.0 / epoch);
//!     }
//! }
//! plot::save_png("runs/curves.png", &history)?;
//! # Ok::<(), tapegrad::Error>(())
//! ```
//!
//! The picture has the losses on the left (on a log scale when they span more than a factor of
//! ten; a per-batch loss of many points is drawn faintly, with its moving mean over it) and the
//! accuracies on the right, each with a legend; the x axis is shared. Text is drawn with
//! [`ab_glyph`](https://docs.rs/ab_glyph) from a copy of DejaVu Sans embedded in the library
//! (`assets/fonts`), so no system font library (fontconfig, freetype) is needed.
//!
//! This module is behind the cargo feature `plot` (on by default).

mod history;

pub use history::{History, Series};

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, RGBColor};

use crate::{Error, Result};

/// The size of the picture [`save_png`] and [`render_svg`] draw, in pixels.
pub const SIZE: (u32, u32) = (1000, 420);

/// DejaVu Sans, cut down to Latin, Greek and common symbols (see `assets/fonts/README.md`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");

/// The font family name the embedded font is registered under.
const FAMILY: &str = "sans-serif";

/// matplotlib's first four colours (tab:blue, tab:orange, tab:green, tab:red), then black.
const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(0, 0, 0),
];

/// A loss series longer than this is drawn faintly, with its moving mean over it.
const SMOOTH_ABOVE: usize = 60;

/// Draws `history` as a PNG of [`SIZE`] at `path`.
///
/// # Errors
/// [`Error::Io`] naming the path if the file cannot be written (its folder must exist).
pub fn save_png(path: impl AsRef<Path>, history: &History) -> Result<()> {
    let path = path.as_ref();
    let at = |e: String| Error::Io(std::io::Error::other(format!("{}: {e}", path.display())));
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(&root, history).map_err(at)?;
    root.present().map_err(|e| at(e.to_string()))
}

/// Draws `history` as an SVG document of [`SIZE`] (text is left to the viewer's sans-serif
/// font).
///
/// # Errors
/// None in practice (drawing into a string does not fail); the `Result` is the drawing
/// library's.
pub fn render_svg(history: &History) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, history).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        root.present()
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    }
    Ok(svg)
}

impl History {
    /// Shows the curves inline in an evcxr Jupyter notebook (evcxr calls this when a cell's
    /// value is a `History`; call it yourself to redraw during training).
    pub fn evcxr_display(&self) {
        match render_svg(self) {
            Ok(svg) => println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT"),
            Err(e) => println!("plot: {e}"),
        }
    }
}

/// Registers the embedded font once per process.
fn register_embedded_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // the font is checked by the tests; if it failed, text would fail to draw with an error
        let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws both panels (or the one that has data) on `root`.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, history: &History) -> DrawResult {
    register_embedded_font();
    root.fill(&WHITE).map_err(err)?;
    let x_range = x_range(history);
    let has_loss = history
        .losses()
        .iter()
        .any(|s| !finite(&s.points).is_empty());
    let has_acc = history
        .accuracies()
        .iter()
        .any(|s| !finite(&s.points).is_empty());
    match (has_loss, has_acc) {
        (true, true) => {
            let (left, right) = root.split_horizontally(SIZE.0 / 2);
            draw_losses(&left, history, x_range.clone())?;
            draw_accuracies(&right, history, x_range)
        }
        (true, false) => draw_losses(root, history, x_range),
        (false, true) => draw_accuracies(root, history, x_range),
        (false, false) => {
            let style = (FAMILY, 20).into_font().color(&BLACK);
            root.draw_text("no data yet", &style, (20, 20)).map_err(err)
        }
    }
}

type DrawResult = std::result::Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn draw_losses<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    history: &History,
    x_range: Range<f64>,
) -> DrawResult {
    let (lo, hi) = y_min_max(history.losses());
    if use_log_scale(lo, hi) {
        let y = (lo / 1.25..hi * 1.25).log_scale();
        draw_loss_panel(area, history, x_range, y, "loss (log scale)")
    } else {
        draw_loss_panel(area, history, x_range, padded(lo, hi), "loss")
    }
}

/// A log scale pays off when the losses are positive and span more than a factor of ten.
fn use_log_scale(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo > 10.0
}

fn draw_loss_panel<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    history: &History,
    x_range: Range<f64>,
    y_range: Y,
    y_desc: &str,
) -> DrawResult
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = chart(area, "loss", x_range, y_range)?;
    let y_labels = if y_desc.contains("log") { 12 } else { 8 };
    mesh(&mut chart, y_desc, y_labels)?;
    for (i, s) in history.losses().iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = finite(&s.points);
        if points.len() > SMOOTH_ABOVE {
            let window = (points.len() / 30).max(5) | 1;
            chart
                .draw_series(LineSeries::new(points.clone(), color.mix(0.25)))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    moving_mean(&points, window),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} (mean of {window})", s.name))
                .legend(move |(x, y)| legend_line(x, y, color));
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| legend_line(x, y, color));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn draw_accuracies<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    history: &History,
    x_range: Range<f64>,
) -> DrawResult {
    let (lo, hi) = y_min_max(history.accuracies());
    let mut chart = chart(area, "accuracy", x_range, accuracy_range(lo, hi))?;
    mesh(&mut chart, "accuracy (%)", 8)?;
    for (i, s) in history.accuracies().iter().enumerate() {
        // after the loss colours, so that "test" is not the colour of "train" on the left
        let color = COLORS[(i + history.losses().len()) % COLORS.len()];
        let points = finite(&s.points);
        let last = points.last().map_or(f64::NAN, |p| p.1);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} (last {last:.1}%)", s.name))
            .legend(move |(x, y)| legend_line(x, y, color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

type Chart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

fn chart<'a, DB, Y>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x_range: Range<f64>,
    y_range: Y,
) -> std::result::Result<Chart<'a, DB, Y::CoordDescType>, String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
{
    ChartBuilder::on(area)
        .caption(caption, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x_range, y_range)
        .map_err(err)
}

/// `y_labels` is a hint: a log axis gets few labels from it (only powers of ten for 8), so it
/// asks for more.
fn mesh<DB, Y>(chart: &mut Chart<'_, DB, Y>, y_desc: &str, y_labels: usize) -> DrawResult
where
    DB: DrawingBackend,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 13))
        .x_labels(8)
        .y_labels(y_labels)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(err)
}

fn legend<'a, DB, Y>(chart: &mut Chart<'a, DB, Y>, position: SeriesLabelPosition) -> DrawResult
where
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)
}

fn legend_line(x: i32, y: i32, color: RGBColor) -> PathElement<(i32, i32)> {
    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// A tick label with at most three significant digits and no trailing zeros: `0.7`, `2`,
/// `97.5`, `0.05` (plotters' default prints `0.7000000000000001` on a log axis).
fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 12) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The points whose coordinates are both finite (a NaN loss is not drawn).
fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// `(min, max)` of the finite y values of `series`, `(0, 1)` for none.
fn y_min_max(series: &[Series]) -> (f64, f64) {
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| finite(&s.points).into_iter().map(|p| p.1))
        .collect();
    if ys.is_empty() {
        return (0.0, 1.0);
    }
    ys.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
            (lo.min(y), hi.max(y))
        })
}

/// `lo..hi` widened by 5% on each side (by 1 when `lo == hi`, so the range is never empty).
fn padded(lo: f64, hi: f64) -> Range<f64> {
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    lo - pad..hi + pad
}

/// From a multiple of 5 a little below the lowest accuracy (not below 0) up to 100 (or the
/// highest, if above), so that 97% and 98% look apart but the scale still reads as percent.
fn accuracy_range(lo: f64, hi: f64) -> Range<f64> {
    let bottom = (((lo - 2.0) / 5.0).floor() * 5.0).clamp(0.0, 95.0);
    bottom..hi.max(100.0) + 0.5
}

/// The x range shared by both panels: from 0 to the largest x of any series (at least 1).
fn x_range(history: &History) -> Range<f64> {
    let max = history
        .losses()
        .iter()
        .chain(history.accuracies())
        .flat_map(|s| finite(&s.points))
        .map(|p| p.0)
        .fold(1.0, f64::max);
    0.0..max
}

/// The mean of each point's `window` neighbours (`window / 2` on each side, fewer at the ends),
/// at the point's x.
fn moving_mean(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let half = window / 2;
    // prefix sums: the mean of points[a..b] is (sums[b] - sums[a]) / (b - a)
    let mut sums = Vec::with_capacity(points.len() + 1);
    sums.push(0.0);
    for (_, y) in points {
        sums.push(sums.last().unwrap() + y);
    }
    (0..points.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(half), (i + half + 1).min(points.len()));
            (points[i].0, (sums[b] - sums[a]) / (b - a) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn training_history(epochs: usize, steps: usize) -> History {
        let mut h = History::new();
        for e in 0..epochs {
            for s in 0..steps {
                let x = e as f64 + (s + 1) as f64 / steps as f64;
                // a decaying loss with a wobble, as per-batch losses have
                h.push_loss("train", x, 2.3 / (1.0 + 3.0 * x) + 0.05 * (s % 3) as f64);
            }
            let x = (e + 1) as f64;
            h.push_loss("test", x, 2.0 / (1.0 + 3.0 * x));
            h.push_accuracy("test", x, 100.0 - 30.0 / x);
        }
        h
    }

    /// The width and height in a PNG's IHDR chunk (bytes 16..24 after the signature).
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (w, h)
    }

    /// Whether the SVG has a `<text>` element reading exactly `text` (plotters puts the text on
    /// a line of its own).
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    #[test]
    fn embedded_font_is_a_valid_font() {
        assert!(register_font("tapegrad-test", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn save_png_writes_a_png_of_the_documented_size() {
        let dir = std::env::temp_dir().join(format!("tapegrad-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        save_png(&path, &training_history(5, 80)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), SIZE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_into_a_missing_folder_is_an_io_error_naming_the_path() {
        let path = std::env::temp_dir().join("tapegrad-no-such-dir/x/curves.png");
        let e = save_png(&path, &training_history(2, 3)).unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        assert!(
            e.to_string().contains("tapegrad-no-such-dir/x/curves.png"),
            "{e}"
        );
    }

    #[test]
    fn svg_has_both_panels_axis_labels_and_legends() {
        let svg = render_svg(&training_history(4, 80)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "loss",
            "accuracy",
            "epoch",
            "loss (log scale)",
            "accuracy (%)",
            "train (mean of 11)", // 320 points / 30 = 10, made odd
            "test",
            "test (last 92.5%)", // 100 - 30 / 4
        ] {
            assert!(has_text(&svg, text), "no text {text:?} in the SVG");
        }
    }

    #[test]
    fn accuracy_only_and_empty_histories_still_draw() {
        let mut h = History::new();
        h.push_accuracy("test", 1.0, 90.0);
        let svg = render_svg(&h).unwrap();
        assert!(has_text(&svg, "accuracy (%)") && !has_text(&svg, "loss"));
        assert!(has_text(
            &render_svg(&History::new()).unwrap(),
            "no data yet"
        ));
    }

    #[test]
    fn nan_losses_are_left_out_of_the_range() {
        let mut h = History::new();
        h.push_loss("train", 1.0, 0.5);
        h.push_loss("train", 2.0, f64::NAN);
        h.push_loss("train", 3.0, 0.25);
        assert_eq!(finite(h.loss("train").unwrap()), [(1.0, 0.5), (3.0, 0.25)]);
        assert!(has_text(&render_svg(&h).unwrap(), "loss"));
    }

    #[test]
    fn log_scale_only_for_positive_losses_spanning_a_factor_of_ten() {
        assert!(use_log_scale(0.05, 2.3));
        assert!(!use_log_scale(0.5, 2.3));
        assert!(!use_log_scale(-1.0, 2.3));
        assert!(!use_log_scale(0.0, 2.3));
    }

    #[test]
    fn accuracy_axis_starts_at_a_multiple_of_five_below_the_lowest() {
        // 96.5 - 2 = 94.5 -> 90
        assert_eq!(accuracy_range(96.5, 98.0), 90.0..100.5);
        assert_eq!(accuracy_range(10.0, 50.0), 5.0..100.5);
        assert_eq!(accuracy_range(0.0, 10.0), 0.0..100.5);
    }

    #[test]
    fn moving_mean_averages_neighbours_with_shorter_windows_at_the_ends() {
        let points: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 4.0, 10.0]
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        // window 3: (1+2)/2, (1+2+3)/3, (2+3+4)/3, (3+4+10)/3, (4+10)/2
        let m = moving_mean(&points, 3);
        let ys: Vec<f64> = m.iter().map(|p| p.1).collect();
        assert_eq!(ys, [1.5, 2.0, 3.0, 17.0 / 3.0, 7.0]);
        assert_eq!(m[3].0, 3.0);
    }

    #[test]
    fn tick_labels_have_three_significant_digits_and_no_trailing_zeros() {
        assert_eq!(tick_label(0.7000000000000001), "0.7");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(100.0), "100");
        assert_eq!(tick_label(97.5), "97.5");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(0.12345), "0.123");
        assert_eq!(tick_label(1234.0), "1234");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(-0.25), "-0.25");
    }

    #[test]
    fn x_range_runs_from_zero_to_the_last_epoch() {
        assert_eq!(x_range(&training_history(3, 4)), 0.0..3.0);
        assert_eq!(x_range(&History::new()), 0.0..1.0);
    }
}
