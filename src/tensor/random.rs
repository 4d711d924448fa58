//! Random number generation: a global generator seeded by [`manual_seed`], and explicit
//! [`Generator`]s for code that wants its own stream (like `torch.Generator`).
//!
//! The same seed always gives the same numbers, on every platform and thread count.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A seeded random number generator, like `torch.Generator`.
///
/// ```
/// use tapegrad::prelude::*;
/// let mut g1 = Generator::new(7);
/// let mut g2 = Generator::new(7);
/// assert_eq!(Tensor::randn_with(&[4], &mut g1).to_vec::<f32>(),
///            Tensor::randn_with(&[4], &mut g2).to_vec::<f32>());
/// ```
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Reseeds this generator.
    pub fn manual_seed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// A uniform sample in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A uniform integer in `[low, high)`.
    ///
    /// # Panics
    /// If `low >= high`.
    pub fn next_range(&mut self, low: i64, high: i64) -> i64 {
        self.rng.random_range(low..high)
    }

    /// A standard normal sample (Box–Muller, so the stream is the same on every platform).
    pub fn next_normal(&mut self) -> f64 {
        loop {
            let u1: f64 = self.rng.random::<f64>();
            if u1 > f64::MIN_POSITIVE {
                let u2: f64 = self.rng.random::<f64>();
                return (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            }
        }
    }

    /// A random permutation of `0..n` (Fisher–Yates), like `torch.randperm`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.random_range(0..=i);
            p.swap(i, j);
        }
        p
    }

    /// Access to the underlying RNG for `rand` / `rand_distr` samplers.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

/// Seeds the global generator used by `Tensor::rand`, `randn`, dropout, shuffling, and parameter
/// initialisation, like `torch.manual_seed`.
///
/// The global generator is process-wide, like PyTorch's default generator: threads that draw from
/// it at the same time interleave their draws, so a run is reproducible when one thread draws at
/// a time. Code that runs concurrently and must be reproducible per thread gives each thread its
/// own [`Generator`] (`Tensor::randn_with`, `DataLoader::shuffle`).
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Runs `f` with the global generator (which has a fixed default seed until [`manual_seed`] is
/// called).
pub fn with_global<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(|| Generator::new(0x5eed)))
}
