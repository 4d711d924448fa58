//! The training-step workloads timed by `benches/train_steps.rs` and by
//! `examples/bench_compare.rs` (against PyTorch, in `scripts/compare_pytorch.py`): one file, so the
//! criterion benches and the comparison run exactly the same code.
//!
//! - `mlp_step`: MLP 784-256-128-10 (ReLU), batch 64, cross-entropy, SGD with momentum 0.9; one
//!   full step (zero_grad, forward, loss, backward, optimizer step).
//! - `cnn_step`: conv(1→8, 3×3)-relu-maxpool 2-conv(8→16, 3×3)-relu-maxpool 2-flatten-
//!   linear(400→10) on a batch of 64 1×28×28 images, cross-entropy, one SGD step.
//! - `transformer_step`: a pre-LN transformer encoder block (PyTorch's
//!   `nn.TransformerEncoderLayer(128, 4, 512, dropout=0, activation="gelu", norm_first=True,
//!   batch_first=True)`) on `[8, 64, 128]`: forward, `.sum()`, backward.

#![allow(dead_code)] // each includer uses part of it

use tapegrad::nn::functional::{cross_entropy, scaled_dot_product_attention, CrossEntropyOpts};
use tapegrad::nn::{self, Forward, Module};
use tapegrad::optim::{Optimizer, Sgd};
use tapegrad::prelude::*;

/// MLP 784-256-128-10 with ReLU.
#[derive(Module)]
pub struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

impl Mlp {
    pub fn new() -> Mlp {
        Mlp {
            fc1: nn::Linear::new(784, 256),
            fc2: nn::Linear::new(256, 128),
            fc3: nn::Linear::new(128, 10),
        }
    }
}

impl Forward for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.fc1.forward(x).relu();
        let h = self.fc2.forward(&h).relu();
        self.fc3.forward(&h)
    }
}

/// conv(1→8, 3)-relu-pool-conv(8→16, 3)-relu-pool-flatten-linear(400→10).
#[derive(Module)]
pub struct Cnn {
    conv1: nn::Conv2d,
    conv2: nn::Conv2d,
    pool: nn::MaxPool2d,
    fc: nn::Linear,
}

impl Cnn {
    pub fn new() -> Cnn {
        Cnn {
            conv1: nn::Conv2d::new(1, 8, 3),
            conv2: nn::Conv2d::new(8, 16, 3),
            pool: nn::MaxPool2d::new(2),
            fc: nn::Linear::new(400, 10),
        }
    }
}

impl Forward for Cnn {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.pool.forward(&self.conv1.forward(x).relu());
        let h = self.pool.forward(&self.conv2.forward(&h).relu());
        self.fc.forward(&h.flatten(1, -1))
    }
}

/// A model, its optimizer and one fixed batch: `step()` runs one training step.
pub struct TrainStep<M> {
    pub model: M,
    pub opt: Sgd,
    pub x: Tensor,
    pub y: Tensor,
}

impl<M: Module + Forward> TrainStep<M> {
    /// zero_grad, forward, cross-entropy, backward, SGD step; returns the loss.
    pub fn step(&mut self) -> Tensor {
        self.opt.zero_grad();
        let loss = cross_entropy(
            &self.model.forward(&self.x),
            &self.y,
            &CrossEntropyOpts::default(),
        );
        loss.backward();
        self.opt.step();
        loss
    }
}

/// The MLP step on random data (batch 64), SGD lr 0.01 momentum 0.9.
pub fn mlp_step() -> TrainStep<Mlp> {
    let model = Mlp::new();
    let opt = Sgd::new(model.parameters(), 0.01).momentum(0.9);
    TrainStep {
        model,
        opt,
        x: Tensor::randn(&[64, 784]),
        y: Tensor::randint(0, 10, &[64]),
    }
}

/// The CNN step on random 1×28×28 images (batch 64), SGD lr 0.01.
pub fn cnn_step() -> TrainStep<Cnn> {
    let model = Cnn::new();
    let opt = Sgd::new(model.parameters(), 0.01);
    TrainStep {
        model,
        opt,
        x: Tensor::randn(&[64, 1, 28, 28]),
        y: Tensor::randint(0, 10, &[64]),
    }
}

/// A pre-LN transformer encoder block with the math of PyTorch's `nn.TransformerEncoderLayer`
/// (`norm_first=True`, `activation="gelu"`, no dropout):
///
/// ```text
/// x = x + out_proj(attention(in_proj(norm1(x)) split into q, k, v over `heads` heads))
/// x = x + linear2(gelu(linear1(norm2(x))))
/// ```
#[derive(Module)]
pub struct EncoderBlock {
    norm1: nn::LayerNorm,
    in_proj: nn::Linear,
    out_proj: nn::Linear,
    norm2: nn::LayerNorm,
    linear1: nn::Linear,
    linear2: nn::Linear,
    heads: usize,
}

impl EncoderBlock {
    pub fn new(d_model: usize, heads: usize, d_ff: usize) -> EncoderBlock {
        EncoderBlock {
            norm1: nn::LayerNorm::new(&[d_model]),
            in_proj: nn::Linear::new(d_model, 3 * d_model),
            out_proj: nn::Linear::new(d_model, d_model),
            norm2: nn::LayerNorm::new(&[d_model]),
            linear1: nn::Linear::new(d_model, d_ff),
            linear2: nn::Linear::new(d_ff, d_model),
            heads,
        }
    }
}

impl Forward for EncoderBlock {
    /// `x` is `[batch, seq, d_model]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, s, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let h = self.heads;
        // [b, s, 3d] -> [b, s, 3, h, d/h] -> [3, b, h, s, d/h]
        let qkv = self
            .in_proj
            .forward(&self.norm1.forward(x))
            .reshape([b, s, 3, h, d / h])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2));
        let a = scaled_dot_product_attention(&q, &k, &v, None, 0.0, false, None);
        let a = a.transpose(1, 2).reshape([b, s, d]);
        let x = x + self.out_proj.forward(&a);
        let f = self
            .linear2
            .forward(&self.linear1.forward(&self.norm2.forward(&x)).gelu());
        &x + f
    }
}

/// The transformer block (d_model 128, 4 heads, MLP 512) and its input `[8, 64, 128]`.
pub fn transformer_block() -> (EncoderBlock, Tensor) {
    (EncoderBlock::new(128, 4, 512), Tensor::randn(&[8, 64, 128]))
}

/// One forward + backward of the block (gradients reset first, as `zero_grad` does).
pub fn transformer_step(block: &EncoderBlock, x: &Tensor) -> Tensor {
    for p in block.parameters() {
        p.set_grad(None);
    }
    let y = block.forward(x).sum();
    y.backward();
    y
}
