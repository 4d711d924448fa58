//! Constructors: from data, filled, ranges and random.

use std::panic::Location;

use ndarray::{ArrayD, IxDyn};

use super::random::{with_global, Generator};
use super::{DType, Data, Element, Tensor};

fn filled(shape: &[usize], value: f64, dtype: DType) -> Tensor {
    let sh = IxDyn(shape);
    Tensor::from_data(match dtype {
        DType::F32 => Data::F32(ArrayD::from_elem(sh, value as f32).into_shared()),
        DType::F64 => Data::F64(ArrayD::from_elem(sh, value).into_shared()),
        DType::I64 => Data::I64(ArrayD::from_elem(sh, value as i64).into_shared()),
        DType::Bool => Data::Bool(ArrayD::from_elem(sh, value != 0.0).into_shared()),
    })
}

fn from_fn_f64(shape: &[usize], dtype: DType, mut f: impl FnMut() -> f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| f()).collect();
    Tensor::from_data(Data::F64(
        ArrayD::from_shape_vec(IxDyn(shape), v)
            .unwrap()
            .into_shared(),
    ))
    .data_cast(dtype)
}

impl Tensor {
    fn data_cast(self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            self
        } else {
            Tensor::from_data(self.data().cast(dtype))
        }
    }

    /// An f32 tensor from row-major values, like `torch.tensor(data).reshape(shape)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(x.shape(), &[2, 3]);
    /// ```
    ///
    /// # Panics
    /// If the number of values does not match the shape.
    #[track_caller]
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_values(data, shape)
    }

    /// A tensor of any element type from row-major values: `Tensor::from_values(vec![1.0f64], &[1])`
    /// is float64, `vec![0i64, 2]` int64, `vec![true]` bool.
    ///
    /// # Panics
    /// If the number of values does not match the shape.
    #[track_caller]
    pub fn from_values<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        let loc = Location::caller();
        Tensor::try_from_values(data, shape).unwrap_or_else(|e| panic!("{e}, at {loc}"))
    }

    /// Like [`from_values`](Tensor::from_values), returning an error instead of panicking.
    ///
    /// # Errors
    /// If the number of values does not match the shape.
    pub fn try_from_values<T: Element>(
        data: Vec<T>,
        shape: &[usize],
    ) -> Result<Tensor, crate::Error> {
        let n = data.len();
        match ArrayD::from_shape_vec(IxDyn(shape), data) {
            Ok(a) => Ok(Tensor::from_data(T::wrap(a.into_shared()))),
            Err(_) => Err(crate::Error::Shape(format!(
                "from_values: {n} values cannot be shaped as {shape:?} ({} elements)",
                shape.iter().product::<usize>()
            ))),
        }
    }

    /// An f64 tensor from row-major values.
    ///
    /// # Panics
    /// If the number of values does not match the shape.
    #[track_caller]
    pub fn from_vec_f64(data: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_values(data, shape)
    }

    /// An int64 tensor (indices, class labels) from row-major values.
    ///
    /// # Panics
    /// If the number of values does not match the shape.
    #[track_caller]
    pub fn from_vec_i64(data: Vec<i64>, shape: &[usize]) -> Tensor {
        Tensor::from_values(data, shape)
    }

    /// A 0-dimensional f32 tensor holding `v`.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_values(vec![v], &[])
    }

    /// A 0-dimensional tensor holding `v`, of the given dtype.
    pub fn scalar_of(v: f64, dtype: DType) -> Tensor {
        filled(&[], v, dtype)
    }

    /// A tensor of zeros (f32).
    pub fn zeros(shape: &[usize]) -> Tensor {
        filled(shape, 0.0, DType::F32)
    }

    /// A tensor of ones (f32).
    pub fn ones(shape: &[usize]) -> Tensor {
        filled(shape, 1.0, DType::F32)
    }

    /// A tensor filled with `value` (f32), like `torch.full`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        filled(shape, value as f64, DType::F32)
    }

    /// A tensor filled with `value`, of the given dtype.
    pub fn full_dtype(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        filled(shape, value, dtype)
    }

    /// Zeros of the given dtype.
    pub fn zeros_dtype(shape: &[usize], dtype: DType) -> Tensor {
        filled(shape, 0.0, dtype)
    }

    /// Ones of the given dtype.
    pub fn ones_dtype(shape: &[usize], dtype: DType) -> Tensor {
        filled(shape, 1.0, dtype)
    }

    /// Zeros with the shape and dtype of `t`.
    pub fn zeros_like(t: &Tensor) -> Tensor {
        filled(t.shape(), 0.0, t.dtype())
    }

    /// Ones with the shape and dtype of `t`.
    pub fn ones_like(t: &Tensor) -> Tensor {
        filled(t.shape(), 1.0, t.dtype())
    }

    /// `value` with the shape and dtype of `t`.
    pub fn full_like(t: &Tensor, value: f64) -> Tensor {
        filled(t.shape(), value, t.dtype())
    }

    /// The `n x n` identity matrix (f32), like `torch.eye`.
    pub fn eye(n: usize) -> Tensor {
        let a = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| if i[0] == i[1] { 1.0f32 } else { 0.0 });
        Tensor::from_data(Data::F32(a.into_shared()))
    }

    /// `start, start + step, …` up to but excluding `end` (f32), like `torch.arange`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::arange(0.0, 2.0, 0.5).to_vec::<f32>(), vec![0.0, 0.5, 1.0, 1.5]);
    /// ```
    ///
    /// # Panics
    /// If `step` is zero or has the wrong sign for the range.
    #[track_caller]
    pub fn arange(start: f64, end: f64, step: f64) -> Tensor {
        Tensor::arange_dtype(start, end, step, DType::F32)
    }

    /// [`arange`](Tensor::arange) with a dtype (`DType::I64` for index ranges).
    ///
    /// # Panics
    /// If `step` is zero or has the wrong sign for the range.
    #[track_caller]
    pub fn arange_dtype(start: f64, end: f64, step: f64, dtype: DType) -> Tensor {
        if step == 0.0 || (end - start) * step < 0.0 {
            panic!(
                "arange: step {step} cannot go from {start} to {end}, at {}",
                Location::caller()
            );
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_data(Data::F64(
            ArrayD::from_shape_vec(IxDyn(&[n]), v)
                .unwrap()
                .into_shared(),
        ))
        .data_cast(dtype)
    }

    /// `steps` values evenly spaced from `start` to `end` inclusive (f32), like `torch.linspace`.
    pub fn linspace(start: f64, end: f64, steps: usize) -> Tensor {
        let v: Vec<f64> = (0..steps)
            .map(|i| {
                if steps == 1 {
                    start
                } else {
                    start + (end - start) * i as f64 / (steps - 1) as f64
                }
            })
            .collect();
        Tensor::from_data(Data::F64(
            ArrayD::from_shape_vec(IxDyn(&[steps]), v)
                .unwrap()
                .into_shared(),
        ))
        .data_cast(DType::F32)
    }

    /// Uniform samples in `[0, 1)` (f32) from the global generator, like `torch.rand`.
    pub fn rand(shape: &[usize]) -> Tensor {
        with_global(|g| Tensor::rand_with(shape, g))
    }

    /// Uniform samples in `[0, 1)` (f32) from `g`.
    pub fn rand_with(shape: &[usize], g: &mut Generator) -> Tensor {
        from_fn_f64(shape, DType::F32, || g.next_f64())
    }

    /// Standard normal samples (f32) from the global generator, like `torch.randn`.
    pub fn randn(shape: &[usize]) -> Tensor {
        with_global(|g| Tensor::randn_with(shape, g))
    }

    /// Standard normal samples (f32) from `g`.
    pub fn randn_with(shape: &[usize], g: &mut Generator) -> Tensor {
        from_fn_f64(shape, DType::F32, || g.next_normal())
    }

    /// Uniform samples in `[low, high)` (f32) from the global generator, like `uniform_`.
    pub fn uniform(shape: &[usize], low: f64, high: f64) -> Tensor {
        with_global(|g| Tensor::uniform_with(shape, low, high, g))
    }

    /// Uniform samples in `[low, high)` (f32) from `g`.
    pub fn uniform_with(shape: &[usize], low: f64, high: f64, g: &mut Generator) -> Tensor {
        from_fn_f64(shape, DType::F32, || low + (high - low) * g.next_f64())
    }

    /// Normal samples with the given mean and standard deviation (f32), like `normal_`.
    pub fn normal(shape: &[usize], mean: f64, std: f64) -> Tensor {
        with_global(|g| from_fn_f64(shape, DType::F32, || mean + std * g.next_normal()))
    }

    /// Uniform integers in `[low, high)` (int64) from the global generator, like `torch.randint`.
    ///
    /// # Panics
    /// If `low >= high`.
    #[track_caller]
    pub fn randint(low: i64, high: i64, shape: &[usize]) -> Tensor {
        let loc = Location::caller();
        with_global(|g| Tensor::randint_with_at(low, high, shape, g, loc))
    }

    /// Uniform integers in `[low, high)` (int64) from `g`.
    ///
    /// # Panics
    /// If `low >= high`.
    #[track_caller]
    pub fn randint_with(low: i64, high: i64, shape: &[usize], g: &mut Generator) -> Tensor {
        Tensor::randint_with_at(low, high, shape, g, Location::caller())
    }

    fn randint_with_at(
        low: i64,
        high: i64,
        shape: &[usize],
        g: &mut Generator,
        loc: &Location,
    ) -> Tensor {
        if low >= high {
            panic!("randint: low ({low}) must be less than high ({high}), at {loc}");
        }
        let n: usize = shape.iter().product();
        let v: Vec<i64> = (0..n).map(|_| g.next_range(low, high)).collect();
        Tensor::from_values(v, shape)
    }

    /// A random permutation of `0..n` (int64), like `torch.randperm`.
    pub fn randperm(n: usize) -> Tensor {
        let p = with_global(|g| g.permutation(n));
        Tensor::from_values(p.into_iter().map(|i| i as i64).collect(), &[n])
    }
}
