//! Normalisation, dropout and embedding layers: `BatchNorm1d` / `BatchNorm2d`, `LayerNorm`,
//! `GroupNorm`, `Dropout`, `Embedding`.

use super::functional as F;
use super::module::{Forward, Module, TrainFlag, Visitor};
use crate::tensor::{DType, Tensor};

/// Batch normalisation with running statistics, like `nn.BatchNorm1d` / `nn.BatchNorm2d`: in
/// training mode it normalises with the batch's statistics and updates `running_mean` /
/// `running_var` with `momentum`; in eval mode it uses the running statistics.
///
/// The state dict holds `weight`, `bias`, `running_mean`, `running_var` and `num_batches_tracked`,
/// as in PyTorch.
pub struct BatchNorm {
    /// Scale, `[C]` (ones at start).
    pub weight: Tensor,
    /// Shift, `[C]` (zeros at start).
    pub bias: Tensor,
    /// Running mean, `[C]`.
    pub running_mean: Tensor,
    /// Running variance, `[C]`.
    pub running_var: Tensor,
    /// Number of training batches seen (int64, 0-d).
    pub num_batches_tracked: Tensor,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance for stability.
    pub eps: f64,
    /// Train / eval mode.
    pub training: TrainFlag,
}

/// `nn.BatchNorm1d`: over `[N, C]` or `[N, C, L]`.
pub type BatchNorm1d = BatchNorm;
/// `nn.BatchNorm2d`: over `[N, C, H, W]`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    /// A layer for `num_features` channels (momentum 0.1, eps 1e-5, affine).
    pub fn new(num_features: usize) -> BatchNorm {
        BatchNorm {
            weight: Tensor::ones(&[num_features]).requires_grad(),
            bias: Tensor::zeros(&[num_features]).requires_grad(),
            running_mean: Tensor::zeros(&[num_features]),
            running_var: Tensor::ones(&[num_features]),
            num_batches_tracked: Tensor::zeros_dtype(&[], DType::I64),
            momentum: 0.1,
            eps: 1e-5,
            training: TrainFlag::default(),
        }
    }
}

impl Module for BatchNorm {
    fn visit(&self, v: &mut Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.num_batches_tracked);
        v.flag(&self.training);
    }
}

impl Forward for BatchNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let training = self.training.get();
        if training {
            let n = self.num_batches_tracked.item() as i64 + 1;
            self.num_batches_tracked
                .assign(&Tensor::from_values(vec![n], &[]));
        }
        F::batch_norm(
            x,
            Some(&self.running_mean),
            Some(&self.running_var),
            Some(&self.weight),
            Some(&self.bias),
            training,
            self.momentum,
            self.eps,
        )
    }
}

/// Layer normalisation over the trailing `normalized_shape` dims, like `nn.LayerNorm`.
pub struct LayerNorm {
    /// Scale, of `normalized_shape` (ones at start), if affine.
    pub weight: Option<Tensor>,
    /// Shift (zeros at start), if affine.
    pub bias: Option<Tensor>,
    /// The trailing dims normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance for stability.
    pub eps: f64,
}

impl LayerNorm {
    /// An affine layer norm with eps 1e-5.
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        LayerNorm {
            weight: Some(Tensor::ones(normalized_shape).requires_grad()),
            bias: Some(Tensor::zeros(normalized_shape).requires_grad()),
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
        }
    }
}

impl Module for LayerNorm {
    fn visit(&self, v: &mut Visitor) {
        if let Some(w) = &self.weight {
            v.param("weight", w);
        }
        if let Some(b) = &self.bias {
            v.param("bias", b);
        }
    }
}

impl Forward for LayerNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::layer_norm(
            x,
            &self.normalized_shape,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.eps,
        )
    }
}

/// Group normalisation, like `nn.GroupNorm(num_groups, num_channels)`.
pub struct GroupNorm {
    /// Scale, `[C]`.
    pub weight: Tensor,
    /// Shift, `[C]`.
    pub bias: Tensor,
    /// Number of channel groups.
    pub num_groups: usize,
    /// Added to the variance for stability.
    pub eps: f64,
}

impl GroupNorm {
    /// An affine group norm with eps 1e-5.
    pub fn new(num_groups: usize, num_channels: usize) -> GroupNorm {
        GroupNorm {
            weight: Tensor::ones(&[num_channels]).requires_grad(),
            bias: Tensor::zeros(&[num_channels]).requires_grad(),
            num_groups,
            eps: 1e-5,
        }
    }
}

impl Module for GroupNorm {
    fn visit(&self, v: &mut Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
    }
}

impl Forward for GroupNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::group_norm(
            x,
            self.num_groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
        )
    }
}

/// Zeroes each element with probability `p` in training mode (scaling the rest by `1/(1-p)`),
/// identity in eval mode, like `nn.Dropout(p)`.
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    /// Train / eval mode.
    pub training: TrainFlag,
}

impl Dropout {
    /// Dropout with probability `p`.
    pub fn new(p: f64) -> Dropout {
        Dropout {
            p,
            training: TrainFlag::default(),
        }
    }
}

impl Module for Dropout {
    fn visit(&self, v: &mut Visitor) {
        v.flag(&self.training);
    }
}

impl Forward for Dropout {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::dropout(x, self.p, self.training.get())
    }
}

/// A lookup table of `num_embeddings` vectors, like `nn.Embedding` (initialised N(0, 1)).
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    /// A row that gets no gradient (and starts at zero).
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// A table of `num_embeddings` vectors of size `embedding_dim`.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Embedding {
        Embedding {
            weight: Tensor::randn(&[num_embeddings, embedding_dim]).requires_grad(),
            padding_idx: None,
        }
    }
}

impl Module for Embedding {
    fn visit(&self, v: &mut Visitor) {
        v.param("weight", &self.weight);
    }
}

impl Forward for Embedding {
    /// Looks up int64 `indices` of any shape, giving `[..., embedding_dim]`.
    #[track_caller]
    fn forward(&self, indices: &Tensor) -> Tensor {
        F::embedding(indices, &self.weight, self.padding_idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_norm_state_dict_matches_pytorch_keys() {
        let bn = BatchNorm2d::new(3);
        let keys: Vec<String> = bn.state_dict().into_keys().collect();
        assert_eq!(
            keys,
            [
                "bias",
                "num_batches_tracked",
                "running_mean",
                "running_var",
                "weight"
            ]
        );
        assert_eq!(bn.parameters().len(), 2);
    }

    #[test]
    fn batch_norm_updates_running_stats_only_in_training() {
        let bn = BatchNorm1d::new(2);
        // per-channel batch means [2, 20], unbiased variances [2, 200]
        let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]);
        bn.forward(&x);
        assert_eq!(bn.num_batches_tracked.item(), 1.0);
        let rm = bn.running_mean.to_vec::<f32>();
        assert!(
            (rm[0] - 0.2).abs() < 1e-6 && (rm[1] - 2.0).abs() < 1e-6,
            "{rm:?}"
        );
        bn.eval();
        let before = bn.running_mean.to_vec::<f32>();
        bn.forward(&x);
        assert_eq!(bn.running_mean.to_vec::<f32>(), before);
        assert_eq!(bn.num_batches_tracked.item(), 1.0);
    }

    #[test]
    fn dropout_is_identity_in_eval_mode() {
        let d = Dropout::new(0.5);
        let x = Tensor::ones(&[1000]);
        let zeros = d
            .forward(&x)
            .to_vec::<f32>()
            .iter()
            .filter(|v| **v == 0.0)
            .count();
        assert!(zeros > 400 && zeros < 600, "{zeros}");
        d.eval();
        assert_eq!(d.forward(&x).to_vec::<f32>(), x.to_vec::<f32>());
    }

    #[test]
    fn layer_norm_group_norm_embedding_shapes() {
        let x = Tensor::randn(&[2, 4, 3, 3]);
        assert_eq!(LayerNorm::new(&[3, 3]).forward(&x).shape(), x.shape());
        assert_eq!(GroupNorm::new(2, 4).forward(&x).shape(), x.shape());
        let e = Embedding::new(10, 5);
        let idx = Tensor::from_vec_i64(vec![1, 2, 9], &[3]);
        assert_eq!(e.forward(&idx).shape(), &[3, 5]);
    }
}
