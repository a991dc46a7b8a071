"""semsim: fine-tune sentence encoders on a domain and compare base vs tuned."""

from semsim import _env  # noqa: F401  (must run before TensorFlow/Keras are imported)

__version__ = "0.1.0"
