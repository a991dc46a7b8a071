"""CLI: models, embed, similarity, evaluate sts/pairs/classify, train; --json output and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from semsim.cli import build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_spec(tiny_bert_dir):
    return f"keras-hub:{tiny_bert_dir}"


def test_models_lists_bundled_encoders_as_json(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    specs = {row["spec"]: row["kind"] for row in json.loads(out)}
    assert specs["minilm"] == "bundled" and specs["use-multilingual"] == "bundled"


def test_similarity_matrix_json_is_symmetric_with_unit_diagonal(capsys, tiny_spec):
    code, out, _ = run(capsys, "similarity", "--model", tiny_spec, "data scientist", "nurse", "chef", "--json")
    assert code == 0
    matrix = np.array(json.loads(out)["matrix"])
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-5)


def test_embed_writes_vectors_atomically_and_refuses_to_overwrite(capsys, tiny_spec, tmp_path):
    corpus = tmp_path / "titles.csv"
    pd.DataFrame({"title": ["nurse", "chef", "data scientist"]}).to_csv(corpus, index=False)
    out_file = tmp_path / "vectors.npy"
    code, out, _ = run(capsys, "embed", "--model", tiny_spec, "--input", str(corpus), "--column", "title",
                       "--out", str(out_file), "--json")
    assert code == 0 and json.loads(out)["rows"] == 3
    assert np.load(out_file, allow_pickle=False).shape == (3, 16)
    code, _, err = run(capsys, "embed", "--model", tiny_spec, "--input", str(corpus), "--column", "title",
                       "--out", str(out_file))
    assert code == 2 and "--overwrite" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


@pytest.mark.parametrize("argv, message", [
    (["embed", "--input", "missing.csv", "--out", "v.npy"], "file not found"),
    (["embed", "--input", "x.csv", "--out", "v.txt"], "must end in .npy"),
    (["similarity", "only one"], "at least two"),
    (["evaluate", "sts", "--model", "no-such-model"], "unknown model"),
    (["embed", "--input", "x.csv", "--out", "v.npy", "--batch-size", "0"], "at least 1"),
    (["train", "pairs", "--data", "x.csv"], "--out"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run_catching_exit(capsys, argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) <= 3


def run_catching_exit(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit from parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_embed_reports_empty_rows_by_line(capsys, tiny_spec, tmp_path):
    corpus = tmp_path / "gaps.csv"
    corpus.write_text("id,text\n1,nurse\n2,\"  \"\n3,chef\n")
    code, _, err = run(capsys, "embed", "--model", tiny_spec, "--input", str(corpus), "--out",
                       str(tmp_path / "v.npy"))
    assert code == 2 and "row(s) 3" in err


def test_evaluate_pairs_and_sts_on_a_given_file(capsys, tiny_spec, tmp_path):
    from scipy import stats

    from semsim.encoders import load_encoder

    pairs = tmp_path / "pairs.csv"
    frame = pd.DataFrame({"text_a": ["nurse", "chef", "data scientist", "driver"],
                          "text_b": ["doctor", "sales chef", "data analyst", "teacher"],
                          "score": [0.8, 0.9, 1.0, 0.1]})
    frame.to_csv(pairs, index=False)
    code, out, _ = run(capsys, "evaluate", "pairs", "--model", tiny_spec, "--data", str(pairs), "--json")
    result = json.loads(out)
    encoder = load_encoder(tiny_spec)
    cosine = np.sum(encoder.encode(frame["text_a"].tolist()) * encoder.encode(frame["text_b"].tolist()), axis=1)
    assert code == 0 and result["n_pairs"] == 4
    assert result["spearman"] == pytest.approx(stats.spearmanr(cosine, frame["score"])[0])
    sts = tmp_path / "sts.csv"
    pd.DataFrame({"sentence1": ["a man plays", "a dog runs"], "sentence2": ["a man sings", "the cat"],
                  "score": [3.5, 0.5]}).to_csv(sts, index=False)
    code, out, _ = run(capsys, "evaluate", "sts", "--model", tiny_spec, "--data", str(sts))
    assert code == 0 and "Spearman x100" in out


def test_train_pairs_then_evaluate_via_cli(capsys, tiny_hub_dir, tmp_path):
    from tests.test_training import make_pairs, make_reviews

    pairs = tmp_path / "pairs.csv"
    make_pairs(64).to_csv(pairs, index=False)
    out_dir = tmp_path / "tuned"
    code, out, err = run(capsys, "train", "pairs", "--base", f"tfhub:{tiny_hub_dir}", "--data", str(pairs),
                         "--out", str(out_dir), "--epochs", "1", "--batch-size", "16", "--no-sts", "--json")
    assert code == 0, err
    card = json.loads(out)
    assert card["task"] == "pairs" and card["comparison"]
    code, _, err = run(capsys, "train", "pairs", "--base", f"tfhub:{tiny_hub_dir}", "--data", str(pairs),
                       "--out", str(out_dir), "--no-sts")
    assert code == 2 and "--overwrite" in err

    reviews = tmp_path / "reviews.csv"
    make_reviews(64).to_csv(reviews, index=False)
    code, out, err = run(capsys, "train", "sentiment", "--base", f"tfhub:{tiny_hub_dir}", "--mode", "frozen",
                         "--data", str(reviews), "--out", str(tmp_path / "clf"), "--epochs", "2",
                         "--batch-size", "16", "--json")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", "classify", "--model", str(tmp_path / "clf"), "--data",
                         str(reviews), "--json")
    result = json.loads(out)
    assert code == 0 and result["n"] == 64 and len(result["confusion_matrix"]) == 2 and "roc_auc" in result


@pytest.mark.integration
@pytest.mark.parametrize("model, expected", [("minilm", 82.0), ("use-multilingual", 80.1)])
def test_sts_b_test_spearman_of_the_bundled_encoders(capsys, model, expected):
    code, out, _ = run(capsys, "evaluate", "sts", "--model", model, "--json")
    result = json.loads(out)
    assert code == 0 and result["n_pairs"] == 1379
    assert abs(result["spearman_x100"] - expected) <= 0.3


def test_cli_prints_no_tensorflow_startup_noise(tiny_bert_dir):
    """TensorFlow's C++ start-up logs (CUDA probe, absl) must never reach the user's terminal."""
    result = subprocess.run([sys.executable, "-m", "semsim", "similarity", "--model", f"keras-hub:{tiny_bert_dir}",
                             "nurse", "chef"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    noisy = [line for line in result.stderr.splitlines()
             if any(word in line for word in ("cuda", "absl", "cpu_feature_guard", "oneDNN", "WARNING"))]
    assert noisy == []


def test_train_pairs_with_rehearsal_and_merge_via_cli(capsys, tiny_spec, tmp_path):
    from tests.test_training import make_pairs

    pairs, general = tmp_path / "pairs.csv", tmp_path / "general.csv"
    make_pairs(48).to_csv(pairs, index=False)
    make_pairs(32, seed=5).assign(score=lambda f: f["score"] * 5).to_csv(general, index=False)
    common = ["train", "pairs", "--base", tiny_spec, "--data", str(pairs), "--epochs", "1", "--batch-size", "16",
              "--no-sts", "--rehearsal-data", str(general)]
    # Scores 0..5 are outside the default range: refused with the file and the row, before any training.
    code, _, err = run(capsys, *common, "--out", str(tmp_path / "refused"))
    assert code == 2 and "general.csv" in err and not (tmp_path / "refused").exists()
    code, out, err = run(capsys, *common, "--rehearsal-score-range", "0,5", "--merge-alpha", "0.5",
                         "--out", str(tmp_path / "tuned"), "--json")
    assert code == 0, err
    card = json.loads(out)
    assert card["hyperparameters"]["merge_alpha"] == 0.5
    # Validation is split off the domain data only; the rehearsal pairs are listed on their own.
    assert card["datasets"]["train"]["rows"] + card["datasets"]["validation"]["rows"] == 48
    assert card["datasets"]["rehearsal"] == {**card["datasets"]["rehearsal"], "name": "general.csv", "rows": 32}
    code, _, err = run(capsys, *common[:-2], "--merge-alpha", "1.5", "--out", str(tmp_path / "bad"))
    assert code == 2 and "--merge-alpha 1.5 is out of range" in err


def _leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
    for group in groups:
        for name, sub in group.choices.items():
            yield from _leaf_commands(sub, (*path, name))


def test_every_command_takes_json():
    commands = dict(_leaf_commands(build_parser()))
    assert {("models",), ("evaluate", "sts"), ("index", "build"), ("search",)} <= set(commands)
    lacking = [" ".join(path) for path, parser in commands.items()
               if not any("--json" in a.option_strings for a in parser._actions)]
    assert lacking == []


def test_every_command_prints_its_help_with_no_doubled_percent_signs():
    """argparse %-formats help= strings but not descriptions: a % left unescaped crashes --help, an escaped
    one in a description shows up doubled."""
    for path, parser in _leaf_commands(build_parser()):
        text = parser.format_help()
        assert "%%" not in text and "usage:" in text, " ".join(path)
    assert "%%" not in build_parser().format_help()


def test_help_does_not_import_tensorflow():
    code = ("import json, sys\nfrom semsim.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "usage: semsim" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_output_to_a_reader_that_went_away_exits_quietly():
    """`semsim models | head -1`: head may exit before semsim writes; that is no error and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all, so the write fails every time, not only when head is quick
    try:
        result = subprocess.run([sys.executable, "-m", "semsim", "models"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
