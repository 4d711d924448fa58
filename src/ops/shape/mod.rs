//! Shape and layout ops. Most are views: they share the storage (no copy) and only change shape
//! and strides; the first write to either side copies (copy-on-write).

mod view;
