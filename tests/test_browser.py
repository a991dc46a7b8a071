"""End to end in headless Chromium: the real app, the real minilm base model, search "data scientist" on
the Search page and see both columns of results; and a first launch, where Home's demo fine-tunes a (tiny)
model in the background and then searches with base and tuned side by side.

The server runs as `streamlit run app.py` on a free port with a temporary workspace; its indexes are built
in setup with semsim.corpus_index (minilm for the base, the tiny random-weight model as the "tuned" one), over
a small job-title corpus so the test does not wait on a 7k-title build. Debian's chromium is driven by
Playwright (no browser download). Output: test-output/browser/ (screenshots, server log).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest_plugins = ["tests.app_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "test-output" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 240_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"streamlit did not become healthy in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_assets):
    """A workspace with a tuned (tiny) model and two indexes over the same small corpus."""
    from semsim.corpus_index import build_index
    from semsim.encoders import load_encoder

    root = tmp_path_factory.mktemp("browser_workspace")
    shutil.copytree(tiny_assets.model("tiny-tuned"), root / "models" / "tiny-tuned")
    shutil.copytree(tiny_assets.index("tiny-tuned--titles"), root / "indexes" / "tiny-tuned--titles")
    build_index(load_encoder("minilm"), tiny_assets.corpus, column="title", out_dir=root / "indexes" / "minilm--titles",
                extra_columns=["major_group_name"])
    return root


@pytest.fixture(scope="module")
def server(workspace, tiny_assets):
    env = {**os.environ, "SEMSIM_WORKSPACE": str(workspace), "SEMSIM_MODELS_DIR": str(workspace / "models"),
           # The Home page builds its default index on first visit: point it at the small corpus too.
           "SEMSIM_DEFAULT_CORPUS": str(tiny_assets.corpus), "SEMSIM_DEFAULT_COLUMN": "title"}
    env.pop("SEMSIM_DEFAULT_MODEL", None)  # the real default, minilm
    yield from _serve(env, "server.log")


@pytest.fixture(scope="module")
def first_launch_server(tmp_path_factory, tiny_assets):
    """A fresh workspace (no tuned model, no index), the tiny model as the default one and a demo of 1 step."""
    root = tmp_path_factory.mktemp("first_launch")
    env = {**os.environ, "SEMSIM_WORKSPACE": str(root), "SEMSIM_MODELS_DIR": str(root / "models"),
           "SEMSIM_DEFAULT_MODEL": tiny_assets.base_spec, "SEMSIM_DEFAULT_CORPUS": str(tiny_assets.corpus),
           "SEMSIM_DEFAULT_COLUMN": "title", "SEMSIM_DEMO_STEPS": "1"}
    yield from _serve(env, "first-launch-server.log")


def _serve(env: dict, log_name: str):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`make browser-deps`) to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = OUTPUT / log_name
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_health(url, process, log)
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def page(server):
    yield from _browser_page()


@pytest.fixture
def first_launch_page(first_launch_server):
    yield from _browser_page()


def _browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _cells(grid) -> list[str]:
    """Text of the cells glide-data-grid renders for accessibility (the visible ones)."""
    return [text.strip() for text in grid.locator("[role=gridcell]").all_inner_texts()]


def test_search_data_scientist_in_both_columns(server, page):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # the first search loads minilm in the server
    page.goto(server)
    expect(page.get_by_role("heading", name="semsim").first).to_be_visible()
    expect(page.get_by_role("heading", name="Where next")).to_be_visible()
    page.screenshot(path=str(OUTPUT / "home.png"), full_page=True)

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Search: base vs tuned").click()
    expect(page.get_by_role("heading", name="Search: base vs tuned").first).to_be_visible()
    expect(page.get_by_text("Base · minilm")).to_be_visible()
    expect(page.get_by_text("Tuned · tiny-tuned")).to_be_visible()

    query = page.get_by_role("textbox", name="Query")
    query.fill("data scientist")
    page.get_by_role("button", name="Search", exact=True).click()

    grids = page.get_by_test_id("stDataFrame")
    expect(grids).to_have_count(2, timeout=TIMEOUT_MS)
    expect(page.get_by_text("moved up", exact=False)).to_be_visible()
    for grid in grids.all():
        expect(grid.locator("[role=gridcell]").filter(has_text="Data scientist").first).to_be_attached()
    base_cells, tuned_cells = (_cells(grid) for grid in grids.all())
    assert "Data scientist" in base_cells and "Data scientist" in tuned_cells
    assert page.get_by_text("results in").count() == 2
    assert not page.get_by_test_id("stException").count()
    assert not page.get_by_test_id("stAlertContentError").count()

    shot = OUTPUT / "search.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000


def test_first_launch_demo_trains_indexes_and_searches_side_by_side(first_launch_server, first_launch_page):
    """Home on a fresh workspace: the demo says how long it takes, trains in the background (a refresh and
    another page do not stop it), builds both indexes, then shows base and tuned results side by side."""
    from playwright.sync_api import expect

    page = first_launch_page
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        page.goto(first_launch_server)
        expect(page.get_by_text("No tuned model yet")).to_be_visible()
        start = page.get_by_role("button", name=re.compile(r"Fine-tune the demo model \(about .+\)"))
        expect(start).to_be_visible()
        expect(page.get_by_role("textbox", name="Search job titles")).to_be_visible()  # the base index is built
        page.screenshot(path=str(OUTPUT / "first-launch-offer.png"), full_page=True)
        start.click()
        expect(page.get_by_text("Fine-tuning", exact=False).first).to_be_visible()

        # Other pages stay usable while it trains, and a refresh finds the run again.
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Similarity matrix").click()
        expect(page.get_by_role("heading", name="Similarity matrix").first).to_be_visible()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Home").click()
        expect(page.get_by_role("heading", name="Try it")).to_be_visible()
        page.reload()
        expect(page.get_by_text(re.compile("Fine-tuning|Step 2 of 2|side by side")).first).to_be_visible()

        # Trained and indexed: Home redraws itself with the side-by-side search.
        expect(page.get_by_text("side by side: type any job title")).to_be_visible()
        page.get_by_role("textbox", name="Search job titles").fill("data scientist")
        page.get_by_test_id("stBaseButton-primaryFormSubmit").click()  # (tables have Search buttons too)
        grids = page.get_by_test_id("stDataFrame").filter(has=page.locator("[role=gridcell]", has_text="Data scientist"))
        expect(grids).to_have_count(2)
        expect(page.get_by_text("job-titles-demo", exact=False).first).to_be_visible()
        assert not page.get_by_test_id("stException").count()
        assert not page.get_by_test_id("stAlertContentError").count()
        page.screenshot(path=str(OUTPUT / "first-launch-side-by-side.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(OUTPUT / "first-launch-failure.png"), full_page=True)
        raise


def test_the_comparison_report_works_offline_and_runs_no_user_text(tmp_path):
    """The HTML report in Chromium with every network request refused: its figures draw (plotly.js is
    inline) and a text that is an HTML tag stays text."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    pytest.importorskip("playwright.sync_api")
    import numpy as np
    from playwright.sync_api import sync_playwright

    from semsim import report

    rng = np.random.default_rng(0)
    texts = ["<img src=x onerror=\"document.title='pwned'\">", *(f"text {i}" for i in range(59))]
    base = rng.normal(size=(60, 16))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    tuned = base + 0.3 * rng.normal(size=(60, 16))
    tuned /= np.linalg.norm(tuned, axis=1, keepdims=True)
    reference = np.sort(rng.uniform(-0.2, 0.6, 1000))
    rows = [{"metric": "spearman", "base": 0.5, "tuned": 0.55, "delta": 0.05, "ci95": [0.01, 0.09],
             "significant": True}]
    document = report.render("<b>report</b>", [report.ModelSummary("base", "minilm"),
                                                report.ModelSummary("tuned", "/models/<i>tuned</i>")],
                             [report.MetricTable("<u>data</u>", "pairs", 60, rows)],
                             [report.heatmap_section(texts[:12], base[:12], tuned[:12], reference, reference, "ref"),
                              report.map_section(texts, base, tuned)])
    path = report.write(tmp_path / "report.html", document)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
        requested = []
        context.route("**/*", lambda route: (requested.append(route.request.url), route.continue_())
                      if route.request.url.startswith("file:") else (requested.append(route.request.url),
                                                                      route.abort()))
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        assert page.locator(".js-plotly-plot").count() == 4  # three heatmaps and the map
        assert page.title() == "<b>report</b>" and not errors
        assert page.locator("img[src=x]").count() == 0 and page.locator("h1 b").count() == 0
        assert [url for url in requested if not url.startswith("file:")] == []
        page.screenshot(path=str(OUTPUT / "report.png"), full_page=True)
        context.close()
        browser.close()
