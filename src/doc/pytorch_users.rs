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
//! Items marked *(in progress)* are being added in parallel to this page; their names are final
//! but they may not be in the version you are reading yet.
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
//! - [Autograd](#autograd)
//! - [Differences to know](#differences-to-know)
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
//! PyTorch; integer literals need no suffix.
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
//! | `x.flatten(1)` | `x.flatten(..)` *(in progress)* |
//! | `x[:, 2:5]`, `x.narrow(1, 2, 3)` | `x.slice(..)`, `x.narrow(1, 2, 3)` *(in progress)* |
//! | `x[idx]`, `x.index_select(0, idx)` | `x.index_select(0, &idx)` *(in progress)* |
//! | `x.gather(1, idx)`, `x.scatter_add(1, idx, src)` | `x.gather(..)`, `x.scatter_add(..)` *(in progress)* |
//! | `torch.cat([a, b], 0)`, `torch.stack([a, b])` | `cat`, `stack` *(in progress)* |
//! | `x.split(2)`, `x.chunk(3)` | `x.split(..)`, `x.chunk(..)` *(in progress)* |
//! | `F.pad(x, (1, 1))`, `x.repeat(2, 1)` | `pad`, `repeat` *(in progress)* |
//! | `x[1, 0]` (one element) | `x.to_ndarray::<f32>()[[1, 0]]` (reads without recording) |
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let x = Tensor::arange(0.0, 6.0, 1.0);
//! let m = x.reshape([2, -1]); // [[0, 1, 2], [3, 4, 5]]
//! assert_eq!(m.shape(), &[2, 3]);
//! assert_eq!(m.t().to_vec::<f32>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
//! assert_eq!(m.unsqueeze(-1).shape(), &[2, 3, 1]);
//! assert_eq!(m.sum_dim(-1, false).to_vec::<f32>(), vec![3.0, 12.0]);
//! ```
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
//! | `x.var()`, `x.std()`, `x.prod()`, `x.norm()` | `var`, `std`, `prod`, `norm` *(in progress)* |
//! | `x.max()`, `x.min()`, `x.max(dim)`, `x.argmax(dim)` | `max`, `min`, `max_dim`, `argmax` *(in progress)* |
//! | `x.logsumexp(dim)`, `x.softmax(dim)`, `x.log_softmax(dim)` | `logsumexp`, `softmax`, `log_softmax` *(in progress)* |
//!
//! ## Activations
//!
//! `x.tanh()` is available now. These are being added under the PyTorch names *(in progress)*:
//! `x.sigmoid()`, `x.relu()`, `x.leaky_relu(slope)`, `x.gelu()` (exact, erf-based),
//! `x.gelu_tanh()` (`F.gelu(x, approximate="tanh")`), `x.silu()`, `x.softplus()`.
//!
//! ## In-place updates
//!
//! | PyTorch | tapegrad |
//! |---|---|
//! | `p.data.copy_(src)`, `with torch.no_grad(): p.copy_(src)` | `p.assign(&src)` (not recorded; every clone of `p` sees it) |
//! | `with torch.no_grad(): p -= lr * p.grad` | `let _g = no_grad(); p.assign(&(&p - &(p.grad().unwrap() * lr)));` |
//! | `x.add_(y)`, `x.sub_(y)`, `x.mul_(y)`, `x.zero_()`, `x.fill_(v)`, `x.copy_(y)`, `x.add_(y, alpha=a)` | `add_`, `sub_`, `mul_`, `zero_`, `fill_`, `copy_`, `add_scaled_` *(in progress)* |
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
//! | `with torch.autograd.detect_anomaly():` | `let _a = detect_anomaly();` |
//! | `torch.autograd.gradcheck(f, (x,))` | `gradcheck(\|t\| f(&t[0]), &[x])` (in f64) |
//! | (graph memory) | `tapegrad::autograd::tape::len()`, `saved_bytes()`, `entries()`, `entry_of(&t)` |
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
