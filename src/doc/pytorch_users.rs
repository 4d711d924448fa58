//! # tapegrad for PyTorch users
//!
//! tapegrad computes the way PyTorch does: eagerly, op by op, recording every op whose inputs
//! require grad so that `backward()` can walk the record in reverse. Most names are the ones you
//! know. This page lists, side by side, how to write in tapegrad what you write in PyTorch, and
//! then the differences worth knowing before they surprise you.
//!
//! Everything below assumes
//!
//! ```
//! use tapegrad::prelude::*;
//! ```
//!
//! which brings in [`Tensor`](crate::Tensor), [`DType`](crate::DType), the grad-mode guards,
//! [`grad`](crate::autograd::grad), [`BackwardOptions`](crate::autograd::BackwardOptions),
//! [`Generator`](crate::tensor::random::Generator) and
//! [`manual_seed`](crate::tensor::random::manual_seed).
//!
//! Everything in the tables exists and is linked to its documentation.
//!
//! ## Contents
//!
//! - [A first example](#a-first-example)
//! - [Creating tensors](#creating-tensors)
//! - [Dtypes](#dtypes)
//! - [Reading values and ndarray](#reading-values-and-ndarray)
//! - [Shape and indexing](#shape-and-indexing)
//! - [Math](#math)
//! - [Reductions](#reductions)
//! - [Activations](#activations)
//! - [In-place updates](#in-place-updates)
//! - [Comparing tensors in tests](#comparing-tensors-in-tests)
//! - [Autograd](#autograd)
//! - [Modules: torch.nn](#modules-torchnn)
//! - [Data: torch.utils.data](#data-torchutilsdata)
//! - [Distributed: torch.distributed](#distributed-torchdistributed)
//! - [Differences to know](#differences-to-know)
//! - [Layers, losses and torch.nn.functional](#layers-losses-and-torchnnfunctional)
//! - [Optimizers: torch.optim](#optimizers-torchoptim)
//! - [Saving, pretrained models, TensorBoard and threads](#saving-pretrained-models-tensorboard-and-threads)
//!
//! ## A first example
//!
//! PyTorch:
//!
//! ```text
//! x = torch.tensor([[1., 2., 3.]])
//! w = torch.tensor([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], requires_grad=True)
//! y = (x @ w).tanh().sum()
//! y.backward()
//! print(w.grad)
//! ```
//!
//! tapegrad:
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
//! let w = Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[3, 2]).requires_grad();
//! let y = x.matmul(&w).tanh().sum();
//! y.backward();
//! println!("{}", w.grad().unwrap());
//! // dy/dw_ij = x_i (1 - tanh²(x·w_j)): column j scales x by one factor
//! let g = w.grad().unwrap().to_vec::<f32>();
//! assert!((g[2] / g[0] - 2.0).abs() < 1e-5 && (g[4] / g[0] - 3.0).abs() < 1e-5);
//! ```
//!
//! Operators take references (`&x * &w`), so the operands stay usable; they also accept owned
//! tensors (`x.exp() + y`), which is handy for temporaries.
//!
//! ## Creating tensors
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.tensor([[1., 2.], [3., 4.]])` | `Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])` (f32) |
//! | `torch.tensor(v, dtype=torch.float64)` | `Tensor::from_vec_f64(v, &shape)` |
//! | `torch.tensor(v, dtype=torch.int64)` | `Tensor::from_vec_i64(v, &shape)` |
//! | `torch.tensor(v)` (any dtype) | `Tensor::from_values(v, &shape)`: the dtype follows the element type (`f32`, `f64`, `i64`, `bool`) |
//! | `torch.tensor(3.5)` (0-d) | `Tensor::scalar(3.5)`, `Tensor::scalar_of(3.5, DType::F64)` |
//! | `torch.zeros(2, 3)` | `Tensor::zeros(&[2, 3])` |
//! | `torch.ones(2, 3, dtype=torch.float64)` | `Tensor::ones_dtype(&[2, 3], DType::F64)` |
//! | `torch.full((2, 3), 7.)` | `Tensor::full(&[2, 3], 7.0)`, `Tensor::full_dtype(&[2, 3], 7.0, dtype)` |
//! | `torch.zeros_like(x)`, `ones_like`, `full_like` | `Tensor::zeros_like(&x)`, `Tensor::ones_like(&x)`, `Tensor::full_like(&x, v)` |
//! | `torch.eye(3)` | `Tensor::eye(3)` |
//! | `torch.arange(0, 5, 0.5)` | `Tensor::arange(0.0, 5.0, 0.5)`; `Tensor::arange_dtype(0.0, 5.0, 1.0, DType::I64)` for indices |
//! | `torch.linspace(0, 1, 5)` | `Tensor::linspace(0.0, 1.0, 5)` |
//! | `torch.manual_seed(0)` | `manual_seed(0)` |
//! | `torch.rand(2, 3)`, `torch.randn(2, 3)` | `Tensor::rand(&[2, 3])`, `Tensor::randn(&[2, 3])` |
//! | `torch.empty(2, 3).uniform_(a, b)` | `Tensor::uniform(&[2, 3], a, b)` |
//! | `torch.empty(2, 3).normal_(m, s)` | `Tensor::normal(&[2, 3], m, s)` |
//! | `torch.randint(lo, hi, (2, 3))` | `Tensor::randint(lo, hi, &[2, 3])` (int64) |
//! | `torch.randperm(n)` | `Tensor::randperm(n)` (int64) |
//! | `g = torch.Generator().manual_seed(7)`; `torch.randn(3, generator=g)` | `let mut g = Generator::new(7);` `Tensor::randn_with(&[3], &mut g)` (also `rand_with`, `uniform_with`, `randint_with`) |
//! | `torch.from_numpy(a)` | `Tensor::from(a)` for an ndarray `Array` or `ArcArray`: no copy |
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let mut g1 = Generator::new(7);
//! let mut g2 = Generator::new(7);
//! assert_eq!(
//!     Tensor::randn_with(&[3], &mut g1).to_vec::<f32>(),
//!     Tensor::randn_with(&[3], &mut g2).to_vec::<f32>(),
//! );
//! let steps = Tensor::arange(0.0, 1.0, 0.25);
//! assert_eq!(steps.to_vec::<f32>(), vec![0.0, 0.25, 0.5, 0.75]);
//! ```
//!
//! ## Dtypes
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.float32` (the default) | `DType::F32` (the default) |
//! | `torch.float64` | `DType::F64` |
//! | `torch.int64` | `DType::I64` |
//! | `torch.bool` | `DType::Bool` |
//! | `x.dtype` | `x.dtype()` |
//! | `x.to(torch.float64)`, `x.double()`, `x.float()`, `x.long()` | `x.to_dtype(DType::F64)`, `x.double()`, `x.float()`, `x.long()` |
//! | `x.dtype.is_floating_point` | `x.dtype().is_float()` |
//! | `x.element_size()` | `x.dtype().size_in_bytes()` |
//!
//! There is no automatic type promotion: `f32 + f64` panics and asks you to convert one side.
//! Arithmetic is defined on float tensors; `I64` is for indices and labels, `Bool` for masks.
//! The gradient of `to_dtype` between float dtypes flows back converted; casts to `I64` or `Bool`
//! are not differentiable, as in PyTorch.
//!
//! ## Reading values and ndarray
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `x.item()` | `x.item()`, always returned as `f64` |
//! | `x.tolist()` (flattened) | `x.to_vec::<f32>()` (must match the dtype), `x.to_vec_f64()` (any dtype) |
//! | `x.numpy()` | `x.to_ndarray::<f32>()`: an `ndarray::ArcArray` sharing the storage |
//! | `x.numpy().copy()` | `x.into_ndarray::<f32>()`: an owned `ArrayD` (copies only if shared) |
//! | `print(x)` | `println!("{x}")` (`{x:?}` too); `x.to_html()` for notebooks |
//!
//! ```
//! use ndarray::array;
//! use tapegrad::prelude::*;
//!
//! let a = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let ptr = a.as_ptr();
//! let t = Tensor::from(a); // takes the buffer, no copy
//! assert_eq!(t.to_ndarray::<f32>().as_ptr(), ptr); // hands the same buffer back
//! assert_eq!(t.to_ndarray::<f32>()[[1, 0]], 3.0);
//! ```
//!
//! ## Shape and indexing
//!
//! Dims may be negative (`-1` is the last) and shapes may contain one `-1` to infer, as in
//! PyTorch; integer literals need no suffix. The examples below also `use tapegrad::s;`.
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `x.shape`, `x.size()` | `x.shape()`, `x.size()` (`&[usize]`) |
//! | `x.ndim`, `x.dim()` | `x.ndim()`, `x.dim()` |
//! | `x.numel()` | `x.numel()` |
//! | `x.stride()`, `x.is_contiguous()` | `x.stride()`, `x.is_contiguous()` |
//! | `x.reshape(2, -1)` | `x.reshape([2, -1])` |
//! | `x.view(2, -1)` | `x.view([2, -1])` (contiguous tensors only, as in PyTorch) |
//! | `x.permute(2, 0, 1)` | `x.permute([2, 0, 1])` |
//! | `x.transpose(0, 1)`, `x.T` / `x.t()` | `x.transpose(0, 1)`, `x.t()` |
//! | `x.unsqueeze(0)`, `x.squeeze()`, `x.squeeze(1)` | `x.unsqueeze(0)`, `x.squeeze()`, `x.squeeze_dim(1)` |
//! | `x.expand(3, -1)`, `x.broadcast_to((3, 4))` | `x.expand([3, -1])`, `x.broadcast_to([3, 4])` |
//! | `x.contiguous()` | `x.contiguous()` |
//! | `x.flatten()`, `x.flatten(1)` | [`x.flatten_all()`](crate::Tensor::flatten_all), [`x.flatten(1, -1)`](crate::Tensor::flatten) |
//! | `x.unflatten(1, (3, -1))` | [`x.unflatten(1, [3, -1])`](crate::Tensor::unflatten) |
//! | `x[:, 1::2, -1]`, `x[1:, ..., :3]` | [`x.index(&s![.., 1..;2, -1])`](crate::Tensor::index) with the [`s!`](crate::s) macro; missing trailing dims are taken whole |
//! | `x[:, 2:5]` (one dim) | [`x.slice(1, Some(2), Some(5), 1)`](crate::Tensor::slice) (start, end, step) |
//! | `x.narrow(1, 2, 3)` | [`x.narrow(1, 2, 3)`](crate::Tensor::narrow) |
//! | `x.select(1, 0)`, `x[:, 0]` | [`x.select(1, 0)`](crate::Tensor::select) |
//! | `x[idx]`, `x.index_select(0, idx)` (int64 `idx`) | [`x.index_select(0, &idx)`](crate::Tensor::index_select) |
//! | `x.index_add(0, idx, src)` | [`x.index_add(0, &idx, &src)`](crate::Tensor::index_add) (out of place) |
//! | `x.gather(1, idx)` | [`x.gather(1, &idx)`](crate::Tensor::gather) |
//! | `x.scatter_add(1, idx, src)` | [`x.scatter_add(1, &idx, &src)`](crate::Tensor::scatter_add) (out of place) |
//! | `torch.cat([a, b], 0)`, `torch.stack([a, b], 0)` | [`Tensor::cat(&[&a, &b], 0)`](crate::Tensor::cat), [`Tensor::stack(&[&a, &b], 0)`](crate::Tensor::stack) |
//! | `x.split(2)`, `x.split([2, 3])`, `x.chunk(3)` | [`x.split(2, 0)`](crate::Tensor::split), [`x.split_sizes(&[2, 3], 0)`](crate::Tensor::split_sizes), [`x.chunk(3, 0)`](crate::Tensor::chunk) |
//! | `F.pad(x, (1, 1), value=0.)` | [`x.pad(&[1, 1], 0.0)`](crate::Tensor::pad) (pairs from the last dim, as in PyTorch) |
//! | `x.repeat(2, 1)` | [`x.repeat(&[2, 1])`](crate::Tensor::repeat) |
//! | `x[1, 0].item()` (one element) | `x.index(&s![1, 0]).item()`, or `x.to_ndarray::<f32>()[[1, 0]]` (reads without recording) |
//!
//! `slice`, `narrow`, `select`, `index`, `split` and `chunk` give views sharing the storage (see
//! [copy-on-write](#differences-to-know)); `cat`, `stack`, `repeat`, `pad`, `index_select` and
//! `gather` copy.
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::s;
//!
//! let x = Tensor::arange(0.0, 6.0, 1.0);
//! let m = x.reshape([2, -1]); // [[0, 1, 2], [3, 4, 5]]
//! assert_eq!(m.shape(), &[2, 3]);
//! assert_eq!(m.t().to_vec::<f32>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
//! assert_eq!(m.unsqueeze(-1).shape(), &[2, 3, 1]);
//! assert_eq!(m.sum_dim(-1, false).to_vec::<f32>(), vec![3.0, 12.0]);
//!
//! // m[:, 1:], m[-1], and rows [1, 0, 1] of m
//! assert_eq!(m.index(&s![.., 1..]).to_vec::<f32>(), vec![1.0, 2.0, 4.0, 5.0]);
//! assert_eq!(m.index(&s![-1]).to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
//! let rows = Tensor::from_vec_i64(vec![1, 0, 1], &[3]);
//! assert_eq!(m.index_select(0, &rows).shape(), &[3, 3]);
//! // torch.cat((m, m), 1) and m.chunk(3, 1)
//! assert_eq!(Tensor::cat(&[&m, &m], 1).shape(), &[2, 6]);
//! assert_eq!(m.chunk(3, 1)[2].to_vec::<f32>(), vec![2.0, 5.0]);
//! ```
//!
//! `s!` is exported at the crate root: `use tapegrad::s;`. Each entry is a Rust range (`..`,
//! `1..3`, `2..`, `..-1`, `0..=2`) or an integer (which removes the dim), with `;step` after a
//! range for a stride.
//!
//! ## Math
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `a + b`, `a - b`, `a * b`, `a / b`, `-a` | `&a + &b`, `&a - &b`, `&a * &b`, `&a / &b`, `-&a` (broadcasting as in PyTorch) |
//! | `a * 2`, `2 * a`, `a + 0.5` | `&a * 2.0`, `2.0 * &a`, `&a + 0.5` (the scalar is an `f64`, see below) |
//! | `torch.add(a, b)` etc. | `a.add(&b)`, `a.sub(&b)`, `a.mul(&b)`, `a.div(&b)` |
//! | `a ** 3`, `a ** b` | `a.powf(3.0)`, `a.pow(&b)` |
//! | `a.square()`, `a.sqrt()`, `a.rsqrt()` | `a.square()`, `a.sqrt()`, `a.rsqrt()` |
//! | `a.exp()`, `a.log()` | `a.exp()`, `a.log()` |
//! | `a.sin()`, `a.cos()`, `a.tanh()` | `a.sin()`, `a.cos()`, `a.tanh()` |
//! | `a.abs()`, `a.sign()`, `a.neg()` | `a.abs()`, `a.sign()`, `a.neg()` |
//! | `a.clamp(lo, hi)`, `a.clamp(min=lo)`, `a.clamp(max=hi)` | `a.clamp(lo, hi)`, `a.clamp_min(lo)`, `a.clamp_max(hi)` |
//! | `torch.maximum(a, b)`, `torch.minimum(a, b)` | `a.maximum(&b)`, `a.minimum(&b)` |
//! | `a @ b`, `torch.matmul(a, b)`, `torch.mm(a, b)` | `a.matmul(&b)` (1-d, 2-d, batched, broadcast), `a.mm(&b)` |
//! | `a == b`, `a != b`, `a < b`, `a <= b`, `a > b`, `a >= b` | `a.eq(&b)`, `a.ne(&b)`, `a.lt(&b)`, `a.le(&b)`, `a.gt(&b)`, `a.ge(&b)` (bool masks) |
//! | `a > 0.5` | `a.gt_scalar(0.5)` (also `eq_scalar`, `ne_scalar`, `lt_scalar`, `le_scalar`, `ge_scalar`) |
//! | `m1 & m2`, `m1 \| m2`, `~m` | `m1.logical_and(&m2)`, `m1.logical_or(&m2)`, `m.logical_not()` |
//! | `torch.where(cond, a, b)` | `a.where_(&cond, &b)` |
//! | `a.masked_fill(mask, v)` | `a.masked_fill(&mask, v)` |
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let a = Tensor::from_vec(vec![-1.0, 0.5, 2.0], &[3]);
//! let b = Tensor::from_vec(vec![10.0], &[1]); // broadcast against a
//! assert_eq!((&a * &b + 1.0).to_vec::<f32>(), vec![-9.0, 6.0, 21.0]);
//! let positive = a.gt_scalar(0.0);
//! assert_eq!(a.where_(&positive, &Tensor::zeros(&[3])).to_vec::<f32>(), vec![0.0, 0.5, 2.0]);
//! assert_eq!(a.clamp(0.0, 1.0).to_vec::<f32>(), vec![0.0, 0.5, 1.0]);
//! ```
//!
//! ## Reductions
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `x.sum()`, `x.mean()` | `x.sum()`, `x.mean()` (0-d tensors) |
//! | `x.sum(dim=1, keepdim=True)` | `x.sum_dim(1, true)` |
//! | `x.sum(dim=(0, 2))` | `x.sum_dim([0, 2], false)` |
//! | `x.mean(dim=-1)` | `x.mean_dim(-1, false)` |
//! | (the gradient of broadcasting) `g.sum_to_size(shape)` | `g.sum_to(&shape)` |
//! | `x.var()`, `x.var(1, unbiased=False, keepdim=True)` | [`x.var(true)`](crate::Tensor::var), [`x.var_dim(1, false, true)`](crate::Tensor::var_dim) |
//! | `x.std()`, `x.std(dim)` | [`x.std(true)`](crate::Tensor::std), [`x.std_dim(dim, true, false)`](crate::Tensor::std_dim) |
//! | `x.prod()`, `x.prod(dim)` | [`x.prod()`](crate::Tensor::prod), [`x.prod_dim(dim, false)`](crate::Tensor::prod_dim) |
//! | `x.norm()`, `x.norm(p=1)`, `x.norm(2, dim=1)` | [`x.norm()`](crate::Tensor::norm), [`x.norm_p(1.0)`](crate::Tensor::norm_p), [`x.norm_dim(2.0, 1, false)`](crate::Tensor::norm_dim) |
//! | `x.max()`, `x.min()` | [`x.max()`](crate::Tensor::max), [`x.min()`](crate::Tensor::min) |
//! | `values, indices = x.max(dim=1)` | [`let (values, indices) = x.max_dim(1, false);`](crate::Tensor::max_dim) (also [`min_dim`](crate::Tensor::min_dim)) |
//! | `torch.amax(x, (0, 1))`, `torch.amin(x, 0)` | [`x.amax([0, 1], false)`](crate::Tensor::amax), [`x.amin(0, false)`](crate::Tensor::amin) |
//! | `x.argmax()`, `x.argmax(dim=1)` | [`x.argmax()`](crate::Tensor::argmax), [`x.argmax_dim(1, false)`](crate::Tensor::argmax_dim) (int64; also `argmin`, `argmin_dim`) |
//! | `torch.logsumexp(x, dim)` | [`x.logsumexp(dim, false)`](crate::Tensor::logsumexp) |
//! | `x.softmax(dim)`, `x.log_softmax(dim)` | [`x.softmax(dim)`](crate::Tensor::softmax), [`x.log_softmax(dim)`](crate::Tensor::log_softmax) |
//!
//! PyTorch's `var` and `std` default to `unbiased=True`; here the flag is always explicit.
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 7.0, 0.0, 3.0], &[2, 3]);
//! let (values, indices) = x.max_dim(1, false);
//! assert_eq!(values.to_vec::<f32>(), vec![5.0, 7.0]);
//! assert_eq!(indices.to_vec::<i64>(), vec![1, 0]);
//! // each row of a softmax sums to 1
//! let rows = x.softmax(-1).sum_dim(-1, false).to_vec::<f32>();
//! assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-6));
//! ```
//!
//! ## Activations
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.tanh(x)`, `torch.sigmoid(x)` | [`x.tanh()`](crate::Tensor::tanh), [`x.sigmoid()`](crate::Tensor::sigmoid) |
//! | `F.relu(x)`, `F.leaky_relu(x, 0.01)` | [`x.relu()`](crate::Tensor::relu), [`x.leaky_relu(0.01)`](crate::Tensor::leaky_relu) |
//! | `F.gelu(x)`, `F.gelu(x, approximate="tanh")` | [`x.gelu()`](crate::Tensor::gelu) (exact, erf-based), [`x.gelu_tanh()`](crate::Tensor::gelu_tanh) |
//! | `F.silu(x)` | [`x.silu()`](crate::Tensor::silu) |
//! | `F.softplus(x)`, `F.softplus(x, beta, threshold)` | [`x.softplus()`](crate::Tensor::softplus), [`x.softplus_with(beta, threshold)`](crate::Tensor::softplus_with) |
//!
//! ## In-place updates
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `p.data.copy_(src)`, `with torch.no_grad(): p.copy_(src)` | `p.assign(&src)` (not recorded; every clone of `p` sees it) |
//! | `with torch.no_grad(): p -= lr * p.grad` | `let _g = no_grad(); p.assign(&(&p - &(p.grad().unwrap() * lr)));` |
//! | `x.add_(y)`, `x.sub_(y)`, `x.mul_(y)` | [`x.add_(&y)`](crate::Tensor::add_), [`x.sub_(&y)`](crate::Tensor::sub_), [`x.mul_(&y)`](crate::Tensor::mul_) (`y` broadcasts) |
//! | `p.add_(g, alpha=-lr)` | [`p.add_scaled_(&g, -lr)`](crate::Tensor::add_scaled_) |
//! | `x.mul_(2.0)`, `x.clamp_(lo, hi)` | [`x.mul_scalar_(2.0)`](crate::Tensor::mul_scalar_), [`x.clamp_(lo, hi)`](crate::Tensor::clamp_) |
//! | `x.zero_()`, `x.fill_(v)`, `x.copy_(y)` | [`x.zero_()`](crate::Tensor::zero_), [`x.fill_(v)`](crate::Tensor::fill_), [`x.copy_(&y)`](crate::Tensor::copy_) (`y` broadcast and converted) |
//!
//! In-place ops are not recorded; on a tensor that requires grad they panic unless grad mode is
//! off, so an update step runs under `no_grad()`, as in PyTorch. They return `&Tensor`, so they
//! chain: `p.mul_scalar_(0.9).add_scaled_(&g, -lr)`.
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let p = Tensor::ones(&[3]).requires_grad();
//! (&p * &p).sum().backward(); // grad = 2p
//! {
//!     let _g = no_grad();
//!     p.add_scaled_(&p.grad().unwrap(), -0.25); // p -= 0.25 · 2p
//! }
//! assert_eq!(p.to_vec::<f32>(), vec![0.5; 3]);
//! ```
//!
//! ## Comparing tensors in tests
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.equal(a, b)` | `a == b` (shape, dtype and every value) |
//! | `torch.testing.assert_close(a, b, rtol=r, atol=t)` | [`a.assert_close(&b, r, t)`](crate::Tensor::assert_close): on failure names the worst element, its index and how many failed |
//! | `torch.allclose(a, b)` | `approx::relative_eq!(a, b, max_relative = 1e-5)`, `abs_diff_eq!`, `ulps_eq!` (with the `approx` crate as a dependency: its traits are implemented for `Tensor`) |
//! | `(a - b).abs().max()` | [`a.max_abs_diff(&b)`](crate::Tensor::max_abs_diff): the difference and its row-major position |
//!
//! ## Autograd
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.tensor(v, requires_grad=True)` | `Tensor::from_vec(v, &shape).requires_grad()` |
//! | `x.requires_grad_(False)` | `x.requires_grad_(false)` (leaves only, panics otherwise) |
//! | `x.requires_grad` | `x.requires_grad_enabled()` or `x.is_requires_grad()` |
//! | `x.is_leaf` | `x.is_leaf()` |
//! | `loss.backward()` | `loss.backward()` (scalars only) |
//! | `y.backward(gradient=g)` | `y.backward_with(&g)` |
//! | `loss.backward(retain_graph=True)` | `loss.backward_opts(&Tensor::ones_like(&loss), BackwardOptions { retain_graph: true, ..Default::default() })` |
//! | `loss.backward(create_graph=True)` | the same with `create_graph: true` |
//! | `x.grad` | `x.grad()`, an `Option<Tensor>` |
//! | `x.grad = None`, `optimizer.zero_grad()` | `x.zero_grad()` (or `x.set_grad(None)`) |
//! | `x.retain_grad()` | `x.retain_grad()` |
//! | `x.detach()` | `x.detach()` (a new leaf on the same storage) |
//! | `x.grad_fn` | `x.grad_fn()`, the op's name (`Some("matmul")`), `None` for leaves |
//! | `with torch.no_grad():` | `let _g = no_grad();` (until the end of the scope) |
//! | `with torch.enable_grad():` | `let _g = enable_grad();` |
//! | `torch.set_grad_enabled(flag)` | `let _g = set_grad_enabled(flag);` |
//! | `torch.is_grad_enabled()` | `is_grad_enabled()` |
//! | `torch.autograd.grad(y, x)` | `grad(&[&y], &[&x], false)`, a `Vec<Tensor>` |
//! | `torch.autograd.grad(y, x, create_graph=True)` | `grad(&[&y], &[&x], true)` |
//! | `torch.autograd.grad(y, [x, z], allow_unused=True)` | `grad_allow_unused(&[&y], &[&x, &z], false)`, `None` for unused inputs |
//! | `h = x.register_hook(lambda g: g * 2)` | [`let h = x.register_hook(\|g\| Some(g * 2.0));`](crate::Tensor::register_hook) (`None` keeps the gradient) |
//! | `p.register_post_accumulate_grad_hook(lambda p: ...)` | [`p.register_post_accumulate_grad_hook(\|p\| ...)`](crate::Tensor::register_post_accumulate_grad_hook) (leaves only; once per backward, after `.grad` is final) |
//! | `h.remove()` | [`h.remove()`](crate::autograd::HookHandle::remove) (dropping `h` keeps the hook) |
//! | `Variable._execution_engine.queue_callback(f)` | [`queue_callback(f)`](crate::autograd::queue_callback), from inside a hook |
//! | `with torch.autograd.detect_anomaly():` | `let _a = detect_anomaly();` |
//! | `torch.autograd.gradcheck(f, (x,))` | `gradcheck(\|t\| f(&t[0]), &[x])` (in f64) |
//! | (graph memory) | `tapegrad::autograd::tape::len()`, `saved_bytes()`, `entries()`, `entry_of(&t)` |
//! | tracing (`torch.jit.trace`'s recorder) | `let y = autograd::trace(\|\| model.forward(&x));` then `autograd::graph::TapeGraph::of(&[&y], &params)` |
//! | `derivatives.yaml` (op names, inputs, attributes) | `tapegrad::autograd::schema::OPS` |
//!
//! A training step, PyTorch:
//!
//! ```text
//! loss = ((x @ w + b - y) ** 2).mean()
//! loss.backward()
//! with torch.no_grad():
//!     for p in (w, b):
//!         p -= 0.1 * p.grad
//!         p.grad = None
//! ```
//!
//! tapegrad:
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let mut g = Generator::new(0);
//! let x = Tensor::randn_with(&[16, 3], &mut g);
//! let y = x.matmul(&Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3, 1])) + 0.3;
//! let w = Tensor::zeros(&[3, 1]).requires_grad();
//! let b = Tensor::zeros(&[1]).requires_grad();
//! for _ in 0..500 {
//!     let loss = (x.matmul(&w) + &b - &y).square().mean();
//!     loss.backward();
//!     let _g = no_grad();
//!     for p in [&w, &b] {
//!         p.assign(&(p - &(p.grad().unwrap() * 0.1)));
//!         p.zero_grad();
//!     }
//! }
//! assert!((b.item() - 0.3).abs() < 1e-4);
//! ```
//!
//! Higher-order gradients, a gradient penalty ‖∇ₓ f‖² differentiated with respect to the
//! parameters:
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! // f(x) = (w·x)³, ∇ₓf = 3(w·x)² w
//! let w = Tensor::from_vec_f64(vec![0.5, -1.0], &[2]).requires_grad();
//! let x = Tensor::from_vec_f64(vec![2.0, 0.5], &[2]).requires_grad();
//! let f = (&w * &x).sum().powf(3.0);
//! let gx = grad(&[&f], &[&x], true).remove(0); // on the tape itself
//! let penalty = gx.square().sum(); // 9 (w·x)⁴ ‖w‖² = 9 · 0.5⁴ · 1.25
//! assert!((penalty.item() - 9.0 * 0.0625 * 1.25).abs() < 1e-12);
//! penalty.backward(); // dP/dw lands in w.grad
//! assert!(w.grad().is_some());
//! ```
//!
//! ## Modules: torch.nn
//!
//! A model is a struct. `#[derive(Module)]` gives it what `nn.Module` gives a class — named
//! parameters, `state_dict`, train / eval, `zero_grad` — from its fields; [`Forward`](crate::nn::Forward) is its
//! `forward`.
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `class Net(nn.Module)` with layers in `__init__` | `#[derive(Module)] struct Net { .. }`: [`Module`](crate::nn::Module) derived from the fields |
//! | `def forward(self, x)`, `net(x)` | `impl Forward for Net { fn forward(&self, x: &Tensor) -> Tensor }`, `net.forward(&x)` |
//! | `nn.Parameter(t)` | a `Tensor` field (that requires grad) |
//! | `self.register_buffer("running_mean", t)` | a `Tensor` field marked `#[buffer]` |
//! | `self.training` | a [`TrainFlag`](crate::nn::TrainFlag) field |
//! | (a plain attribute) | numbers, `bool`, `String`, and fields marked `#[module(skip)]` |
//! | `nn.ModuleList([...])` | a `Vec<M>` field (children named `blocks.0`, `blocks.1`, …); `Option<M>` for an optional child |
//! | `nn.Linear(4, 8)`, `nn.Linear(4, 8, bias=False)` | [`nn::Linear::new(4, 8)`](crate::nn::Linear::new), [`Linear::with_bias(4, 8, false)`](crate::nn::Linear::with_bias); `Linear::from_tensors(w, Some(b))` |
//! | `nn.Sequential(a, b, c)` | [`nn::Sequential::new().add(a).add(b).add(c)`](crate::nn::Sequential) (children named `0`, `1`, …) |
//! | `nn.Flatten()` | [`nn::Flatten::new()`](crate::nn::Flatten) |
//! | `nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)`; `out, (h, c) = lstm(x, (h0, c0))` | [`nn::LSTM::new(3, 4).num_layers(2).bidirectional(true).batch_first(true)`](crate::nn::LSTM); `let (out, (h, c)) = lstm.forward(&x, Some((&h0, &c0)))` (`None` for zeros); likewise [`nn::RNN`](crate::nn::RNN) (`.relu(true)`), [`nn::GRU`](crate::nn::GRU), and [`nn::LSTMCell`](crate::nn::LSTMCell), [`nn::GRUCell`](crate::nn::GRUCell), [`nn::RNNCell`](crate::nn::RNNCell); same parameter names (`weight_ih_l0_reverse`) |
//! | `nn.MultiheadAttention(8, 2, batch_first=True)`; `mha(q, k, v, key_padding_mask=m, attn_mask=a, need_weights=True)` | [`nn::MultiheadAttention::new(8, 2).batch_first(true)`](crate::nn::MultiheadAttention); `mha.forward(&q, &k, &v, Some(&m), Some(&a), true)` → `(out, Option<weights>)` |
//! | `nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, norm_first=True), 6, norm=nn.LayerNorm(8))` | [`nn::TransformerEncoder::new(&nn::TransformerEncoderLayer::new(8, 2).norm_first(true), 6).norm(nn::LayerNorm::new(&[8]))`](crate::nn::TransformerEncoder); `enc.forward(&x, mask, key_padding_mask)` |
//! | `net.parameters()`, `net.named_parameters()` | [`net.parameters()`](crate::nn::Module::parameters), [`net.named_parameters()`](crate::nn::Module::named_parameters): `Vec<(String, Tensor)>` with dotted names (`fc1.weight`) |
//! | `net.named_buffers()` | [`net.named_buffers()`](crate::nn::Module::named_buffers) |
//! | `net.state_dict()` | [`net.state_dict()`](crate::nn::Module::state_dict): a `BTreeMap<String, Tensor>` of detached parameters and buffers |
//! | `net.load_state_dict(sd, strict=True)` | [`net.load_state_dict(&sd, true)?`](crate::nn::Module::load_state_dict): copies in place (optimizers keep seeing the same tensors); returns a `LoadReport` of missing / unexpected keys |
//! | `torch.save(net.state_dict(), "m.safetensors")`, `safetensors.torch.load_file` | [`net.save_safetensors(path)?`](crate::nn::Module::save_safetensors) (atomic: temp file + rename), [`net.load_safetensors(path, true)?`](crate::nn::Module::load_safetensors), [`io::safetensors::load`](crate::io::safetensors::load) |
//! | `torch.load("model.pt")` (a `torch.save` zip) | [`io::torch::load(path)?`](crate::io::torch::load): the state_dict of a `.pt` / `.bin` checkpoint |
//! | `sum(p.numel() for p in net.parameters())` | [`net.num_parameters()`](crate::nn::Module::num_parameters) |
//! | `net.train()`, `net.eval()`, `net.training` | [`net.train()`](crate::nn::Module::train), [`net.set_training(mode)`](crate::nn::Module::set_training), [`net.eval()`](crate::nn::Module::eval), [`net.is_training()`](crate::nn::Module::is_training) |
//! | `net.zero_grad()` | [`net.zero_grad()`](crate::nn::Module::zero_grad) (sets the grads to `None`, like PyTorch's default) |
//! | `nn.init.uniform_(w, a, b)`, `normal_`, `constant_`, `zeros_`, `ones_` | [`init::uniform_(&w, a, b)`](crate::nn::init::uniform_), [`normal_`](crate::nn::init::normal_), [`constant_`](crate::nn::init::constant_), [`zeros_`](crate::nn::init::zeros_), [`ones_`](crate::nn::init::ones_) |
//! | `nn.init.xavier_uniform_(w, gain=1.)`, `xavier_normal_` | [`init::xavier_uniform_(&w, 1.0)`](crate::nn::init::xavier_uniform_), [`xavier_normal_`](crate::nn::init::xavier_normal_) |
//! | `nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")` | [`init::kaiming_normal_(&w, 0.0, FanMode::FanOut, "relu")`](crate::nn::init::kaiming_normal_) (also [`kaiming_uniform_`](crate::nn::init::kaiming_uniform_)) |
//! | `nn.init.calculate_gain("tanh")` | [`init::calculate_gain("tanh", None)`](crate::nn::init::calculate_gain) |
//!
//! `init` functions draw from the global generator ([`manual_seed`](crate::tensor::random::manual_seed)),
//! and `Linear` starts as PyTorch's does (U(±1/√in) for weight and bias).
//!
//! ```
//! use tapegrad::nn::{self, Forward, Module};
//! use tapegrad::prelude::*;
//!
//! #[derive(Module)]
//! struct Mlp {
//!     fc1: nn::Linear,
//!     fc2: nn::Linear,
//! }
//!
//! impl Forward for Mlp {
//!     fn forward(&self, x: &Tensor) -> Tensor {
//!         self.fc2.forward(&self.fc1.forward(x).relu())
//!     }
//! }
//!
//! manual_seed(0);
//! let net = Mlp { fc1: nn::Linear::new(4, 8), fc2: nn::Linear::new(8, 1) };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! assert_eq!(net.num_parameters(), 4 * 8 + 8 + 8 + 1);
//!
//! // one SGD step
//! let saved = net.state_dict(); // a snapshot: later updates do not change it
//! let x = Tensor::randn(&[16, 4]);
//! let loss = net.forward(&x).square().mean();
//! loss.backward();
//! {
//!     let _g = no_grad();
//!     for p in net.parameters() {
//!         p.add_scaled_(&p.grad().unwrap(), -0.1);
//!     }
//! }
//! net.zero_grad();
//! assert!(net.fc1.weight.grad().is_none());
//! assert!(net.fc2.bias.as_ref().unwrap() != &saved["fc2.bias"]);
//!
//! // back to the snapshot
//! let report = net.load_state_dict(&saved, true).unwrap();
//! assert!(report.missing_keys.is_empty() && report.unexpected_keys.is_empty());
//! assert!(net.fc2.bias.as_ref().unwrap() == &saved["fc2.bias"]);
//!
//! // train / eval reach every child that has a flag
//! net.eval();
//! let seq = nn::Sequential::new().add(nn::Linear::new(4, 8)).add(nn::Flatten::new());
//! assert_eq!(seq.named_parameters()[0].0, "0.weight");
//! ```
//!
//! ## Data: torch.utils.data
//!
//! [`tapegrad::data`](crate::data) follows `torch.utils.data`: a map-style dataset, subsets,
//! a seeded `random_split`, and a `DataLoader` that batches, shuffles and can prepare batches on
//! worker threads.
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `class D(Dataset)` with `__len__`, `__getitem__` | `impl Dataset for D` with [`len`](crate::data::Dataset::len), [`get`](crate::data::Dataset::get) and an `Item` type |
//! | `TensorDataset(x, y)` | [`TensorDataset::new((x, y))?`](crate::data::TensorDataset::new) (one tensor, a tuple, or a `Vec<Tensor>`) |
//! | `Subset(ds, indices)` | [`Subset::new(ds, indices)`](crate::data::Subset::new) |
//! | `random_split(ds, [0.8, 0.2], generator=g)` | [`random_split(ds, &[0.8, 0.2], &mut g)?`](crate::data::random_split) (fractions or counts) |
//! | `DataLoader(ds, batch_size=32)` | [`DataLoader::new(ds, 32)`](crate::data::DataLoader::new) |
//! | `shuffle=True, generator=g` | [`.shuffle(g)`](crate::data::DataLoader::shuffle) (a [`Generator`](crate::tensor::random::Generator), so epochs are reproducible) |
//! | `drop_last=True` | [`.drop_last(true)`](crate::data::DataLoader::drop_last) |
//! | `sampler=s` (exclusive with `shuffle`), `class S(Sampler)` | [`.sampler(s)`](crate::data::DataLoader::sampler), `impl` [`Sampler`](crate::data::Sampler) (`__iter__` is `indices`, `__len__` is `len`) |
//! | `DistributedSampler(ds, num_replicas, rank, shuffle, seed, drop_last)` | [`DistributedSampler::new(ds.len(), num_replicas, rank)`](crate::data::DistributedSampler::new) with `.shuffle(b)`, `.seed(s)`, `.drop_last(b)` |
//! | `loader.sampler.set_epoch(e)` | [`loader.set_epoch(e)`](crate::data::DataLoader::set_epoch) (the loader owns the sampler) |
//! | `num_workers=2, prefetch_factor=4` | [`.num_workers(2)`](crate::data::DataLoader::num_workers), [`.prefetch_factor(4)`](crate::data::DataLoader::prefetch_factor) (threads; same batches in the same order as without) |
//! | `collate_fn=f` | [`DataLoader::with_collate(ds, 32, f)`](crate::data::DataLoader::with_collate) or [`.collate_fn(f)`](crate::data::DataLoader::collate_fn) |
//! | `default_collate(items)` | [`default_collate(items)`](crate::data::default_collate) (stacks along a new dim 0) |
//! | `for x, y in loader:`, `len(loader)` | `for (x, y) in &loader`, [`loader.len()`](crate::data::DataLoader::len) |
//! | `sklearn.datasets.load_digits()` | [`datasets::digits()?`](crate::data::datasets::digits): 1797 images `[1, 8, 8]` in `[0, 1]` and int64 labels, shipped in the crate |
//! | `torchvision.datasets.MNIST(root)` | [`datasets::mnist(dir)?`](crate::data::datasets::mnist) (`.train`, `.test`; reads IDX files you have, no download) |
//! | reading an IDX file | [`read_idx(path)?`](crate::data::read_idx) |
//!
//! Constructors that can fail on their input (`TensorDataset::new`, `random_split`, the dataset
//! readers) return [`Result`](crate::Result).
//!
//! ```
//! use tapegrad::data::{datasets, random_split, DataLoader, Dataset};
//! use tapegrad::prelude::*;
//!
//! let digits = datasets::digits()?;
//! let mut parts = random_split(digits, &[0.8, 0.2], &mut Generator::new(0))?;
//! let (test, train) = (parts.pop().unwrap(), parts.pop().unwrap());
//! assert_eq!((train.len(), test.len()), (1438, 359));
//!
//! let loader = DataLoader::new(train, 64).shuffle(Generator::new(1)).drop_last(true);
//! assert_eq!(loader.len(), 1438 / 64);
//! for (images, labels) in &loader {
//!     assert_eq!(images.shape(), &[64, 1, 8, 8]);
//!     assert_eq!((labels.shape(), labels.dtype()), (&[64][..], DType::I64));
//! }
//! # Ok::<(), tapegrad::Error>(())
//! ```
//!
//! `examples/03_data.rs` trains a softmax regression on these digits with this loader.
//!
//! ## Export: torch.onnx
//!
//! | PyTorch | tapegrad (feature `onnx`) |
//! |---|---|
//! | `torch.onnx.export(model, (x,), "m.onnx", input_names=["input"], dynamic_axes={"input": {0: "batch"}}, opset_version=17)` | `export::onnx::export(&model, &[&x], "m.onnx", Options::default().input_names(&["input"]).dynamic_axis("input", 0, "batch").opset_version(17))?` |
//! | `torch.onnx.export(model, (ids, mask), ...)` | `export::onnx::to_model_proto_with(&model, &[&ids, &mask], \|x\| vec![..], options)?` |
//!
//! As in PyTorch, export traces one forward pass; call `model.eval()` first (it is an error
//! otherwise).
//!
//! ## Distributed: torch.distributed
//!
//! In [`tapegrad::distributed`](crate::distributed). Collectives return `Result` (timeouts and
//! failed ranks are errors, never hangs) and are not recorded on the tape.
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `mp.spawn(fn, nprocs=4)` | `distributed::launch(Backend::Threads(4), \|pg\| ..)` (4 ranks on threads, each with its own tape) |
//! | `dist.init_process_group("gloo", timeout=td)` | `init_process_group_with(backend, InitOptions { timeout, .. })` |
//! | `dist.get_rank()`, `dist.get_world_size()` | `pg.rank()`, `pg.world_size()` (or the free `distributed::rank()`, `world_size()`) |
//! | `dist.all_reduce(t, op=ReduceOp.SUM)` | `pg.all_reduce(&t, ReduceOp::Sum)?` (in place; also `Avg`, `Max`, `Min`, `Product`) |
//! | `w = dist.all_reduce(t, async_op=True)`; `w.wait()` | `let w = pg.all_reduce_async(&t, op)?;` `w.wait()?` |
//! | `dist.broadcast(t, src=0)` | `pg.broadcast(&t, 0)?` (in place) |
//! | `dist.all_gather(out_list, t)` | `let out = pg.all_gather(&t)?;` |
//! | `dist.reduce_scatter_tensor(out, t, op)` | `let out = pg.reduce_scatter(&t, op)?;` |
//! | `dist.all_gather_object(out, obj)` | `pg.all_gather_bytes(&bytes)?` |
//! | `dist.barrier()`, `dist.destroy_process_group()` | `pg.barrier()?`, `distributed::destroy_process_group()` |
//!
//! ## Data parallelism: torch.nn.parallel
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `DistributedDataParallel(model)` | `nn::parallel::DistributedDataParallel::new(model, &group)?` |
//! | `DDP(model, bucket_cap_mb=25, find_unused_parameters=True)` | `DistributedDataParallel::with_options(model, &group, DdpOptions { bucket_cap_mb: 25.0, find_unused_parameters: true, ..Default::default() })?` |
//! | `with ddp.no_sync(): ...` | `{ let _g = ddp.no_sync(); ... }` |
//! | `ddp.module` | `ddp.module` (the `state_dict` keys of `ddp` start with `module.`, as in PyTorch) |
//! | `nn.SyncBatchNorm(C, process_group=g)` | `nn::SyncBatchNorm::new(C, &g)`; `SyncBatchNorm::from_batch_norm(&bn, &g)` for one layer of `convert_sync_batchnorm` |
//! | `torch.distributed.nn.functional.all_reduce(t)` | `distributed::all_reduce_with_grad(&t, &g)` (Sum) |
//!
//! ## Differences to know
//!
//! **Copy-on-write instead of aliasing views.** Storage is an `ndarray::ArcArray`: `reshape`,
//! `t`, `permute`, `detach`, `to_ndarray` and friends share the buffer without copying, but a
//! write never shows through another tensor. `p.assign(&src)` replaces the storage of `p` (and
//! of every clone of the handle `p`, since a clone *is* `p`), while views taken from `p` earlier
//! keep the old values; writing into an array obtained from `to_ndarray` copies it first. In
//! PyTorch, `v = x.view(...)` followed by `x.add_(1)` changes `v`; here it does not. Code that
//! relied on writing through a view should write the result into the tensor it wants to change.
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::arange(0.0, 4.0, 1.0);
//! let alias = x.clone(); // the same tensor, like a second Python name
//! let view = x.reshape([2, 2]); // shares the buffer...
//! x.assign(&Tensor::zeros(&[4]));
//! assert_eq!(alias.to_vec::<f32>(), vec![0.0; 4]); // ...the handle sees the write,
//! assert_eq!(view.to_vec::<f32>(), vec![0.0, 1.0, 2.0, 3.0]); // the view does not
//! ```
//!
//! **Scalars in operators are `f64`.** `&x * 2.0`, `2.0 * &x`, `&x + 0.5` take an `f64` and
//! convert it to the tensor's dtype, so an f32 tensor stays f32. An `f32` variable must be cast
//! (`&x * (s as f64)`). Scalar arguments of methods (`powf`, `clamp`, `gt_scalar`,
//! `masked_fill`, `full_like`) are `f64` as well; `item()` returns an `f64`.
//!
//! **Dims are signed and literal-friendly.** `x.sum_dim(-1, true)`, `x.sum_dim([0, 2], false)`,
//! `x.reshape([2, -1])`, `x.transpose(0, -1)` all read as in PyTorch. Out-of-range dims panic
//! naming the op, the dim and the valid range.
//!
//! **Panics instead of exceptions.** Where PyTorch raises (shape mismatch, wrong dtype, backward
//! through a freed graph), tapegrad panics with a message that starts with the op's name, names
//! the shapes or dims involved and ends with the `file:line` of *your* call (ops are
//! `#[track_caller]`). Fallible operations a program must recover from offer a `try_` form
//! returning [`Result`](crate::Result), e.g.
//! [`Tensor::try_from_values`](crate::Tensor::try_from_values); I/O returns `Result` too.
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let err = Tensor::try_from_values(vec![1.0f32; 5], &[2, 3]).unwrap_err();
//! assert!(err.to_string().contains("5 values cannot be shaped as [2, 3]"));
//! ```
//!
//! **No type promotion.** `f32` and `f64` tensors do not mix in one op; convert with
//! `to_dtype`, `double()` or `float()`.
//!
//! **The tape belongs to a thread.** Each thread records on its own tape; grad modes and anomaly
//! detection are per thread too. Tensors are `Send + Sync`, so parameters can be shared with
//! worker threads, each building and walking its own graph, and their `.grad` accumulates from
//! all of them. A tensor *computed* on one thread cannot take part in a recorded op or a
//! `backward` on another (it panics and suggests `.detach()`); its values can always be read.
//!
//! **Freed graphs.** As in PyTorch, `backward` frees what the walked ops saved, and walking them
//! again panics ("trying to backward through the graph a second time", naming the op) unless the
//! first call passed `retain_graph: true`. Unlike PyTorch, this holds even for ops that saved
//! nothing (a second `loss.backward()` on `loss = x.sum()` panics too). Entries are freed when
//! the tensors referring to them are dropped, so an evaluation loop without `no_grad` does not
//! grow the tape; keeping `loss` tensors around (instead of `loss.item()` or `loss.detach()`)
//! keeps their graphs, exactly like `total += loss` in PyTorch.
//!
//! **Gradients made with `create_graph` hold their graph**, and that graph holds the leaf, as in
//! PyTorch: after `backward_opts(.., BackwardOptions { create_graph: true, .. })` call
//! `zero_grad()` on the parameters once you are done, or the graph stays alive.
//!
//! **Anomaly detection also checks forward.** Under `detect_anomaly()` every op's output is
//! checked, so the first NaN or infinity panics at the op (and your line) that made it, not only
//! when backward meets it.
//!
//! ## Layers, losses and torch.nn.functional
//!
//! Layers are structs in [`tapegrad::nn`](crate::nn) with PyTorch's names, constructor arguments
//! and parameter names; the functions behind them are in
//! [`nn::functional`](crate::nn::functional) (`import torch.nn.functional as F`).
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `nn.Conv2d(1, 8, 3, stride=1, padding=1)` | [`nn::Conv2d::new(1, 8, 3).padding(1)`](crate::nn::Conv2d) (also `.stride(s)`, [`Conv2d::with_options`](crate::nn::Conv2d::with_options) for dilation / groups / bias); [`nn::Conv1d`](crate::nn::Conv1d), [`nn::ConvTranspose2d`](crate::nn::ConvTranspose2d) |
//! | `nn.MaxPool2d(2)`, `nn.AvgPool2d(2)`, `nn.AdaptiveAvgPool2d(1)` | [`nn::MaxPool2d::new(2)`](crate::nn::MaxPool2d), [`nn::AvgPool2d::new(2)`](crate::nn::AvgPool2d), [`nn::AdaptiveAvgPool2d::new(1)`](crate::nn::AdaptiveAvgPool2d) |
//! | `nn.BatchNorm2d(8)`, `nn.LayerNorm([8])`, `nn.GroupNorm(2, 8)` | [`nn::BatchNorm2d::new(8)`](crate::nn::BatchNorm2d) (running statistics as buffers), [`nn::LayerNorm::new(&[8])`](crate::nn::LayerNorm), [`nn::GroupNorm::new(2, 8)`](crate::nn::GroupNorm) |
//! | `nn.Dropout(0.5)`, `nn.Embedding(100, 16)` | [`nn::Dropout::new(0.5)`](crate::nn::Dropout), [`nn::Embedding::new(100, 16)`](crate::nn::Embedding) |
//! | `nn.ReLU()`, `nn.GELU()`, `nn.Tanh()`, … | [`nn::ReLU`](crate::nn::ReLU), [`nn::GELU`](crate::nn::GELU), [`nn::Tanh`](crate::nn::Tanh), [`nn::Sigmoid`](crate::nn::Sigmoid), [`nn::SiLU`](crate::nn::SiLU), [`nn::Softmax`](crate::nn::Softmax), … |
//! | `F.conv2d(x, w, b, stride=2, padding=1)` | [`F::conv2d(&x, &w, Some(&b), Conv2dOpts::default().stride(2).padding(1))`](crate::nn::functional::conv2d) |
//! | `F.max_pool2d(x, 2)`, `F.avg_pool2d(x, 2)` | [`F::max_pool2d(&x, 2, 2, 0, 1, false)`](crate::nn::functional::max_pool2d) (kernel, stride, padding, dilation, ceil_mode), [`F::avg_pool2d`](crate::nn::functional::avg_pool2d) |
//! | `F.layer_norm`, `F.batch_norm`, `F.group_norm` | [`F::layer_norm`](crate::nn::functional::layer_norm), [`F::batch_norm`](crate::nn::functional::batch_norm), [`F::group_norm`](crate::nn::functional::group_norm) |
//! | `F.dropout(x, 0.1, training)`, `F.embedding(idx, w)` | [`F::dropout(&x, 0.1, training)`](crate::nn::functional::dropout), [`F::embedding(&idx, &w, None)`](crate::nn::functional::embedding) |
//! | `F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=True)` | [`F::scaled_dot_product_attention(&q, &k, &v, Some(&m), 0.0, true, None)`](crate::nn::functional::scaled_dot_product_attention) |
//! | `F.cross_entropy(logits, y, label_smoothing=0.1)` | [`F::cross_entropy(&logits, &y, &CrossEntropyOpts { label_smoothing: 0.1, ..Default::default() })`](crate::nn::functional::cross_entropy) (class indices or probabilities) |
//! | `F.nll_loss`, `F.mse_loss`, `F.l1_loss`, `F.smooth_l1_loss`, `F.huber_loss` | [`F::nll_loss`](crate::nn::functional::nll_loss), [`F::mse_loss(&a, &b, Reduction::Mean)`](crate::nn::functional::mse_loss), [`F::l1_loss`](crate::nn::functional::l1_loss), [`F::smooth_l1_loss`](crate::nn::functional::smooth_l1_loss), [`F::huber_loss`](crate::nn::functional::huber_loss) |
//! | `F.binary_cross_entropy(_with_logits)`, `F.kl_div` | [`F::binary_cross_entropy`](crate::nn::functional::binary_cross_entropy), [`F::binary_cross_entropy_with_logits`](crate::nn::functional::binary_cross_entropy_with_logits), [`F::kl_div`](crate::nn::functional::kl_div) |
//! | `nn.CrossEntropyLoss()`, `nn.MSELoss()`, … | [`nn::CrossEntropyLoss::default()`](crate::nn::CrossEntropyLoss) (public fields for the options), [`nn::MSELoss`](crate::nn::MSELoss), [`nn::BCEWithLogitsLoss`](crate::nn::BCEWithLogitsLoss), …; `loss_fn.forward(&logits, &y)` |
//!
//! (`use tapegrad::nn::functional as F;` and `use tapegrad::nn::functional::{Conv2dOpts,
//! CrossEntropyOpts, Reduction};`.)
//!
//! ```
//! use tapegrad::nn::functional::{self as F, Conv2dOpts, CrossEntropyOpts};
//! use tapegrad::nn::{self, Forward};
//! use tapegrad::prelude::*;
//!
//! manual_seed(0);
//! let conv = nn::Conv2d::new(1, 4, 3).padding(1);
//! let x = Tensor::randn(&[2, 1, 8, 8]);
//! let y = F::max_pool2d(&conv.forward(&x).relu(), 2, 2, 0, 1, false);
//! assert_eq!(y.shape(), &[2, 4, 4, 4]);
//! let same = F::conv2d(&x, &conv.weight, conv.bias.as_ref(), Conv2dOpts::default().padding(1));
//! assert!(same.max_abs_diff(&conv.forward(&x)).0 < 1e-6);
//!
//! let logits = y.flatten(1, -1);
//! let labels = Tensor::from_values(vec![3i64, 7], &[2]);
//! let loss = F::cross_entropy(&logits, &labels, &CrossEntropyOpts::default());
//! loss.backward();
//! assert!(conv.weight.grad().is_some());
//! ```
//!
//! ## Optimizers: torch.optim
//!
//! [`tapegrad::optim`](crate::optim) has PyTorch's optimizers with its update rules and defaults
//! (checked step by step against PyTorch), parameter groups, `state_dict`, gradient clipping and
//! the learning-rate schedulers.
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)` | [`Sgd::new(net.parameters(), 0.1).momentum(0.9).nesterov(true).weight_decay(1e-4)`](crate::optim::Sgd) |
//! | `optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))`, `optim.AdamW(...)` | [`Adam::new(params, 1e-3).betas(0.9, 0.999)`](crate::optim::Adam), [`AdamW::new(params, 1e-3)`](crate::optim::AdamW) |
//! | `optim.RMSprop`, `optim.Adagrad` | [`RmsProp`](crate::optim::RmsProp), [`Adagrad`](crate::optim::Adagrad) |
//! | `opt.zero_grad()`, `opt.step()` | [`opt.zero_grad()`](crate::optim::Optimizer::zero_grad), [`opt.step()`](crate::optim::Optimizer::step) (trait [`Optimizer`](crate::optim::Optimizer), in the prelude) |
//! | `opt.add_param_group({"params": [b], "lr": 0.01})` | [`opt.add_param_group(vec![b]).set_lr(0.01)`](crate::optim::Optim::add_param_group) |
//! | `opt.state_dict()`, `opt.load_state_dict(sd)` | [`opt.state_dict()`](crate::optim::Optimizer::state_dict), [`opt.load_state_dict(&sd)`](crate::optim::Optimizer::load_state_dict); files with [`io::save_optimizer`](crate::io::save_optimizer) / [`io::load_optimizer`](crate::io::load_optimizer) |
//! | `nn.utils.clip_grad_norm_(params, 1.0)`, `clip_grad_value_` | [`clip_grad_norm(&params, 1.0, 2.0)`](crate::optim::clip_grad_norm) (returns the total norm), [`clip_grad_value(&params, 0.5)`](crate::optim::clip_grad_value) |
//! | `lr_scheduler.StepLR(opt, 30, gamma=0.1)`; `sched.step()` | [`StepLR::new(&mut opt, 30, 0.1)`](crate::optim::lr_scheduler::StepLR); `sched.step(&mut opt)` (trait [`LrScheduler`](crate::optim::lr_scheduler::LrScheduler)) |
//! | `MultiStepLR`, `ExponentialLR`, `CosineAnnealingLR`, `LinearLR`, `SequentialLR`, `OneCycleLR`, `CyclicLR`, `CosineAnnealingWarmRestarts`, `LambdaLR`, `MultiplicativeLR`, `ConstantLR`, `PolynomialLR`, `ReduceLROnPlateau` | the same names in [`optim::lr_scheduler`](crate::optim::lr_scheduler); `ReduceLROnPlateau::step(&mut opt, metric)` |
//!
//! ```
//! use tapegrad::nn::{self, Forward, Module};
//! use tapegrad::optim::lr_scheduler::StepLR;
//! use tapegrad::optim::Sgd;
//! use tapegrad::prelude::*;
//!
//! manual_seed(0);
//! let net = nn::Linear::new(3, 1);
//! let mut opt = Sgd::new(net.parameters(), 0.1).momentum(0.9);
//! let mut sched = StepLR::new(&mut opt, 10, 0.5);
//! let (x, y) = (Tensor::randn(&[32, 3]), Tensor::randn(&[32, 1]));
//! for _ in 0..20 {
//!     opt.zero_grad();
//!     let loss = (&net.forward(&x) - &y).square().mean();
//!     loss.backward();
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert!((opt.lr(0) - 0.025).abs() < 1e-12);
//! ```
//!
//! ## Saving, pretrained models, TensorBoard and threads
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `torch.save` / `torch.load` of state dicts | safetensors files ([`io::safetensors`](crate::io::safetensors), [`Module::save_safetensors`](crate::nn::Module::save_safetensors)); `torch.save` zip checkpoints are read with [`io::torch::load`](crate::io::torch::load) and [`io::torch::load_value`](crate::io::torch::load_value) |
//! | `transformers.BertModel`, `GPT2LMHeadModel`, `SentenceTransformer(...).encode` | [`models::bert::BertModel`](crate::models::bert::BertModel), [`models::gpt2::GPT2LMHeadModel`](crate::models::gpt2::GPT2LMHeadModel) (Hugging Face parameter names, so checkpoints load unchanged); `SentenceEmbedder` with the `tokenizers` feature |
//! | `from torch.utils.tensorboard import SummaryWriter` | [`tensorboard::SummaryWriter`](crate::tensorboard::SummaryWriter) (`add_scalar`, `add_histogram`, `add_image`, `add_graph`, `add_hparams`, …) |
//! | `torchviz.make_dot(loss)` | [`viz::dot(&loss)`](crate::viz::dot), [`viz::Dot`](crate::viz::Dot) |
//! | `torch.set_num_threads(2)`, `torch.get_num_threads()` | [`parallel::set_num_threads(2)`](crate::parallel::set_num_threads), [`parallel::get_num_threads()`](crate::parallel::get_num_threads) |
