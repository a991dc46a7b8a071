"""Multi-task pair training (parts, each in batches of its own with its own loss), the forgetting guard
(rehearsal on by default, the card's guard), hard-negative mining, and the frozen head fitted to convergence."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from semsim.training import PairTrainingRequest, TrainingError
from semsim.training.parts import english_base, parse_part, request_parts
from tests.test_training import make_reviews
from tests.tiny_models import BagOfWords
from tests.training_runs import fit_classifier, pair_request

# Two parts with no word in common: which part a batch came from shows in its texts.
GRADED_WORDS = ["data scientist", "data analyst", "nurse", "doctor", "chef", "driver", "teacher", "manager"]
POSITIVES = pd.DataFrame({"text_a": [f"good film {i}" for i in range(24)],
                          "text_b": [f"great movie {i}" for i in range(24)],
                          "negative": [f"boring movie {i}" for i in range(24)],
                          "group_id": [str(i // 3) for i in range(24)]})


def graded(n: int = 48, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = [(GRADED_WORDS[a], GRADED_WORDS[b]) for a, b in rng.integers(len(GRADED_WORDS), size=(n, 2))]
    return pd.DataFrame({"text_a": [a for a, _ in pairs], "text_b": [b for _, b in pairs],
                         "score": [float(a.split()[0] == b.split()[0]) for a, b in pairs]})


# -- parts: parsed, resolved, with the recipe and the rehearsal --------------------------------------------
def test_part_syntax():
    assert parse_part("job-title-groups:mnrl") == parse_part("job-title-groups:mnrl:1")
    part = parse_part(r"C:\data\pairs.csv:cosent:0.5")
    assert (part.dataset, part.objective, part.weight) == (r"C:\data\pairs.csv", "cosent", 0.5)
    for bad, message in (("pairs.csv", "expected DATASET:OBJECTIVE"), ("pairs.csv:triplet", "objective must be"),
                         ("pairs.csv:mnrl:lots", "weight must be"), ("pairs.csv:mnrl:0", "weight must be")):
        with pytest.raises(TrainingError, match=message):
            parse_part(bad)


def test_rehearsal_is_on_by_default_and_no_rehearsal_turns_it_off():
    from semsim.cli import build_parser
    from semsim.cli.request_options import request_from_args

    parser = build_parser()
    default = request_from_args(PairTrainingRequest, parser.parse_args(
        ["train", "pairs", "--data", "job-title-pairs", "--out", "m"]))
    parts, _ = request_parts(default)
    assert [(p.dataset, p.objective, p.role) for p in parts] == [
        ("job-title-pairs", "cosent", "train"), ("job-title-groups", "mnrl", "recipe"), ("sts-b", "cosent", "rehearsal")]
    off = request_from_args(PairTrainingRequest, parser.parse_args(
        ["train", "pairs", "--data", "job-title-pairs", "--out", "m", "--no-rehearsal", "--no-recipe"]))
    assert [(p.dataset, p.role) for p in request_parts(off)[0]] == [("job-title-pairs", "train")]
    # Parts by hand, as the issue writes them: STS-B listed as a part is not rehearsed a second time.
    listed = request_from_args(PairTrainingRequest, parser.parse_args(
        ["train", "pairs", "--out", "m", "--part", "job-title-pairs:cosent", "--part", "job-title-groups:mnrl",
         "--part", "sts-b:cosent:0.5"]))
    assert listed.parts == ("job-title-pairs:cosent", "job-title-groups:mnrl", "sts-b:cosent:0.5")
    assert [p.spec for p in request_parts(listed)[0]] == ["job-title-pairs:cosent:1", "job-title-groups:mnrl:1",
                                                          "sts-b:cosent:0.5"]
    # Multilingual encoders are not rehearsed on English STS-B unless asked, and the notes say so.
    assert not english_base("use-multilingual") and english_base("minilm")
    parts, notes = request_parts(PairTrainingRequest(base="use-multilingual", data="x.csv", out="m"))
    assert len(parts) == 1 and "not an English-only encoder" in notes[0]


def test_the_page_and_the_cli_train_the_same_default_recipe():
    """The Train page's "ONS job-title pairs" plan makes the request `--data job-title-pairs` makes."""
    from semsim_app import run_request

    plan = run_request.plan_run("pairs", "jobs", "job-title-pairs", {"base": "minilm"})
    assert [p.part.spec for p in plan.data.parts] == [p.spec for p in request_parts(
        PairTrainingRequest(data="job-title-pairs", out="m"))[0]]
    assert plan.data.parts[1].frame.columns.tolist()[:3] == ["text_a", "text_b", "negative"]


# -- batches: each part apart, weighted, duplicate-free for in-batch negatives ----------------------------
def test_weighted_groups_and_duplicate_free_batches():
    from semsim.training.batches import EpochSeededBatches

    groups = np.array([0] * 40 + [1] * 30)
    keys = [None] * 40 + [(f"t{i}", ("group_id", i % 4)) for i in range(30)]
    batches = EpochSeededBatches(70, 4, lambda rows: (rows, rows), seed=1, groups=groups, weights={0: 0.5, 1: 1},
                                 keys=keys)
    assert len(batches) == 5 + 8
    for epoch in range(3):
        batches.set_epoch(epoch)
        drawn = [batches[i][0] for i in range(len(batches))]
        assert len(drawn) == 13 and all(len(set(groups[rows])) == 1 for rows in drawn)
        assert sum(len(rows) for rows in drawn if groups[rows[0]] == 0) == 20  # a seeded half of part 0
        for rows in drawn:
            if groups[rows[0]] == 1:  # at most one row of each group_id in a batch
                assert len({keys[r][1] for r in rows}) == len(rows)
        assert batches.steps_per_group() == {0: 5, 1: 8}


def test_multi_task_loss_is_each_batch_own_objectives_loss():
    from semsim.training.objectives import (
        AngularMSEObjective,
        CoSENTObjective,
        MultipleNegativesRankingObjective,
        MultiTaskObjective,
    )

    rng = np.random.default_rng(0)
    similarities = np.tanh(rng.normal(size=(4, 8))).astype("float32")  # text_b, then 4 hard negatives
    scores = np.array([1.0, 0.0, 0.5, 0.25], "float32")
    objectives = [CoSENTObjective(), AngularMSEObjective(), MultipleNegativesRankingObjective()]
    multi = MultiTaskObjective(objectives)
    diagonal = np.diagonal(similarities[:, :4])
    expected = [objectives[0].loss(scores, diagonal), objectives[1].loss(scores, diagonal),
                objectives[2].loss(None, 20 * similarities)]
    for index, want in enumerate(expected):
        got = multi.loss(multi.targets(scores, index), similarities)
        assert float(keras.ops.convert_to_numpy(got)) == pytest.approx(float(keras.ops.convert_to_numpy(want)),
                                                                        rel=1e-5)


# -- a multi-part run on a tiny model -------------------------------------------------------------------
def test_a_multi_part_run_draws_each_part_from_its_own_data_with_its_own_loss(tiny_bert_dir, tmp_path,
                                                                              monkeypatch):
    from semsim.training import batches as batches_module
    from semsim.training import objectives as objectives_module
    from semsim.training import train_pairs
    from semsim.training.inputs import load_pair_data

    seen: list[tuple[list[str], list[str]]] = []
    chosen: list[int] = []
    real_inputs, real_targets = batches_module.pair_batch_inputs, objectives_module.MultiTaskObjective.targets

    def recording_inputs(encoder, texts_a, texts_b, joint):
        seen.append((list(texts_a), list(texts_b)))
        return real_inputs(encoder, texts_a, texts_b, joint)

    def recording_targets(self, values, index=0):
        chosen.append(index)
        return real_targets(self, values, index)

    monkeypatch.setattr(batches_module, "pair_batch_inputs", recording_inputs)
    monkeypatch.setattr(objectives_module.MultiTaskObjective, "targets", recording_targets)
    request = pair_request(f"keras-hub:{tiny_bert_dir}", tmp_path / "multi", parts=("tiny-positives:mnrl:0.5",),
                           epochs=1, batch_size=8)
    loaded = load_pair_data(request, {"train": graded(48), "validation": graded(16, seed=1),
                                      "tiny-positives": POSITIVES})
    card = train_pairs(request, loaded)

    positives = set(POSITIVES["text_a"]) | set(POSITIVES["text_b"]) | set(POSITIVES["negative"])
    trained = list(zip(seen[-len(chosen):], chosen, strict=True))[-card["training"]["steps"]:]
    kinds = set()
    for (texts_a, texts_b), objective in trained:
        if set(texts_a) <= set(GRADED_WORDS):
            assert set(texts_b) <= set(GRADED_WORDS) and len(texts_b) == len(texts_a) and objective == 0
            kinds.add("graded")
        else:  # the mnrl part: its own texts, each text_b followed by the batch's hard negatives
            assert set(texts_a) | set(texts_b) <= positives and objective == 1
            assert texts_b[len(texts_a):] == [f"boring movie {t.split()[-1]}" for t in texts_a]
            kinds.add("positives")
    assert kinds == {"graded", "positives"}
    assert card["objective"]["objective"] == "multi-task"
    assert [(p["dataset"], p["objective"], p["weight"], p["rows"], p["steps"], p["hard_negatives"])
            for p in card["parts"]] == [("tiny-pairs", "cosent", 1.0, 48, 6, False),
                                        ("tiny-positives", "mnrl", 0.5, 24, 2, True)]
    assert sum(p["steps"] for p in card["parts"]) == card["training"]["steps"]
    markdown = (tmp_path / "multi" / "model_card.md").read_text()
    assert "## Parts" in markdown and "| part | tiny-positives | mnrl | 0.5 | 24 | 2 | yes |" in markdown


def test_guard_summary_and_the_warnings_the_app_shows(tmp_path):
    from semsim.training.card import forgetting_warnings, guard_summary
    from semsim_app import guard

    def card(sts_tuned, ndcg_tuned):
        metrics = {"base": {"sts-b test": {"spearman": 0.82}, "esco retrieval": {"ndcg@10": 0.685, "recall@1": 0.5}},
                   "tuned": {"sts-b test": {"spearman": sts_tuned},
                             "esco retrieval": {"ndcg@10": ndcg_tuned, "recall@1": 0.5}}}
        return {"task": "pairs", "metrics": metrics}

    fine = card(0.815, 0.70)
    assert guard_summary(fine)["sts-b test spearman"]["delta"] == pytest.approx(-0.5)
    assert forgetting_warnings(fine) == []
    lost = forgetting_warnings(card(0.80, 0.68))
    assert len(lost) == 2 and "STS-B" in lost[0] and "ESCO" in lost[1]
    (tmp_path / "model_card.json").write_text(json.dumps(card(0.80, 0.70)))
    assert len(guard.forgotten(str(tmp_path))) == 1 and guard.forgotten("minilm") == []


# -- hard negatives -------------------------------------------------------------------------------------
def mining_pairs() -> pd.DataFrame:
    rows = []
    for group, words in enumerate(["data", "care", "food", "road", "sales", "film"]):
        members = [f"{words} worker {i}" for i in range(4)]
        rows += [(members[i], members[(i + 1) % 4], str(group)) for i in range(4)]
    return pd.DataFrame(rows, columns=["text_a", "text_b", "group_id"])


def test_mined_negatives_are_never_positives_and_are_reproducible():
    from semsim.training.negatives import mine_hard_negatives, positives_by_anchor

    pairs = mining_pairs()
    runs = {seed: mine_hard_negatives(BagOfWords(), pairs, range_max=10, num_negatives=2, sampling="random",
                                      seed=seed)[0] for seed in (1, 1, 2)}
    mined, _ = mine_hard_negatives(BagOfWords(), pairs, range_max=10, num_negatives=2, sampling="random", seed=1)
    pd.testing.assert_frame_equal(mined, runs[1])
    assert not mined.equals(mine_hard_negatives(BagOfWords(), pairs, range_max=10, num_negatives=2,
                                                sampling="random", seed=2)[0])
    positives = positives_by_anchor(pairs)
    assert len(mined) == 2 * len(pairs)
    for anchor, negative, group in zip(mined["text_a"], mined["negative"], mined["group_id"], strict=True):
        assert negative.lower() not in positives[anchor.lower()]
        assert negative not in set(pairs.loc[pairs["group_id"] == group, "text_a"])  # never of its own group
    # A margin keeps negatives at least that far below the positive; an impossible one keeps none.
    strict, stats = mine_hard_negatives(BagOfWords(), pairs, range_max=10, margin=5.0)
    assert strict.empty and stats["pairs_without_negative"] == len(pairs)


def test_mine_negatives_cli_writes_an_mnrl_file(capsys, tmp_path, tiny_bert_dir):
    from semsim.cli import main

    data = tmp_path / "positives.csv"
    mining_pairs().to_csv(data, index=False)
    out = tmp_path / "mined.csv"
    code = main(["mine-negatives", "--model", f"keras-hub:{tiny_bert_dir}", "--data", str(data), "--out", str(out),
                 "--range-max", "5", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["rows"] == len(mining_pairs()) and out.is_file()
    mined = pd.read_csv(out, dtype=str)
    assert mined.columns.tolist() == ["text_a", "text_b", "negative", "group_id"]
    code = main(["mine-negatives", "--data", str(data), "--out", str(out), "--range-min", "5", "--range-max", "5"])
    assert code == 2 and "--range-min 5 must be below --range-max 5" in capsys.readouterr().err


# -- frozen head: to convergence, no step cap ----------------------------------------------------------
def test_a_frozen_head_converges_on_a_separable_set_without_a_step_cap(tiny_bert_dir, tmp_path):
    reviews = make_reviews(64)
    card = fit_classifier(f"keras-hub:{tiny_bert_dir}", reviews, tmp_path / "frozen", validation=reviews,
                          mode="frozen", epochs=1, max_steps_per_epoch=1, patience=1)
    training = card["training"]
    assert training["epochs_run"] > 1 and training["steps"] == training["epochs_run"] * 4  # 64 rows, batch 16
    assert training["stopped_early"] and max(h["accuracy"] for h in training["validation_history"]) == 1.0
    assert card["metrics"]["tuned"]["validation"]["accuracy"] == 1.0
    assert any("to convergence" in note for note in card["notes"])
