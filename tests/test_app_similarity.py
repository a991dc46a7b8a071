"""Similarity page: heatmaps for base, tuned and tuned - base, with numbers in hover."""

from __future__ import annotations

import json

import numpy as np

pytest_plugins = ["tests.app_fixtures"]

PAGE = "similarity"


def _heatmaps(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _z(figure, env) -> np.ndarray:
    return env.array(figure["data"][0]["z"]).astype(float)


def test_three_heatmaps_with_tuned_model(app_env):
    app_env.install(models=("tiny-tuned",))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    at.text_area(key="similarity.texts").input("Data scientist\nStatistician\nChef\nChef\n\nNurse <b>x</b>").run()
    app_env.ok(at)
    base, tuned, delta = _heatmaps(at)
    z_base, z_tuned, z_delta = (_z(f, app_env) for f in (base, tuned, delta))
    assert z_base.shape == (4, 4)  # repeats and blank lines dropped
    assert np.allclose(np.diag(z_base), 1.0, atol=1e-4) and np.allclose(z_base, z_base.T, atol=1e-5)
    assert np.allclose(z_delta, z_tuned - z_base, atol=1e-5)
    assert not np.allclose(z_tuned, z_base)
    assert "%{z:.3f}" in base["data"][0]["hovertemplate"]
    # User text reaches Plotly escaped (it reads a few HTML tags in labels).
    assert "Nurse &lt;b&gt;x&lt;/b&gt;" in base["data"][0]["customdata"][3][0]
    [pairs] = app_env.frames(at, "text a", "text b", "base", "tuned", "change")
    assert len(pairs) == 6
    assert at.get("download_button")


def test_base_only_without_tuned_model(app_env):
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    assert len(_heatmaps(at)) == 1
    assert any("No tuned model yet" in i.value for i in at.info)
    assert any("Train" in link.value for link in at.page_link)


def test_needs_two_texts(app_env):
    at = app_env.app(PAGE).run()
    at.text_area(key="similarity.texts").input("Only one\n").run()
    app_env.no_exceptions(at)
    assert "at least two" in app_env.errors(at)[0]
    assert not _heatmaps(at)
