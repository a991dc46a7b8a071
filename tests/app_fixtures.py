"""Fixtures for the app tests: tiny random-weight models, a small corpus, indexes, an isolated workspace.

Test modules load them with `pytest_plugins = ["tests.app_fixtures"]`. The expensive pieces (a tiny
BERT preset, a "tuned" copy, two classifiers, two indexes) are built once per session; each test gets a
fresh workspace folder with copies of what it asks for.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
# A few job titles from several families, "Data scientist" among them.
TITLES = ["Data scientist", "Data analyst", "Statistician", "Actuary", "Economist", "Software engineer",
          "Software developer", "Web developer", "Database administrator", "Network engineer", "Staff nurse",
          "Midwife", "Paramedic", "Care assistant", "Dental nurse", "Primary school teacher",
          "Secondary school teacher", "Lecturer", "Teaching assistant", "Nursery nurse", "Bus driver",
          "HGV driver", "Taxi driver", "Train driver", "Courier", "Chef", "Sous chef", "Kitchen porter",
          "Waiter", "Bartender", "Sales assistant", "Sales manager", "Shop manager", "Cashier", "Accountant",
          "Bookkeeper", "Payroll clerk", "Solicitor", "Barrister", "Police officer"]


@dataclass
class TinyAssets:
    base_spec: str  # keras-hub:<tiny preset folder>
    root: Path  # session folder with models/ and indexes/ to copy from
    corpus: Path  # small job-title CSV (column title)

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def index(self, name: str) -> Path:
        return self.root / "indexes" / name


def _limit_length(preset: Path, tokens: int = 64) -> None:
    (Path(preset) / "sentence_bert_config.json").write_text(f'{{"max_seq_length": {tokens}}}')


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory, tiny_bert_dir) -> TinyAssets:
    from semsim.classifier import TextClassifier
    from semsim.corpus_index import build_index
    from semsim.encoders import load_encoder
    from semsim.training.loop import mark_as_tuned
    from tests.tiny_models import make_bert_preset

    root = tmp_path_factory.mktemp("app_assets")
    # Our own copy of the tiny preset, told its real length limit: the loader assumes 256 tokens unless a
    # sentence_bert_config.json says otherwise, and the tiny backbone has 64 positions (long reviews and
    # STS-B sentences would overflow them).
    base_dir = shutil.copytree(tiny_bert_dir, root / "tiny_base")
    _limit_length(base_dir)
    base_spec = f"keras-hub:{base_dir}"
    corpus = root / "titles.csv"
    pd.DataFrame({"title": TITLES, "major_group_name": ["group"] * len(TITLES)}).to_csv(corpus, index=False)

    # A "tuned" encoder: other random weights (so rankings move), saved as a tuned model folder.
    tuned_dir = root / "models" / "tiny-tuned"
    tuned_dir.mkdir(parents=True)
    other = make_bert_preset(root / "other_preset", seed=1)
    _limit_length(other)
    encoder = load_encoder(f"keras-hub:{other}", cache=False)
    mark_as_tuned(encoder, base_spec, tuned_dir.name)
    encoder.save(tuned_dir)

    # Two classifiers with random heads: a frozen-encoder one and a "fine-tuned" one.
    for name, mode in (("tiny-frozen", "frozen"), ("tiny-sentiment", "full")):
        folder = root / "models" / name
        folder.mkdir(parents=True)
        clf_encoder = load_encoder(base_spec, cache=False)
        if mode == "full":
            mark_as_tuned(clf_encoder, base_spec, name)
        TextClassifier.build(clf_encoder, ["negative", "positive"], mode).save(folder)

    base = load_encoder(base_spec)
    tuned = load_encoder(str(tuned_dir), cache=False)
    build_index(base, corpus, column="title", out_dir=root / "indexes" / "tiny--titles",
                extra_columns=["major_group_name"])
    build_index(tuned, corpus, column="title", out_dir=root / "indexes" / "tiny-tuned--titles",
                extra_columns=["major_group_name"])
    return TinyAssets(base_spec, root, corpus)


@dataclass
class AppEnv:
    workspace: Path
    assets: TinyAssets

    @property
    def models(self) -> Path:
        return self.workspace / "models"

    @property
    def indexes(self) -> Path:
        return self.workspace / "indexes"

    # -- driving pages -----------------------------------------------------------------------
    @staticmethod
    def app(page: str | None = None, timeout: float = 180, state: dict | None = None):
        """An AppTest of the app's entry point, switched to `page` (a key of semsim_ui.widgets.PAGES, e.g.
        "search": the file that st.navigation registers for it)."""
        from streamlit.testing.v1 import AppTest

        from semsim_ui.widgets import PAGES

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        if page:
            at.switch_page(PAGES[page][0])
        return at

    @staticmethod
    def errors(at) -> list[str]:
        """st.error messages as the user reads them (user-derived text in them is markdown-escaped)."""
        return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]

    @staticmethod
    def ok(at) -> None:
        """No uncaught exception and no st.error on the page."""
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]

    @staticmethod
    def no_exceptions(at) -> None:
        assert not at.exception, [e.value for e in at.exception]

    @staticmethod
    def frames(at, *columns: str) -> list[pd.DataFrame]:
        """Rendered dataframes that have all of `columns`, in page order."""
        found = [element.value for element in at.dataframe]
        return [frame for frame in found if all(c in frame.columns for c in columns)]

    @staticmethod
    def texts(at) -> str:
        """Every markdown, caption, info, warning, success and text on the page, as one string."""
        parts = [e.value for kind in ("markdown", "caption", "info", "warning", "success", "text", "error")
                 for e in getattr(at, kind)]
        return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))  # as read: markdown escapes undone

    @staticmethod
    def charts(at) -> list[dict]:
        """Plotly figures on the page, as dicts."""
        import json

        return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]

    @staticmethod
    def array(value) -> np.ndarray:
        """A Plotly data array: a list, or Plotly's typed-array form {dtype, bdata, shape}."""
        if isinstance(value, dict) and "bdata" in value:
            import base64

            flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            return flat.reshape([int(x) for x in str(shape).split(",")]) if shape else flat
        return np.asarray(value)

    def install(self, *, models: tuple[str, ...] = (), indexes: tuple[str, ...] = ()) -> AppEnv:
        """Copy session-built models and indexes into this test's workspace."""
        for name in models:
            shutil.copytree(self.assets.model(name), self.models / name)
        for name in indexes:
            shutil.copytree(self.assets.index(name), self.indexes / name)
        return self


@pytest.fixture
def app_env(tmp_path, monkeypatch, tiny_assets) -> AppEnv:
    """An empty workspace; the tiny model stands in for minilm and the small corpus for the ONS titles."""
    workspace = tmp_path / "workspace"
    (workspace / "models").mkdir(parents=True)
    (workspace / "indexes").mkdir()
    monkeypatch.setenv("SEMSIM_WORKSPACE", str(workspace))
    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(workspace / "models"))
    monkeypatch.setenv("SEMSIM_DEFAULT_MODEL", tiny_assets.base_spec)
    monkeypatch.setenv("SEMSIM_DEFAULT_CORPUS", str(tiny_assets.corpus))
    monkeypatch.setenv("SEMSIM_DEFAULT_COLUMN", "title")
    monkeypatch.chdir(REPO)
    return AppEnv(workspace, tiny_assets)


