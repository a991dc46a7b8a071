"""Similarity page: heatmaps for base, tuned and tuned - base on one colour range, the relative view, and the
pairs that changed most."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsim.figures import CELL_PX

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


def test_one_colour_range_readable_cells_and_the_relative_view(app_env):
    app_env.install(models=("tiny-tuned",))
    at = app_env.app(PAGE).run()
    app_env.ok(at)
    base, tuned, delta = _heatmaps(at)
    z_base, z_tuned = _z(base, app_env), _z(tuned, app_env)
    # One colour range for both models: from the lowest cosine of either matrix to 1.
    assert base["data"][0]["zmin"] == tuned["data"][0]["zmin"] == pytest.approx(min(z_base.min(), z_tuned.min()))
    assert base["data"][0]["zmax"] == tuned["data"][0]["zmax"] == 1.0
    assert delta["data"][0]["zmid"] == 0 and delta["data"][0]["zmin"] == -delta["data"][0]["zmax"]
    assert "one colour range" in app_env.texts(at)
    # The values are printed in the cells, as strings at the precision shown, and the figure grows with n.
    cells = base["data"][0]["text"]
    assert base["data"][0]["texttemplate"] == "%{text}" and cells[0][1] == f"{z_base[0, 1]:.2f}"
    height_12 = base["layout"]["height"]
    assert height_12 >= 12 * CELL_PX
    # The changed pairs are ranked on the relative view, which the page says.
    [pairs] = app_env.frames(at, "text a", "base %", "tuned %", "relative change")
    assert pairs["relative change"].abs().is_monotonic_decreasing
    assert "Ranked by the change in relative similarity" in app_env.texts(at)

    at.radio(key="similarity.view").set_value("relative").run()
    app_env.ok(at)
    base, tuned, delta = _heatmaps(at)
    z_base, z_tuned = _z(base, app_env), _z(tuned, app_env)
    assert 0 <= z_base.min() and z_base.max() <= 100 and np.allclose(np.diag(z_base), 100, atol=1)
    assert (base["data"][0]["zmin"], base["data"][0]["zmax"]) == (0.0, 100.0) == (tuned["data"][0]["zmin"],
                                                                                 tuned["data"][0]["zmax"])
    assert np.allclose(_z(delta, app_env), z_tuned - z_base)
    [pairs] = app_env.frames(at, "text a", "base %", "tuned %", "relative change")
    position = {t: i for i, t in enumerate(base["data"][0]["customdata"][0][j][1] for j in range(len(z_base)))}
    for _, row in pairs.iterrows():  # the table's percentiles are the heatmap's
        assert row["base %"] == pytest.approx(z_base[position[row["text a"]], position[row["text b"]]])
    assert "percentile" in base["layout"]["title"]["text"] and "Relative view" in app_env.texts(at)

    # Twenty texts: still values in the cells (one heatmap a row), a taller figure.
    at.text_area(key="similarity.texts").input("\n".join(f"{w} worker" for w in TWENTY)).run()
    app_env.ok(at)
    base = _heatmaps(at)[0]
    assert len(base["data"][0]["text"]) == 20 and base["data"][0]["texttemplate"] == "%{text}"
    assert base["layout"]["height"] > height_12 and base["layout"]["height"] >= 20 * CELL_PX


TWENTY = ["data", "software", "nurse", "teacher", "doctor", "driver", "sales", "chef", "care", "office", "farm",
          "shop", "bank", "hotel", "police", "fire", "postal", "factory", "museum", "library"]


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
