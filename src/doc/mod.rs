//! Documentation-only modules.

pub mod pytorch_users;
