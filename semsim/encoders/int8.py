"""int8 inference: a BERT-family encoder's weight matmuls quantized by ONNX Runtime, calibrated, made once."""

# Why ONNX Runtime (onnx + onnxruntime in requirements.txt), measured on minilm on this project's 2-core
# AMD EPYC (AVX2, no VNNI), job titles, batch 64, one thread, same run:
#   - Keras' own int8 (`model.quantize("int8")`, TensorFlow): 0.3x float32 — TF's int8 matmul is slow on CPU.
#   - ONNX Runtime dynamic int8 (MatMulInteger kernels, activations quantized per call): 1.5-1.9x float32
#     Keras, and single-query embedding 10 ms against 52 ms for the Keras model (machine load 12).
# Per-channel weight scales are needed: per-tensor scales gave a minimum cosine of 0.92 to float32 on job
# titles, per-channel 0.98. Calibration (below) then keeps float the matmul groups that cost the most.

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from semsim.encoders.base import Encoder
from semsim.encoders.config import EncoderError
from semsim.encoders.onnx_session import make_session
from semsim.encoders.text_batches import encode_in_length_order
from semsim.names import CONFIG_FILE, INT8_DIR

INT8_FORMAT = 2  # of int8.json; bump when the graph or the calibration changes
MODEL_FILE = "model.onnx"
META_FILE = "int8.json"
# Calibration: the mean cosine to float32 over the calibration texts that the quantized model must keep;
# matmul groups are moved back to float32, the most harmful first, until it does. Why 0.99 and not higher:
# on minilm, quantizing every weight matmul gave mean cosine 0.993 and STS-B test Spearman x100 81.80
# (float32 82.03); keeping the feed-forward outputs float raised the cosine to 0.996 but gave 81.69, and
# cost a third of the int8 matmul work. Past 0.99 the cosine stopped predicting the ranking quality.
TARGET_MEAN_COSINE = 0.99
CALIBRATION_TEXTS = 128  # from each bundled source: job titles and STS-B train sentences


def cache_root() -> Path:
    """Where int8 models of read-only or bundled encoders are kept (SEMSIM_CACHE_DIR overrides)."""
    return Path(os.environ.get("SEMSIM_CACHE_DIR") or Path.home() / ".cache" / "semsim") / "int8"


def weights_digest(model: Any) -> str:
    """A digest of the float32 weights: an int8 model is valid for exactly these weights."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(variable.path.encode())
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()[:24]


def int8_folder(encoder: Encoder, cache_dir: str | os.PathLike | None = None) -> Path:
    """Beside the model for our own writable model folders (`<folder>/int8`), else under cache_root."""
    if cache_dir is None:
        folder = Path(encoder.spec).expanduser()
        if (folder / CONFIG_FILE).is_file() and os.access(folder, os.W_OK):
            return folder / INT8_DIR
        cache_dir = cache_root()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder.fingerprint)[-60:]
    return Path(cache_dir) / f"{slug}-{hashlib.sha256(encoder.fingerprint.encode()).hexdigest()[:8]}"


def calibration_texts() -> list[str]:
    """Bundled texts the quantization is calibrated on: job titles and STS-B train sentences (no test data)."""
    from semsim import data

    titles = data.load_texts(str(data.bundled_path("job-titles")), "title")["text"].drop_duplicates()
    sts = data.load_sts("train")
    sentences = list(dict.fromkeys([*sts["text_a"], *sts["text_b"]]))
    rng = np.random.default_rng(0)
    picked = [titles.iloc[i] for i in sorted(rng.permutation(len(titles))[:CALIBRATION_TEXTS])]
    picked += [sentences[i] for i in sorted(rng.permutation(len(sentences))[:CALIBRATION_TEXTS])]
    return picked


def _run(session: Any, encoder: Encoder, texts: list[str], batch_size: int = 32) -> np.ndarray:
    # A backbone may have fewer positions than its tokeniser's max_length; calibration cuts there.
    limit = getattr(getattr(encoder, "backbone", None), "max_sequence_length", None)

    def embed(batch: list[str]) -> np.ndarray:
        inputs = encoder.preprocess(batch)
        return session.run(["embedding"], {k: v[:, :limit] for k, v in inputs.items()})[0]

    return encode_in_length_order(texts, encoder.dim, batch_size, embed)


def _group(node_weight: str) -> str:
    return node_weight.rsplit("_w", 1)[0].split("_", 1)[1]  # "l3_ff2_w" -> "ff2"


def quantize(float_path: Path, out_path: Path, encoder: Encoder, texts: list[str],
             target: float = TARGET_MEAN_COSINE) -> dict[str, Any]:
    """Quantize float_path's weight matmuls to int8 (dynamic, per-channel weights) into out_path.

    Calibration on `texts`: with everything quantized, if the mean cosine to the float32 graph is under
    `target`, each remaining matmul group is tried back in float32 and the most helpful one kept so,
    until the target is met. Returns what was measured (written to int8.json).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from semsim.encoders.onnx_graph import weight_matmuls

    graph = onnx.load(str(float_path))
    by_name = {node.name: node for node in graph.graph.node}
    nodes = {name: _group(by_name[name].input[1]) for name in weight_matmuls(graph)}
    reference = _run(make_session(float_path), encoder, texts)

    def trial(float_groups: frozenset[str]) -> tuple[float, float]:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint for image models on root
        try:
            # DefaultTensorType: shape inference types no output of ONNX Runtime's own fused operators
            quantize_dynamic(str(float_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_quantize=[n for n, g in nodes.items() if g not in float_groups],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.setLevel(level)
        cos = np.sum(_run(make_session(out_path), encoder, texts) * reference, axis=1)
        return float(np.mean(cos)), float(np.min(cos))

    kept: frozenset[str] = frozenset()
    trials = [{"float32_groups": [], **dict(zip(("mean_cosine", "min_cosine"), trial(kept), strict=True))}]
    best = trials[0]
    groups = set(nodes.values())
    while best["mean_cosine"] < target and len(kept) < len(groups):
        results = []
        for group in sorted(groups - kept):
            mean, low = trial(kept | {group})
            results.append({"float32_groups": sorted(kept | {group}), "mean_cosine": mean, "min_cosine": low})
        trials += results
        best = max(results, key=lambda r: r["mean_cosine"])
        kept = frozenset(best["float32_groups"])
    if trials[-1] is not best:  # the file on disk is the last trial's: write the chosen one again
        trial(kept)
    return {"target_mean_cosine": target, "calibration_texts": len(texts), "float32_groups": sorted(kept),
            "quantized_matmuls": sum(g not in kept for g in nodes.values()), "weight_matmuls": len(nodes),
            "mean_cosine": best["mean_cosine"], "min_cosine": best["min_cosine"], "trials": trials}


def build_int8(encoder: Encoder, folder: Path, digest: str) -> dict[str, Any]:
    """Export, calibrate and quantize `encoder` into `folder` (published atomically, made once)."""
    import onnx
    import onnxruntime

    from index.atomic import atomic_folder
    from semsim.encoders.onnx_graph import UnsupportedForOnnx, build_bert_graph

    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(folder) as work:
        meta = read_meta(folder)  # another process may have built it while this one waited for the lock
        if meta is not None and meta.get("weights_digest") == digest:
            raise _AlreadyBuilt(meta)
        try:
            graph = build_bert_graph(encoder.backbone, encoder.pooling)
        except (UnsupportedForOnnx, AttributeError) as exc:
            raise EncoderError(f"int8 is not available for {encoder.spec}: {exc}") from exc
        with tempfile.TemporaryDirectory(prefix="semsim-int8-") as tmp:
            float_path = Path(tmp) / "float32.onnx"
            onnx.save(graph, str(float_path))
            report = quantize(float_path, Path(work) / MODEL_FILE, encoder, calibration_texts())
        meta = {"format": INT8_FORMAT, "spec": encoder.spec, "fingerprint": encoder.fingerprint,
                "weights_digest": digest, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                "calibration": report}
        (Path(work) / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


class _AlreadyBuilt(Exception):
    def __init__(self, meta: dict[str, Any]):
        super().__init__("already built")
        self.meta = meta


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("format") != INT8_FORMAT or not (folder / MODEL_FILE).is_file():
        return None
    return meta


class OnnxEncoder(Encoder):
    """A float32 encoder's tokeniser with its int8 ONNX Runtime graph for the forward pass.

    Same spec and fingerprint as the float32 encoder (the vectors live in the same space: an index built
    at one precision is searched at another with a warning, see semsim.search). Not trainable and not
    saveable: train and save the float32 model; its int8 graph is made again from the new weights.
    """

    source = "int8"
    precision = "int8"

    def __init__(self, base: Encoder, folder: Path, meta: dict[str, Any], threads: int | None = None):
        super().__init__(spec=base.spec, name=base.name, model=base.model, dim=base.dim,
                         fingerprint=base.fingerprint, description=base.description)
        self.base = base
        self.base_spec = base.base_spec
        self.folder = folder
        self.meta = meta
        self.set_threads(threads)

    def set_threads(self, threads: int | None) -> None:
        """Intra-op threads of the ONNX Runtime session (None: its default, one per physical core)."""
        self.session = make_session(self.folder / MODEL_FILE, threads)
        self._names = [i.name for i in self.session.get_inputs()]

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        return self.base.preprocess(texts)

    def _predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["embedding"], {name: inputs[name] for name in self._names})[0]

    def save(self, folder: str | os.PathLike) -> None:
        raise EncoderError("an int8 encoder is not saved: save the float32 model (its int8 graph is made from it)")


def int8_encoder(encoder: Encoder, cache_dir: str | os.PathLike | None = None,
                 threads: int | None = None) -> OnnxEncoder:
    """`encoder` at int8: the quantized graph from its folder, made (once) if missing or stale."""
    if not hasattr(encoder, "backbone"):
        raise EncoderError(f"int8 is available for BERT-family encoders; {encoder.spec} is a "
                           f"{type(encoder).__name__} (use float32)")
    folder = int8_folder(encoder, cache_dir)
    digest = weights_digest(encoder.model)
    meta = read_meta(folder)
    if meta is None or meta.get("weights_digest") != digest:
        try:
            meta = build_int8(encoder, folder, digest)
        except _AlreadyBuilt as done:
            meta = done.meta
    return OnnxEncoder(encoder, folder, meta, threads)
