"""Inference precision of an encoder (float32, bfloat16, int8, auto): CPU detection, the choice, conversion."""

# Importable without Keras (the CLI's --help and the app's settings read PRECISION_CHOICES); the
# conversions import what they need when called.

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsim.encoders.config import EncoderError

if TYPE_CHECKING:
    from semsim.encoders.base import Encoder

PRECISIONS = ("float32", "bfloat16", "int8")
PRECISION_CHOICES = (*PRECISIONS, "auto")
DEFAULT_PRECISION = "float32"
# CPU flags (as Linux names them in /proc/cpuinfo) with which bfloat16 matmuls run natively. Without
# them oneDNN emulates bfloat16 and it is slower than float32: measured 0.9x on this project's AMD EPYC
# (AVX2 only), where the 1.56x came from a CPU with AVX512-BF16.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# The quick STS-B check that `auto` runs before it picks bfloat16: on QUICK_CHECK_PAIRS pairs of STS-B
# dev, Spearman x100 within QUICK_CHECK_SPEARMAN of float32 and every vector within QUICK_CHECK_COSINE.
QUICK_CHECK_PAIRS = 200
QUICK_CHECK_SPEARMAN = 0.3
QUICK_CHECK_COSINE = 0.999


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bfloat16(flags: Iterable[str] | None = None) -> bool:
    """Whether this CPU (or one with `flags`) computes bfloat16 matmuls natively."""
    return bool(NATIVE_BF16_FLAGS & frozenset(cpu_flags() if flags is None else flags))


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # float32, bfloat16 or int8: what runs
    requested: str  # what was asked for (auto included)
    reason: str


def check_precision(value: str) -> str:
    if value not in PRECISION_CHOICES:
        raise EncoderError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, not {value!r}")
    return value


def choose_precision(requested: str, *, flags: Iterable[str] | None = None,
                     check: Callable[[], tuple[bool, str]] | None = None) -> PrecisionChoice:
    """What `requested` means on this CPU. `auto`: bfloat16 where the CPU computes it natively and
    `check()` (the quick STS-B check) passes, else float32. `flags` simulates another CPU."""
    check_precision(requested)
    if requested != "auto":
        return PrecisionChoice(requested, requested, "asked for")
    flags = cpu_flags() if flags is None else frozenset(flags)
    if not native_bfloat16(flags):
        return PrecisionChoice("float32", "auto", "this CPU has no AVX512-BF16 or AMX, so bfloat16 would be "
                                                  "emulated and slower than float32")
    if check is not None:
        passed, detail = check()
        if not passed:
            return PrecisionChoice("float32", "auto", f"bfloat16 failed the quick STS-B check ({detail})")
        return PrecisionChoice("bfloat16", "auto", f"native bfloat16 on this CPU; quick STS-B check passed ({detail})")
    return PrecisionChoice("bfloat16", "auto", "native bfloat16 on this CPU")


def quick_sts_check(reference: Encoder, candidate: Encoder, pairs: int | None = None) -> tuple[bool, str]:
    """Candidate vs reference on the first `pairs` (QUICK_CHECK_PAIRS) pairs of the bundled STS-B dev split."""
    import numpy as np
    from scipy.stats import spearmanr

    from semsim import data

    frame = data.load_sts("dev").head(pairs or QUICK_CHECK_PAIRS)
    texts = list(dict.fromkeys([*frame["text_a"], *frame["text_b"]]))
    ref, cand = reference.encode(texts), candidate.encode(texts)
    min_cos = float(np.min(np.sum(ref * cand, axis=1)))
    row = {t: i for i, t in enumerate(texts)}
    a, b = [row[t] for t in frame["text_a"]], [row[t] for t in frame["text_b"]]
    gold = frame["score"].to_numpy()
    rho = [100 * spearmanr(np.sum(v[a] * v[b], axis=1), gold)[0] for v in (ref, cand)]
    passed = min_cos >= QUICK_CHECK_COSINE and abs(rho[1] - rho[0]) <= QUICK_CHECK_SPEARMAN
    return passed, (f"{len(frame)} STS-B dev pairs: Spearman x100 {rho[0]:.2f} -> {rho[1]:.2f}, "
                    f"min cosine {min_cos:.5f}")


# -- conversion ---------------------------------------------------------------------------------
def bfloat16_encoder(encoder: Encoder) -> Encoder:
    """The same BERT-family encoder computing in bfloat16 (Keras' mixed_bfloat16: weights stay float32,
    matmuls run in bfloat16; the L2 normalisation, and so the vectors, are float32)."""
    from semsim.encoders.bert import BertEncoder

    if not isinstance(encoder, BertEncoder):
        raise EncoderError(f"bfloat16 inference is available for BERT-family encoders; {encoder.spec} is a "
                           f"{type(encoder).__name__} (use float32)")
    backbone = encoder.backbone
    copy = type(backbone).from_config({**backbone.get_config(), "dtype": "mixed_bfloat16"})
    copy.set_weights(backbone.get_weights())
    converted = BertEncoder(backbone=copy, tokenizer=encoder.tokenizer, pooling=encoder.pooling,
                            max_length=encoder.max_length, spec=encoder.spec, name=encoder.name,
                            fingerprint=encoder.fingerprint, description=encoder.description)
    converted.base_spec = encoder.base_spec
    converted.precision = "bfloat16"
    return converted


def convert(encoder: Encoder, precision: str, *, cache_dir: str | os.PathLike | None = None) -> Encoder:
    """`encoder` (float32) at `precision` (float32, bfloat16 or int8; not auto)."""
    if precision == "float32":
        return encoder
    if precision == "bfloat16":
        return bfloat16_encoder(encoder)
    if precision == "int8":
        from semsim.encoders.int8 import int8_encoder

        return int8_encoder(encoder, cache_dir=cache_dir)
    raise EncoderError(f"cannot convert to {precision!r}")


_converted: dict[tuple[str, str], Any] = {}
_auto: dict[str, PrecisionChoice] = {}
_lock = threading.Lock()


def at_precision(encoder: Encoder, requested: str, *, key: str | None = None,
                 flags: Iterable[str] | None = None) -> Encoder:
    """`encoder` at the requested precision, `auto` resolved (see choose_precision). With `key` (the
    loader's cache key) each (model, precision) converts once per process. The result's `precision`
    says what runs and `precision_reason` why."""
    check_precision(requested)
    if requested == "auto":
        auto_key = f"{key or id(encoder)}:{encoder.fingerprint}"
        choice = _auto.get(auto_key) if flags is None else None
        if choice is None:
            choice = choose_precision("auto", flags=flags,
                                      check=lambda: quick_sts_check(encoder, _cached(encoder, "bfloat16", key)))
            if flags is None:
                _auto[auto_key] = choice
    else:
        choice = choose_precision(requested)
    result = _cached(encoder, choice.precision, key)
    result.precision_reason = f"{choice.requested} -> {choice.precision}: {choice.reason}"
    return result


def _cached(encoder: Encoder, precision: str, key: str | None) -> Encoder:
    if precision == "float32":
        return encoder
    if key is None:
        return convert(encoder, precision)
    with _lock:
        if (key, precision) not in _converted:
            _converted[(key, precision)] = convert(encoder, precision)
        return _converted[(key, precision)]
