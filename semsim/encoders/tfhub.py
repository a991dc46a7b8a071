"""TF Hub / Kaggle SavedModel text encoders (USE, LaBSE + preprocess), trainable inside Keras 3 models.

`hub.KerasLayer` needs tf_keras and cannot sit in a Keras 3 model (tensorflow/hub#903). Keras' own
`TFSMLayer(trainable=True)` wraps the SavedModel's variables but keeps their TF names ("dense/kernel:0"
becomes "dense_kernel:0"), and `model.fit` then fails creating optimizer slots ("'..:0_momentum' is not a
valid scope name"). `SavedModelLayer` tracks Keras variables with clean names whose storage *is* the
SavedModel's own tf.Variable, so gradients, optimizer updates and re-export all act on the weights the
restored graph actually reads.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from semsim._env import preload_backend

preload_backend()  # before Keras is imported, so TensorFlow's C++ start-up logs stay quiet

# ruff: noqa: E402

import keras

from semsim.encoders.base import Encoder
from semsim.encoders.config import EncoderError
from semsim.encoders.layers import L2Normalize

# Output keys tried in order: BERT-style encoders return a dict, USE-style return a tensor.
OUTPUT_KEYS = ("default", "pooled_output", "outputs")


def _require_tensorflow() -> Any:
    if keras.backend.backend() != "tensorflow":
        raise EncoderError("TF Hub SavedModels need the TensorFlow backend "
                           f"(KERAS_BACKEND is {keras.backend.backend()!r})")
    import tensorflow as tf

    return tf


def _load_saved_model(handle: str) -> Any:
    tf = _require_tensorflow()
    path = Path(handle).expanduser()
    try:
        if path.exists():
            if not (path / "saved_model.pb").is_file():
                raise EncoderError(f"{handle} is not a SavedModel folder (no saved_model.pb)")
            return tf.saved_model.load(str(path))
        import tensorflow_hub as hub

        return hub.load(handle)
    except EncoderError:
        raise
    except Exception as exc:  # hub raises many types for missing network / bad handles
        raise EncoderError(f"could not load TF Hub model {handle!r} ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}). Handles download from "
                           f"tfhub.dev/Kaggle, which needs network access; a local SavedModel folder "
                           f"works offline.") from exc


def _keras_name(tf_name: str) -> str:
    """Keras variable names may not contain '/' (and ':0' suffixes confuse it)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", tf_name.split(":")[0]) or "variable"


@keras.saving.register_keras_serializable(package="semsim")
class SavedModelLayer(keras.layers.Layer):
    """Calls a TF Hub SavedModel on strings and trains its variables in place."""

    def __init__(self, module: Any = None, preprocess: Any = None, handle: str = "",
                 preprocess_handle: str = "", output_key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if module is None:  # from_config: never load a graph unless asked to explicitly
            raise ValueError("SavedModelLayer is rebuilt with load_tfhub(), not from a config")
        self.module = module
        self.preprocess_module = preprocess
        self.handle = handle
        self.preprocess_handle = preprocess_handle
        self.output_key = output_key
        self._accepts_training = _accepts_training(module)
        trainable = {id(v) for v in getattr(module, "trainable_variables", [])}
        for tf_variable in getattr(module, "variables", []):
            self._track_existing(tf_variable, id(tf_variable) in trainable)
        self.built = True

    def _track_existing(self, tf_variable: Any, trainable: bool) -> None:
        # Keras keeps a tf.Variable given as initializer as its storage (no copy); the name is what
        # must change. Verify the sharing, since training silently does nothing without it.
        variable = keras.Variable(initializer=tf_variable, trainable=trainable,
                                  name=_keras_name(tf_variable.name))
        if variable.value is not tf_variable:
            variable._value = tf_variable
        self._track_variable(variable)

    def call(self, texts, training=False):
        inputs = self.preprocess_module(texts) if self.preprocess_module is not None else texts
        if self._accepts_training:
            outputs = self.module(inputs, training=training)
        else:
            outputs = self.module(inputs)
        if isinstance(outputs, dict):
            for key in ([self.output_key] if self.output_key else OUTPUT_KEYS):
                if key in outputs:
                    return outputs[key]
            raise EncoderError(f"SavedModel outputs {sorted(outputs)} have none of {OUTPUT_KEYS}; "
                               f"name one with tfhub:<handle>#<output_key>")
        return outputs

    def compute_output_spec(self, texts, training=False):
        # Run the graph once on a dummy batch to learn the output width.
        import tensorflow as tf

        width = int(self.call(tf.constant(["a"])).shape[-1])
        return keras.KerasTensor((None, width), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "handle": self.handle, "preprocess_handle": self.preprocess_handle,
                "output_key": self.output_key}


def _accepts_training(module: Any) -> bool:
    """Reusable SavedModels trace __call__ with a `training` flag; plain signatures have none.

    The flag shows up as a Python bool among the traced arguments (positional or keyword).
    """
    restored_call = getattr(module, "__call__", None)  # noqa: B004 (a RestoredFunction, not "callable?")
    functions = getattr(restored_call, "concrete_functions", None) or []
    for function in functions:
        try:
            args, kwargs = function.structured_input_signature
        except (AttributeError, ValueError, TypeError):
            continue
        if "training" in kwargs or any(isinstance(arg, bool) for arg in args):
            return True
    return False


class TFHubEncoder(Encoder):
    """A SavedModel taking raw strings (with an optional preprocess SavedModel in front)."""

    source = "tfhub"

    def __init__(self, *, layer: SavedModelLayer, **kwargs: Any):
        text = keras.Input(shape=(), dtype="string", name="text")
        embedding = layer(text)
        model = keras.Model({"text": text}, L2Normalize(name="l2_normalize")(embedding), name="tfhub_encoder")
        super().__init__(model=model, dim=int(embedding.shape[-1]), **kwargs)
        self.layer = layer

    def preprocess(self, texts: list[str]) -> dict[str, Any]:
        # A tf.string tensor, not a NumPy array: Keras' data adapters reject object/str dtypes, and a
        # SavedModel needs TensorFlow anyway.
        import tensorflow as tf

        return {"text": tf.constant(texts, dtype=tf.string)}

    @property
    def multilingual(self) -> bool:
        return "multilingual" in self.spec.lower() or "labse" in self.spec.lower()

    def save(self, folder: str | os.PathLike) -> None:
        tf = _require_tensorflow()
        folder = Path(folder)
        # Re-export the (trained) module: its variables are the ones the optimizer updated.
        tf.saved_model.save(self.layer.module, str(folder / "encoder"))
        if self.layer.preprocess_module is not None:
            source = Path(self.layer.preprocess_handle)
            if source.is_dir():
                shutil.copytree(source, folder / "preprocess")
            else:
                tf.saved_model.save(self.layer.preprocess_module, str(folder / "preprocess"))
        self.write_config(folder, output_key=self.layer.output_key, handle=self.layer.handle,
                          preprocess_handle=self.layer.preprocess_handle)


def parse_handle(spec: str) -> tuple[str, str, str | None]:
    """`<encoder>[+<preprocess>][#<output_key>]` -> (encoder, preprocess, output_key)."""
    spec, _, output_key = spec.partition("#")
    encoder, _, preprocess = spec.partition("+")
    if not encoder:
        raise EncoderError("tfhub: needs a handle or path, e.g. tfhub:/models/use or "
                           "tfhub:<labse-encoder>+<labse-preprocess>")
    return encoder, preprocess, output_key or None


def load_tfhub(spec: str) -> TFHubEncoder:
    encoder_handle, preprocess_handle, output_key = parse_handle(spec)
    module = _load_saved_model(encoder_handle)
    preprocess = _load_saved_model(preprocess_handle) if preprocess_handle else None
    layer = SavedModelLayer(module, preprocess, handle=encoder_handle,
                            preprocess_handle=preprocess_handle, output_key=output_key, name="savedmodel")
    return TFHubEncoder(layer=layer, spec=f"tfhub:{spec}", name=Path(encoder_handle).name or encoder_handle,
                        fingerprint=f"tfhub:{encoder_handle}")


def load_saved(folder: Path, config: dict[str, Any]) -> TFHubEncoder:
    module = _load_saved_model(str(folder / "encoder"))
    preprocess_dir = folder / "preprocess"
    preprocess = _load_saved_model(str(preprocess_dir)) if preprocess_dir.is_dir() else None
    layer = SavedModelLayer(module, preprocess, handle=str(folder / "encoder"),
                            preprocess_handle=str(preprocess_dir) if preprocess else "",
                            output_key=config.get("output_key"), name="savedmodel")
    return TFHubEncoder(layer=layer, spec=str(folder), name=config.get("name", folder.name),
                        fingerprint=config["fingerprint"])
