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


def describe_device_apart(timeout: float = 300.0) -> dict[str, Any]:
    """describe_device(), asked in a child process unless this one has loaded Keras already: a server that
    serves models with ONNX Runtime must not import TensorFlow (over 600 MB) only to learn that there is
    no GPU. A child that fails or times out reads as a CPU with the configured backend."""
    import json
    import subprocess
    import sys

    from semsim._env import child_environment

    if "keras" in sys.modules:
        return describe_device()
    script = "import json; from semsim.device import describe_device; print(json.dumps(describe_device()))"
    try:
        done = subprocess.run([sys.executable, "-c", script], stdin=subprocess.DEVNULL, env=child_environment(), capture_output=True,
                              text=True, timeout=timeout)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            return json.loads(lines[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    return {"backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "gpu": False, "device": "cpu",
            "cpu_count": os.cpu_count()}
