//! [`SyncBatchNorm`]: batch normalisation whose batch statistics are those of all ranks' batches
//! together, like `torch.nn.SyncBatchNorm`, and the differentiable all-reduce it is built on
//! ([`all_reduce_with_grad`], `torch.distributed.nn.functional.all_reduce`).

use std::panic::Location;

use crate::autograd::function::Op;
use crate::distributed::{ProcessGroup, ReduceOp};
use crate::nn::functional as F;
use crate::nn::{BatchNorm, Forward, Module, TrainFlag, Visitor};
use crate::tensor::Tensor;

/// The sum of `t` over all ranks of `group`, recorded on the tape, like
/// `torch.distributed.nn.functional.all_reduce(t, op=SUM)`.
///
/// Every rank gets `y = Σ_ranks t`. Its backward is again an all-reduce of the sum: the gradient
/// of the ranks' total loss `Σ_r L_r` with respect to this rank's `t` is `Σ_r ∂L_r/∂y`. Under
/// `create_graph` the backward is recorded too, so the gradient can be differentiated again.
///
/// Every rank must call it (and, in backward, reach it) in the same order.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::distributed::{all_reduce_with_grad, launch, Backend};
/// # fn main() -> tapegrad::Result<()> {
/// let grads = launch(Backend::Threads(2), |pg| {
///     let x = Tensor::full(&[2], pg.rank() as f32 + 1.0).requires_grad();
///     let y = all_reduce_with_grad(&x, &pg); // [3, 3] on both ranks
///     assert_eq!(y.to_vec::<f32>(), vec![3.0, 3.0]);
///     // each rank's loss is Σ y · (rank + 1): the total's gradient is 1 + 2 = 3 per element
///     (&y * (pg.rank() as f64 + 1.0)).sum().backward();
///     x.grad().unwrap().to_vec::<f32>()
/// })?;
/// assert_eq!(grads, vec![vec![3.0, 3.0], vec![3.0, 3.0]]);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
/// If the collective fails (a rank died or the group's timeout elapsed), in forward or backward,
/// naming the shape and the error.
#[track_caller]
pub fn all_reduce_with_grad(t: &Tensor, group: &ProcessGroup) -> Tensor {
    let loc = Location::caller();
    let reduced = reduce_copy(t, group, loc);
    let inputs = [t];
    let op = Op::new("all_reduce", &inputs);
    let group = group.clone();
    op.finish(reduced.data(), move |_ctx, g| {
        vec![Some(all_reduce_with_grad(g, &group))]
    })
}

/// A fresh copy of `t` summed over the ranks (the input is left as it is).
fn reduce_copy(t: &Tensor, group: &ProcessGroup, loc: &Location) -> Tensor {
    let _no_grad = crate::autograd::no_grad();
    let out = Tensor::zeros_dtype(t.shape(), t.dtype());
    out.copy_(&t.detach());
    if group.world_size() > 1 {
        if let Err(e) = group.all_reduce(&out, ReduceOp::Sum) {
            panic!(
                "all_reduce_with_grad: the all_reduce of a tensor of shape {:?} failed on rank {} \
                 of {}: {e}, at {loc}",
                t.shape(),
                group.rank(),
                group.world_size()
            );
        }
    }
    out
}

/// Batch normalisation over `[N, C, ...]` whose per-channel mean and variance are computed over
/// the batches of all ranks of a process group, like `torch.nn.SyncBatchNorm`.
///
/// With data parallelism each rank sees a slice of the global batch; plain
/// [`BatchNorm`] would normalise each slice by its own statistics, so a model trained on `N`
/// ranks would differ from the same model trained on the whole batch (and small per-rank batches
/// give noisy statistics). `SyncBatchNorm` sums the per-channel counts, sums and squared
/// deviations over the ranks (two small all-reduces per forward, recorded on the tape: the
/// backward all-reduces the gradients of those sums, as PyTorch's does), so the output and
/// gradients equal those of `BatchNorm` on the concatenated batch. Running statistics are
/// updated as `BatchNorm`'s, from the global statistics, so they are the same on every rank. In
/// eval mode it is `BatchNorm` with the running statistics (no communication).
///
/// Every rank must run the forward and the backward in step (the per-rank batch sizes may
/// differ).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::distributed::{launch, Backend};
/// use tapegrad::nn::{Forward, SyncBatchNorm};
/// # fn main() -> tapegrad::Result<()> {
/// let outs = launch(Backend::Threads(2), |pg| {
///     let bn = SyncBatchNorm::new(1, &pg);
///     // rank 0 holds [1, 1], rank 1 holds [3, 3]: the global mean is 2, the variance 1
///     let x = Tensor::full(&[2, 1], 1.0 + 2.0 * pg.rank() as f32);
///     bn.forward(&x).to_vec::<f32>()
/// })?;
/// assert!((outs[0][0] + 1.0).abs() < 1e-4 && (outs[1][0] - 1.0).abs() < 1e-4);
/// # Ok(())
/// # }
/// ```
pub struct SyncBatchNorm {
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
    group: ProcessGroup,
}

impl SyncBatchNorm {
    /// A layer for `num_features` channels synchronised over `group` (momentum 0.1, eps 1e-5,
    /// affine), like `nn.SyncBatchNorm(num_features, process_group=group)`.
    pub fn new(num_features: usize, group: &ProcessGroup) -> SyncBatchNorm {
        SyncBatchNorm::from_batch_norm(&BatchNorm::new(num_features), group)
    }

    /// The synchronised version of `bn`, sharing its parameters, buffers and flag (so an
    /// optimizer built on `bn`'s parameters trains it), like `nn.SyncBatchNorm.convert_sync_batchnorm`
    /// for one layer.
    pub fn from_batch_norm(bn: &BatchNorm, group: &ProcessGroup) -> SyncBatchNorm {
        SyncBatchNorm {
            weight: bn.weight.clone(),
            bias: bn.bias.clone(),
            running_mean: bn.running_mean.clone(),
            running_var: bn.running_var.clone(),
            num_batches_tracked: bn.num_batches_tracked.clone(),
            momentum: bn.momentum,
            eps: bn.eps,
            training: bn.training.clone(),
            group: group.clone(),
        }
    }

    /// The process group the statistics are reduced over.
    pub fn process_group(&self) -> &ProcessGroup {
        &self.group
    }
}

impl Module for SyncBatchNorm {
    /// The names of `BatchNorm`'s, so checkpoints load into either.
    fn visit(&self, v: &mut Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.num_batches_tracked);
        v.flag(&self.training);
    }
}

impl Forward for SyncBatchNorm {
    /// # Panics
    /// If the input is not `[N, C, ...]` with `C` channels, if in training the ranks hold one
    /// value per channel or fewer in total, or if a collective fails.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let loc = Location::caller();
        let c = self.weight.numel();
        if x.ndim() < 2 || x.shape()[1] != c {
            panic!(
                "SyncBatchNorm: expected an input of shape [N, {c}, ...], got {:?}, at {loc}",
                x.shape()
            );
        }
        if !self.training.get() {
            return F::batch_norm(
                x,
                Some(&self.running_mean),
                Some(&self.running_var),
                Some(&self.weight),
                Some(&self.bias),
                false,
                self.momentum,
                self.eps,
            );
        }
        let n = self.num_batches_tracked.item() as i64 + 1;
        self.num_batches_tracked
            .assign(&Tensor::from_values(vec![n], &[]));
        sync_batch_norm_train(self, x, loc)
    }
}

/// The training forward: global mean, then global biased variance (two-pass, as `batch_norm`'s
/// kernel, so that the result matches it closely), both through [`all_reduce_with_grad`].
fn sync_batch_norm_train(bn: &SyncBatchNorm, x: &Tensor, loc: &Location) -> Tensor {
    let shape = x.shape();
    let c = shape[1];
    let dims: Vec<usize> = (0..shape.len()).filter(|&d| d != 1).collect();
    let mut channel = vec![1; shape.len()];
    channel[1] = c;
    // the count rides along with the sums: one collective for both
    let local_count = (x.numel() / c.max(1)) as f64;
    let count = Tensor::full(&[1], local_count as f32).to_dtype(x.dtype());
    let packed = Tensor::cat(&[&x.sum_dim(dims.as_slice(), false), &count], 0);
    let total = all_reduce_with_grad(&packed, &bn.group);
    let n = total.narrow(0, c as isize, 1).detach().item();
    if n <= 1.0 {
        panic!(
            "SyncBatchNorm: expected more than 1 value per channel over all ranks when training, \
             got {n} (input of shape {shape:?} on rank {}), at {loc}",
            bn.group.rank()
        );
    }
    let mean = total.narrow(0, 0, c) / n;
    let centered = x - mean.reshape(channel.as_slice());
    let sq = (&centered * &centered).sum_dim(dims.as_slice(), false);
    let var = all_reduce_with_grad(&sq, &bn.group) / n;
    let rstd = (&var + bn.eps).rsqrt();
    let y = centered * rstd.reshape(channel.as_slice()) * bn.weight.reshape(channel.as_slice())
        + bn.bias.reshape(channel.as_slice());
    let _no_grad = crate::autograd::no_grad();
    let m = bn.momentum;
    bn.running_mean
        .mul_scalar_(1.0 - m)
        .add_scaled_(&mean.detach(), m);
    // Bessel's correction over the global count, as BatchNorm's running variance
    bn.running_var
        .mul_scalar_(1.0 - m)
        .add_scaled_(&(var.detach() * (n / (n - 1.0))), m);
    y
}
