"""Process environment set before TensorFlow/Keras are imported: quiet logs, offline hubs, default backend."""

import contextlib
import logging
import os
import warnings

# TensorFlow prints C++ start-up noise (CUDA probing, oneDNN notices) unless told otherwise
# before its first import; users of the CLI and the app should never see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Models come from installed packages or local folders; never wait on a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TFHUB_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "tfhub_modules"))

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*np.object.*")
for _name in ("tensorflow", "absl", "h5py", "keras"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's Python-side logger once it is imported."""
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to silence
        pass


_backend_loaded = False


@contextlib.contextmanager
def silenced_stderr():
    """Point file descriptor 2 at /dev/null for the duration (C++ logs bypass Python's sys.stderr)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def preload_backend() -> None:
    """Import the Keras backend with stderr silenced at the file-descriptor level.

    TensorFlow's C++ runtime logs its CUDA probe ("Could not find cuda drivers...") through absl
    before any log-level variable is read, straight to fd 2; only redirecting the descriptor hides it.
    Import errors still raise normally once stderr is restored.
    """
    global _backend_loaded
    if _backend_loaded:
        return
    with silenced_stderr():
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import tensorflow  # noqa: F401
        import keras  # noqa: F401
    quiet_tensorflow()
    _backend_loaded = True


def child_environment() -> dict[str, str]:
    """This process's environment for a child `python -m semsim` (or -c) that must import this very
    semsim, whatever the working directory (which stays the caller's, so relative paths keep meaning)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
