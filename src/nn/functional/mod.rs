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

pub use attention::*;
pub use conv::*;
pub use dropout::*;
pub use embedding::*;
pub use loss::*;
pub use norm::*;
pub use pool::*;
