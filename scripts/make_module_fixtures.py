#!/usr/bin/env python3
"""Writes the module-level PyTorch parity fixtures that tests/module_parity.rs reads: one case per
layer configuration of tapegrad's `nn` (every layer, train and eval where they differ).

Regenerate (only when adding or changing a case; needs PyTorch, which CI never installs):

    /root/torch-venv/bin/python scripts/make_module_fixtures.py

and commit both outputs:

    tests/fixtures/modules.safetensors  every tensor (f32; int64 indices and counters; bool masks)
    tests/fixtures/modules.json         the case list: the PyTorch module and call, train / eval,
                                        input, output, parameter and buffer names

For each case the script builds the module in f32 (seeded by the case name; norm layers get random
affine parameters and running statistics so nothing is trivially 1 or 0), stores its state_dict,
then runs a float64 copy on the f32 inputs converted to f64: the outputs, the state after the call
(BatchNorm's running statistics in training mode) and the gradient of
`Σ_outputs (out * r).sum()` for a fixed random `r` per float output, with respect to every float
input and every parameter, all rounded to f32 once. The Rust test builds the same module, loads
the state_dict by name (so PyTorch's parameter names are checked too), runs the same call in f32
and compares.

Tensor keys, for case `c`:
    c/state/<param or buffer>   the state_dict before the call
    c/in/<input>                an input
    c/out/<i>                   the i-th output (nested tuples flattened, in order)
    c/seed/<i>                  r for the i-th output
    c/grad/in/<input>           gradient w.r.t. a float input
    c/grad/param/<param>        gradient w.r.t. a parameter
    c/after/<buffer>            a buffer after the call
"""

import copy
import zlib

import torch
from torch import nn

from fixtures_common import Gen, save

CASES = []


def case(name, module, inputs, call="m(x)", train=True):
    """`module` and `call` are Python source (recorded in modules.json); `inputs` maps input
    names to functions of the case's Gen."""
    CASES.append((name, module, inputs, call, train))


def x_(*shape, make="randn"):
    return lambda g: getattr(g, make)(*shape)


# --- existing layers ------------------------------------------------------------------------
case("linear", "nn.Linear(5, 3)", {"x": x_(4, 5)})
case("linear_nobias_3d", "nn.Linear(5, 3, bias=False)", {"x": x_(2, 3, 5)})
case("conv1d", "nn.Conv1d(4, 6, 3, stride=2, padding=1)", {"x": x_(2, 4, 9)})
case("conv2d", "nn.Conv2d(3, 4, 3, stride=2, padding=1)", {"x": x_(2, 3, 7, 6)})
case("conv2d_groups_dilation", "nn.Conv2d(4, 6, (3, 2), dilation=2, groups=2, bias=False)",
     {"x": x_(2, 4, 8, 7)})
case("conv_transpose2d", "nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)",
     {"x": x_(2, 4, 3, 4)})
case("max_pool2d", "nn.MaxPool2d(2)", {"x": x_(2, 3, 6, 5, make="spaced")})
case("max_pool2d_stride_pad", "nn.MaxPool2d(3, stride=2, padding=1)",
     {"x": x_(2, 2, 7, 6, make="spaced")})
case("avg_pool2d", "nn.AvgPool2d(2)", {"x": x_(2, 3, 6, 5)})
case("adaptive_avg_pool2d", "nn.AdaptiveAvgPool2d((3, 2))", {"x": x_(2, 3, 7, 5)})
case("flatten", "nn.Flatten()", {"x": x_(2, 3, 2, 2)})
case("batch_norm1d_train", "nn.BatchNorm1d(3)", {"x": x_(5, 3)})
case("batch_norm1d_train_3d", "nn.BatchNorm1d(3)", {"x": x_(4, 3, 5)})
case("batch_norm1d_eval", "nn.BatchNorm1d(3)", {"x": x_(4, 3, 5)}, train=False)
case("batch_norm2d_train", "nn.BatchNorm2d(3)", {"x": x_(3, 3, 4, 2)})
case("batch_norm2d_eval", "nn.BatchNorm2d(3)", {"x": x_(3, 3, 4, 2)}, train=False)
case("layer_norm", "nn.LayerNorm([3, 4])", {"x": x_(2, 5, 3, 4)})
case("group_norm", "nn.GroupNorm(2, 4)", {"x": x_(3, 4, 5)})
case("embedding", "nn.Embedding(10, 4)", {"x": lambda g: g.ints(10, 3, 5)})
case("embedding_padding_idx", "nn.Embedding(10, 4, padding_idx=0)",
     {"x": lambda g: torch.tensor([[0, 3, 0, 9], [2, 0, 5, 5]])})
case("dropout_eval", "nn.Dropout(0.5)", {"x": x_(4, 6)}, train=False)
case("relu", "nn.ReLU()", {"x": x_(3, 5, make="away")})
case("leaky_relu", "nn.LeakyReLU(0.2)", {"x": x_(3, 5, make="away")})
case("sigmoid", "nn.Sigmoid()", {"x": x_(3, 5)})
case("tanh", "nn.Tanh()", {"x": x_(3, 5)})
case("silu", "nn.SiLU()", {"x": x_(3, 5)})
case("softplus", "nn.Softplus()", {"x": x_(3, 5)})
case("gelu", "nn.GELU()", {"x": x_(3, 5)})
case("gelu_tanh", "nn.GELU(approximate='tanh')", {"x": x_(3, 5)})
case("identity", "nn.Identity()", {"x": x_(3, 5)})
case("softmax", "nn.Softmax(dim=1)", {"x": x_(3, 5, 2)})
case("log_softmax", "nn.LogSoftmax(dim=-1)", {"x": x_(3, 5)})
case("sequential_mlp", "nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))",
     {"x": x_(5, 4)})
case("sequential_cnn",
     "nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),"
     " nn.Flatten(), nn.Linear(36, 5))",
     {"x": x_(3, 2, 6, 6)})

# --- recurrent layers -----------------------------------------------------------------------
case("rnn_tanh", "nn.RNN(3, 4)", {"x": x_(5, 2, 3)}, "m(x)")
case("rnn_relu_2layers_h0", "nn.RNN(3, 4, num_layers=2, nonlinearity='relu')",
     {"x": x_(4, 2, 3), "h0": x_(2, 2, 4)}, "m(x, h0)")
case("lstm", "nn.LSTM(3, 4)", {"x": x_(5, 2, 3)}, "m(x)")
case("lstm_2layers_bidirectional", "nn.LSTM(3, 4, num_layers=2, bidirectional=True)",
     {"x": x_(4, 2, 3), "h0": x_(4, 2, 4), "c0": x_(4, 2, 4)}, "m(x, (h0, c0))")
case("lstm_batch_first_nobias", "nn.LSTM(3, 4, bias=False, batch_first=True)",
     {"x": x_(2, 5, 3)}, "m(x)")
case("lstm_unbatched", "nn.LSTM(3, 2, num_layers=2)",
     {"x": x_(4, 3), "h0": x_(2, 2), "c0": x_(2, 2)}, "m(x, (h0, c0))")
case("gru", "nn.GRU(3, 4)", {"x": x_(5, 2, 3)}, "m(x)")
case("gru_2layers_bidirectional_batch_first",
     "nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)",
     {"x": x_(2, 4, 3), "h0": x_(4, 2, 4)}, "m(x, h0)")
case("rnn_cell", "nn.RNNCell(3, 4)", {"x": x_(2, 3), "h0": x_(2, 4)}, "m(x, h0)")
case("lstm_cell", "nn.LSTMCell(3, 4)", {"x": x_(2, 3), "h0": x_(2, 4), "c0": x_(2, 4)},
     "m(x, (h0, c0))")
case("gru_cell", "nn.GRUCell(3, 4)", {"x": x_(2, 3), "h0": x_(2, 4)}, "m(x, h0)")

# --- attention ------------------------------------------------------------------------------
CAUSAL4 = lambda g: torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)  # True = forbid
PAD_LAST = lambda g: torch.tensor([[False, False, False, False], [False, False, True, True]])

case("mha_self_weights", "nn.MultiheadAttention(8, 2)", {"x": x_(4, 2, 8)},
     "m(x, x, x, need_weights=True)")
case("mha_masks_batch_first", "nn.MultiheadAttention(8, 2, batch_first=True)",
     {"x": x_(2, 4, 8), "key_padding_mask": PAD_LAST, "attn_mask": CAUSAL4},
     "m(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=False)")
case("mha_masks_weights", "nn.MultiheadAttention(8, 4)",
     {"x": x_(4, 2, 8), "key_padding_mask": PAD_LAST, "attn_mask": CAUSAL4},
     "m(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=True)")
case("mha_cross_float_mask", "nn.MultiheadAttention(6, 3)",
     {"q": x_(3, 2, 6), "k": x_(5, 2, 6), "v": x_(5, 2, 6), "attn_mask": x_(6, 3, 5)},
     "m(q, k, v, attn_mask=attn_mask, need_weights=True)")
case("mha_unbatched_nobias", "nn.MultiheadAttention(6, 2, bias=False)",
     {"q": x_(3, 6), "k": x_(4, 6), "v": x_(4, 6)}, "m(q, k, v, need_weights=False)")

ENC = "nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0"
case("encoder_layer_post_norm_relu", ENC + ")", {"x": x_(4, 2, 8)},
     "m(x)")
case("encoder_layer_pre_norm_gelu_masks",
     ENC + ", activation='gelu', batch_first=True, norm_first=True, layer_norm_eps=1e-6)",
     {"x": x_(2, 4, 8), "key_padding_mask": PAD_LAST, "attn_mask": CAUSAL4},
     "m(x, src_mask=attn_mask, src_key_padding_mask=key_padding_mask)")
case("encoder_layer_post_norm_gelu_masks", ENC + ", activation='gelu')",
     {"x": x_(4, 2, 8), "key_padding_mask": PAD_LAST},
     "m(x, src_key_padding_mask=key_padding_mask)")
case("encoder_layer_eval", "nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)",
     {"x": x_(4, 2, 8)}, "m(x)", train=False)
case("encoder_2layers_norm",
     "nn.TransformerEncoder(" + ENC + ", norm_first=True), 2, norm=nn.LayerNorm(8),"
     " enable_nested_tensor=False)",
     {"x": x_(4, 2, 8), "attn_mask": CAUSAL4}, "m(x, mask=attn_mask)")


def randomise(m, g):
    """Random affine parameters and running statistics for norm layers; different layers of a
    TransformerEncoder (deep copies) get different values too."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                if mod.weight is not None:
                    mod.weight.copy_(g.pos(*mod.weight.shape))
                    mod.bias.copy_(g.randn(*mod.bias.shape) * 0.5)
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.copy_(g.randn(*mod.running_mean.shape))
                mod.running_var.copy_(g.pos(*mod.running_var.shape))
                mod.num_batches_tracked.fill_(3)
            if isinstance(mod, nn.MultiheadAttention) and mod.in_proj_bias is not None:
                mod.in_proj_bias.copy_(g.randn(*mod.in_proj_bias.shape) * 0.1)
                mod.out_proj.bias.copy_(g.randn(*mod.out_proj.bias.shape) * 0.1)
        if isinstance(m, nn.TransformerEncoder):
            for p in m.parameters():
                p.add_(g.randn(*p.shape) * 0.05)


def flatten(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten(o)]
    return [] if out is None else [out]


def kind(t):
    return {torch.float32: "f32", torch.float64: "f32", torch.int64: "i64", torch.bool: "bool"}[t.dtype]


def run(name, module, inputs, call, train):
    g = Gen(name)
    torch.manual_seed(zlib.crc32(name.encode()))
    m = eval(module, {"nn": nn})
    randomise(m, g)
    m.train(train)
    xs = {k: f(g) for k, f in inputs.items()}
    tensors = {f"{name}/state/{k}": v.detach().clone() for k, v in m.state_dict().items()}
    tensors.update({f"{name}/in/{k}": v for k, v in xs.items()})

    m64 = copy.deepcopy(m).double()
    x64 = {k: (v.double().requires_grad_() if v.is_floating_point() else v) for k, v in xs.items()}
    outs = flatten(eval(call, {}, dict(x64, m=m64)))
    loss = 0
    for i, o in enumerate(outs):
        tensors[f"{name}/out/{i}"] = o.detach().float()
        r = g.randn(*o.shape)
        tensors[f"{name}/seed/{i}"] = r
        loss = loss + (o * r.double()).sum()
    loss.backward()
    params = [k for k, _ in m64.named_parameters()]
    buffers = [k for k, _ in m64.named_buffers()]
    for k, p in m64.named_parameters():
        tensors[f"{name}/grad/param/{k}"] = p.grad.float()
    float_inputs = [k for k, v in x64.items() if v.is_floating_point()]
    for k in float_inputs:
        tensors[f"{name}/grad/in/{k}"] = x64[k].grad.float()
    for k, b in m64.named_buffers():
        tensors[f"{name}/after/{k}"] = b.float() if b.is_floating_point() else b.clone()
    spec = {"name": name, "torch": module, "call": call, "train": train,
            "inputs": [[k, kind(v)] for k, v in xs.items()], "outputs": len(outs),
            "params": params, "buffers": buffers}
    return tensors, spec


def main():
    tensors, specs = {}, []
    for c in CASES:
        t, s = run(*c)
        tensors.update(t)
        specs.append(s)
    save("modules", tensors, {"generator": "scripts/make_module_fixtures.py",
                              "torch": torch.__version__, "cases": specs})
    print(f"{len(specs)} cases, {sum(v.numel() * v.element_size() for v in tensors.values())} bytes")


if __name__ == "__main__":
    main()
