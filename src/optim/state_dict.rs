//! [`StateDict`]: an optimizer's state as flat, PyTorch-named keys.

use std::collections::BTreeMap;

use crate::tensor::DType;
use crate::Tensor;

/// An optimizer's state, as returned by [`Optimizer::state_dict`](super::Optimizer::state_dict):
/// PyTorch's nested `{"state": {i: {...}}, "param_groups": [{...}]}` flattened into dotted keys,
/// so that it can be written as a safetensors file with PyTorch's names.
///
/// | key | where | meaning |
/// |-----|-------|---------|
/// | `state.{i}.{buffer}` | `tensors` | buffer of parameter `i` (`exp_avg`, `momentum_buffer`, …) |
/// | `state.{i}.step` | `scalars` | steps taken by parameter `i` (optimizers that count them) |
/// | `param_groups.{g}.lr` | `scalars` | learning rate of group `g` |
/// | `param_groups.{g}.{name}` | `scalars` | other hyper-parameters (`betas.0`, `amsgrad` as 0/1, …) |
/// | `param_groups.{g}.params.{k}` | `scalars` | index `i` of the `k`-th parameter of group `g` |
///
/// Parameters are numbered across groups in order, as in PyTorch. The tensors are snapshots: they
/// share storage with the optimizer's buffers until the optimizer next writes them
/// (copy-on-write), so the dict keeps the values of the moment it was taken.
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    /// Per-parameter state buffers, keyed `state.{i}.{buffer}`.
    pub tensors: BTreeMap<String, Tensor>,
    /// Step counts and group hyper-parameters (see the table above).
    pub scalars: BTreeMap<String, f64>,
}

impl StateDict {
    /// Every entry as a tensor, scalars as 0-dimensional float64 tensors (how PyTorch stores
    /// `step`), ready to be written as one safetensors file.
    pub fn to_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = self.tensors.clone();
        for (k, &v) in &self.scalars {
            out.insert(k.clone(), Tensor::scalar_of(v, DType::F64));
        }
        out
    }

    /// The inverse of [`to_tensors`](StateDict::to_tensors): `state.{i}.step` and every
    /// `param_groups.*` entry become scalars, the rest stay tensors.
    ///
    /// # Panics
    /// If a scalar key holds a tensor with more than one element.
    #[track_caller]
    pub fn from_tensors(entries: BTreeMap<String, Tensor>) -> StateDict {
        let loc = std::panic::Location::caller();
        StateDict::try_from_tensors(entries)
            .unwrap_or_else(|e| panic!("StateDict::from_tensors: {e}, at {loc}"))
    }

    /// Like [`from_tensors`](StateDict::from_tensors), for entries read from a file.
    ///
    /// # Errors
    /// [`Error::Format`](crate::Error::Format) if a scalar key holds a tensor with more than one
    /// element.
    pub fn try_from_tensors(entries: BTreeMap<String, Tensor>) -> crate::Result<StateDict> {
        let mut sd = StateDict::default();
        for (k, t) in entries {
            if k.starts_with("param_groups.") || (k.starts_with("state.") && k.ends_with(".step")) {
                if t.numel() != 1 {
                    return Err(crate::Error::Format(format!(
                        "'{k}' should be a scalar but has shape {:?}",
                        t.shape()
                    )));
                }
                sd.scalars.insert(k, t.item());
            } else {
                sd.tensors.insert(k, t);
            }
        }
        Ok(sd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tensors_and_back_keeps_every_entry() {
        let mut sd = StateDict::default();
        sd.tensors.insert(
            "state.0.exp_avg".into(),
            Tensor::from_vec(vec![1.0, 2.0], &[2]),
        );
        sd.scalars.insert("state.0.step".into(), 3.0);
        sd.scalars.insert("param_groups.0.lr".into(), 1e-3);
        let flat = sd.to_tensors();
        assert_eq!(flat.len(), 3);
        assert_eq!(flat["state.0.step"].dtype(), DType::F64);
        let back = StateDict::from_tensors(flat);
        assert_eq!(back.scalars, sd.scalars);
        assert_eq!(
            back.tensors["state.0.exp_avg"].to_vec::<f32>(),
            vec![1.0, 2.0]
        );
    }

    #[test]
    #[should_panic(expected = "StateDict::from_tensors: 'param_groups.0.lr' should be a scalar")]
    fn from_tensors_rejects_a_vector_for_a_scalar_key() {
        let mut m = BTreeMap::new();
        m.insert("param_groups.0.lr".to_string(), Tensor::zeros(&[2]));
        StateDict::from_tensors(m);
    }
}
