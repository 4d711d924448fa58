"""A tiny randomly initialised GPT-2 from the real transformers, for tests/models_gpt2.rs.

Writes, under tests/fixtures/:
- gpt2_tiny.safetensors: the state_dict of a GPT2LMHeadModel with the Hugging Face key names
  (transformer.wte.weight, transformer.h.0.attn.c_attn.weight, ...; lm_head.weight is tied to
  wte and left out, as save_pretrained does);
- gpt2_tiny.json: the config, an input batch, its logits, and the greedy generation of
  `model.generate(do_sample=False)` with the KV cache.

    /root/torch-venv/bin/python scripts/make_gpt2_fixtures.py
"""

import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests/fixtures")

NEW_TOKENS = 24


def main():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=100,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        # a larger init than GPT-2's 0.02 so the random model's logits are far from uniform
        initializer_range=0.5,
    )
    model = GPT2LMHeadModel(config).eval()
    # random LayerNorm affine and biases too, so a mix-up of weight and bias would show
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))

    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, config.vocab_size, (2, 9), generator=g)
    with torch.no_grad():
        logits = model(input_ids).logits

    # greedy generation from one prompt, with and without the cache; a tie between the top two
    # logits would make the test depend on rounding, so check the margins
    prompt = input_ids[:1, :5]
    with torch.no_grad():
        out = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            use_cache=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
        uncached = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            use_cache=False,
        )
    assert torch.equal(out.sequences, uncached)
    for step in out.scores:
        top = step[0].topk(2).values
        assert top[0] - top[1] > 1e-3, f"near tie in greedy step: {top}"

    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(FIX, "gpt2_tiny.safetensors"))
    expected = {
        "generator": "scripts/make_gpt2_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "config": {
            k: getattr(config, k)
            for k in [
                "vocab_size",
                "n_positions",
                "n_embd",
                "n_layer",
                "n_head",
                "activation_function",
                "layer_norm_epsilon",
            ]
        },
        "input_ids": input_ids.tolist(),
        "logits_shape": list(logits.shape),
        "logits": [float(f"{v:.8g}") for v in logits.flatten().tolist()],
        "prompt": prompt[0].tolist(),
        "generated": out.sequences[0].tolist(),
    }
    with open(os.path.join(FIX, "gpt2_tiny.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    print("keys:", list(sd)[:8], "...", len(sd))
    print("generated:", expected["generated"])


if __name__ == "__main__":
    main()
