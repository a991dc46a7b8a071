"""File names and defaults shared by the library and the app, in a module that imports nothing heavy.

Why a module of its own: the app reads model folders and run folders without loading TensorFlow or
Keras, so these names cannot live beside the code that writes the files (it imports Keras)."""

DEFAULT_MODEL = "minilm"  # the bundled encoder every command and page starts from

CONFIG_FILE = "semsim.json"  # a saved semsim model folder: its config (format, spec, fingerprint)
MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "model_card.md"

# A training run works in <out>.partial and is published to <out> when it is complete.
PARTIAL_SUFFIX = ".partial"
LOG_FILE = "train_log.jsonl"  # live progress, one JSON object a line
CANCEL_FILE = "CANCEL"  # created by the app to ask a run to stop after the current step
CHECKPOINT_DIR = "checkpoint"
TENSORBOARD_DIR = "tensorboard"
INT8_DIR = "int8"  # beside a model: its int8 ONNX graph (semsim.encoders.int8)
