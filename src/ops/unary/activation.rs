//! Activations: sigmoid, relu, leaky_relu, gelu (exact and tanh), silu, softplus.
