"""The sentence-transformers side of bench/encode.py; runs in .venv-bench (torch lives only there).

    .venv-bench/bin/python bench/_st_worker.py --model FOLDER --texts TEXTS.json \
        --batch-size 64 --threads 2 --repeats 3 --json [--emb-out EMB.npy] [--profile]

TEXTS.json is a JSON list of strings. Loads SentenceTransformer(FOLDER) on CPU, runs one untimed
warm-up pass over all texts, then `repeats` timed passes of
model.encode(texts, batch_size, normalize_embeddings=True, convert_to_numpy=True), i.e. the
whole pipeline: tokenisation, forward pass, pooling, normalisation, conversion to numpy.
--profile adds one pass split into tokenisation and model time (same length-sorted batches as
encode). Prints one JSON object (with --json) or a short summary line.

--serve (what bench/encode.py uses) loads and warms up, prints a JSON "ready" line, then answers
one command per stdin line with one JSON line: `run` (a timed pass), `profile`, `save PATH` (the
last pass's embeddings as .npy), `single N` (N one-text calls, timed each), `embed IN.json OUT.npy`
(other texts, for quality metrics), `quit`. The parent alternates its own timed passes with these, so
both sides see the same background load on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description="sentence-transformers encode timing")
    parser.add_argument("--model", required=True, help="sentence-transformers / Hugging Face folder")
    parser.add_argument("--texts", required=True, help="JSON file: a list of strings")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--emb-out", help="write the last timed pass's embeddings here (.npy)")
    parser.add_argument("--profile", action="store_true", help="also time tokenisation vs model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve", action="store_true",
                        help="after loading and the warm-up, print a JSON 'ready' line, then answer "
                             "commands on stdin, one JSON line each: run | profile | save PATH | quit")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with open(args.texts, encoding="utf-8") as fh:
        texts = json.load(fh)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        sys.exit(f"{args.texts}: expected a JSON list of strings")

    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    load_s = time.perf_counter() - t0

    def encode():
        with torch.inference_mode():
            return model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)

    t = time.perf_counter()
    emb = encode()
    warmup_s = time.perf_counter() - t
    versions = {"sentence-transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "torch": torch.__version__}
    if args.serve:
        serve(model, texts, args.batch_size, encode, emb, {
            "ready": True, "n": len(texts), "batch_size": args.batch_size,
            "threads": torch.get_num_threads(), "load_s": load_s, "warmup_s": warmup_s,
            "max_seq_length": model.max_seq_length, "versions": versions})
        return
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        emb = encode()
        runs.append(time.perf_counter() - t)

    result = {
        "side": "sentence-transformers",
        "n": len(texts),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "load_s": load_s,
        "warmup_s": warmup_s,
        "runs_s": runs,
        "max_seq_length": model.max_seq_length,
        "versions": versions,
    }
    if args.profile:
        result["profile"] = profile(model, texts, args.batch_size)
    if args.emb_out:
        np.save(args.emb_out, np.asarray(emb, dtype=np.float32))

    if args.json:
        print(json.dumps(result))
    else:
        best = min(runs)
        print(f"sentence-transformers: {len(texts)} texts, best {best:.3f}s = "
              f"{len(texts) / best:.1f} sent/s (batch {args.batch_size}, {result['threads']} threads)")


def serve(model, texts: list[str], batch_size: int, encode, emb, ready: dict) -> None:
    """Answer timing commands from the parent, so that it can interleave its runs with ours."""
    import numpy as np

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply(ready)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            t, cpu = time.perf_counter(), time.process_time()
            emb = encode()
            reply({"run_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu})
        elif cmd == "profile":
            reply({"profile": profile(model, texts, batch_size)})
        elif cmd == "save":
            np.save(arg, np.asarray(emb, dtype=np.float32))
            reply({"saved": arg})
        elif cmd == "single":  # `single N`: N one-text encode calls (the first N texts), seconds each
            import torch

            seconds = []
            with torch.inference_mode():
                for text in texts[:int(arg)]:
                    t = time.perf_counter()
                    model.encode([text], batch_size=1, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)
                    seconds.append(time.perf_counter() - t)
            reply({"single_s": seconds})
        elif cmd == "embed":  # `embed IN.json OUT.npy`: embed other texts (for quality metrics)
            import torch

            source, _, target = arg.partition(" ")
            with open(source, encoding="utf-8") as fh:
                others = json.load(fh)
            with torch.inference_mode():
                vectors = model.encode(others, batch_size=batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
            np.save(target, np.asarray(vectors, dtype=np.float32))
            reply({"saved": target})
        elif cmd == "quit":
            break
        else:
            reply({"error": f"unknown command {cmd!r}"})


def profile(model, texts: list[str], batch_size: int) -> dict[str, float]:
    """One pass with tokenisation and the forward pass (model + pooling + normalise) timed apart."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as encode() sorts
    tok_s = model_s = 0.0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start:start + batch_size]]
            t = time.perf_counter()
            features = model.tokenize(batch)
            tok_s += time.perf_counter() - t
            t = time.perf_counter()
            out = model.forward(features)["sentence_embedding"]
            torch.nn.functional.normalize(out, p=2, dim=1).cpu().numpy()
            model_s += time.perf_counter() - t
    return {"tokenize_s": tok_s, "model_s": model_s}


if __name__ == "__main__":
    main()
