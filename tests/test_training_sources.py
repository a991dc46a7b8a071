"""Every objective trains every encoder source: KerasHub BERT, TF Hub SavedModel, and the USE port."""

from __future__ import annotations

import numpy as np
import pytest

from semsim.encoders import load_encoder
from tests.test_training import make_pairs, make_reviews
from tests.training_runs import fit_classifier, fit_pairs

TWO_STEPS = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-2, "warmup_ratio": 0.0, "max_steps_per_epoch": 2}


@pytest.fixture(scope="module")
def tiny_use_dir(tmp_path_factory):
    """A tiny random-weight USE-architecture model saved as a semsim folder (loadable by path)."""
    import sentencepiece as spm

    from semsim.encoders.use import UseEncoder, build_use_model
    from tests.test_use import CORPUS, TINY, _randomize

    root = tmp_path_factory.mktemp("tiny_use")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS * 10), model_prefix=str(root / "sp"),
                                   vocab_size=60, model_type="unigram", character_coverage=1.0,
                                   hard_vocab_limit=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    model = build_use_model(vocab_size=300, **TINY)
    _randomize(model, seed=0)
    encoder = UseEncoder(model=model, tokenizer_path=root / "sp.model", spec="tiny-use", name="tiny-use",
                         fingerprint="tiny-use@test")
    folder = root / "model"
    folder.mkdir()
    encoder.save(folder)
    return folder


@pytest.fixture(params=["keras-hub", "tfhub", "use"])
def source_spec(request, tiny_bert_dir, tiny_hub_dir, tiny_use_dir):
    return {"keras-hub": f"keras-hub:{tiny_bert_dir}", "tfhub": f"tfhub:{tiny_hub_dir}",
            "use": str(tiny_use_dir)}[request.param]


def _moved(base: str, tuned_folder) -> bool:
    texts = ["data scientist", "nurse", "chef"]
    before = load_encoder(base, cache=False).encode(texts)
    after = load_encoder(str(tuned_folder), cache=False).encode(texts)
    return not np.allclose(before, after, atol=1e-6)


@pytest.mark.parametrize("objective", ["cosent", "angular-mse", "mnrl"])
def test_every_pair_objective_on_every_source(source_spec, objective, tmp_path):
    pairs = make_pairs(48)
    if objective == "mnrl":  # unscored positive pairs only
        positives = make_pairs(400)
        pairs = positives[positives["score"] == 1.0].drop(columns="score").head(48).reset_index(drop=True)
    card = fit_pairs(source_spec, pairs, tmp_path / "out", objective=objective, **TWO_STEPS)
    assert card["training"]["steps"] == 2
    assert _moved(source_spec, tmp_path / "out")


def test_full_classifier_on_every_source(source_spec, tmp_path):
    card = fit_classifier(source_spec, make_reviews(48), tmp_path / "clf", mode="full", **TWO_STEPS)
    assert card["training"]["steps"] == 2
    assert _moved(source_spec, tmp_path / "clf" / "encoder")
