//! The error type of fallible (`try_`) forms and of I/O.

use std::fmt;

/// What went wrong in a fallible tapegrad call.
#[derive(Debug)]
pub enum Error {
    /// Shapes that do not fit the op.
    Shape(String),
    /// A dtype the op cannot take.
    DType(String),
    /// An index or dim out of range.
    Index(String),
    /// An I/O failure.
    Io(std::io::Error),
    /// A file whose content is not what it should be (corrupt or truncated).
    Format(String),
    /// A collective or process group that failed (`tapegrad::distributed`): a timeout, a rank
    /// that left, collectives that differ across ranks, an MPI error.
    Distributed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape(s)
            | Error::DType(s)
            | Error::Index(s)
            | Error::Format(s)
            | Error::Distributed(s) => f.write_str(s),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// `Result` with tapegrad's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
