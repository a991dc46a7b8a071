"""First launch, timed: a fresh workspace, `streamlit run app.py` on the real defaults, and headless Chromium
clicking Home's demo button, until base and tuned results for "data scientist" sit side by side on Home.

This is issue #14's "first launch on a fresh clone to base-vs-tuned results on Home" (aim: under 5 minutes
on 2 CPU cores, install excluded), measured the way a user meets it. Each milestone is the wall time since
the server process started; the load average is printed beside the table (the 2-core machine is shared).

    .venv/bin/python bench/first_launch.py [--json] [--out bench/results/first_launch.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from memory import CHROMIUM, CHROMIUM_ARGS, Server  # bench/memory.py: the app served on the real defaults


def run(timeout_s: float, keep: bool) -> dict:
    from playwright.sync_api import expect, sync_playwright

    workspace = Path(tempfile.mkdtemp(prefix="semsim-first-launch-"))
    load_start = os.getloadavg()
    started = time.perf_counter()
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks[name] = round(time.perf_counter() - started, 1)
        print(f"{marks[name]:7.1f} s  {name}", file=sys.stderr, flush=True)

    server = Server(workspace, workspace / "server.log")  # returns once the server answers
    url = server.url
    try:
        mark("server answering")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            page.set_default_timeout(timeout_s * 1000)
            expect.set_options(timeout=timeout_s * 1000)
            page.goto(url)
            expect(page.get_by_role("heading", name="semsim").first).to_be_visible()
            mark("Home loaded")
            start = page.get_by_role("button", name=re.compile(r"Fine-tune the demo model \(about .+\)"))
            expect(start).to_be_visible()
            estimate = start.inner_text()
            mark("demo offered")
            expect(page.get_by_role("textbox", name="Search job titles")).to_be_visible()
            mark("default index built (base search ready)")
            start.click()
            expect(page.get_by_text("Fine-tuning", exact=False).first).to_be_visible()
            mark("training started")
            expect(page.get_by_text(re.compile("Step 2 of 2|side by side: type any job title")).first).to_be_visible()
            mark("training finished")
            expect(page.get_by_text("side by side: type any job title")).to_be_visible()
            mark("both indexes built")
            page.get_by_role("textbox", name="Search job titles").fill("data scientist")
            page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
            grids = page.get_by_test_id("stDataFrame").filter(
                has=page.locator("[role=gridcell]", has_text="Data scientist"))
            expect(grids).to_have_count(2)
            mark("base and tuned results side by side")
            errors = page.get_by_test_id("stException").count() + page.get_by_test_id("stAlertContentError").count()
            browser.close()
    finally:
        server.stop()
        card = next(iter((workspace / "models").glob("*/model_card.json")), None) if (workspace / "models").exists() \
            else None
        card_data = json.loads(card.read_text()) if card else {}
        if not keep:
            shutil.rmtree(workspace, ignore_errors=True)
    training = card_data.get("training", {})
    return {"milestones_s": marks, "total_s": marks.get("base and tuned results side by side"),
            "estimate_shown": estimate, "errors_on_page": errors, "steps": training.get("steps"),
            "training_seconds": training.get("seconds"), "cpu_count": os.cpu_count(),
            "load_average_start": load_start, "load_average_end": os.getloadavg(),
            "aim_s": 300, "workspace": str(workspace) if keep else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for any one step")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (make browser-deps)", file=sys.stderr)
        return 2
    result = run(args.timeout, args.keep)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'milestone':45} {'seconds':>8}")
    for name, seconds in result["milestones_s"].items():
        print(f"{name:45} {seconds:8.1f}")
    print(f"estimate shown: {result['estimate_shown']!r}; demo steps {result['steps']}, training "
          f"{result['training_seconds']} s; load average {result['load_average_start']} -> "
          f"{result['load_average_end']} on {result['cpu_count']} cores; aim {result['aim_s']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped to head
        sys.exit(0)
