"""Which accelerator the active Keras backend will use, in words the app and model cards can show."""

from __future__ import annotations

import os
from typing import Any


def describe_device() -> dict[str, Any]:
    """{"backend": ..., "gpu": bool, "device": "cpu" | "gpu: <name>"} without allocating GPU memory."""
    from semsim._env import preload_backend, silenced_stderr

    preload_backend()
    import keras

    backend = keras.backend.backend()
    names: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        with silenced_stderr():  # the CUDA probe logs "failed call to cuInit" on CPU-only machines
            names = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif backend == "jax":
        import jax

        with silenced_stderr():
            names = [str(d) for d in jax.devices() if d.platform == "gpu"]
    gpu = bool(names)
    return {"backend": backend, "gpu": gpu, "device": f"gpu: {names[0]}" if gpu else "cpu",
            "cpu_count": os.cpu_count()}
