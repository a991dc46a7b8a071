"""The Ray engine against the local one on a local Ray cluster (127.0.0.1 only): same ids, same vectors; a killed
worker retried without duplicates; shard sets checked by id; a failed run leaves no half-written index."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1 only; read when Ray is imported

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from index import VectorIndexError, open_index
from index.shards import ShardSet, write_shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus_texts(n: int = 300, seed: int = 0) -> list[str]:
    """Job-title-like texts from the tiny model's words, with repeats, padding and empty cells mixed in."""
    from tests.tiny_models import WORDS

    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, int(rng.integers(1, 6)))) for _ in range(n)]
    texts[10], texts[20], texts[30] = texts[5], "", f"  {texts[7]}  "  # a repeat, an empty text, a padded repeat
    return texts


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs, started as the engine starts one (127.0.0.1 only, this checkout importable)."""
    from semsim.ray_engine import RayOptions, connect

    ray = connect(RayOptions(num_cpus=2))
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def tiny_spec(tiny_bert_dir):
    return f"keras-hub:{tiny_bert_dir}"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_ray_servers_listen_on_loopback_only(ray_cluster):
    node = ray_cluster.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"


def test_index_build_on_ray_matches_local_and_survives_a_killed_worker(ray_cluster, tiny_spec, tmp_path):
    """One run, two properties: the ids and vectors the local engine gives, and a worker killed right after
    writing a shard (its batch retried on a restarted actor) leaving every row exactly once."""
    from semsim.corpus_index import build_index
    from semsim.encoders import load_encoder
    from semsim.ray_engine import RayOptions, build_index_on_ray

    texts = corpus_texts()
    csv = tmp_path / "titles.csv"
    pd.DataFrame({"title": texts, "group": [f"g{i % 7}" for i in range(len(texts))]}).to_csv(csv, index=False)
    local = build_index(load_encoder(tiny_spec), csv, column="title", out_dir=tmp_path / "local", kind="flat",
                        extra_columns=["group"])
    marker = tmp_path / "killed"
    options = RayOptions(actors=2, batch_size=40, fault={"marker": str(marker), "id": 150, "when": "after-write"})
    remote = build_index_on_ray(tiny_spec, csv, "title", tmp_path / "ray", kind="flat", options=options,
                                extra_columns=["group"], shard_dir=tmp_path / "shards")
    assert marker.exists(), "the fault was not injected: this test would prove nothing"
    assert (remote["count"], remote["empty_dropped"], remote["duplicates_dropped"]) == \
        (local["count"], local["empty_dropped"], local["duplicates_dropped"])
    assert local["empty_dropped"] == 1 and local["duplicates_dropped"] >= 2

    a, b = open_index(tmp_path / "local"), open_index(tmp_path / "ray")
    rows_a, rows_b = a.rows().to_pandas(), b.rows().to_pandas().sort_values("id").reset_index(drop=True)
    assert rows_b["id"].tolist() == list(range(len(rows_b)))  # no duplicates, none lost
    pd.testing.assert_frame_equal(rows_a.sort_values("id").reset_index(drop=True)[["id", "text", "group"]],
                                  rows_b[["id", "text", "group"]])
    ids_a, vectors_a = a.index.vectors()
    ids_b, vectors_b = b.index.vectors()
    vectors_a, vectors_b = vectors_a[np.argsort(ids_a)], vectors_b[np.argsort(ids_b)]
    assert cosines(vectors_a, vectors_b).min() >= 0.9999
    manifest = ShardSet(tmp_path / "shards")
    assert len(manifest) == len(rows_b)  # the retried batch rewrote its shard instead of adding one
    assert b.meta["extra"]["engine"] == "ray"


def test_embed_on_ray_reads_a_parquet_folder_and_matches_local(ray_cluster, tiny_spec, tmp_path):
    from semsim.encoders import load_encoder
    from semsim.ray_engine import RayOptions, embed_to_npy_on_ray

    texts = [t.strip() or "nurse" for t in corpus_texts(seed=1)]
    folder = tmp_path / "corpus"
    folder.mkdir()
    pd.DataFrame({"text": texts[:170]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"text": texts[170:]}).to_parquet(folder / "part-1.parquet")
    summary = embed_to_npy_on_ray(tiny_spec, folder, "text", tmp_path / "v.npy", RayOptions(actors=1, batch_size=64),
                                  dim=8)
    remote = np.load(tmp_path / "v.npy")
    from semsim.matryoshka import truncate

    local = truncate(load_encoder(tiny_spec).encode(texts), 8)
    assert summary["rows"] == len(texts) and remote.shape == (len(texts), 8)
    assert cosines(local, remote).min() >= 0.9999  # row i is text i: ids are row numbers across both files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v.npy")]  # scratch shards cleaned up


def test_ray_actors_serve_covered_models_with_onnx_runtime_and_match_keras(ray_cluster, tmp_path, monkeypatch):
    """A model with a Hugging Face tokenizer.json is embedded by ONNX Runtime in the actors (its graph made
    once, by the first actor that needs it); the vectors are the Keras model's."""
    from semsim.encoders import load_encoder, serving
    from semsim.encoders.serving import load_for_inference
    from semsim.ray_engine import RayOptions, embed_to_npy_on_ray
    from tests.tiny_models import make_hf_bert_folder

    # One of our own model folders (as a tuned minilm is): its graph goes in the folder, where actors find it.
    folder = tmp_path / "tuned"
    folder.mkdir()
    load_encoder(f"keras-hub:{make_hf_bert_folder(tmp_path / 'hf')}", cache=False).save(folder)
    spec = str(folder)
    assert isinstance(load_for_inference(spec, threads=1), serving.ServingEncoder)  # makes the graph, once
    monkeypatch.setenv("SEMSIM_RUNTIME", "keras")
    assert not isinstance(load_for_inference(spec, threads=1, cache=False), serving.ServingEncoder)
    monkeypatch.delenv("SEMSIM_RUNTIME")
    texts = ["data scientist", "staff nurse", "HGV driver", "Ingénieur logiciel"] * 20
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "c.parquet")
    summary = embed_to_npy_on_ray(spec, tmp_path / "c.parquet", "text", tmp_path / "v.npy",
                                  RayOptions(actors=1, batch_size=16))
    remote = np.load(tmp_path / "v.npy")
    assert summary["rows"] == len(texts)
    assert cosines(load_encoder(spec, cache=False).encode(texts), remote).min() >= 0.9999


# -- without Ray: the shard checks and what a failed run leaves ----------------------------------------
def _shard(folder, ids, dim=4):
    ids = np.asarray(ids)
    vectors = np.random.default_rng(int(ids[0])).standard_normal((len(ids), dim)).astype(np.float32)
    return write_shard(folder, ids, vectors, pa.table({"text": [f"t{i}" for i in ids]}))


def test_shard_check_drops_a_retried_copy_and_refuses_lost_or_overlapping_rows(tmp_path):
    _shard(tmp_path, range(0, 100))
    _shard(tmp_path, range(100, 150))
    _shard(tmp_path, range(100, 120))  # a retry that split its batch differently: a copy, dropped
    shards = ShardSet(tmp_path).check(expected_ids=np.arange(150))
    assert shards.dropped == ["shard-000000000100-000000000119.parquet"]
    assert sum(len(ids) for ids, _, _ in shards) == 150
    with pytest.raises(VectorIndexError, match="1 rows lost"):
        ShardSet(tmp_path).check(expected_ids=np.arange(151))
    _shard(tmp_path, range(140, 160))  # shares only some ids: cannot be resolved safely
    with pytest.raises(VectorIndexError, match="shares 10 of its 20 ids"):
        ShardSet(tmp_path).check(expected_ids=np.arange(160))


def test_a_run_that_loses_rows_writes_no_index_and_keeps_the_old_one(tmp_path, monkeypatch):
    from semsim import ray_engine
    from semsim.corpus_index import build_index

    class Fake:
        dim = 4
        spec = name = fingerprint = "fake"

        def encode(self, texts, batch_size=64, progress=None):
            return np.ones((len(texts), 4), dtype=np.float32)

    build_index(Fake(), ["a", "b"], column="text", out_dir=tmp_path / "out", kind="flat")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())

    def half_a_run(model, corpus, column, shard_dir, *args, **kwargs):
        shard_dir.mkdir(parents=True)
        _shard(shard_dir, range(0, 50))  # the shard with ids 50..99 never arrived
        return {"rows": 100, "encoder": {"spec": "fake", "dim": 4}, "files": ["x"]}

    monkeypatch.setattr(ray_engine, "embed_corpus_on_ray", half_a_run)
    with pytest.raises(VectorIndexError, match="50 rows lost"):
        ray_engine.build_index_on_ray("fake", "x.csv", "text", tmp_path / "out", kind="flat", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    assert len(open_index(tmp_path / "out")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # scratch shards and spill files removed


def test_the_local_engine_needs_no_ray_and_ray_missing_is_said_plainly(monkeypatch):
    import subprocess

    code = ("import sys; import semsim.ray_engine, semsim.cli.index, semsim.corpus_index; "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True).returncode == 0
    from semsim import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ray_engine.EngineError, match=r"pip install 'ray\[data\]==2.60.0'"):
        ray_engine.import_ray()


RACE = """
import sys, threading
import fsspec
if sys.argv[1] == "settled":
    from semsim.ray_engine import settle_fsspec_http
    settle_fsspec_http()
plain = []
for _ in range(50):
    start = threading.Barrier(16)
    def probe():
        start.wait()
        try:
            from fsspec.implementations.http import HTTPFileSystem  # noqa: F401
        except ModuleNotFoundError:
            pass  # what Ray takes as "not the HTTP file system"
        except ImportError as e:
            plain.append(e)
    threads = [threading.Thread(target=probe) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
print(len(plain))
"""


def test_threads_probing_fsspec_http_never_see_a_half_imported_module():
    # Ray Data's file listing threads import fsspec's HTTP module to ask what a file system is; without
    # aiohttp, racing imports gave a plain ImportError that failed a CI run. Settled, none can.
    import importlib.util
    import subprocess

    if importlib.util.find_spec("aiohttp") is not None:
        pytest.skip("aiohttp is installed: the HTTP module imports, there is no failed import to race on")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    counts = {how: int(subprocess.run([sys.executable, "-c", RACE, how], cwd=ROOT, env=env, capture_output=True,
                                      text=True, check=True).stdout.split()[-1])
              for how in ("raw", "settled")}
    assert counts["settled"] == 0, counts
    if counts["raw"] == 0:  # the race is timing-bound; seen here in about 1 import in 4
        pytest.skip(f"the race did not show without the guard on this machine, so nothing was shown: {counts}")


def test_input_blocks_give_every_actor_work_and_never_split_a_batch():
    from semsim.ray_engine import input_blocks

    assert input_blocks(50_000, 2, 256) == 13  # 196 batches: 16 a block
    assert input_blocks(1_000, 2, 256) == 4  # 4 batches: one each, both actors busy
    assert input_blocks(300, 4, 20) == 15  # 15 batches < 4 per actor: one block a batch
    assert input_blocks(10, 8, 256) == 1
    assert input_blocks(10_000_000, 2, 256) == -(-39_063 // 16)


def test_select_rows_cuts_a_block_into_consecutive_pieces():
    from semsim.ray_engine import select_rows

    table = pa.table({"title": [f"t{i}" for i in range(10)]})
    keep = np.array([i != 3 for i in range(10)])
    pieces = select_rows(table, keep, 100, "title", [], pieces=4)
    assert [p.num_rows for p in pieces] == [2, 2, 2, 3]  # none empty
    assert pa.concat_tables(pieces).to_pydict() == select_rows(table, keep, 100, "title", []).to_pydict()
    assert pa.concat_tables(pieces).column("id").to_pylist() == list(range(100, 109))


def test_a_single_file_corpus_is_embedded_by_every_actor(ray_cluster, tiny_spec, tmp_path):
    # A 50,000-title CSV reached the actor pool as one block, and one actor did all the work (bench/scale.py
    # embed). Small files are split by Ray's own read planning too, so this checks the outcome: both work.
    from semsim.ray_engine import RayOptions, embed_corpus_on_ray

    csv = tmp_path / "titles.csv"
    pd.DataFrame({"text": [t.strip() or "nurse" for t in corpus_texts(seed=2)]}).to_csv(csv, index=False)
    summary = embed_corpus_on_ray(tiny_spec, csv, "text", tmp_path / "shards", RayOptions(actors=2, batch_size=20))
    assert summary["rows"] == 300 == sum(s["rows"] for s in summary["shards"])
    assert len(summary["workers"]) == 2, summary["workers"]
