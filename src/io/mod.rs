//! Saving and loading tensors, models and optimizers, like `torch.save` / `torch.load`.
//!
//! - [`safetensors`]: the [safetensors](https://huggingface.co/docs/safetensors) format, read and
//!   written (f32, f64, i64, bool; f16 / bf16 and smaller integers converted on load). This is
//!   tapegrad's own checkpoint format.
//! - `torch`: reading PyTorch's `torch.save` zip files (`.pt`, `.pth`, `.bin`) — state dicts and
//!   nested checkpoints — without Python.
//! - [`save_optimizer`] / [`load_optimizer`]: an optimizer's [`StateDict`] as a safetensors file.
//!
//! Models save and load through [`Module`](crate::nn::Module):
//! [`state_dict`](crate::nn::Module::state_dict) /
//! [`load_state_dict`](crate::nn::Module::load_state_dict), or the file forms
//! [`save_safetensors`](crate::nn::Module::save_safetensors) /
//! [`load_safetensors`](crate::nn::Module::load_safetensors). Keys are PyTorch's (`fc1.weight`,
//! `bn.running_mean`), so a state dict saved from the equivalent PyTorch model loads here and back.
//!
//! Every save writes a temporary file next to the target and renames it into place, so an
//! interrupted save never destroys the previous checkpoint. Every load returns an
//! [`Error`](crate::Error) for a corrupt or truncated file; none panics.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::nn::{self, Module};
//! use tapegrad::optim::AdamW;
//!
//! # fn main() -> tapegrad::Result<()> {
//! let dir = std::env::temp_dir().join(format!("tapegrad-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let model = nn::Linear::new(3, 2);
//! let opt = AdamW::new(model.parameters(), 1e-3);
//! model.save_safetensors(dir.join("model.safetensors"))?;
//! tapegrad::io::save_optimizer(&opt, dir.join("optim.safetensors"))?;
//!
//! let restored = nn::Linear::new(3, 2);
//! let mut opt2 = AdamW::new(restored.parameters(), 1e-3);
//! let report = restored.load_safetensors(dir.join("model.safetensors"), true)?;
//! assert!(report.is_empty());
//! tapegrad::io::load_optimizer(&mut opt2, dir.join("optim.safetensors"))?;
//! assert_eq!(restored.weight.to_vec::<f32>(), model.weight.to_vec::<f32>());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod atomic;
pub mod safetensors;

use std::path::Path;

pub(crate) use atomic::write_atomic;

use crate::optim::{Optimizer, StateDict};
use crate::Result;

/// Writes an optimizer's [`state_dict`](Optimizer::state_dict) to a safetensors file, like
/// `torch.save(optimizer.state_dict(), path)`.
///
/// Buffers keep their keys (`state.0.exp_avg`); step counts and hyper-parameters
/// (`state.0.step`, `param_groups.0.lr`, …) are 0-dimensional float64 tensors, as
/// [`StateDict::to_tensors`] makes them.
///
/// # Errors
/// If the file cannot be written ([`Error::Io`](crate::Error::Io)); the previous file at `path`,
/// if any, is then left as it was.
pub fn save_optimizer(opt: &dyn Optimizer, path: impl AsRef<Path>) -> Result<()> {
    safetensors::save(&opt.state_dict().to_tensors(), path)
}

/// Restores an optimizer from a file written by [`save_optimizer`], like
/// `optimizer.load_state_dict(torch.load(path))`.
///
/// # Errors
/// If the file cannot be read or is not a valid safetensors file, or if its state does not fit
/// `opt` (see [`Optimizer::try_load_state_dict`]); `opt` is unchanged then.
pub fn load_optimizer(opt: &mut dyn Optimizer, path: impl AsRef<Path>) -> Result<()> {
    let sd = StateDict::try_from_tensors(safetensors::load(path)?)?;
    opt.try_load_state_dict(&sd)
}
