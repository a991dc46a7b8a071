"""Hard-negative mining for positive pairs, as sentence-transformers' `mine_hard_negatives` does it.

For each (anchor, positive) the corpus texts most similar to the anchor (exact FAISS top-k through the
index package) become candidates; texts that are a positive of that anchor never are, a window of ranks
and a margin against the positive's own score keep likely false negatives out, and the negatives are
taken from the top or drawn with a seed. The result is an mnrl training file: text_a, text_b, negative."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from semsim.training.spec import TrainingError

SAMPLING = ("top", "random")


def _key(text: str) -> str:
    return " ".join(str(text).lower().split())


def positives_by_anchor(pairs: pd.DataFrame) -> dict[str, set[str]]:
    """Every text that is a positive of each anchor (normalised): its own text_b, the anchor itself, and
    where the pairs have a group_id, every text of the anchor's groups (rows of one group are positives
    of each other, as in the bundled job-title-groups)."""
    positives: dict[str, set[str]] = {}
    anchors = [_key(a) for a in pairs["text_a"]]
    others = [_key(b) for b in pairs["text_b"]]
    for anchor, other in zip(anchors, others, strict=True):
        positives.setdefault(anchor, {anchor}).add(other)
    if "group_id" in pairs.columns:
        members: dict[str, set[str]] = {}
        for group, anchor, other in zip(pairs["group_id"].astype(str), anchors, others, strict=True):
            members.setdefault(group, set()).update((anchor, other))
        for group, anchor in zip(pairs["group_id"].astype(str), anchors, strict=True):
            positives[anchor] |= members[group]
    return positives


def mine_hard_negatives(encoder: Any, pairs: pd.DataFrame, corpus: Sequence[str] | None = None, *,
                        range_min: int = 0, range_max: int = 50, margin: float | None = None,
                        relative_margin: float | None = None, num_negatives: int = 1, sampling: str = "top",
                        seed: int = 42, batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(pairs with a `negative` column, one row per negative; statistics).

    `corpus`: the texts negatives come from (default: every text_b of `pairs`). Candidates for an anchor
    are its `range_max` nearest corpus texts that are not its positives, from rank `range_min` on (0 =
    the nearest). `margin`: a negative must score at most positive - margin against the anchor;
    `relative_margin`: at most positive x (1 - relative_margin). `sampling`: the `num_negatives` nearest
    candidates ("top"), or drawn at random among them with `seed` ("random"). A pair left with no
    candidate is dropped, and counted."""
    from index import FlatIndex

    if sampling not in SAMPLING:
        raise TrainingError(f"sampling must be one of {', '.join(SAMPLING)}, not {sampling!r}")
    if not 0 <= range_min < range_max:
        raise TrainingError(f"need 0 <= --range-min < --range-max, got {range_min} and {range_max}")
    if num_negatives < 1:
        raise TrainingError(f"--num-negatives must be at least 1, got {num_negatives}")
    if margin is not None and relative_margin is not None:
        raise TrainingError("give --margin or --relative-margin, not both")
    if relative_margin is not None and not 0 <= relative_margin < 1:
        raise TrainingError(f"--relative-margin must be in [0, 1), got {relative_margin}")
    if len(pairs) == 0:
        raise TrainingError("there are no pairs to mine negatives for")
    started = time.perf_counter()
    texts = list(dict.fromkeys(str(t) for t in (corpus if corpus is not None else pairs["text_b"])))
    if len(texts) < 2:
        raise TrainingError("the corpus needs at least two texts to mine negatives from")
    corpus_keys = [_key(t) for t in texts]
    corpus_vectors = encoder.encode(texts, batch_size=batch_size, progress=progress)
    anchors = list(dict.fromkeys(str(a) for a in pairs["text_a"]))
    anchor_vectors = dict(zip(anchors, encoder.encode(anchors, batch_size=batch_size), strict=True))
    own = list(dict.fromkeys(str(b) for b in pairs["text_b"]))
    own_vectors = dict(zip(own, encoder.encode(own, batch_size=batch_size), strict=True))
    positives = positives_by_anchor(pairs)

    index = FlatIndex(corpus_vectors.shape[1])
    index.add(corpus_vectors, np.arange(len(texts)))
    most_positives = max(len(p) for p in positives.values())
    k = min(len(texts), range_max + most_positives)
    scores, ranked = index.search(np.stack([anchor_vectors[a] for a in anchors]), k)
    nearest = {anchor: (scores[i], ranked[i]) for i, anchor in enumerate(anchors)}

    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    dropped, positive_scores, negative_scores = 0, [], []
    for record in pairs.to_dict("records"):
        anchor, positive = str(record["text_a"]), str(record["text_b"])
        excluded = positives[_key(anchor)]
        own_score = float(np.dot(anchor_vectors[anchor], own_vectors[positive]))
        row_scores, row_ids = nearest[anchor]
        candidates = [(float(score), int(i)) for score, i in zip(row_scores, row_ids, strict=True)
                      if i >= 0 and corpus_keys[i] not in excluded][range_min:range_max]
        if margin is not None:
            candidates = [c for c in candidates if c[0] <= own_score - margin]
        if relative_margin is not None:
            candidates = [c for c in candidates if c[0] <= own_score * (1 - relative_margin)]
        if not candidates:
            dropped += 1
            continue
        if sampling == "random" and len(candidates) > num_negatives:
            picked = [candidates[j] for j in sorted(rng.choice(len(candidates), num_negatives, replace=False))]
        else:
            picked = candidates[:num_negatives]
        positive_scores.append(own_score)
        for score, i in picked:
            rows.append({**{k: v for k, v in record.items() if k != "negative"}, "negative": texts[i]})
            negative_scores.append(score)
    columns = ["text_a", "text_b", "negative", *[c for c in pairs.columns if c not in ("text_a", "text_b",
                                                                                        "negative")]]
    mined = pd.DataFrame(rows, columns=columns)
    stats = {"pairs": int(len(pairs)), "rows": int(len(mined)), "pairs_without_negative": dropped,
             "corpus": len(texts), "mean_positive_score": float(np.mean(positive_scores)) if positive_scores else None,
             "mean_negative_score": float(np.mean(negative_scores)) if negative_scores else None,
             "range_min": range_min, "range_max": range_max, "margin": margin, "relative_margin": relative_margin,
             "num_negatives": num_negatives, "sampling": sampling, "seed": seed,
             "seconds": round(time.perf_counter() - started, 2)}
    return mined, stats
