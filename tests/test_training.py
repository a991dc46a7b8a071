"""Fine-tuning on tiny random-weight encoders: losses, weights that move (or not), cards, resume, seeds."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest

from semsim.encoders import load_encoder
from semsim.training import TrainingError
from semsim.training.objectives import (
    AngularMSEObjective,
    CoSENTObjective,
    MultipleNegativesRankingObjective,
)
from tests.training_runs import fit_classifier, fit_pairs

FAMILIES = {"data": ["data scientist", "data analyst", "data engineer"],
            "care": ["nurse", "doctor", "care manager"],
            "food": ["chef", "sales chef", "the chef"],
            "road": ["driver", "sales driver", "teacher driver"]}


def make_pairs(n: int = 96, seed: int = 0) -> pd.DataFrame:
    """Graded pairs: same family 1.0, otherwise 0.0 (a signal even a tiny model can learn)."""
    rng = np.random.default_rng(seed)
    titles = [(t, f) for f, ts in FAMILIES.items() for t in ts]
    rows = []
    for _ in range(n):
        (a, fa), (b, fb) = (titles[i] for i in rng.choice(len(titles), size=2, replace=False))
        rows.append((a, b, 1.0 if fa == fb else 0.0))
    return pd.DataFrame(rows, columns=["text_a", "text_b", "score"])


def make_reviews(n: int = 64) -> pd.DataFrame:
    good = ["good film", "great fun movie", "very good", "the film was great"]
    bad = ["bad film", "boring movie", "very bad", "the film was not good"]
    rows = [(good[i % 4], "positive") if i % 2 else (bad[i % 4], "negative") for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "label"])



# -- losses: one contract, checked against plain numpy ---------------------------------------------
def test_cosent_loss_matches_numpy_definition():
    cos = np.array([0.9, 0.1, 0.5], dtype="float32")
    scores = np.array([1.0, 0.0, 0.5], dtype="float32")
    terms = [20 * (cos[j] - cos[i]) for i in range(3) for j in range(3) if scores[i] > scores[j]]
    expected = math.log(1 + sum(math.exp(t) for t in terms))
    got = float(keras.ops.convert_to_numpy(CoSENTObjective().loss(scores, cos)))
    assert got == pytest.approx(expected, rel=1e-4)  # float32 vs float64


def test_angular_loss_is_zero_when_angles_match_scores():
    cos = np.cos(np.pi * (1 - np.array([0.2, 0.7], dtype="float32")))
    loss = AngularMSEObjective().loss(np.array([0.2, 0.7], "float32"), cos.astype("float32"))
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx(0.0, abs=1e-6)


def test_mnrl_prefers_the_diagonal():
    good = np.eye(4, dtype="float32") * 20
    bad = np.roll(np.eye(4, dtype="float32"), 1, axis=1) * 20
    objective = MultipleNegativesRankingObjective()
    assert float(keras.ops.convert_to_numpy(objective.loss(None, good))) < 0.01
    assert float(keras.ops.convert_to_numpy(objective.loss(None, bad))) > 10


@pytest.mark.parametrize("objective", [CoSENTObjective(), AngularMSEObjective(),
                                       MultipleNegativesRankingObjective()])
def test_one_step_lowers_the_loss(tiny_bert_dir, objective):
    import tensorflow as tf

    encoder = load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)
    model = objective.build_model(encoder.model)
    pairs = make_pairs(16)
    inputs = {"a": encoder.preprocess(pairs["text_a"].tolist()), "b": encoder.preprocess(pairs["text_b"].tolist())}
    targets = objective.targets(pairs["score"].to_numpy())
    optimizer = keras.optimizers.AdamW(1e-2)

    def loss_value():
        return float(objective.loss(targets, model(inputs, training=False)))

    before = loss_value()
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = objective.loss(targets, model(inputs, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
    assert loss_value() < before


@pytest.mark.parametrize("mode", ["cosine", "matrix"])
def test_joint_pair_batches_embed_both_sides_as_two_passes_do(tiny_bert_dir, mode):
    """One pass over a and b padded together gives what two separate passes give."""
    from semsim.training.batches import pair_batch_inputs
    from semsim.training.heads import PairHead

    encoder = load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)
    texts_a = ["nurse", "chief data scientist at a large retail bank", "chef"]
    texts_b = ["registered nurse", "analyst", "head chef in a busy restaurant kitchen"]
    joint = pair_batch_inputs(encoder, texts_a, texts_b, joint=True)
    apart = pair_batch_inputs(encoder, texts_a, texts_b, joint=False)
    length = joint["a"]["token_ids"].shape[1]
    assert joint["b"]["token_ids"].shape[1] == length and len(joint["a"]["token_ids"]) == 3
    assert apart["a"]["token_ids"].shape[1] != apart["b"]["token_ids"].shape[1]  # the case that needs it
    for side in ("a", "b"):  # the same tokens, only padded further
        short = apart[side]["token_ids"].shape[1]
        np.testing.assert_array_equal(joint[side]["token_ids"][:, :short], apart[side]["token_ids"])
        assert not joint[side]["padding_mask"][:, short:].any()
    one_pass = PairHead(encoder.model, mode=mode, joint=True)(joint, training=False)
    two_passes = PairHead(encoder.model, mode=mode)(apart, training=False)
    np.testing.assert_allclose(np.asarray(one_pass), np.asarray(two_passes), atol=1e-5)


# -- a full pair-training run, shared by several assertions ----------------------------------------
@pytest.fixture(scope="module")
def trained_pairs(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tuned"
    base = f"keras-hub:{tiny_bert_dir}"
    card = fit_pairs(base, make_pairs(96), out, validation=make_pairs(32, seed=1), test=make_pairs(32, seed=2))
    return base, out, card


def test_pair_training_writes_a_loadable_model_and_a_card(trained_pairs):
    base, out, card = trained_pairs
    assert (out / "semsim.json").is_file() and (out / "model_card.md").is_file()
    assert not out.with_name(out.name + ".partial").exists()
    saved = json.loads((out / "model_card.json").read_text())
    assert saved["base_model"] == base and saved["objective"]["objective"] == "cosent"
    assert saved["datasets"]["train"]["rows"] == 96 and len(saved["datasets"]["train"]["sha256"]) == 16
    assert set(saved["metrics"]["base"]) == set(saved["metrics"]["tuned"]) == {"validation", "test"}
    assert saved["training"]["epochs_run"] == 2 and saved["training"]["device"] == "cpu"
    assert {row["metric"] for row in saved["comparison"]} >= {"spearman", "pearson"}
    markdown = (out / "model_card.md").read_text()
    assert "Base vs tuned" in markdown and "tiny-pairs" in markdown


def test_tuned_encoder_differs_from_base_and_round_trips(trained_pairs):
    base, out, _ = trained_pairs
    texts = ["data scientist", "nurse", "chef"]
    tuned = load_encoder(str(out), cache=False)
    assert tuned.base_spec == base and tuned.fingerprint.startswith("tuned:")
    assert not np.allclose(tuned.encode(texts), load_encoder(base, cache=False).encode(texts), atol=1e-4)
    again = load_encoder(str(out), cache=False)
    np.testing.assert_array_equal(tuned.encode(texts), again.encode(texts))


def test_progress_log_has_the_events_the_app_follows(trained_pairs):
    _, out, _ = trained_pairs
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "baseline" and "start" in kinds and kinds[-1] == "end"
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all("val_spearman" in e for e in epochs)
    steps = [e for e in events if e["event"] == "step"]
    assert steps and all({"loss", "examples_per_s", "eta_s", "learning_rate"} <= set(e) for e in steps)
    assert "epoch_loss" in _scalars(out / "tensorboard" / "train")
    assert [step for step, _ in _scalars(out / "tensorboard" / "validation")["epoch_spearman"]] == [0, 1]


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    # Scalars written the TF2 way are tensor summaries, as tf.summary.scalar writes them.
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, round(float(make_ndarray(e.tensor_proto)), 4)) for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


def test_tensorboard_without_tensorflow_writes_epoch_scalars(tmp_path, monkeypatch):
    """A JAX-only install has no tf.summary: the fallback writes the same runs and tags with tensorboard."""
    import importlib.util

    from semsim.training import callbacks

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a))
    callback = callbacks.tensorboard_callback(tmp_path)
    assert isinstance(callback, callbacks.EpochScalars)
    for epoch, (loss, spearman) in enumerate([(0.5, 0.25), (0.375, 0.75)]):
        callback.on_epoch_end(epoch, {"loss": loss, "val_spearman": spearman, "note": "skipped"})
    callback.on_train_end()
    assert _scalars(tmp_path / "train") == {"epoch_loss": [(0, 0.5), (1, 0.375)]}
    assert _scalars(tmp_path / "validation") == {"epoch_spearman": [(0, 0.25), (1, 0.75)]}


# -- classifier: frozen leaves the encoder alone, full changes it ----------------------------------
def _encoder_weights(folder):
    return [w.copy() for w in load_encoder(str(folder / "encoder"), cache=False).model.get_weights()]


@pytest.mark.parametrize("mode", ["frozen", "full"])
def test_classifier_modes(tiny_bert_dir, tmp_path, mode):
    from semsim.classifier import load_classifier

    base = f"keras-hub:{tiny_bert_dir}"
    card = fit_classifier(base, make_reviews(64), tmp_path / mode, mode=mode, test=make_reviews(16),
                          warmup_ratio=0.1)
    base_weights = load_encoder(base, cache=False).model.get_weights()
    changed = [not np.allclose(a, b) for a, b in zip(base_weights, _encoder_weights(tmp_path / mode),
                                                     strict=True)]
    if mode == "frozen":
        assert not any(changed)
    else:
        assert sum(changed) > len(changed) // 2
    classifier = load_classifier(tmp_path / mode)
    labels, probabilities = classifier.predict(["good film", "bad film"])
    assert set(labels) <= {"negative", "positive"} and probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The card's test accuracy is the saved classifier's, recomputed on the same test rows after a reload.
    test = make_reviews(16)
    predicted, _ = classifier.predict(test["text"].tolist())
    assert card["metrics"]["tuned"]["test"]["accuracy"] == pytest.approx(float(np.mean(
        np.asarray(predicted) == test["label"].to_numpy())))
    assert card["labels"] == ["negative", "positive"]


# -- TF Hub SavedModels through the trainer; seeds; resume ----------------------------------------
def test_trainer_changes_savedmodel_weights(tiny_hub_dir, tmp_path):
    base = f"tfhub:{tiny_hub_dir}"
    fit_pairs(base, make_pairs(64), tmp_path / "hub")
    trained = load_encoder(str(tmp_path / "hub"), cache=False).layer.module
    original = load_encoder(base, cache=False).layer.module
    moved = {v.name: not np.allclose(v.numpy(), w.numpy())
             for v, w in zip(trained.variables, original.variables, strict=True)}
    assert moved == {"embeddings/weights:0": True, "dense/kernel:0": True, "frozen/scale:0": False}


def test_same_seed_same_numbers_different_seed_different(tiny_hub_dir, tmp_path):
    base = f"tfhub:{tiny_hub_dir}"
    runs = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        runs[name] = fit_pairs(base, make_pairs(64), tmp_path / name, seed=seed)["training"]["loss_history"]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_resume_continues_from_the_last_checkpoint(tiny_hub_dir, tmp_path, monkeypatch):
    from semsim.training import callbacks

    base, out = f"tfhub:{tiny_hub_dir}", tmp_path / "resumable"
    original = callbacks.JsonlProgress.on_epoch_end

    def crash_in_second_epoch(self, epoch, logs=None):
        # Fires before the epoch's checkpoint is written: only epoch 1 is safely on disk.
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit_pairs(base, make_pairs(64), out, epochs=3)
    partial = out.with_name(out.name + ".partial")
    assert (partial / "checkpoint").is_dir() and not out.exists()
    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", original)

    with pytest.raises(TrainingError, match="--resume"):
        fit_pairs(base, make_pairs(64), out, epochs=3)
    card = fit_pairs(base, make_pairs(64), out, epochs=3, resume=True)
    assert card["training"]["resumed_from_epoch"] == 1 and card["training"]["epochs_run"] == 2
    assert (out / "semsim.json").is_file() and not partial.exists()


def test_cancel_file_stops_training_and_still_saves(tiny_hub_dir, tmp_path, monkeypatch):
    from semsim.training import callbacks

    out = tmp_path / "cancelled"
    original = callbacks.CancelOnFile.on_train_batch_end

    def press_cancel(self, batch, logs=None):
        self.path.touch()
        original(self, batch, logs)

    monkeypatch.setattr(callbacks.CancelOnFile, "on_train_batch_end", press_cancel)
    card = fit_pairs(f"tfhub:{tiny_hub_dir}", make_pairs(64), out)
    assert card["training"]["cancelled"] and card["training"]["steps"] <= 4
    assert (out / "semsim.json").is_file()


# -- bad input stops before any training ------------------------------------------------------------
@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame(columns=["text_a", "text_b", "score"]), "empty"),
    (make_pairs(8), "fewer than one batch"),
    (make_pairs(64).assign(score=0.5), "same score"),
    (make_pairs(64).drop(columns="score"), "needs a score column"),
])
def test_bad_pair_data_is_refused_before_training(frame, message, tmp_path):
    with pytest.raises(TrainingError, match=message):
        fit_pairs("no-model-needed", frame, tmp_path / "x", validation=make_pairs(8))
    assert not (tmp_path / "x.partial").exists()


def test_one_class_is_refused(tmp_path):
    frame = make_reviews(32).assign(label="positive")
    with pytest.raises(TrainingError, match="only one class"):
        fit_classifier("no-model-needed", frame, tmp_path / "x")


def test_existing_model_is_not_overwritten_without_flag(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("precious")
    with pytest.raises(TrainingError, match="--overwrite"):
        fit_pairs("no-model-needed", make_pairs(64), tmp_path / "model")
    assert (tmp_path / "model" / "keep.txt").read_text() == "precious"


def test_overwrite_never_replaces_a_folder_that_is_not_a_model(tmp_path):
    """--overwrite replaces semsim models only: a folder of the user's own files is refused, untouched."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("only copy")
    with pytest.raises(TrainingError, match="not a semsim model folder"):
        fit_pairs("no-model-needed", make_pairs(64), folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "only copy"
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="is a file"):
        fit_pairs("no-model-needed", make_pairs(64), tmp_path / "file", overwrite=True)


def test_later_batches_may_be_longer_than_the_first_two(tiny_bert_dir):
    """Keras' PyDataset adapter fixes the sequence length from batches 0 and 1; ours must not."""
    from semsim.training.batches import EpochSeededBatches

    encoder = load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)
    objective = CoSENTObjective()
    model = objective.build_model(encoder.model)
    texts = ["nurse"] * 8 + ["the film was very good and not boring at all and fun"] * 4
    scores = np.linspace(0, 1, len(texts)).astype("float32")

    def make_batch(rows):
        batch = [texts[i] for i in rows]
        return {"a": encoder.preprocess(batch), "b": encoder.preprocess(batch[::-1])}, scores[rows]

    batches = EpochSeededBatches(len(texts), 4, make_batch, seed=0, shuffle=False)
    assert batches[0][0]["a"]["token_ids"].shape[1] < batches[2][0]["a"]["token_ids"].shape[1]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=objective.loss)
    history = model.fit(batches.as_fit_input(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


# -- several datasets at once: grouped batches, rehearsal, WiSE-FT merging --------------------------
def test_grouped_batches_never_mix_groups_and_cover_every_row():
    from semsim.training.batches import EpochSeededBatches

    groups = np.array(["jobs"] * 37 + ["sts"] * 21)
    batches = EpochSeededBatches(len(groups), 8, lambda rows: (rows, rows), seed=3, groups=groups)
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        seen = [batches[i][0] for i in range(len(batches))]
        assert all(len(set(groups[rows])) == 1 for rows in seen)
        assert sorted(np.concatenate(seen).tolist()) == list(range(len(groups)))
        assert len(batches) == math.ceil(37 / 8) + math.ceil(21 / 8)
    batches.set_epoch(0)
    first = [batches[i][0].tolist() for i in range(len(batches))]
    batches.set_epoch(1)
    assert first != [batches[i][0].tolist() for i in range(len(batches))]
    batches.set_epoch(0)
    assert first == [batches[i][0].tolist() for i in range(len(batches))]  # (seed, epoch) fixes the order
    # Both groups are interleaved, not one after the other.
    kinds = [groups[rows[0]] for rows in first]
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)


def test_ungrouped_batches_keep_the_plain_seeded_order():
    from semsim.training.batches import EpochSeededBatches

    batches = EpochSeededBatches(10, 4, lambda rows: (rows, rows), seed=5)
    order = np.random.default_rng([5, 0]).permutation(10)
    assert [batches[i][0].tolist() for i in range(3)] == [order[:4].tolist(), order[4:8].tolist(), order[8:].tolist()]


def test_part_table_rescales_each_part_and_labels_its_rows():
    from semsim.training.batches import part_table
    from semsim.training.inputs import LoadedPart
    from semsim.training.parts import Part

    general = pd.DataFrame({"text_a": ["a", "b"], "text_b": ["c", "d"], "score": [0.0, 5.0], "x": [1, 2]})
    both = part_table([LoadedPart(Part("tiny", "cosent", role="train"), make_pairs(4), (0.0, 1.0), "tiny", "x"),
                       LoadedPart(Part("general", "cosent", role="rehearsal"), general, (0.0, 5.0), "general", "y")])
    assert both["part"].tolist() == [0] * 4 + [1] * 2
    assert both["target"].tolist()[-2:] == [0.0, 1.0]
    assert both["keys"].isna().all()  # scored parts need no duplicate-free batches
    with pytest.raises(TrainingError, match="empty"):
        part_table([LoadedPart(Part("general", "cosent"), general, (5.0, 5.0), "general", "y")])


def test_interpolate_weights():
    from semsim.training.loop import interpolate_weights

    base, tuned = [np.zeros(3, "float32"), np.array([1], "int64")], [np.full(3, 2.0, "float32"), np.array([7])]
    merged = interpolate_weights(base, tuned, 0.25)
    np.testing.assert_allclose(merged[0], 0.5)
    assert merged[1].tolist() == [7]  # integer state (counters) is taken from the tuned model
    with pytest.raises(TrainingError, match="architectures"):
        interpolate_weights(base, [np.zeros(4, "float32"), np.array([1])], 0.5)


def test_merge_alpha_keeps_that_fraction_of_the_update(tiny_bert_dir, tmp_path):
    """Same seed, alpha 1 vs 0.5: the merged weights sit exactly halfway between base and tuned."""
    base_spec = f"keras-hub:{tiny_bert_dir}"
    base = load_encoder(base_spec, cache=False).model.get_weights()
    weights = {}
    for alpha in (1.0, 0.5):
        card = fit_pairs(base_spec, make_pairs(64), tmp_path / str(alpha), validation=make_pairs(32, seed=1),
                         epochs=1, merge_alpha=alpha)
        assert card["hyperparameters"]["merge_alpha"] == alpha
        weights[alpha] = load_encoder(str(tmp_path / str(alpha)), cache=False).model.get_weights()
    moved = [i for i, (b, t) in enumerate(zip(base, weights[1.0], strict=True)) if not np.allclose(b, t)]
    assert moved
    for i in moved:
        np.testing.assert_allclose(weights[0.5][i], (base[i] + weights[1.0][i]) / 2, rtol=1e-5, atol=1e-6)


def test_merge_alpha_out_of_range_and_for_classifiers_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="--merge-alpha 0 is out of range"):
        fit_pairs("no-model-needed", make_pairs(64), tmp_path / "m", merge_alpha=0.0)
    with pytest.raises(TypeError, match="merge_alpha"):  # classifier requests have no such field
        fit_classifier("no-model-needed", make_reviews(), tmp_path / "c", merge_alpha=0.5)


def test_head_warmup_fits_the_head_before_full_fine_tuning(tiny_bert_dir, tmp_path):
    """LP-FT: the head-only stage runs and the encoder is still fine-tuned afterwards."""
    base = f"keras-hub:{tiny_bert_dir}"
    card = fit_classifier(base, make_reviews(64), tmp_path / "lpft", mode="full", epochs=1, learning_rate=1e-4,
                          warmup_ratio=0.1, patience=2, head_warmup_epochs=4)
    warmup = card["training"]["head_warmup"]
    # The head-only stage ran its 4 epochs on the frozen vectors. Whether its loss falls on a random tiny
    # encoder's vectors depends on the CPU's float rounding (it rose 0.73 -> 0.87 on an AVX-512 EPYC, fell on
    # an AVX2 one), so only that it ran and stayed finite is checked here.
    assert warmup["epochs"] == 4 and len(warmup["loss_history"]) == 4
    assert np.isfinite(warmup["loss_history"]).all()
    base_weights = load_encoder(base, cache=False).model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(base_weights, _encoder_weights(tmp_path / "lpft"), strict=True))
    with pytest.raises(TrainingError, match="--head-warmup-epochs -1 is out of range"):
        fit_classifier(base, make_reviews(64), tmp_path / "bad", head_warmup_epochs=-1)
    with pytest.raises(TrainingError, match="full fine-tuning only"):
        fit_classifier(base, make_reviews(64), tmp_path / "bad", mode="frozen", head_warmup_epochs=2)


def test_mixed_precision_run_trains_saves_and_restores_the_policy(tiny_bert_dir, tmp_path):
    """--mixed-precision on, the policy a GPU run gets: training moves the weights, the card says so, the
    saved model encodes float32 vectors identically after a reload, and the caller's policy comes back."""
    base = f"keras-hub:{tiny_bert_dir}"
    card = fit_pairs(base, make_pairs(64), tmp_path / "mixed", validation=make_pairs(32, seed=1), epochs=1,
                     mixed_precision="on")
    assert card["training"]["mixed_precision"] is True
    assert keras.mixed_precision.global_policy().name == "float32"
    texts = ["data scientist", "nurse", "chef"]
    tuned = load_encoder(str(tmp_path / "mixed"), cache=False)
    # The saved config says mixed_bfloat16; the loader builds a float32 model for encoding all the same.
    assert {layer.dtype_policy.name for layer in tuned.model._flatten_layers()} == {"float32"}
    vectors = tuned.encode(texts)
    assert vectors.dtype == np.float32 and np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(vectors, load_encoder(base, cache=False).encode(texts), atol=1e-3)
    np.testing.assert_array_equal(vectors, load_encoder(str(tmp_path / "mixed"), cache=False).encode(texts))


def test_a_model_publish_killed_at_any_step_leaves_the_old_or_the_new_model_loadable(tiny_bert_dir, tmp_path,
                                                                                     monkeypatch):
    """Each file operation of publishing a new version over an old model fails in turn (a kill): the next
    load recovers, and finds a complete model, old or new; the next publish then works."""
    import os
    import shutil

    from semsim.training.loop import partial_dir, publish_output

    encoder = load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)
    out = tmp_path / "model"

    def save_version(folder, name):
        encoder.fingerprint = name
        folder.mkdir(parents=True, exist_ok=True)
        encoder.save(folder)
        (folder / "checkpoint").mkdir()  # a training checkpoint, removed before publishing

    save_version(out, "old")
    real = {"rename": os.rename, "replace": os.replace, "rmtree": shutil.rmtree, "fsync": os.fsync}
    outcomes = set()
    for fail_at in range(1, 60):
        calls = {"n": 0}

        def dying(name, calls=calls, fail_at=fail_at):
            def operation(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] >= fail_at:  # the process is dead from here on: every later step fails too
                    raise OSError(f"killed at operation {fail_at}")
                return real[name](*args, **kwargs)
            return operation

        save_version(partial_dir(out), "new")
        for name, module in (("rename", os), ("replace", os), ("rmtree", shutil), ("fsync", os)):
            monkeypatch.setattr(module, name, dying(name))
        try:
            publish_output(partial_dir(out), out)
            finished = True
        except OSError:
            finished = False
        finally:
            monkeypatch.undo()
        loaded = load_encoder(str(out), cache=False)  # recovers first
        outcomes.add(loaded.fingerprint)
        assert loaded.fingerprint in ("old", "new")
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.")], fail_at
        if finished:
            assert loaded.fingerprint == "new"
            break
        # put the old version back for the next round
        shutil.rmtree(partial_dir(out), ignore_errors=True)
        if loaded.fingerprint == "new":
            shutil.rmtree(out)
            save_version(out, "old")
            shutil.rmtree(out / "checkpoint")
    else:
        raise AssertionError("the publish never completed")
    assert outcomes == {"old", "new"}  # both outcomes occurred: the kill points span the swap
