//! Reverse-mode automatic differentiation: the thread-local [`tape`], the op [`schema`] every
//! tape entry follows, the [`graph`] model read off the tape, grad modes and tracing, `backward`,
//! `grad` and gradient checking.

pub mod backward;
#[doc(hidden)]
pub mod function;
pub mod gradcheck;
pub mod graph;
pub mod mode;
pub mod schema;
pub mod tape;

pub use backward::{grad, grad_allow_unused, BackwardOptions};
pub use gradcheck::{gradcheck, gradcheck_with, GradcheckOptions};
pub use mode::{
    detect_anomaly, enable_grad, is_grad_enabled, is_tracing, no_grad, set_grad_enabled,
    set_tracing, trace, tracing,
};
