"""Generates tests/fixtures/ckpt_*: checkpoints written by real PyTorch for tests/io_torch.rs.

Run with a Python that has torch and safetensors (never needed in CI):

    /root/torch-venv/bin/python scripts/make_checkpoint_fixtures.py

What it writes (every .pt file by `torch.save`, whose default is the zip format; one with
`_use_new_zipfile_serialization=True` spelled out, which must give the same format):
- ckpt_net.pt: the state_dict of Net (conv: Conv2d(1, 2, 3), bn: BatchNorm2d(2), fc: Linear(8, 3)),
  after two forward passes in training mode so that the BatchNorm running statistics and
  num_batches_tracked are not their initial values;
- ckpt_net.safetensors: the same state_dict written by `safetensors.torch.save_file`: the expected
  values for ckpt_net.pt, and a safetensors file from real PyTorch for the model to load;
- ckpt_nested.pt: a training checkpoint {"model": state_dict, "optimizer": AdamW state_dict after two
  steps, "epoch": 3, "loss": 0.25, "name": "run-1", "flags": [True, False, None], "shape": (2, 3),
  "big": 2**40, "neg": -7}; ckpt_nested_optim.safetensors holds the AdamW buffers as expected values;
- ckpt_dtypes.pt: one tensor per dtype (float32, float64, float16, bfloat16, int64, int32, uint8,
  bool); ckpt_dtypes.safetensors holds the expected values (f16 / bf16 converted with `.float()`,
  the small integer types with `.long()`);
- ckpt_views.pt: tensors that are views of other storage: a transpose, a strided slice with an
  offset, two tensors sharing one storage, an expanded (stride 0) tensor, a 0-d tensor and an empty
  one; ckpt_views.safetensors holds each as a contiguous copy;
- ckpt_explicit_zip.pt: ckpt_views' dict saved with `_use_new_zipfile_serialization=True`.
"""

import os

import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.bn = torch.nn.BatchNorm2d(2)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).flatten(1))


def contiguous(d):
    return {k: v.contiguous().clone() for k, v in d.items()}


def main():
    torch.manual_seed(0)
    net = Net()
    net.train()
    for _ in range(2):
        net(torch.randn(4, 1, 4, 4))
    sd = net.state_dict()
    torch.save(sd, os.path.join(OUT, "ckpt_net.pt"))
    save_file(contiguous(sd), os.path.join(OUT, "ckpt_net.safetensors"))

    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(4, 1, 4, 4)).square().sum().backward()
        opt.step()
    nested = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "loss": 0.25,
        "name": "run-1",
        "flags": [True, False, None],
        "shape": (2, 3),
        "big": 2**40,
        "neg": -7,
    }
    torch.save(nested, os.path.join(OUT, "ckpt_nested.pt"))
    expected_optim = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            expected_optim[f"state.{i}.{k}"] = v.contiguous().clone()
    expected_optim.update({f"model.{k}": v for k, v in contiguous(net.state_dict()).items()})
    save_file(expected_optim, os.path.join(OUT, "ckpt_nested_optim.safetensors"))

    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 4, generator=g)
    dtypes = {
        "f32": base,
        "f64": base.double() * 1.5,
        "f16": (base * 3).half(),
        "bf16": (base * 3).bfloat16(),
        "i64": torch.tensor([[-(2**40), 0, 7], [1, 2, 3]], dtype=torch.int64),
        "i32": torch.tensor([-5, 0, 2**31 - 1], dtype=torch.int32),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
    }
    torch.save(dtypes, os.path.join(OUT, "ckpt_dtypes.pt"))
    expected = {}
    for k, v in dtypes.items():
        if v.dtype in (torch.float16, torch.bfloat16):
            v = v.float()
        elif v.dtype in (torch.int32, torch.uint8):
            v = v.long()
        expected[k] = v.contiguous()
    save_file(expected, os.path.join(OUT, "ckpt_dtypes.safetensors"))

    x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    shared = torch.arange(10, dtype=torch.float64)
    views = {
        "transposed": x.t(),
        "strided_slice": x[1:, ::2],
        "shared_whole": shared,
        "shared_tail": shared[6:],
        "expanded": torch.tensor([1.0, 2.0, 3.0]).expand(4, 3),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    assert not views["transposed"].is_contiguous()
    assert views["strided_slice"].storage_offset() == 6
    assert views["expanded"].stride() == (0, 1)
    torch.save(views, os.path.join(OUT, "ckpt_views.pt"))
    torch.save(
        views,
        os.path.join(OUT, "ckpt_explicit_zip.pt"),
        _use_new_zipfile_serialization=True,
    )
    save_file(contiguous(views), os.path.join(OUT, "ckpt_views.safetensors"))

    for name in sorted(os.listdir(OUT)):
        if name.startswith("ckpt_"):
            print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
