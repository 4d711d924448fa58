//! # tapegrad for PyTorch users
//!
//! (Written in full by the docs work; see the README cheatsheet.)
