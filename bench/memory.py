"""The app's memory at each step of a visit: RSS of a real `streamlit run app.py`, driven in Chromium by Playwright.

Two visits, each to a freshly started server (so one step's leftovers do not count against the other):

  home-evaluate-upload  Home's first search (minilm + the 7.3k job-title index), the Evaluate page's quick run,
                        a preview of a 40 MB upload on the Index page, then Home again (does memory go down?)
  two-models-100k       the Search page with two encoders (minilm and a copy of it as the "tuned" model) and two
                        100k-vector indexes, one per model

The workspace (default: bench/.memory-workspace, reused) gets the default job-title index (built once with
`semsim index build`), the tuned copy of minilm, two synthetic 100k x 384 indexes and the 40 MB CSV.
RSS is read from /proc/<server pid>/status after each step has finished and the server has been idle for
--settle seconds; VmHWM is the peak so far. Results: a table on stdout and JSON (--out).

    .venv/bin/python bench/memory.py --out bench/results/memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 600_000
DIM = 384
SYNTHETIC = "100k-synthetic"  # sorts before job-titles, so the Search page offers these indexes first
TUNED = "minilm-copy"
TARGETS = {"home: first search": 900, "search: two models, two 100k indexes": 1500}


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# -- the workspace ----------------------------------------------------------------------------------
def prepare(workspace: Path, upload_mb: int, vectors: int) -> Path:
    indexes, models = workspace / "indexes", workspace / "models"
    env = {**os.environ, "SEMSIM_MODELS_DIR": str(models), "TF_CPP_MIN_LOG_LEVEL": "3"}
    sys.path.insert(0, str(REPO))
    from semsim_app.catalog import index_name  # the name the Home page looks for (light: no TensorFlow)

    jobs = indexes / index_name("minilm", "job_titles.csv")
    if not (jobs / "meta.json").is_file():
        print("building the default job-title index with minilm (once) ...", flush=True)
        subprocess.run([python(), "-m", "semsim", "index", "build", "--model", "minilm", "--corpus", "job-titles",
                        "--extra-columns", "unit_group_name,major_group_name", "--out", str(jobs), "--overwrite"],
                       cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    tuned = models / TUNED
    if not (tuned / "semsim.json").is_file():
        print(f"saving a copy of minilm as the tuned model {TUNED} ...", flush=True)
        script = ("import sys; from pathlib import Path; from semsim.encoders import load_encoder\n"
                  "e = load_encoder('minilm', cache=False); out = Path(sys.argv[1]); out.mkdir(parents=True)\n"
                  "e.fingerprint, e.name, e.base_spec = 'tuned:memory-bench', out.name, 'minilm'\n"
                  "e.save(out)\n")
        subprocess.run([python(), "-c", script, str(tuned)], cwd=REPO, env=env, check=True)
    fingerprint = json.loads((tuned / "semsim.json").read_text())["fingerprint"]
    for spec, name, fp in (("minilm", "minilm", None), (str(tuned), TUNED, fingerprint)):
        folder = indexes / f"{name}--{SYNTHETIC}"
        if not (folder / "meta.json").is_file():
            print(f"writing {folder.name} ({vectors:,} synthetic vectors) ...", flush=True)
            subprocess.run([python(), "-c", SYNTHETIC_SCRIPT, str(folder), spec, fp or "", str(vectors)], cwd=REPO,
                           env=env, check=True)
    upload = workspace / f"corpus-{upload_mb}mb.csv"
    if not upload.is_file():
        titles = [line.split(",")[0] for line in (REPO / "data" / "job_titles.csv").read_text().splitlines()[1:]]
        with open(upload, "w", encoding="utf-8") as handle:
            handle.write("title,note\n")
            i = 0
            while handle.tell() < upload_mb * 1_000_000:
                handle.write(f"{titles[i % len(titles)]} {i},row {i} of a large upload\n")
                i += 1
    return upload


SYNTHETIC_SCRIPT = """
import sys
import numpy as np
from index import IndexStore
folder, spec, fingerprint, count = sys.argv[1], sys.argv[2], sys.argv[3] or None, int(sys.argv[4])
rng = np.random.default_rng(0)
vectors = rng.standard_normal((count, 384)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
store = IndexStore.create(384, "flat", encoder={"spec": spec, "name": spec, "fingerprint": fingerprint, "dim": 384})
store.add(vectors, [{"text": f"synthetic text {i}"} for i in range(count)])
store.save(folder, extra={"source": "100k-synthetic.csv", "column": "text", "extra_columns": []})
"""


# -- the server -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak), RssAnon (memory the process owns) and RssFile (pages of mapped files, mostly
    TensorFlow's shared libraries) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


class Server:
    def __init__(self, workspace: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SEMSIM_WORKSPACE": str(workspace), "SEMSIM_MODELS_DIR": str(workspace / "models"),
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        for name in ("SEMSIM_DEFAULT_MODEL", "SEMSIM_DEFAULT_CORPUS", "SEMSIM_DEFAULT_COLUMN", "SEMSIM_DEMO_STEPS"):
            env.pop(name, None)  # the real defaults, as `make run` starts them
        with open(log, "ab") as handle:
            self.process = subprocess.Popen(
                [python(), "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
                 str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                 "--server.maxUploadSize", "200"],
                cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"streamlit exited with {self.process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise SystemExit(f"streamlit did not start; see {log}")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)


# -- the visits -------------------------------------------------------------------------------------
def settle(page, seconds: float) -> None:
    """Wait until the script has finished running (Streamlit's status widget gone), then `seconds` more."""
    page.wait_for_timeout(500)
    status = page.get_by_test_id("stStatusWidget")
    deadline = time.time() + TIMEOUT_MS / 1000
    quiet_since = None
    while time.time() < deadline:
        if status.count() and status.first.is_visible():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 1.5:
            break
        page.wait_for_timeout(250)
    page.wait_for_timeout(int(seconds * 1000))


def visit_home_evaluate_upload(page, url: str, upload: Path, record) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    box = page.get_by_role("textbox", name="Search job titles")
    expect(box).to_be_visible()
    settle(page, 0)
    record("home: page shown")
    box.fill("data scientist")
    box.press("Enter")
    expect(page.get_by_text(re.compile(r"results in \d+ ms"))).to_be_visible()
    record("home: first search")

    page.goto(f"{url}/evaluate")
    page.get_by_role("button", name="Run evaluation").click()
    settle(page, 0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    record("evaluate: quick run")

    page.goto(f"{url}/index")
    page.get_by_text("Upload a CSV").click()
    page.locator("input[type=file]").set_input_files(str(upload))
    expect(page.get_by_text(re.compile("lines after the header"))).to_be_visible()
    record(f"index: preview of a {upload.stat().st_size / 1e6:.0f} MB upload")

    page.goto(url)
    expect(page.get_by_role("textbox", name="Search job titles")).to_be_visible()
    record("home again, idle")


def visit_two_models(page, url: str, upload: Path, record) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/search")
    query = page.get_by_role("textbox", name="Query")
    expect(query).to_be_visible()
    expect(page.get_by_text(f"Tuned · {TUNED}")).to_be_visible()
    settle(page, 0)
    record("search: page shown")
    query.fill("data scientist")
    query.press("Enter")
    expect(page.get_by_text(re.compile(r"results in \d+ ms"))).to_have_count(2)
    record("search: two models, two 100k indexes")


VISITS = {"home-evaluate-upload": visit_home_evaluate_upload, "two-models-100k": visit_two_models}


def run_visit(name: str, workspace: Path, upload: Path, settle_s: float, log: Path) -> list[dict]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    server = Server(workspace, log)
    rows: list[dict] = []
    try:
        def record(step: str, page=None) -> None:
            time.sleep(settle_s)
            rows.append({"visit": name, "step": step, **memory(server.process.pid), "load_1m": os.getloadavg()[0]})
            row = rows[-1]
            print(f"  {step:<45} RSS {row['VmRSS']:6.0f} MB (anon {row['RssAnon']:5.0f}, files "
                  f"{row['RssFile']:4.0f})   peak {row['VmHWM']:6.0f} MB", flush=True)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            time.sleep(settle_s)
            rows.append({"visit": name, "step": "server started", **memory(server.process.pid),
                         "load_1m": os.getloadavg()[0]})
            print(f"  {'server started':<45} RSS {rows[-1]['VmRSS']:7.0f} MB", flush=True)
            VISITS[name](page, server.url, upload, record)
            browser.close()
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=REPO / "bench" / ".memory-workspace")
    parser.add_argument("--out", type=Path, help="write the measurements as JSON here")
    parser.add_argument("--upload-mb", type=int, default=40)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before each reading")
    parser.add_argument("--visit", choices=list(VISITS), action="append", help="default: both")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (make browser-deps)")
    args.workspace.mkdir(parents=True, exist_ok=True)
    upload = prepare(args.workspace, args.upload_mb, args.vectors)
    log = args.workspace / "server.log"
    rows = []
    for name in args.visit or list(VISITS):
        print(f"{name}:", flush=True)
        rows += run_visit(name, args.workspace, upload, args.settle, log)
    print("\n| visit | step | RSS MB | of which anonymous | peak MB | target (RSS) |\n|---|---|---|---|---|---|")
    for row in rows:
        target = TARGETS.get(row["step"])
        verdict = "" if target is None else f"<= {target}: {'met' if row['VmRSS'] <= target else 'not met'}"
        print(f"| {row['visit']} | {row['step']} | {row['VmRSS']:.0f} | {row['RssAnon']:.0f} | {row['VmHWM']:.0f} "
              f"| {verdict} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "environment": {
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"), "cpus": os.cpu_count(),
            "uptime_load": os.getloadavg()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
