//! Parameter initialisation, like `torch.nn.init`: each function overwrites a tensor in place with
//! values from the global generator (seed it with [`manual_seed`](crate::prelude::manual_seed)).

use std::panic::Location;

use crate::tensor::Tensor;

/// Fan-in and fan-out of a weight: `[out, in, k…]` has fan-in `in·Πk` and fan-out `out·Πk`.
///
/// # Panics
/// For tensors with fewer than 2 dims.
#[track_caller]
pub fn fan_in_and_fan_out(t: &Tensor) -> (usize, usize) {
    let s = t.shape();
    if s.len() < 2 {
        panic!(
            "init: fan in and fan out can not be computed for a tensor with fewer than 2 \
             dimensions (shape {s:?}), at {}",
            Location::caller()
        );
    }
    let receptive: usize = s[2..].iter().product();
    (s[1] * receptive, s[0] * receptive)
}

/// The recommended gain for a nonlinearity, like `nn.init.calculate_gain`: `"linear"`,
/// `"conv2d"`, `"sigmoid"` → 1, `"tanh"` → 5/3, `"relu"` → √2, `"leaky_relu"` → √(2/(1+a²)),
/// `"selu"` → 3/4.
///
/// # Panics
/// For an unknown nonlinearity.
#[track_caller]
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> f64 {
    match nonlinearity {
        "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d"
        | "sigmoid" => 1.0,
        "tanh" => 5.0 / 3.0,
        "relu" => 2f64.sqrt(),
        "leaky_relu" => {
            let a = param.unwrap_or(0.01);
            (2.0 / (1.0 + a * a)).sqrt()
        }
        "selu" => 0.75,
        other => panic!(
            "calculate_gain: unsupported nonlinearity {other:?}, at {}",
            Location::caller()
        ),
    }
}

fn fill_with(t: &Tensor, values: Tensor) {
    let _g = crate::autograd::no_grad();
    t.assign(&values.to_dtype(t.dtype()));
}

/// Fills `t` with samples from U(low, high), like `nn.init.uniform_`.
pub fn uniform_(t: &Tensor, low: f64, high: f64) {
    fill_with(t, Tensor::uniform(t.shape(), low, high));
}

/// Fills `t` with samples from N(mean, std²), like `nn.init.normal_`.
pub fn normal_(t: &Tensor, mean: f64, std: f64) {
    fill_with(t, Tensor::normal(t.shape(), mean, std));
}

/// Fills `t` with `value`, like `nn.init.constant_`.
pub fn constant_(t: &Tensor, value: f64) {
    fill_with(t, Tensor::full_dtype(t.shape(), value, t.dtype()));
}

/// Fills `t` with zeros.
pub fn zeros_(t: &Tensor) {
    constant_(t, 0.0)
}

/// Fills `t` with ones.
pub fn ones_(t: &Tensor) {
    constant_(t, 1.0)
}

/// Glorot / Xavier uniform: U(-b, b) with `b = gain·√(6 / (fan_in + fan_out))`.
///
/// # Panics
/// For tensors with fewer than 2 dims.
#[track_caller]
pub fn xavier_uniform_(t: &Tensor, gain: f64) {
    let (fi, fo) = fan_in_and_fan_out(t);
    let b = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform_(t, -b, b);
}

/// Glorot / Xavier normal: N(0, σ²) with `σ = gain·√(2 / (fan_in + fan_out))`.
///
/// # Panics
/// For tensors with fewer than 2 dims.
#[track_caller]
pub fn xavier_normal_(t: &Tensor, gain: f64) {
    let (fi, fo) = fan_in_and_fan_out(t);
    normal_(t, 0.0, gain * (2.0 / (fi + fo) as f64).sqrt());
}

/// Which fan scales Kaiming initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass (the default).
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// He / Kaiming uniform: U(-b, b) with `b = gain·√(3 / fan)`, `gain = calculate_gain(nonlinearity,
/// a)`, like `nn.init.kaiming_uniform_`.
///
/// # Panics
/// For tensors with fewer than 2 dims or an unknown nonlinearity.
#[track_caller]
pub fn kaiming_uniform_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: &str) {
    let (fi, fo) = fan_in_and_fan_out(t);
    let fan = if mode == FanMode::FanIn { fi } else { fo };
    let gain = calculate_gain(nonlinearity, Some(a));
    let b = gain * (3.0 / fan as f64).sqrt();
    uniform_(t, -b, b);
}

/// He / Kaiming normal: N(0, σ²) with `σ = gain / √fan`.
///
/// # Panics
/// For tensors with fewer than 2 dims or an unknown nonlinearity.
#[track_caller]
pub fn kaiming_normal_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: &str) {
    let (fi, fo) = fan_in_and_fan_out(t);
    let fan = if mode == FanMode::FanIn { fi } else { fo };
    normal_(
        t,
        0.0,
        calculate_gain(nonlinearity, Some(a)) / (fan as f64).sqrt(),
    );
}

/// PyTorch's default initialisation of Linear and Conv layers:
/// `kaiming_uniform_(weight, a=√5)` (so U(±1/√fan_in)) and the bias from U(±1/√fan_in).
pub fn default_weight_and_bias(weight: &Tensor, bias: Option<&Tensor>) {
    kaiming_uniform_(weight, 5f64.sqrt(), FanMode::FanIn, "leaky_relu");
    if let Some(b) = bias {
        let (fi, _) = fan_in_and_fan_out(weight);
        let bound = if fi > 0 {
            1.0 / (fi as f64).sqrt()
        } else {
            0.0
        };
        uniform_(b, -bound, bound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_of_linear_and_conv_weights() {
        assert_eq!(fan_in_and_fan_out(&Tensor::zeros(&[8, 4])), (4, 8));
        assert_eq!(
            fan_in_and_fan_out(&Tensor::zeros(&[16, 3, 5, 5])),
            (75, 400)
        );
    }

    #[test]
    fn default_init_stays_within_one_over_sqrt_fan_in() {
        let w = Tensor::zeros(&[64, 100]);
        let b = Tensor::zeros(&[64]);
        default_weight_and_bias(&w, Some(&b));
        // kaiming_uniform(a=√5): gain √(2/6), bound gain·√(3/100) = 0.1
        let max = w.to_vec::<f32>().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= 0.1 && max > 0.09, "max |w| = {max}");
        assert!(b.to_vec::<f32>().iter().all(|v| v.abs() <= 0.1));
    }

    #[test]
    fn xavier_uniform_bound() {
        let w = Tensor::zeros(&[30, 20]);
        xavier_uniform_(&w, 1.0);
        let bound = (6.0f32 / 50.0).sqrt();
        let max = w.to_vec::<f32>().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= bound && max > 0.9 * bound);
    }

    #[test]
    fn gains_match_pytorch() {
        assert_eq!(calculate_gain("relu", None), 2f64.sqrt());
        assert_eq!(calculate_gain("tanh", None), 5.0 / 3.0);
        assert!(
            (calculate_gain("leaky_relu", Some(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs() < 1e-15
        );
    }

    #[test]
    #[should_panic(expected = "fan in and fan out can not be computed")]
    fn fans_need_two_dims() {
        fan_in_and_fan_out(&Tensor::zeros(&[3]));
    }
}
