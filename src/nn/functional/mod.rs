//! Functional forms of the layers and losses, like `torch.nn.functional` (`use
//! tapegrad::nn::functional as F;`). Each op's forward, backward, doc and gradient check live
//! in its file here; the modules in [`nn`](crate::nn) hold parameters and call these.

mod attention;
mod conv;
mod dropout;
mod embedding;
mod loss;
mod norm;
mod pool;

#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use attention::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use conv::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use dropout::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use embedding::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use loss::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use norm::*;
#[allow(unused_imports)] // files are filled in parallel; remove once all export
pub use pool::*;
