//! Recurrent layers: `RNN` (tanh or ReLU), `LSTM` and `GRU`, multi-layer and bidirectional, and
//! their one-step cells `RNNCell`, `LSTMCell`, `GRUCell`, with PyTorch's parameter names, shapes,
//! gate order and initialisation.
//!
//! Each layer and direction projects the whole input sequence with one matmul
//! (`[L·N, in] × [in, k·H]`), then loops over the time steps with one `[N, H] × [H, k·H]` matmul
//! each; every step is made of differentiable ops, so gradients (of any order) come from the tape.

use std::panic::Location;

use super::functional as F;
use super::module::{Forward, Module, TrainFlag, Visitor};
use crate::tensor::Tensor;

/// Which recurrence a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    RnnTanh,
    RnnRelu,
    Lstm,
    Gru,
}

impl Kind {
    /// Gates stacked in `weight_ih` / `weight_hh` (rows `k·H`).
    fn gates(self) -> usize {
        match self {
            Kind::RnnTanh | Kind::RnnRelu => 1,
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::RnnTanh | Kind::RnnRelu => "RNN",
            Kind::Lstm => "LSTM",
            Kind::Gru => "GRU",
        }
    }

    fn cell_name(self) -> &'static str {
        match self {
            Kind::RnnTanh | Kind::RnnRelu => "RNNCell",
            Kind::Lstm => "LSTMCell",
            Kind::Gru => "GRUCell",
        }
    }
}

/// The weights of one layer in one direction (or of one cell).
#[derive(Clone)]
struct Weights {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Option<Tensor>,
    b_hh: Option<Tensor>,
}

impl Weights {
    /// PyTorch's init: every parameter from U(±1/√hidden_size), drawn in parameter order.
    fn new(kind: Kind, input_size: usize, hidden_size: usize, bias: bool) -> Weights {
        let kh = kind.gates() * hidden_size;
        let k = 1.0 / (hidden_size as f64).sqrt();
        let p = |shape: &[usize]| Tensor::uniform(shape, -k, k).requires_grad();
        let (w_ih, w_hh) = (p(&[kh, input_size]), p(&[kh, hidden_size]));
        let (b_ih, b_hh) = if bias {
            (Some(p(&[kh])), Some(p(&[kh])))
        } else {
            (None, None)
        };
        Weights {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    /// Shows the parameters as `weight_ih{suffix}`, … (suffix `_l0`, `_l1_reverse` or empty).
    fn visit(&self, v: &mut Visitor, suffix: &str) {
        v.param(&format!("weight_ih{suffix}"), &self.w_ih);
        v.param(&format!("weight_hh{suffix}"), &self.w_hh);
        if let Some(b) = &self.b_ih {
            v.param(&format!("bias_ih{suffix}"), b);
        }
        if let Some(b) = &self.b_hh {
            v.param(&format!("bias_hh{suffix}"), b);
        }
    }

    /// The input projection of `x` `[.., in]` → `[.., k·H]` with the biases that can be added
    /// outside the recurrence: both for RNN and LSTM, only `b_ih` for GRU (whose `b_hn` sits
    /// inside `r ⊙ (…)`).
    fn project(&self, kind: Kind, x: &Tensor) -> Tensor {
        let mut g = x.matmul(&self.w_ih.t());
        if let Some(b) = &self.b_ih {
            g = g + b;
        }
        if kind != Kind::Gru {
            if let Some(b) = &self.b_hh {
                g = g + b;
            }
        }
        g
    }

    /// One time step from the projected input `gi` `[N, k·H]` and the state `h` (and `c` for
    /// LSTM) `[N, H]`: the new `(h, c)`. `w_hh_t` is `weight_hhᵀ`.
    fn step(
        &self,
        kind: Kind,
        gi: &Tensor,
        w_hh_t: &Tensor,
        h: &Tensor,
        c: Option<&Tensor>,
    ) -> (Tensor, Option<Tensor>) {
        let gh = h.matmul(w_hh_t);
        match kind {
            // h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)
            Kind::RnnTanh => ((gi + gh).tanh(), None),
            Kind::RnnRelu => ((gi + gh).relu(), None),
            // i, f, g, o = σ, σ, tanh, σ of the chunks; c' = f c + i g; h' = o tanh c'
            Kind::Lstm => {
                let g = (gi + gh).chunk(4, -1);
                let (i, f, gg, o) = (g[0].sigmoid(), g[1].sigmoid(), g[2].tanh(), g[3].sigmoid());
                let c = c.expect("an LSTM step has a cell state");
                let c2 = f * c + i * gg;
                (o * c2.tanh(), Some(c2))
            }
            // r = σ(i_r + h_r), z = σ(i_z + h_z), n = tanh(i_n + r (W_hn h + b_hn)),
            // h' = (1 - z) n + z h = n + z (h - n)
            Kind::Gru => {
                let gh = match &self.b_hh {
                    Some(b) => gh + b,
                    None => gh,
                };
                let (a, b) = (gi.chunk(3, -1), gh.chunk(3, -1));
                let r = (&a[0] + &b[0]).sigmoid();
                let z = (&a[1] + &b[1]).sigmoid();
                let n = (&a[2] + r * &b[2]).tanh();
                let h2 = &n + z * (h - &n);
                (h2, None)
            }
        }
    }

    /// Runs the whole sequence `x` `[L, N, in]` from state `h0` (`c0`) `[N, H]`, forward or
    /// reversed in time: the outputs `[L, N, H]` (in time order) and the final state.
    fn run(
        &self,
        kind: Kind,
        x: &Tensor,
        h0: Tensor,
        c0: Option<Tensor>,
        reverse: bool,
    ) -> (Tensor, Tensor, Option<Tensor>) {
        let (l, n, inp) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let gi = self
            .project(kind, &x.reshape([l * n, inp]))
            .reshape([l, n, self.w_ih.shape()[0]]);
        let w_hh_t = self.w_hh.t();
        let (mut h, mut c) = (h0, c0);
        let mut outs: Vec<Option<Tensor>> = vec![None; l];
        for s in 0..l {
            let t = if reverse { l - 1 - s } else { s };
            let (h2, c2) = self.step(kind, &gi.select(0, t as isize), &w_hh_t, &h, c.as_ref());
            outs[t] = Some(h2.clone());
            (h, c) = (h2, c2);
        }
        let outs: Vec<Tensor> = outs.into_iter().map(|o| o.expect("every step")).collect();
        let refs: Vec<&Tensor> = outs.iter().collect();
        (Tensor::stack(&refs, 0), h, c)
    }
}

/// What the multi-layer recurrent layers share: configuration and the weights of every layer
/// and direction (layer-major: `l0`, `l0_reverse`, `l1`, …).
#[derive(Clone)]
struct Stack {
    kind: Kind,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    bias: bool,
    batch_first: bool,
    dropout: f64,
    bidirectional: bool,
    weights: Vec<Weights>,
    training: TrainFlag,
}

impl Stack {
    fn new(kind: Kind, input_size: usize, hidden_size: usize) -> Stack {
        Stack {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            weights: Vec::new(),
            training: TrainFlag::default(),
        }
        .reset_parameters()
    }

    fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Fresh weights for the current configuration.
    fn reset_parameters(mut self) -> Stack {
        let d = self.directions();
        self.weights = (0..self.num_layers * d)
            .map(|i| {
                let input = if i < d {
                    self.input_size
                } else {
                    d * self.hidden_size
                };
                Weights::new(self.kind, input, self.hidden_size, self.bias)
            })
            .collect();
        self
    }

    fn visit(&self, v: &mut Visitor) {
        let d = self.directions();
        for (i, w) in self.weights.iter().enumerate() {
            let rev = if i % d == 1 { "_reverse" } else { "" };
            w.visit(v, &format!("_l{}{rev}", i / d));
        }
        v.flag(&self.training);
    }

    /// Checks a state argument (`h0` / `c0`): `[D·num_layers, N, H]`, or `[D·num_layers, H]` for
    /// unbatched input. Returns it as 3-d.
    fn state(
        &self,
        what: &str,
        s: Option<&Tensor>,
        x3: &Tensor,
        batched: bool,
        loc: &Location,
    ) -> Tensor {
        let (dl, n, h) = (
            self.directions() * self.num_layers,
            x3.shape()[1],
            self.hidden_size,
        );
        let want: Vec<usize> = if batched { vec![dl, n, h] } else { vec![dl, h] };
        match s {
            None => Tensor::zeros_dtype(&[dl, n, h], x3.dtype()),
            Some(s) if s.shape() == want.as_slice() => {
                if batched {
                    s.clone()
                } else {
                    s.unsqueeze(1)
                }
            }
            Some(s) => panic!(
                "{}: {what} of shape {:?} does not match the expected shape {want:?} \
                 ([D·num_layers, N, hidden_size]; [D·num_layers, hidden_size] for unbatched \
                 input), at {loc}",
                self.kind.name(),
                s.shape()
            ),
        }
    }

    /// The full forward: output, `h_n` and (LSTM) `c_n`.
    fn forward(
        &self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        loc: &Location,
    ) -> (Tensor, Tensor, Option<Tensor>) {
        let name = self.kind.name();
        let s = x.shape();
        if !(s.len() == 2 || s.len() == 3) || s[s.len() - 1] != self.input_size {
            panic!(
                "{name}: input of shape {s:?} must be [L, N, input_size = {}] ([N, L, \
                 input_size] with batch_first) or unbatched [L, input_size], at {loc}",
                self.input_size
            );
        }
        let batched = s.len() == 3;
        // [L, N, in]
        let x3 = match (batched, self.batch_first) {
            (false, _) => x.unsqueeze(1),
            (true, true) => x.transpose(0, 1),
            (true, false) => x.clone(),
        };
        let h0 = self.state("h0", h0, &x3, batched, loc);
        let c0 = (self.kind == Kind::Lstm).then(|| self.state("c0", c0, &x3, batched, loc));
        let d = self.directions();
        let training = self.training.get();
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let mut inp = x3;
        for layer in 0..self.num_layers {
            let mut outs = Vec::new();
            for dir in 0..d {
                let i = layer * d + dir;
                let c = c0.as_ref().map(|c| c.select(0, i as isize));
                let (o, h, c) =
                    self.weights[i].run(self.kind, &inp, h0.select(0, i as isize), c, dir == 1);
                outs.push(o);
                hs.push(h);
                cs.extend(c);
            }
            let refs: Vec<&Tensor> = outs.iter().collect();
            inp = if d == 1 {
                outs.swap_remove(0)
            } else {
                Tensor::cat(&refs, -1)
            };
            if layer + 1 < self.num_layers && self.dropout > 0.0 {
                inp = F::dropout(&inp, self.dropout, training);
            }
        }
        let stack = |v: &[Tensor]| {
            let refs: Vec<&Tensor> = v.iter().collect();
            let t = Tensor::stack(&refs, 0);
            if batched {
                t
            } else {
                t.squeeze_dim(1)
            }
        };
        let out = match (batched, self.batch_first) {
            (false, _) => inp.squeeze_dim(1),
            (true, true) => inp.transpose(0, 1),
            (true, false) => inp,
        };
        let c = (!cs.is_empty()).then(|| stack(&cs));
        (out, stack(&hs), c)
    }
}

/// The builder methods and `Module` of the multi-layer recurrent layers.
macro_rules! recurrent_layer {
    ($t:ident) => {
        impl $t {
            /// Stacks `n` layers, each reading the previous one's output (builder style;
            /// re-initialises the parameters).
            pub fn num_layers(mut self, n: usize) -> $t {
                self.0.num_layers = n;
                self.0 = self.0.reset_parameters();
                self
            }

            /// With or without the biases `bias_ih` / `bias_hh` (builder style; re-initialises
            /// the parameters).
            pub fn bias(mut self, bias: bool) -> $t {
                self.0.bias = bias;
                self.0 = self.0.reset_parameters();
                self
            }

            /// Runs both directions in time and concatenates their outputs (builder style;
            /// re-initialises the parameters).
            pub fn bidirectional(mut self, bidirectional: bool) -> $t {
                self.0.bidirectional = bidirectional;
                self.0 = self.0.reset_parameters();
                self
            }

            /// Input and output as `[N, L, features]` instead of `[L, N, features]` (the states
            /// keep their shape), builder style.
            pub fn batch_first(mut self, batch_first: bool) -> $t {
                self.0.batch_first = batch_first;
                self
            }

            /// Dropout with probability `p` on the outputs of every layer but the last, in
            /// training mode (builder style).
            ///
            /// # Panics
            /// If `p` is not in `[0, 1]`.
            #[track_caller]
            pub fn dropout(mut self, p: f64) -> $t {
                if !(0.0..=1.0).contains(&p) {
                    panic!(
                        "{}: dropout should be a number in [0, 1], got {p}, at {}",
                        self.0.kind.name(),
                        Location::caller()
                    );
                }
                self.0.dropout = p;
                self
            }

            /// The number of input features.
            pub fn input_size(&self) -> usize {
                self.0.input_size
            }

            /// The number of features of the hidden state (per direction).
            pub fn hidden_size(&self) -> usize {
                self.0.hidden_size
            }
        }

        impl Module for $t {
            fn visit(&self, v: &mut Visitor) {
                self.0.visit(v);
            }
        }
    };
}

/// A multi-layer Elman RNN, `h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)`, like
/// `nn.RNN` (ReLU instead of tanh with [`relu`](RNN::relu)).
///
/// Input `[L, N, input_size]` (`[N, L, input_size]` with
/// [`batch_first`](RNN::batch_first), or unbatched `[L, input_size]`); output
/// `[L, N, D·hidden_size]` where `D` is 2 when bidirectional (the reverse direction in the last
/// `hidden_size` features); `h_n` `[D·num_layers, N, hidden_size]`, ordered layer 0 forward,
/// layer 0 reverse, layer 1 forward, ….
///
/// Parameters are named as in PyTorch: `weight_ih_l0` `[H, in]`, `weight_hh_l0` `[H, H]`,
/// `bias_ih_l0`, `bias_hh_l0`, with `_reverse` for the backward direction, all from
/// U(±1/√hidden_size).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::{Module, RNN};
/// let rnn = RNN::new(3, 5).num_layers(2).bidirectional(true);
/// let (out, h_n) = rnn.forward(&Tensor::randn(&[7, 4, 3]), None);
/// assert_eq!(out.shape(), &[7, 4, 10]);
/// assert_eq!(h_n.shape(), &[4, 4, 5]);
/// assert_eq!(rnn.named_parameters()[4].0, "weight_ih_l0_reverse");
/// ```
#[derive(Clone)]
pub struct RNN(Stack);

recurrent_layer!(RNN);

impl RNN {
    /// A one-layer tanh RNN with biases, like `nn.RNN(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> RNN {
        RNN(Stack::new(Kind::RnnTanh, input_size, hidden_size))
    }

    /// ReLU instead of tanh, like `nonlinearity='relu'` (builder style).
    pub fn relu(mut self, relu: bool) -> RNN {
        self.0.kind = if relu { Kind::RnnRelu } else { Kind::RnnTanh };
        self
    }

    /// The output `[L, N, D·H]` and the final hidden state `h_n` `[D·num_layers, N, H]`, from
    /// the initial state `h0` (zeros if `None`), like `rnn(input, h0)`.
    ///
    /// # Panics
    /// If the input is not 2- or 3-d ending in `input_size`, or `h0` has the wrong shape.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, h0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, h, _) = self.0.forward(input, h0, None, Location::caller());
        (out, h)
    }
}

impl Forward for RNN {
    /// The output sequence from a zero initial state.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.forward(x, None, None, Location::caller()).0
    }
}

/// A multi-layer long short-term memory, like `nn.LSTM`.
///
/// For each step, with the gates stacked in PyTorch's order `i, f, g, o` along the rows of
/// `weight_ih_l0` `[4H, in]` and `weight_hh_l0` `[4H, H]`:
/// `i, f, o = σ(…)`, `g = tanh(…)`, `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh c'`.
/// Shapes and names otherwise as [`RNN`]; the state is `(h, c)`, both
/// `[D·num_layers, N, hidden_size]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::LSTM;
/// let lstm = LSTM::new(3, 4).batch_first(true);
/// let (out, (h_n, c_n)) = lstm.forward(&Tensor::randn(&[2, 6, 3]), None);
/// assert_eq!(out.shape(), &[2, 6, 4]);
/// assert_eq!((h_n.shape(), c_n.shape()), (&[1, 2, 4][..], &[1, 2, 4][..]));
/// ```
#[derive(Clone)]
pub struct LSTM(Stack);

recurrent_layer!(LSTM);

impl LSTM {
    /// A one-layer LSTM with biases, like `nn.LSTM(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> LSTM {
        LSTM(Stack::new(Kind::Lstm, input_size, hidden_size))
    }

    /// The output `[L, N, D·H]` and the final state `(h_n, c_n)`, from `(h0, c0)` (zeros if
    /// `None`), like `lstm(input, (h0, c0))`.
    ///
    /// # Panics
    /// If the input is not 2- or 3-d ending in `input_size`, or a state has the wrong shape.
    #[track_caller]
    pub fn forward(
        &self,
        input: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (h0, c0) = state.unzip();
        let (out, h, c) = self.0.forward(input, h0, c0, Location::caller());
        (out, (h, c.expect("LSTM has a cell state")))
    }
}

impl Forward for LSTM {
    /// The output sequence from a zero initial state.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.forward(x, None, None, Location::caller()).0
    }
}

/// A multi-layer gated recurrent unit, like `nn.GRU`.
///
/// For each step, with the gates stacked in PyTorch's order `r, z, n`:
/// `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.
/// Shapes and names as [`RNN`] (`weight_ih_l0` is `[3H, in]`).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::GRU;
/// let gru = GRU::new(3, 4);
/// let (out, h_n) = gru.forward(&Tensor::randn(&[5, 3]), None); // unbatched
/// assert_eq!((out.shape(), h_n.shape()), (&[5, 4][..], &[1, 4][..]));
/// ```
#[derive(Clone)]
pub struct GRU(Stack);

recurrent_layer!(GRU);

impl GRU {
    /// A one-layer GRU with biases, like `nn.GRU(input_size, hidden_size)`.
    pub fn new(input_size: usize, hidden_size: usize) -> GRU {
        GRU(Stack::new(Kind::Gru, input_size, hidden_size))
    }

    /// The output `[L, N, D·H]` and the final hidden state `h_n`, from `h0` (zeros if `None`),
    /// like `gru(input, h0)`.
    ///
    /// # Panics
    /// If the input is not 2- or 3-d ending in `input_size`, or `h0` has the wrong shape.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, h0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, h, _) = self.0.forward(input, h0, None, Location::caller());
        (out, h)
    }
}

impl Forward for GRU {
    /// The output sequence from a zero initial state.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.forward(x, None, None, Location::caller()).0
    }
}

/// One step of a recurrent layer: weights `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
#[derive(Clone)]
struct Cell {
    kind: Kind,
    hidden_size: usize,
    weights: Weights,
}

impl Cell {
    fn new(kind: Kind, input_size: usize, hidden_size: usize, bias: bool) -> Cell {
        Cell {
            kind,
            hidden_size,
            weights: Weights::new(kind, input_size, hidden_size, bias),
        }
    }

    /// One step on `x` `[N, in]` (or `[in]`) from `h` (`c`) `[N, H]` (or `[H]`), zeros if `None`.
    fn forward(
        &self,
        x: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
        loc: &Location,
    ) -> (Tensor, Option<Tensor>) {
        let name = self.kind.cell_name();
        let s = x.shape();
        let input_size = self.weights.w_ih.shape()[1];
        if !(s.len() == 1 || s.len() == 2) || s[s.len() - 1] != input_size {
            panic!(
                "{name}: input of shape {s:?} must be [N, input_size = {input_size}] or \
                 [input_size], at {loc}"
            );
        }
        let batched = s.len() == 2;
        let x2 = if batched { x.clone() } else { x.unsqueeze(0) };
        let n = x2.shape()[0];
        let want: Vec<usize> = if batched {
            vec![n, self.hidden_size]
        } else {
            vec![self.hidden_size]
        };
        let state = |what: &str, t: Option<&Tensor>| match t {
            None => Tensor::zeros_dtype(&[n, self.hidden_size], x.dtype()),
            Some(t) if t.shape() == want.as_slice() => t.reshape([n, self.hidden_size]),
            Some(t) => panic!(
                "{name}: {what} of shape {:?} does not match the expected shape {want:?}, at {loc}",
                t.shape()
            ),
        };
        let h = state("hx", h);
        let c = (self.kind == Kind::Lstm).then(|| state("cx", c));
        let gi = self.weights.project(self.kind, &x2);
        let (h2, c2) = self
            .weights
            .step(self.kind, &gi, &self.weights.w_hh.t(), &h, c.as_ref());
        let back = |t: Tensor| if batched { t } else { t.squeeze_dim(0) };
        (back(h2), c2.map(back))
    }
}

impl Module for Cell {
    fn visit(&self, v: &mut Visitor) {
        self.weights.visit(v, "");
    }
}

/// One step of an Elman RNN, like `nn.RNNCell`: `h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`
/// (ReLU with [`relu`](RNNCell::relu)). Parameters `weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::RNNCell;
/// let cell = RNNCell::new(3, 4, true);
/// let h = cell.forward(&Tensor::randn(&[2, 3]), None);
/// assert_eq!(cell.forward(&Tensor::randn(&[2, 3]), Some(&h)).shape(), &[2, 4]);
/// ```
#[derive(Clone)]
pub struct RNNCell(Cell);

/// One step of an LSTM, like `nn.LSTMCell` (gate order `i, f, g, o` as [`LSTM`]).
#[derive(Clone)]
pub struct LSTMCell(Cell);

/// One step of a GRU, like `nn.GRUCell` (gate order `r, z, n` as [`GRU`]).
#[derive(Clone)]
pub struct GRUCell(Cell);

macro_rules! cell_module {
    ($t:ident) => {
        impl Module for $t {
            fn visit(&self, v: &mut Visitor) {
                self.0.visit(v);
            }
        }
    };
}
cell_module!(RNNCell);
cell_module!(LSTMCell);
cell_module!(GRUCell);

impl RNNCell {
    /// A tanh cell, like `nn.RNNCell(input_size, hidden_size, bias)`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool) -> RNNCell {
        RNNCell(Cell::new(Kind::RnnTanh, input_size, hidden_size, bias))
    }

    /// ReLU instead of tanh, like `nonlinearity='relu'` (builder style).
    pub fn relu(mut self, relu: bool) -> RNNCell {
        self.0.kind = if relu { Kind::RnnRelu } else { Kind::RnnTanh };
        self
    }

    /// The next hidden state `[N, H]` (or `[H]`) from input `[N, in]` (or `[in]`) and `hx`
    /// (zeros if `None`).
    ///
    /// # Panics
    /// If the input or `hx` has the wrong shape.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, hx: Option<&Tensor>) -> Tensor {
        self.0.forward(input, hx, None, Location::caller()).0
    }
}

impl LSTMCell {
    /// A cell like `nn.LSTMCell(input_size, hidden_size, bias)`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool) -> LSTMCell {
        LSTMCell(Cell::new(Kind::Lstm, input_size, hidden_size, bias))
    }

    /// The next `(h, c)` from input `[N, in]` (or `[in]`) and `(hx, cx)` (zeros if `None`).
    ///
    /// # Panics
    /// If the input or a state has the wrong shape.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, state: Option<(&Tensor, &Tensor)>) -> (Tensor, Tensor) {
        let (h, c) = state.unzip();
        let (h, c) = self.0.forward(input, h, c, Location::caller());
        (h, c.expect("LSTM has a cell state"))
    }
}

impl GRUCell {
    /// A cell like `nn.GRUCell(input_size, hidden_size, bias)`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool) -> GRUCell {
        GRUCell(Cell::new(Kind::Gru, input_size, hidden_size, bias))
    }

    /// The next hidden state from input `[N, in]` (or `[in]`) and `hx` (zeros if `None`).
    ///
    /// # Panics
    /// If the input or `hx` has the wrong shape.
    #[track_caller]
    pub fn forward(&self, input: &Tensor, hx: Option<&Tensor>) -> Tensor {
        self.0.forward(input, hx, None, Location::caller()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    impl Stack {
        /// The same layer with its parameters replaced, in `named_parameters` order.
        fn with_params(&self, ps: &[Tensor]) -> Stack {
            let mut s = self.clone();
            let mut it = ps.iter().cloned();
            for w in &mut s.weights {
                w.w_ih = it.next().unwrap();
                w.w_hh = it.next().unwrap();
                if s.bias {
                    w.b_ih = it.next();
                    w.b_hh = it.next();
                }
            }
            s
        }

        fn params64(&self) -> Vec<Tensor> {
            let mut out = Vec::new();
            self.visit(&mut Visitor::new(&mut |_, item| {
                if let crate::nn::Item::Param(t) = item {
                    out.push(t.double());
                }
            }));
            out
        }
    }

    /// The gradient check of a layer w.r.t. input, h0 (c0) and every parameter, in f64.
    fn check_stack(s: &Stack, x: Tensor, with_state: bool) {
        let n_state = if with_state {
            if s.kind == Kind::Lstm {
                2
            } else {
                1
            }
        } else {
            0
        };
        let batched = x.ndim() == 3;
        let n = if batched {
            x.shape()[if s.batch_first { 0 } else { 1 }]
        } else {
            0
        };
        let dl = s.directions() * s.num_layers;
        let mut xs = vec![x];
        for i in 0..n_state {
            let shape: Vec<usize> = if batched {
                vec![dl, n, s.hidden_size]
            } else {
                vec![dl, s.hidden_size]
            };
            xs.push(randn64(&shape, 50 + i as u64));
        }
        xs.extend(s.params64());
        let loc = Location::caller();
        gradcheck(
            |xs| {
                let m = s.with_params(&xs[1 + n_state..]);
                let (h0, c0) = (
                    xs.get(1).filter(|_| n_state > 0),
                    xs.get(2).filter(|_| n_state > 1),
                );
                let (o, h, c) = m.forward(&xs[0], h0, c0, loc);
                let mut parts = vec![o.flatten_all(), h.flatten_all()];
                parts.extend(c.map(|c| c.flatten_all()));
                let refs: Vec<&Tensor> = parts.iter().collect();
                Tensor::cat(&refs, 0)
            },
            &xs,
        )
        .unwrap();
    }

    #[test]
    fn recurrent_layers_gradcheck() {
        for kind in [Kind::RnnTanh, Kind::RnnRelu, Kind::Lstm, Kind::Gru] {
            let s = Stack::new(kind, 3, 2);
            check_stack(&s, randn64(&[4, 2, 3], 1), false);
            check_stack(&s, randn64(&[3, 3], 2), true); // unbatched
            let mut s2 = s.clone();
            s2.num_layers = 2;
            s2.bidirectional = true;
            s2.batch_first = true;
            let s2 = s2.reset_parameters();
            check_stack(&s2, randn64_t(&[2, 3, 3], 3), true); // non-contiguous input
            let mut s3 = s.clone();
            s3.bias = false;
            check_stack(&s3.reset_parameters(), randn64(&[2, 1, 3], 4), true);
        }
    }

    #[test]
    fn cells_gradcheck_and_match_one_step_of_the_layer() {
        for kind in [Kind::RnnTanh, Kind::Lstm, Kind::Gru] {
            let stack = Stack::new(kind, 3, 2).with_params(&Stack::new(kind, 3, 2).params64());
            let cell = Cell {
                kind,
                hidden_size: 2,
                weights: stack.weights[0].clone(),
            };
            let loc = Location::caller();
            let x = randn64(&[4, 3], 1);
            let h = randn64(&[4, 2], 2);
            let c = randn64(&[4, 2], 3);
            let lstm = kind == Kind::Lstm;
            let (h1, c1) = cell.forward(&x, Some(&h), lstm.then_some(&c), loc);
            // a layer over a sequence of length 1 is one cell step
            let (o, hn, cn) = stack.forward(
                &x.unsqueeze(0),
                Some(&h.unsqueeze(0)),
                lstm.then(|| c.unsqueeze(0)).as_ref(),
                loc,
            );
            h1.assert_close(&o.squeeze_dim(0), 1e-12, 1e-12);
            h1.assert_close(&hn.squeeze_dim(0), 1e-12, 1e-12);
            if let Some(c1) = c1 {
                c1.assert_close(&cn.unwrap().squeeze_dim(0), 1e-12, 1e-12);
            }
            let w = &cell.weights;
            let xs = [
                x,
                h,
                c,
                w.w_ih.clone(),
                w.w_hh.clone(),
                w.b_ih.clone().unwrap(),
                w.b_hh.clone().unwrap(),
            ];
            gradcheck(
                |xs| {
                    let cell = Cell {
                        kind,
                        hidden_size: 2,
                        weights: Weights {
                            w_ih: xs[3].clone(),
                            w_hh: xs[4].clone(),
                            b_ih: Some(xs[5].clone()),
                            b_hh: Some(xs[6].clone()),
                        },
                    };
                    let (h, c) = cell.forward(&xs[0], Some(&xs[1]), lstm.then_some(&xs[2]), loc);
                    match c {
                        Some(c) => Tensor::cat(&[&h, &c], 0),
                        None => h,
                    }
                },
                &xs,
            )
            .unwrap();
        }
    }

    #[test]
    fn rnn_step_is_tanh_of_the_affine_maps() {
        // one step from h0 = 0: h1 = tanh(x W_ihᵀ + b_ih + b_hh)
        let rnn = RNN::new(2, 3);
        let x = Tensor::randn(&[1, 1, 2]);
        let (out, h) = rnn.forward(&x, None);
        let w = &rnn.0.weights[0];
        let want =
            (x.matmul(&w.w_ih.t()) + w.b_ih.as_ref().unwrap() + w.b_hh.as_ref().unwrap()).tanh();
        out.assert_close(&want, 1e-6, 1e-6);
        h.assert_close(&want, 1e-6, 1e-6);
        // relu: max(0, ·) of the same
        let relu = rnn.clone().relu(true);
        let (out, _) = relu.forward(&x, None);
        let pre = want
            .to_vec::<f32>()
            .iter()
            .map(|v| v.atanh().max(0.0))
            .collect::<Vec<_>>();
        out.assert_close(&Tensor::from_vec(pre, &[1, 1, 3]), 1e-5, 1e-5);
    }

    #[test]
    fn parameter_names_and_shapes_follow_pytorch() {
        let lstm = LSTM::new(3, 4).num_layers(2).bidirectional(true);
        let names: Vec<(String, Vec<usize>)> = lstm
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        let want = |n: &str, s: &[usize]| (n.to_string(), s.to_vec());
        assert_eq!(
            names,
            [
                want("weight_ih_l0", &[16, 3]),
                want("weight_hh_l0", &[16, 4]),
                want("bias_ih_l0", &[16]),
                want("bias_hh_l0", &[16]),
                want("weight_ih_l0_reverse", &[16, 3]),
                want("weight_hh_l0_reverse", &[16, 4]),
                want("bias_ih_l0_reverse", &[16]),
                want("bias_hh_l0_reverse", &[16]),
                want("weight_ih_l1", &[16, 8]),
                want("weight_hh_l1", &[16, 4]),
                want("bias_ih_l1", &[16]),
                want("bias_hh_l1", &[16]),
                want("weight_ih_l1_reverse", &[16, 8]),
                want("weight_hh_l1_reverse", &[16, 4]),
                want("bias_ih_l1_reverse", &[16]),
                want("bias_hh_l1_reverse", &[16]),
            ]
        );
        let gru = GRU::new(5, 2).bias(false);
        let names: Vec<String> = gru.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight_ih_l0", "weight_hh_l0"]);
        let cell = GRUCell::new(5, 2, true);
        let names: Vec<String> = cell
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]);
        // init: U(±1/√hidden_size) = U(±0.5)
        for p in LSTM::new(3, 4).parameters() {
            assert!(p.to_vec::<f32>().iter().all(|v| v.abs() <= 0.5));
        }
    }

    #[test]
    fn batch_first_is_the_transposed_layout() {
        let gru = GRU::new(3, 4).num_layers(2);
        let x = Tensor::randn(&[5, 2, 3]); // [L, N, in]
        let (out, h) = gru.forward(&x, None);
        let gru_bf = gru.clone().batch_first(true);
        let (out_bf, h_bf) = gru_bf.forward(&x.transpose(0, 1), None);
        out_bf.assert_close(&out.transpose(0, 1), 1e-6, 1e-6);
        h_bf.assert_close(&h, 1e-6, 1e-6); // the state is never batch-first
    }

    #[test]
    fn bidirectional_output_holds_the_forward_then_the_reversed_direction() {
        let lstm = LSTM::new(2, 3).bidirectional(true);
        let x = Tensor::randn(&[4, 1, 2]);
        let (out, (h, c)) = lstm.forward(&x, None);
        assert_eq!(out.shape(), &[4, 1, 6]);
        let fwd = LSTM(Stack {
            bidirectional: false,
            weights: vec![lstm.0.weights[0].clone()],
            ..lstm.0.clone()
        });
        let bwd = LSTM(Stack {
            bidirectional: false,
            weights: vec![lstm.0.weights[1].clone()],
            ..lstm.0.clone()
        });
        let (of, (hf, cf)) = fwd.forward(&x, None);
        // the reverse direction is a forward LSTM over the time-reversed input
        let rev = |t: &Tensor| {
            let steps: Vec<Tensor> = (0..4).rev().map(|i| t.narrow(0, i, 1)).collect();
            Tensor::cat(&steps.iter().collect::<Vec<_>>(), 0)
        };
        let (ob, (hb, cb)) = bwd.forward(&rev(&x), None);
        out.narrow(-1, 0, 3).assert_close(&of, 1e-6, 1e-6);
        out.narrow(-1, 3, 3).assert_close(&rev(&ob), 1e-6, 1e-6);
        // h_n: [forward, reverse]; the reverse final state is the output at time 0
        h.assert_close(&Tensor::cat(&[&hf, &hb], 0), 1e-6, 1e-6);
        c.assert_close(&Tensor::cat(&[&cf, &cb], 0), 1e-6, 1e-6);
        h.narrow(0, 1, 1)
            .assert_close(&out.narrow(0, 0, 1).narrow(-1, 3, 3), 1e-6, 1e-6);
    }

    #[test]
    fn dropout_between_layers_only_in_training_mode() {
        let rnn = RNN::new(3, 8).num_layers(2).dropout(0.5);
        let x = Tensor::randn(&[4, 2, 3]);
        let a = Forward::forward(&rnn, &x);
        let b = Forward::forward(&rnn, &x);
        assert!(
            a.max_abs_diff(&b).0 > 0.0,
            "training mode draws fresh masks"
        );
        rnn.eval();
        let a = Forward::forward(&rnn, &x);
        let b = Forward::forward(&rnn, &x);
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        // eval equals the same layer without dropout
        let plain = RNN(Stack {
            dropout: 0.0,
            ..rnn.0.clone()
        });
        assert_eq!(
            Forward::forward(&plain, &x).to_vec::<f32>(),
            a.to_vec::<f32>()
        );
    }

    #[test]
    fn initial_state_is_used() {
        let gru = GRU::new(2, 3);
        let x = Tensor::randn(&[3, 2, 2]);
        let h0 = Tensor::randn(&[1, 2, 3]);
        let (a, _) = gru.forward(&x, None);
        let (b, _) = gru.forward(&x, Some(&Tensor::zeros(&[1, 2, 3])));
        let (c, _) = gru.forward(&x, Some(&h0));
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        assert!(a.max_abs_diff(&c).0 > 1e-3);
    }

    #[test]
    #[should_panic(expected = "LSTM: input of shape [5, 2, 4] must be [L, N, input_size = 3]")]
    fn wrong_input_size_is_an_error() {
        LSTM::new(3, 2).forward(&Tensor::zeros(&[5, 2, 4]), None);
    }

    #[test]
    #[should_panic(
        expected = "GRU: h0 of shape [1, 3, 2] does not match the expected shape [2, 3, 2]"
    )]
    fn wrong_state_shape_is_an_error() {
        GRU::new(3, 2)
            .bidirectional(true)
            .forward(&Tensor::zeros(&[5, 3, 3]), Some(&Tensor::zeros(&[1, 3, 2])));
    }

    #[test]
    #[should_panic(expected = "LSTMCell: cx of shape [2] does not match the expected shape [4, 2]")]
    fn wrong_cell_state_is_an_error() {
        let (h, c) = (Tensor::zeros(&[4, 2]), Tensor::zeros(&[2]));
        LSTMCell::new(3, 2, true).forward(&Tensor::zeros(&[4, 3]), Some((&h, &c)));
    }

    #[test]
    #[should_panic(expected = "RNN: dropout should be a number in [0, 1], got 1.5")]
    fn dropout_must_be_a_probability() {
        let _ = RNN::new(3, 2).dropout(1.5);
    }
}
