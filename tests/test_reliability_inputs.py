"""Hostile inputs: bad CSVs, paths, model folders, index files and arguments each give one clear line,
exit code 2, no traceback, and leave every file as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index import IndexStore

ROOT = Path(__file__).resolve().parent.parent
ESC_TITLE = "\x1b]0;pwned\x07\x1b[2J"  # retitles the terminal window, then clears the screen


# -- the workspace every case starts from --------------------------------------------------------
def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def save_index(folder: Path, spec: str = "minilm", texts: tuple[str, ...] = ("nurse", "chef", "driver")) -> None:
    vectors = np.random.default_rng(0).standard_normal((len(texts), 8)).astype(np.float32)
    store = IndexStore.create(8, "flat", encoder={"spec": spec, "name": spec, "fingerprint": f"fp-{spec}", "dim": 8})
    store.add(vectors, [{"text": t} for t in texts])
    store.save(folder)


def tiny_copy(tiny_bert_dir: Path, folder: Path, **config: object) -> None:
    """A copy of the tiny KerasHub BERT preset with its config.json changed."""
    shutil.copytree(tiny_bert_dir, folder)
    data = json.loads((folder / "config.json").read_text())
    data["config"].update(config)
    (folder / "config.json").write_text(json.dumps(data))


def semsim_folder(folder: Path, **config: object) -> None:
    base = {"format_version": 1, "source": "bert", "spec": str(folder), "name": "m", "dim": 8,
            "fingerprint": "fp", "pooling": "mean"}
    write(folder / "semsim.json", json.dumps({k: v for k, v in {**base, **config}.items() if v is not None}))


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_bert_dir):
    ws = tmp_path / "ws"
    files = {
        "ok.csv": "title,group\nnurse,1\nchef,2\ndriver,3\n",
        "header.csv": "title,group\n",
        "empty.csv": "",
        "latin1.csv": "title\nnurse\ncaf\xe9\n".encode("latin-1"),
        "extra_first.csv": "title,group\nnurse, rn,1\nchef,2\n",
        "extra_later.csv": "title,group\nnurse,1\nchef,2\ndriver, bus,3\n",
        "unclosed.csv": 'title,group\n"nurse,1\nchef,2\n',
        "blank_text.csv": "title,group\nnurse,1\n ,2\n",
        "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
        "semicolon.csv": "title;group\nnurse;1\nchef;2\n",
        "pairs_nan.csv": "text_a,text_b,score\nnurse,doctor,abc\nchef,cook,0.5\n",
        "pairs_inf.csv": "text_a,text_b,score\nnurse,doctor,inf\nchef,cook,0.5\n",
        "pairs_noscore.csv": "text_a,text_b\nnurse,doctor\nchef,cook\n",
        "sts_range.csv": "sentence1,sentence2,score\na,b,7\nc,d,1\n",
        "queries.csv": "query_id,query,relevant_ids\nq1,nurse,c9\n",
        "corpus.csv": "id,text\nc1,nurse\nc2,chef\n",
        "corpus_dup.csv": "id,text\nc1,nurse\nc1,chef\n",
        "reviews_one_class.csv": "text,label\n" + "good,pos\nfine,pos\n" * 20,
        "notes.txt": "not a folder",
        "notes/notes.txt": "only copy",
        "existing.npy": b"\x93NUMPY",
        "dir.npy/keep.txt": "a folder named like a file",
        "request.json": "{not json",
    }
    for name, content in files.items():
        write(ws / name, content)
    save_index(ws / "idx")
    save_index(ws / "foreign", spec="keras-hub:/somewhere/else")  # an index naming a model from elsewhere
    models = ws / "models"
    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(models))
    semsim_folder(models / "nofp", fingerprint=None)
    write(models / "badjson" / "semsim.json", "{")
    semsim_folder(models / "future", format_version=99)
    semsim_folder(models / "badsource", source="pickle")
    write(models / "listcfg" / "semsim.json", "[1, 2]")
    semsim_folder(models / "negdim", dim=-3)
    write(models / "nothing" / "README.md", "no model here")
    tiny_copy(tiny_bert_dir, models / "huge", hidden_dim=38400)
    tiny_copy(tiny_bert_dir, models / "strdim", hidden_dim="big")
    tiny_copy(tiny_bert_dir, models / "mismatch", hidden_dim=24)  # plausible, but not these weights' size
    tiny_copy(tiny_bert_dir, models / "noweights")
    (models / "noweights" / "model.weights.h5").unlink()
    monkeypatch.chdir(ws)
    return ws


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root: type, size, mtime and content hash."""
    state = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs:
            path = Path(folder, name)
            state[str(path.relative_to(root))] = ("dir", path.stat().st_mtime_ns)
        for name in names:
            path = Path(folder, name)
            stat = path.lstat()
            state[str(path.relative_to(root))] = ("file", stat.st_size, stat.st_mtime_ns,
                                                  hashlib.sha256(path.read_bytes()).hexdigest())
    return state


# -- changes some cases make to the workspace first ----------------------------------------------
def meta_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """meta.json changed in place by `change`, or replaced by what it returns when that is a list."""
    def apply(ws: Path) -> None:
        meta = json.loads((ws / "idx" / "meta.json").read_text())
        replaced = change(meta)
        (ws / "idx" / "meta.json").write_text(json.dumps(replaced if isinstance(replaced, list) else meta))
    return apply


def file_edit(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(ws: Path) -> None:
        path = ws / "idx" / name
        path.write_bytes(change(path.read_bytes()))
    return apply


def flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def remove(name: str) -> Callable[[Path], None]:
    return lambda ws: (ws / "idx" / name).unlink()


def intent(content: str) -> Callable[[Path], None]:
    return lambda ws: write(ws / ".idx.publishing", content)


M = "minilm"  # every case is refused before a model would load, so the bundled name costs nothing
SEARCH = ["search", "--index", "idx", "--query"]

CASES = [
    # -- CSV files -------------------------------------------------------------------------------
    ("csv-header-only-embed", None, ["embed", "--input", "header.csv", "--column", "title", "--out", "v.npy"],
     "header.csv: has a header row but no data rows"),
    ("csv-empty-embed", None, ["embed", "--input", "empty.csv", "--out", "v.npy"], "empty.csv: file is empty"),
    ("csv-latin1-embed", None, ["embed", "--input", "latin1.csv", "--column", "title", "--out", "v.npy"],
     "latin1.csv: not UTF-8 (byte 0xe9 on line 3)"),
    ("csv-extra-field-first-row", None, ["embed", "--input", "extra_first.csv", "--column", "title", "--out",
                                         "v.npy"], "extra_first.csv, row 2 (header is row 1): cannot be parsed"),
    ("csv-extra-field-later-row", None, ["embed", "--input", "extra_later.csv", "--column", "title", "--out",
                                         "v.npy"], "row 4 (header is row 1): cannot be parsed as CSV: 3 fields"),
    ("csv-unclosed-quote", None, ["embed", "--input", "unclosed.csv", "--column", "title", "--out", "v.npy"],
     "never closed"),
    ("csv-missing-column", None, ["embed", "--input", "ok.csv", "--out", "v.npy"], "missing column(s) 'text'"),
    ("csv-blank-text", None, ["embed", "--input", "blank_text.csv", "--column", "title", "--out", "v.npy"],
     "is empty in row(s) 3"),
    ("csv-binary", None, ["embed", "--input", "binary.csv", "--out", "v.npy"], "binary.csv: not UTF-8"),
    ("csv-is-a-folder", None, ["embed", "--input", "notes", "--out", "v.npy"], "is a folder, not a CSV file"),
    ("csv-missing-file", None, ["embed", "--input", "nope.csv", "--out", "v.npy"], "file not found"),
    ("csv-header-only-build", None, ["index", "build", "--model", M, "--corpus", "header.csv", "--column",
                                     "title", "--out", "new"], "header.csv: has a header row but no data rows"),
    ("csv-latin1-build", None, ["index", "build", "--model", M, "--corpus", "latin1.csv", "--column", "title",
                                "--out", "new"], "latin1.csv: not UTF-8 (byte 0xe9 on line 3)"),
    ("csv-extra-field-build", None, ["index", "build", "--model", M, "--corpus", "extra_later.csv", "--column",
                                     "title", "--out", "new"], "extra_later.csv, row 4"),
    ("csv-semicolon-wrong-column", None, ["index", "build", "--model", M, "--corpus", "semicolon.csv",
                                          "--column", "text", "--out", "new"], "its columns are: title, group"),
    ("csv-header-only-add", None, ["index", "add", "--index", "idx", "--corpus", "header.csv", "--column",
                                   "title"], "header.csv: has a header row but no data rows"),
    ("csv-extra-field-add", None, ["index", "add", "--index", "idx", "--corpus", "extra_first.csv",
                                   "--column", "title"], "extra_first.csv, row 2"),
    ("csv-not-a-corpus", None, ["index", "build", "--model", M, "--corpus", "nope", "--out", "new"],
     "neither a CSV file nor a bundled corpus"),
    ("csv-score-not-a-number", None, ["evaluate", "pairs", "--model", M, "--data", "pairs_nan.csv"],
     "score 'abc' is not a number"),
    ("csv-score-infinite", None, ["evaluate", "pairs", "--model", M, "--data", "pairs_inf.csv"],
     "score is not a finite number"),
    ("csv-no-score-column", None, ["evaluate", "pairs", "--model", M, "--data", "pairs_noscore.csv"],
     "missing column(s) 'score'"),
    ("csv-sts-score-out-of-range", None, ["evaluate", "sts", "--model", M, "--data", "sts_range.csv"],
     "outside the range 0..5"),
    ("csv-unknown-relevant-id", None, ["evaluate", "retrieval", "--model", M, "--queries", "queries.csv",
                                       "--corpus", "corpus.csv"], "relevant id(s) not in the corpus"),
    ("csv-duplicate-corpus-id", None, ["evaluate", "retrieval", "--model", M, "--queries", "queries.csv",
                                       "--corpus", "corpus_dup.csv"], "duplicate id"),
    ("csv-train-header-only", None, ["train", "pairs", "--base", M, "--data", "header.csv", "--out", "m"],
     "header.csv"),
    ("csv-train-one-class", None, ["train", "sentiment", "--base", M, "--data", "reviews_one_class.csv",
                                   "--out", "m"], "only one class"),
    ("csv-train-request-not-json", None, ["train", "pairs", "--request", "request.json"], "request.json"),
    # -- paths to write ----------------------------------------------------------------------------
    ("path-out-under-a-file", None, ["embed", "--input", "ok.csv", "--column", "title", "--out",
                                     "notes.txt/sub.npy"], "notes.txt is a file, not a folder"),
    ("path-out-exists", None, ["embed", "--input", "ok.csv", "--column", "title", "--out", "existing.npy"],
     "exists; pass --overwrite"),
    ("path-out-not-npy", None, ["embed", "--input", "ok.csv", "--out", "v.txt"], "must end in .npy"),
    ("path-out-is-a-folder", None, ["embed", "--input", "ok.csv", "--column", "title", "--out", "dir.npy",
                                    "--overwrite"], "dir.npy is a folder"),
    ("path-index-over-user-folder", None, ["index", "build", "--model", M, "--corpus", "ok.csv", "--column",
                                           "title", "--out", "notes", "--overwrite"], "not an index folder"),
    ("path-index-exists", None, ["index", "build", "--model", M, "--corpus", "ok.csv", "--column", "title",
                                 "--out", "idx"], "idx exists; pass --overwrite"),
    ("path-index-under-a-file", None, ["index", "build", "--model", M, "--corpus", "ok.csv", "--column",
                                       "title", "--out", "notes.txt/idx"], "notes.txt is a file, not a folder"),
    ("path-train-over-user-folder", None, ["train", "pairs", "--base", M, "--data", "job-title-pairs", "--out",
                                           "notes", "--overwrite"], "not a semsim model folder"),
    ("path-train-out-is-a-file", None, ["train", "pairs", "--base", M, "--data", "job-title-pairs", "--out",
                                        "notes.txt", "--overwrite"], "is a file, not a model folder"),
    ("path-train-under-a-file", None, ["train", "pairs", "--base", M, "--data", "job-title-pairs", "--out",
                                       "notes.txt/m"], "notes.txt is a file, not a folder"),
    ("path-train-nothing-to-resume", None, ["train", "pairs", "--base", M, "--data", "job-title-pairs", "--out",
                                            "fresh", "--resume"], "nothing to resume"),
    ("path-search-missing-index", None, [*SEARCH[:2], "gone", "--query", "nurse"], "does not exist"),
    ("path-search-index-is-a-file", None, [*SEARCH[:2], "notes.txt", "--query", "nurse"], "is a file"),
    ("path-info-not-an-index", None, ["index", "info", "--index", "notes"], "meta.json is missing"),
    ("path-remove-missing-index", None, ["index", "remove", "--index", "gone", "--ids", "1"], "does not exist"),
    # -- index files -----------------------------------------------------------------------------
    ("index-meta-not-json", lambda ws: write(ws / "idx" / "meta.json", "{"), [*SEARCH, "nurse"],
     "meta.json is not valid JSON"),
    ("index-meta-a-list", meta_edit(lambda meta: [meta]), [*SEARCH, "nurse"], "is not a JSON object"),
    ("index-meta-from-the-future", meta_edit(lambda meta: meta.update(format_version=99)), [*SEARCH, "nurse"],
     "built by a newer semsim"),
    ("index-meta-lacks-dim", meta_edit(lambda meta: meta.pop("dim")), [*SEARCH, "nurse"], "lacks 'dim'"),
    ("index-unknown-kind", meta_edit(lambda meta: meta["index"].update(kind="evil")), [*SEARCH, "nurse"],
     "unknown index kind 'evil'"),
    ("index-count-wrong", meta_edit(lambda meta: meta.update(count=99)), [*SEARCH, "nurse"],
     "holds 3 vectors but meta.json says 99"),
    ("index-faiss-truncated", file_edit("index.faiss", lambda data: data[: len(data) // 2]), [*SEARCH, "nurse"],
     "truncated or was changed"),
    ("index-faiss-bit-flip", file_edit("index.faiss", flip_middle), [*SEARCH, "nurse"], "checksum mismatch"),
    ("index-rows-missing", remove("rows.parquet"), [*SEARCH, "nurse"], "rows.parquet is missing"),
    ("index-rows-bit-flip", file_edit("rows.parquet", flip_middle), [*SEARCH, "nurse"], "checksum mismatch"),
    ("index-faiss-missing", remove("index.faiss"), [*SEARCH, "nurse"], "index.faiss is missing"),
    ("index-intent-garbage", intent("{oops"), ["index", "info", "--index", "idx"], "changed by hand"),
    ("index-intent-escapes-parent", intent(json.dumps({"new": "../../etc", "old": None, "manifest": {}})),
     ["index", "info", "--index", "idx"], "is not a folder beside"),
    ("index-names-a-foreign-model", None, ["search", "--index", "foreign", "--query", "nurse"],
     "not loaded just because the index names it"),
    ("index-add-names-a-foreign-model", None, ["index", "add", "--index", "foreign", "--corpus", "ok.csv",
                                               "--column", "title"], "pass --model keras-hub:/somewhere/else"),
    # -- model folders ---------------------------------------------------------------------------
    ("model-no-fingerprint", None, ["similarity", "--model", "models/nofp", "a", "b"], "has no fingerprint"),
    ("model-config-not-json", None, ["similarity", "--model", "models/badjson", "a", "b"], "is not valid JSON"),
    ("model-config-a-list", None, ["similarity", "--model", "models/listcfg", "a", "b"], "is not a JSON object"),
    ("model-from-the-future", None, ["similarity", "--model", "models/future", "a", "b"], "Upgrade semsim"),
    ("model-unknown-source", None, ["similarity", "--model", "models/badsource", "a", "b"],
     "unknown encoder source 'pickle'"),
    ("model-negative-dim", None, ["similarity", "--model", "models/negdim", "a", "b"], "dim is -3"),
    ("model-folder-without-model", None, ["similarity", "--model", "models/nothing", "a", "b"],
     "is not a model folder"),
    ("model-absurd-size", None, ["similarity", "--model", "keras-hub:models/huge", "a", "b"],
     "does not belong to these weights"),
    ("model-size-not-a-number", None, ["similarity", "--model", "keras-hub:models/strdim", "a", "b"],
     "hidden_dim is 'big'"),
    ("model-config-does-not-match-weights", None, ["similarity", "--model", "keras-hub:models/mismatch", "a", "b"],
     "config.json and weights do not match"),
    ("model-no-weights", None, ["similarity", "--model", "keras-hub:models/noweights", "a", "b"],
     "has no weights file"),
    ("model-is-a-file", None, ["similarity", "--model", "notes.txt", "a", "b"], "is a file; a model is a folder"),
    ("model-unknown-name", None, ["similarity", "--model", "gpt-17", "a", "b"], "unknown model 'gpt-17'"),
    ("model-missing-folder", None, ["similarity", "--model", "keras-hub:./missing", "a", "b"], "does not exist"),
    # -- arguments -------------------------------------------------------------------------------
    ("arg-query-not-utf8", None, [*SEARCH, "nurse\udcff"], "the value of --query is not valid UTF-8 ('nurse\\xff')"),
    ("arg-text-not-utf8", None, ["similarity", "--model", M, "ok", "caf\udce9"], "argument 5 is not valid UTF-8"),
    ("arg-path-not-utf8", None, ["embed", "--input", "in\udcff.csv", "--out", "v.npy"], "--input is not valid"),
    ("arg-k-zero", None, [*SEARCH, "nurse", "-k", "0"], "must be at least 1"),
    ("arg-k-not-a-number", None, [*SEARCH, "nurse", "-k", "ten"], "expected a whole number, got 'ten'"),
    ("arg-batch-size-negative", None, ["embed", "--input", "ok.csv", "--out", "v.npy", "--batch-size", "-1"],
     "must be at least 1"),
    ("arg-query-blank", None, [*SEARCH, "   "], "--query must not be empty"),
    ("arg-one-text", None, ["similarity", "--model", M, "alone"], "at least two texts"),
    ("arg-empty-text", None, ["similarity", "--model", M, "", "x"], "must not be empty"),
    ("arg-bad-ids", None, ["index", "remove", "--index", "idx", "--ids", "1,x"], "comma-separated whole numbers"),
    ("arg-bad-param", None, ["index", "build", "--corpus", "ok.csv", "--out", "new", "--param", "ef"],
     "expected KEY=VALUE"),
    ("arg-bad-kind", None, ["index", "build", "--corpus", "ok.csv", "--out", "new", "--kind", "evil"],
     "invalid choice: 'evil'"),
    ("arg-unknown-command", None, ["destroy"], "invalid choice: 'destroy'"),
    ("arg-reserved-extra-column", None, ["index", "build", "--model", M, "--corpus", "ok.csv", "--column",
                                         "title", "--extra-columns", "score", "--out", "new"],
     "extra columns cannot be named ['score']"),
    ("arg-half-a-retrieval-set", None, ["evaluate", "retrieval", "--model", M, "--queries", "queries.csv"],
     "give both --queries and --corpus"),
    ("arg-escape-sequences-in-a-path", None, ["embed", "--input", f"{ESC_TITLE}.csv", "--out", "v.npy"],
     "\\x1b]0;pwned\\x07\\x1b[2J.csv: file not found"),
    ("arg-escape-sequences-in-a-choice", None, ["index", "build", "--corpus", "ok.csv", "--out", "new",
                                                "--kind", ESC_TITLE], "invalid choice: '\\x1b]0;pwned"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from semsim.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, f"not one line: {err!r}"
    assert lines[0].startswith("semsim") and "error:" in lines[0], lines[0]
    assert "\x1b" not in err and "\x07" not in err, "control characters reach the terminal"
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"


def test_at_least_fifty_hostile_inputs_across_every_kind():
    kinds = {name.split("-")[0] for name, *_ in CASES}
    assert kinds == {"csv", "path", "index", "model", "arg"}
    assert len(CASES) >= 50 and len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, setup, argv, message", CASES, ids=[case[0] for case in CASES])
def test_a_hostile_input_is_refused_with_one_line_and_nothing_changes(name, setup, argv, message, workspace,
                                                                       capsys):
    if setup is not None:
        setup(workspace)
    before = snapshot(workspace)
    code, out, err = run_cli(argv, capsys)
    assert_refused(code, out, err, message)
    assert snapshot(workspace) == before, "a refused command changed the workspace"


# -- real processes: what the shell passes, what the interpreter prints ------------------------------
@pytest.mark.parametrize("argv, message", [
    ([b"search", b"--index", b"idx", b"--query", b"nurse\xff"], "the value of --query is not valid UTF-8"),
    ([b"index", b"build", b"--corpus", b"header.csv", b"--column", b"title", b"--out", b"new"],
     "has a header row but no data rows"),
    ([b"embed", b"--input", b"extra_first.csv", b"--column", b"title", b"--out", b"v.npy"], "row 2"),
    # Keras warns in two lines while it fails to load these weights: held back, the error stays one line.
    ([b"similarity", b"--model", b"keras-hub:models/mismatch", b"a", b"b"], "do not match"),
], ids=["invalid-utf8-argv", "header-only-corpus", "extra-field-first-row", "model-folder-keras-warns"])
def test_in_a_real_process_too(argv, message, workspace):
    before = snapshot(workspace)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable.encode(), b"-m", b"semsim", *argv], cwd=workspace, env=env,
                          capture_output=True, timeout=120)
    assert_refused(done.returncode, done.stdout.decode(), done.stderr.decode(), message)
    assert snapshot(workspace) == before


# -- what is accepted must be safe too ---------------------------------------------------------------
def test_search_output_escapes_terminal_control_characters(workspace, capsys, monkeypatch):
    import semsim.cli.search
    from tests.test_index_fakes import TrigramEncoder

    encoder = TrigramEncoder(spec="fake", dim=8)
    store = IndexStore.create(8, "flat", encoder=encoder)
    texts = [f"nurse {ESC_TITLE}", "chef\u202eevil", "driver"]
    store.add(encoder.encode(texts), [{"text": t} for t in texts])
    store.save(workspace / "hostile")
    monkeypatch.setattr(semsim.cli.search, "load_model", lambda spec, *args, **kwargs: encoder)
    code, out, _ = run_cli(["search", "--index", "hostile", "--query", "nurse", "--model", "fake"], capsys)
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "nurse \\x1b]0;pwned\\x07" in out and "chef\\u202eevil" in out
    code, out, _ = run_cli(["search", "--index", "hostile", "--query", "nurse", "--model", "fake", "--json"], capsys)
    assert code == 0 and f"nurse {ESC_TITLE}" in [hit["text"] for hit in json.loads(out)["hits"]]


def test_a_semicolon_corpus_builds_like_a_comma_one(workspace, capsys, monkeypatch):
    import semsim.cli.index
    from tests.test_index_fakes import TrigramEncoder

    monkeypatch.setattr(semsim.cli.index, "load_model",
                        lambda spec, *args, **kwargs: TrigramEncoder(spec=spec, dim=8))
    code, out, err = run_cli(["index", "build", "--model", "fake", "--corpus", "semicolon.csv", "--column",
                              "title", "--extra-columns", "group", "--out", "semi", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["count"] == 2
    assert json.loads((workspace / "semi" / "meta.json").read_text())["columns"] == ["id", "text",
                                                                                                    "group"]


def test_json_output_is_always_valid_json():
    import io
    from contextlib import redirect_stdout

    from semsim.cli.output import emit

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        emit({"pearson": float("nan"), "scores": np.array([1.0, np.inf]), "n": np.int64(3)}, as_json=True)
    assert json.loads(buffer.getvalue()) == {"pearson": None, "scores": [1.0, None], "n": 3}


def test_downloaded_csvs_neutralise_formulas():
    import csv
    import io

    import pandas as pd

    from semsim_app.downloads import csv_bytes

    frame = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                   "nurse"], "score": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "=evil": ["a"] * 7})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"))))
    assert rows[0] == ["text", "score", "'=evil"]
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx",
                                        "'\rx", "nurse"]
    assert rows[1][1] == "-0.5", "numbers stay numbers"


def test_every_csv_download_of_the_app_goes_through_csv_bytes():
    sources = [p for folder in ("app_pages", "semsim_ui") for p in (ROOT / folder).glob("*.py")] + [ROOT / "app.py"]
    offenders = [f"{p.name}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "download_button" in line and ".to_csv(" in line]
    uses = sum(p.read_text().count("downloads.csv_bytes(") for p in sources)
    assert not offenders and uses >= 4, offenders


def test_constant_scores_give_null_with_a_reason_in_valid_json():
    import io
    from contextlib import redirect_stdout

    from semsim.cli.output import emit
    from semsim.evaluation import PairSimilarityEvaluator
    from tests.test_index_fakes import TrigramEncoder

    evaluator = PairSimilarityEvaluator(["nurse", "chef", "driver"], ["doctor", "cook", "pilot"], [0.5, 0.5, 0.5])
    result = evaluator(TrigramEncoder(dim=8))
    assert "every gold score is 0.5" in result["undefined_because"]
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        emit(result, as_json=True)
    parsed = json.loads(buffer.getvalue())  # NaN would not parse as JSON
    assert parsed["pearson"] is None and parsed["spearman_x100"] is None and parsed["undefined_because"]


def test_model_listings_skip_publish_temporaries_and_run_folders(tmp_path, monkeypatch):
    from semsim.encoders import available_models
    from semsim_app import catalog, settings

    models = tmp_path / "models"
    for name in ("kept", ".kept.old-0123456789ab", ".kept.tmp-0123456789ab", "other.partial"):
        semsim_folder(models / name, spec=name)
    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(models))
    monkeypatch.setattr(settings, "models_dir", lambda: models)
    assert [Path(m.spec).name for m in available_models() if m.kind == "tuned"] == ["kept"]
    assert [p.name for p in catalog.model_folders()] == ["kept"]


def test_loaded_models_are_an_lru(monkeypatch):
    import semsim.encoders as encoders

    monkeypatch.setattr(encoders, "_cache", type(encoders._cache)())
    monkeypatch.setattr(encoders, "MAX_CACHED_MODELS", 2)
    monkeypatch.setattr(encoders, "_load_uncached", lambda spec: object())
    first = encoders.load_encoder("minilm")
    encoders.load_encoder("use-multilingual")
    assert encoders.load_encoder("minilm") is first  # a hit makes it the most recent
    encoders.load_encoder("tfhub:third")
    assert list(encoders._cache) == ["minilm", "tfhub:third"]


def test_a_cached_index_is_reopened_when_its_folder_is_replaced(tmp_path, monkeypatch):
    from semsim.search import load_index

    save_index(tmp_path / "idx", texts=("nurse", "chef"))
    first = load_index(tmp_path / "idx")
    assert load_index(tmp_path / "." / "idx") is first, "one folder, however it is spelled, is one cache entry"
    save_index(tmp_path / "idx", texts=("driver", "pilot", "teacher"))  # a rebuild by another process
    again = load_index(tmp_path / "idx")
    assert again is not first and sorted(again.texts()) == ["driver", "pilot", "teacher"]


def test_an_upload_preview_parses_only_the_rows_it_shows():
    import io

    from semsim.data import DatasetError, preview_csv, read_csv

    data = b"title,group\n" + b"nurse,1\n" * 5 + b"caf\xe9,2\n"  # row 7 is not UTF-8: never reached
    frame, lines = preview_csv(io.BytesIO(data), rows=3)
    assert frame["title"].tolist() == ["nurse"] * 3 and lines == 6
    with pytest.raises(DatasetError, match="not UTF-8"):  # the whole file is checked before it is used
        read_csv(io.BytesIO(data))
