//! [`History`]: the loss and accuracy curves of a training run, recorded as it goes.

/// One named curve: `(x, y)` points in the order they were recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The name shown in the legend (`"train"`, `"test"`).
    pub name: String,
    /// The points; `x` is usually in epochs (fractional for per-batch losses).
    pub points: Vec<(f64, f64)>,
}

/// The loss and accuracy curves of a training run, like the lists a PyTorch script appends
/// `loss.item()` to before calling matplotlib: push points as training goes, then draw them with
/// [`save_png`](super::save_png) or [`render_svg`](super::render_svg).
///
/// Losses and accuracies are drawn in two panels side by side; each holds any number of named
/// series (a per-batch training loss and a per-epoch test loss, say).
///
/// ```
/// use tapegrad::plot::History;
///
/// let mut history = History::new();
/// history.push_loss("train", 0.5, 0.9);
/// history.push_loss("train", 1.0, 0.4);
/// history.push_accuracy("test", 1.0, 91.5);
/// assert_eq!(history.loss("train").unwrap(), &[(0.5, 0.9), (1.0, 0.4)]);
/// assert_eq!(history.accuracy("test").unwrap().last(), Some(&(1.0, 91.5)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    losses: Vec<Series>,
    accuracies: Vec<Series>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Appends `(x, loss)` to the loss series `series` (made on first use).
    pub fn push_loss(&mut self, series: &str, x: f64, loss: f64) {
        push(&mut self.losses, series, x, loss);
    }

    /// Appends `(x, percent)` to the accuracy series `series` (made on first use); accuracies
    /// are percentages, `0..=100`.
    pub fn push_accuracy(&mut self, series: &str, x: f64, percent: f64) {
        push(&mut self.accuracies, series, x, percent);
    }

    /// The points of a loss series, if there is one of that name.
    pub fn loss(&self, series: &str) -> Option<&[(f64, f64)]> {
        find(&self.losses, series)
    }

    /// The points of an accuracy series, if there is one of that name.
    pub fn accuracy(&self, series: &str) -> Option<&[(f64, f64)]> {
        find(&self.accuracies, series)
    }

    /// All loss series, in the order they were first pushed to.
    pub fn losses(&self) -> &[Series] {
        &self.losses
    }

    /// All accuracy series, in the order they were first pushed to.
    pub fn accuracies(&self) -> &[Series] {
        &self.accuracies
    }

    /// True when no point has been pushed.
    pub fn is_empty(&self) -> bool {
        self.losses.is_empty() && self.accuracies.is_empty()
    }
}

fn push(all: &mut Vec<Series>, name: &str, x: f64, y: f64) {
    match all.iter_mut().find(|s| s.name == name) {
        Some(s) => s.points.push((x, y)),
        None => all.push(Series {
            name: name.to_string(),
            points: vec![(x, y)],
        }),
    }
}

fn find<'a>(all: &'a [Series], name: &str) -> Option<&'a [(f64, f64)]> {
    all.iter()
        .find(|s| s.name == name)
        .map(|s| s.points.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_made_on_first_push_and_keep_their_order() {
        let mut h = History::new();
        assert!(h.is_empty());
        h.push_loss("train", 0.1, 2.0);
        h.push_loss("test", 1.0, 1.5);
        h.push_loss("train", 0.2, 1.8);
        h.push_accuracy("test", 1.0, 80.0);
        assert!(!h.is_empty());
        let names: Vec<&str> = h.losses().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["train", "test"]);
        assert_eq!(h.loss("train").unwrap(), &[(0.1, 2.0), (0.2, 1.8)]);
        assert_eq!(h.accuracy("test").unwrap(), &[(1.0, 80.0)]);
        assert_eq!(h.loss("valid"), None);
        assert_eq!(h.accuracy("train"), None);
    }
}
