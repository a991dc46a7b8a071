"""The same training code under KERAS_BACKEND=jax (CPU here; the fast path on a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    import semsim.encoders.base  # quiet backend import
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from tests.tiny_models import make_bert_preset
    from tests.test_training import make_pairs, make_reviews
    from semsim.encoders import load_encoder
    from tests.training_runs import fit_classifier, fit_pairs

    root = Path(sys.argv[1])
    base = "keras-hub:" + str(make_bert_preset(root / "bert"))
    card = fit_pairs(base, make_pairs(64), root / "pairs")
    texts = ["data scientist", "nurse"]
    tuned = load_encoder(str(root / "pairs"), cache=False).encode(texts)
    untouched = load_encoder(base, cache=False).encode(texts)
    full = fit_classifier(base, make_reviews(64), root / "clf", mode="full")
    # Last, as it sticks for the process: the batching a GPU gets (both sides of a pair in one pass,
    # power-of-two buckets from 32), run here on the CPU.
    semsim.encoders.base._JAX_ON_GPU = True
    from semsim.training.batches import joint_pair_batches
    gpu_card = fit_pairs(base, make_pairs(64), root / "pairs_gpu")
    gpu_tuned = load_encoder(str(root / "pairs_gpu"), cache=False)
    print(json.dumps({"loss": card["training"]["loss_history"], "backend": card["training"]["backend"],
                      "moved": float(np.abs(tuned - untouched).max()),
                      "clf_accuracy": full["metrics"]["tuned"]["validation"]["accuracy"],
                      "gpu_joint": joint_pair_batches(), "gpu_loss": gpu_card["training"]["loss_history"],
                      "gpu_padded_length": int(gpu_tuned.preprocess(texts)["token_ids"].shape[1]),
                      "gpu_moved": float(np.abs(gpu_tuned.encode(texts) - untouched).max())}))
""")


@pytest.mark.slow
def test_pair_and_classifier_training_run_under_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=900, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax"
    assert len(report["loss"]) == 2 and report["loss"][1] < report["loss"][0]
    assert report["moved"] > 1e-4
    assert 0.0 <= report["clf_accuracy"] <= 1.0
    assert report["gpu_joint"] and report["gpu_padded_length"] == 32
    assert report["gpu_loss"][1] < report["gpu_loss"][0] and report["gpu_moved"] > 1e-4
