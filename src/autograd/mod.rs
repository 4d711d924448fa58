//! Reverse-mode automatic differentiation: the thread-local [`tape`], grad modes, `backward`,
//! `grad`, [`hooks`] on the tape and gradient checking.

pub mod backward;
#[doc(hidden)]
pub mod function;
pub mod gradcheck;
pub mod hooks;
pub mod mode;
pub mod tape;

pub use backward::{grad, grad_allow_unused, BackwardOptions};
pub use gradcheck::{gradcheck, gradcheck_with, GradcheckOptions};
pub use hooks::{queue_callback, HookHandle};
pub use mode::{detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled};
