//! Conversions between tensors and ndarray arrays. Both directions share the buffer when they can:
//! `Tensor::from(array)` never copies, and `to_ndarray` hands out the tensor's own storage.

use ndarray::{ArcArray, Array, ArrayD, Dimension, IxDyn};

use super::{Data, Element, Tensor};

impl<T: Element, D: Dimension> From<Array<T, D>> for Tensor {
    /// Takes ownership of an ndarray array without copying.
    fn from(a: Array<T, D>) -> Tensor {
        Tensor::from_data(T::wrap(a.into_dyn().into_shared()))
    }
}

impl<T: Element, D: Dimension> From<ArcArray<T, D>> for Tensor {
    /// Shares an `ArcArray`'s buffer without copying.
    fn from(a: ArcArray<T, D>) -> Tensor {
        Tensor::from_data(T::wrap(a.into_dyn()))
    }
}

impl Tensor {
    /// The elements as a shared ndarray array (no copy; writing to it copies first).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let a = t.to_ndarray::<f32>();
    /// assert_eq!(a[[1, 0]], 3.0);
    /// ```
    ///
    /// # Panics
    /// If `T` is not the tensor's dtype.
    #[track_caller]
    pub fn to_ndarray<T: Element>(&self) -> ArcArray<T, IxDyn> {
        let loc = std::panic::Location::caller();
        self.with_data(|d| match T::unwrap(d) {
            Some(a) => a.clone(),
            None => panic!(
                "to_ndarray: asked for {} but the tensor holds {}, at {loc}",
                T::DTYPE,
                d.dtype()
            ),
        })
    }

    /// The elements as an owned ndarray array (copies only if the buffer is shared).
    ///
    /// # Panics
    /// If `T` is not the tensor's dtype.
    #[track_caller]
    pub fn into_ndarray<T: Element>(self) -> ArrayD<T> {
        self.to_ndarray::<T>().into_owned()
    }

    /// The underlying type-erased storage (shared).
    pub fn storage(&self) -> Data {
        self.data()
    }
}
