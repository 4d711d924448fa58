//! Convolution and pooling layers: `Conv1d`, `Conv2d`, `ConvTranspose2d`, `MaxPool2d`,
//! `AvgPool2d`, `AdaptiveAvgPool2d`. Each holds its parameters and options and calls the
//! functional op in [`functional`](super::functional).

use super::functional::{self as F, Conv2dOpts, Size2};
use super::init;
use super::module::{Forward, Module, Visitor};
use crate::tensor::Tensor;

fn new_param(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape)
}

fn finish(weight: Tensor, bias: Option<Tensor>) -> (Tensor, Option<Tensor>) {
    init::default_weight_and_bias(&weight, bias.as_ref());
    (weight.requires_grad(), bias.map(Tensor::requires_grad))
}

fn visit_wb(v: &mut Visitor, weight: &Tensor, bias: &Option<Tensor>) {
    v.param("weight", weight);
    if let Some(b) = bias {
        v.param("bias", b);
    }
}

/// A 2-d convolution over `[N, C, H, W]` inputs, like `nn.Conv2d`. `weight` is
/// `[out, in / groups, kH, kW]`, initialised as PyTorch does.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::Conv2d;
/// let conv = Conv2d::new(1, 8, 3).padding(1);
/// assert_eq!(conv.forward(&Tensor::zeros(&[2, 1, 28, 28])).shape(), &[2, 8, 28, 28]);
/// ```
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kH, kW]`.
    pub weight: Tensor,
    /// `[out_channels]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    pub opts: Conv2dOpts,
}

impl Conv2d {
    /// A convolution with a bias, stride 1 and no padding.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Size2) -> Conv2d {
        Conv2d::with_options(
            in_channels,
            out_channels,
            kernel_size,
            Conv2dOpts::default(),
            true,
        )
    }

    /// A convolution with the given options (groups must divide both channel counts).
    ///
    /// # Panics
    /// If `groups` is 0 or does not divide the channel counts.
    #[track_caller]
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Size2,
        opts: Conv2dOpts,
        bias: bool,
    ) -> Conv2d {
        let g = opts.groups;
        if g == 0 || in_channels % g != 0 || out_channels % g != 0 {
            panic!(
                "Conv2d: groups ({g}) must divide in_channels ({in_channels}) and out_channels \
                 ({out_channels}), at {}",
                std::panic::Location::caller()
            );
        }
        let (kh, kw) = kernel_size.pair();
        let (weight, bias) = finish(
            new_param(&[out_channels, in_channels / g, kh, kw]),
            bias.then(|| new_param(&[out_channels])),
        );
        Conv2d { weight, bias, opts }
    }

    /// Sets the stride (builder style).
    pub fn stride(mut self, s: impl Size2) -> Conv2d {
        self.opts = self.opts.stride(s);
        self
    }

    /// Sets the zero padding (builder style).
    pub fn padding(mut self, p: impl Size2) -> Conv2d {
        self.opts = self.opts.padding(p);
        self
    }
}

impl Module for Conv2d {
    fn visit(&self, v: &mut Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for Conv2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::conv2d(x, &self.weight, self.bias.as_ref(), self.opts)
    }
}

/// A 1-d convolution over `[N, C, L]` inputs, like `nn.Conv1d`.
pub struct Conv1d {
    /// `[out_channels, in_channels / groups, k]`.
    pub weight: Tensor,
    /// `[out_channels]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on both sides.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Blocked connections between input and output channels.
    pub groups: usize,
}

impl Conv1d {
    /// A convolution with a bias, stride 1, no padding, one group.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Conv1d {
        let (weight, bias) = finish(
            new_param(&[out_channels, in_channels, kernel_size]),
            Some(new_param(&[out_channels])),
        );
        Conv1d {
            weight,
            bias,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Module for Conv1d {
    fn visit(&self, v: &mut Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for Conv1d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::conv1d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
}

/// A transposed 2-d convolution, like `nn.ConvTranspose2d`. `weight` is
/// `[in, out / groups, kH, kW]`.
pub struct ConvTranspose2d {
    /// `[in_channels, out_channels / groups, kH, kW]`.
    pub weight: Tensor,
    /// `[out_channels]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// Stride of the matching convolution.
    pub stride: (usize, usize),
    /// Padding of the matching convolution.
    pub padding: (usize, usize),
    /// Extra size added to one side of the output.
    pub output_padding: (usize, usize),
    /// Blocked connections between input and output channels.
    pub groups: usize,
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

impl ConvTranspose2d {
    /// A transposed convolution with a bias and the given stride and padding.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Size2,
        stride: impl Size2,
        padding: impl Size2,
    ) -> ConvTranspose2d {
        let (kh, kw) = kernel_size.pair();
        // PyTorch computes fans from the weight as stored ([in, out, k, k]).
        let (weight, bias) = finish(
            new_param(&[in_channels, out_channels, kh, kw]),
            Some(new_param(&[out_channels])),
        );
        ConvTranspose2d {
            weight,
            bias,
            stride: stride.pair(),
            padding: padding.pair(),
            output_padding: (0, 0),
            groups: 1,
            dilation: (1, 1),
        }
    }
}

impl Module for ConvTranspose2d {
    fn visit(&self, v: &mut Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for ConvTranspose2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::conv_transpose2d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )
    }
}

/// Max pooling over 2-d windows, like `nn.MaxPool2d(kernel_size)` (stride defaults to the kernel
/// size).
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel_size: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit -inf padding.
    pub padding: (usize, usize),
    /// Spacing between window taps.
    pub dilation: (usize, usize),
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// Windows of `kernel_size`, stride equal to the kernel, no padding.
    pub fn new(kernel_size: impl Size2) -> MaxPool2d {
        let k = kernel_size.pair();
        MaxPool2d {
            kernel_size: k,
            stride: k,
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }
}

impl Module for MaxPool2d {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
        )
    }
}

/// Average pooling over 2-d windows, like `nn.AvgPool2d(kernel_size)`.
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel_size: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit zero padding.
    pub padding: (usize, usize),
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Count padded zeros in the average.
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// Windows of `kernel_size`, stride equal to the kernel, no padding.
    pub fn new(kernel_size: impl Size2) -> AvgPool2d {
        let k = kernel_size.pair();
        AvgPool2d {
            kernel_size: k,
            stride: k,
            padding: (0, 0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

impl Module for AvgPool2d {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )
    }
}

/// Average pooling to a fixed output size, like `nn.AdaptiveAvgPool2d((oh, ow))`.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveAvgPool2d {
    /// The output's `(H, W)`.
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// Pools to `output_size`.
    pub fn new(output_size: impl Size2) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output_size: output_size.pair(),
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn visit(&self, _: &mut Visitor) {}
}

impl Forward for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        F::adaptive_avg_pool2d(x, self.output_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_layers_have_pytorch_parameter_shapes_and_names() {
        let c = Conv2d::new(3, 8, (3, 5));
        let names: Vec<(String, Vec<usize>)> = c
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        assert_eq!(
            names,
            [
                ("weight".into(), vec![8, 3, 3, 5]),
                ("bias".into(), vec![8])
            ]
        );
        // default init: |w| <= 1/sqrt(fan_in) = 1/sqrt(45)
        let bound = 1.0 / 45f32.sqrt();
        assert!(c.weight.to_vec::<f32>().iter().all(|v| v.abs() <= bound));
        assert_eq!(
            ConvTranspose2d::new(4, 2, 3, 2, 1).weight.shape(),
            &[4, 2, 3, 3]
        );
        assert_eq!(Conv1d::new(2, 5, 3).weight.shape(), &[5, 2, 3]);
    }

    #[test]
    fn small_cnn_shapes() {
        let x = Tensor::zeros(&[4, 1, 28, 28]);
        let h = MaxPool2d::new(2).forward(&Conv2d::new(1, 8, 3).forward(&x));
        assert_eq!(h.shape(), &[4, 8, 13, 13]);
        assert_eq!(AdaptiveAvgPool2d::new(1).forward(&h).shape(), &[4, 8, 1, 1]);
        assert_eq!(AvgPool2d::new(2).forward(&h).shape(), &[4, 8, 6, 6]);
        let up = ConvTranspose2d::new(8, 2, 2, 2, 0).forward(&h);
        assert_eq!(up.shape(), &[4, 2, 26, 26]);
    }

    #[test]
    #[should_panic(expected = "Conv2d: groups (3) must divide in_channels (4)")]
    fn conv_groups_must_divide_channels() {
        Conv2d::with_options(4, 6, 3, Conv2dOpts::default().groups(3), true);
    }
}
