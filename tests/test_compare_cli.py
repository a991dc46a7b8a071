"""`semsim compare`: metric deltas with paired bootstrap intervals as JSON, the HTML report (self-contained,
user text escaped), and one-line errors with exit code 2 for bad arguments."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from semsim.cli import main

pytest_plugins = ["tests.app_fixtures"]

EVIL = "<img src=x onerror=alert('semsim')>"


def _pairs_csv(path, titles):
    rows = [{"text_a": a, "text_b": b, "score": float(i % 5) / 4} for i, (a, b) in
            enumerate(zip(titles, titles[1:] + titles[:1], strict=True))]
    rows.append({"text_a": EVIL, "text_b": "Chef", "score": 0.5})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_compare_pairs_json_and_a_self_contained_escaped_report(tiny_assets, tmp_path, capsys):
    from tests.app_fixtures import TITLES

    data = _pairs_csv(tmp_path / "pairs.csv", TITLES)
    out = tmp_path / "report.html"
    tuned = str(tiny_assets.model("tiny-tuned"))
    code = main(["compare", "--base", tiny_assets.base_spec, "--tuned", tuned, "--task", "pairs", "--data",
                 str(data), "--resamples", "200", "--json", "--report", str(out), "--reference",
                 str(tiny_assets.corpus), "--reference-column", "title"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(TITLES) + 1 and result["unit"] == "pairs" and result["resamples"] == 200
    assert [m["metric"] for m in result["metrics"]] == ["spearman", "pearson"]
    for metric in result["metrics"]:
        assert set(metric) == {"metric", "base", "tuned", "delta", "ci95", "significant"}
        low, high = metric["ci95"]
        assert low <= metric["delta"] <= high and metric["significant"] == (low > 0 or high < 0)
        assert metric["delta"] == pytest.approx(metric["tuned"] - metric["base"])
    assert result["report"] == str(out)

    document = out.read_text(encoding="utf-8")
    assert document.startswith("<!doctype html>") and document.rstrip().endswith("</html>")
    # Self-contained: plotly.js inline once, no script or stylesheet fetched from anywhere.
    assert len(re.findall(r"<script[^>]*\bsrc=", document)) == 0 and "<link" not in document
    assert document.count("plotly.js v") >= 1 and len(document) > 1_000_000
    assert document.count("Plotly.newPlot") >= 4  # three heatmaps and the map
    # User text from the data is escaped everywhere: in tables (html.escape) and in the figures' JSON.
    assert EVIL not in document
    assert "&lt;img src=x onerror=alert(&#x27;semsim&#x27;)&gt;" in document or "\\u003cimg" in document
    assert "95% interval" in document and "tiny-tuned" in document


def test_compare_classify_on_a_sample(tiny_assets, capsys):
    code = main(["compare", "--base", str(tiny_assets.model("tiny-frozen")), "--tuned",
                 str(tiny_assets.model("tiny-sentiment")), "--task", "classify", "--rows", "40", "--resamples", "100"])
    assert code == 0
    text = capsys.readouterr().out
    assert "rotten-tomatoes test: 40 texts" in text and "accuracy" in text and "95% interval" in text


@pytest.mark.parametrize("arguments, message", [
    (["--task", "retrieval", "--data", "x.csv"], "--data is for sts, pairs and classify"),
    (["--task", "retrieval", "--queries", "q.csv"], "give both --queries and --corpus"),
    (["--task", "pairs", "--corpus", "c.csv"], "--queries and --corpus are for --task retrieval"),
    (["--task", "classify"], "is not a folder"),
    (["--task", "sts", "--resamples", "10"], "--resamples must be between 100"),
    (["--task", "pairs", "--report", "/no/such/folder/r.html"], "give a file name in an existing folder"),
    (["--task", "nonsense"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(arguments, message, capsys):
    try:
        code = main(["compare", "--base", "minilm", "--tuned", "minilm", *arguments])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
