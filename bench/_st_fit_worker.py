"""Runs in .venv-bench: sentence-transformers' fit() with CoSENTLoss, timed per step, as JSON.

The reference side of bench/train_quality.py's throughput row: same model folder, same pairs file,
same batch size and loss as our trainer; compile/warm-up steps are excluded on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--pairs", required=True, help="CSV with text_a, text_b, score")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1, help="above 1, only the last epoch is timed")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (mixed precision)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import pandas as pd
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, losses
    from sentence_transformers.trainer import SentenceTransformerTrainer
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    frame = pd.read_csv(args.pairs).head(args.steps * args.batch_size)
    dataset = Dataset.from_dict({"sentence1": frame["text_a"].astype(str).tolist(),
                                 "sentence2": frame["text_b"].astype(str).tolist(),
                                 "score": frame["score"].astype(float).tolist()})
    model = SentenceTransformer(args.model, device=args.device)
    times: list[float] = []

    class Timer(TrainerCallback):
        # Wall-clock at each step's end: the interval covers loading and tokenising the batch too.
        def on_step_end(self, *_, **__):
            times.append(time.perf_counter())

    training_args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), "st_fit_bench"), num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size, learning_rate=2e-5, warmup_ratio=0.1, report_to=[],
        save_strategy="no", logging_strategy="no", use_cpu=args.device == "cpu", bf16=args.bf16,
        dataloader_drop_last=True, seed=0)
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset,
                                         loss=losses.CoSENTLoss(model), callbacks=[Timer()])
    started = time.perf_counter()
    trainer.train()
    # As our side times it (bench/train_quality.py, steady_pairs_per_s): one epoch leaves out the
    # first steps; several epochs over the same data time only the last.
    steps_per_epoch = len(times) // args.epochs
    if args.epochs > 1:
        timed = times[-steps_per_epoch:]
    else:
        timed = times[min(10, len(times) // 3):]
    result = {"pairs_per_s": args.batch_size * (len(timed) - 1) / (timed[-1] - timed[0]),
              "steps_timed": len(timed) - 1, "torch_threads": torch.get_num_threads(), "device": args.device,
              "precision": "bfloat16" if args.bf16 else "float32",
              "first_epoch_s": times[steps_per_epoch - 1] - started if args.epochs > 1 else None}
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
