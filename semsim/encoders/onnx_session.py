"""ONNX Runtime sessions on CPU, made one way for the int8 encoder and the serving path."""

from __future__ import annotations

import os
from typing import Any


def make_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on a graph file (threads: intra-op threads; None: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # SkipLayerNormFusion off: fusing each residual Add into its LayerNormalization made the int8 encoder
    # 1.28x slower on job titles (ONNX Runtime 1.31, AVX-512 EPYC; the fused kernel ran 10x slower than
    # the two ops it replaced), and changed nothing measurable at float32.
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["SkipLayerNormFusion"])
