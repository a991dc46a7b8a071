"""Training requests: one dataclass per task whose fields carry their defaults, help and limits.

The CLI options (`semsim train ...`) and the Train page's form are both made from these classes, and a
request travels from the page to the background run as JSON, so each default, help text and check lives
here once. Modelled on sentence-transformers' training-arguments dataclass. This module imports no
Keras: the app and `semsim --help` read it cheaply."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from semsim.names import DEFAULT_MODEL


class TrainingError(ValueError):
    """Bad training input, reported before any training starts."""


# -- field metadata -----------------------------------------------------------------------------
def option(default: Any = dataclasses.MISSING, help: str = "", *, label: str | None = None,
           choices: tuple[Any, ...] | None = None, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, flag: str | None = None,
           group: str = "hyperparameters", form: bool = True, step: float | None = None,
           fmt: str | None = None, choice_help: dict[str, str] | None = None, toggle: Any = None,
           repeat: bool = False) -> Any:
    """A request field with what the CLI and the form need to offer it, and the limits `check` enforces.

    `flag`: the CLI flag when it is not --field-name (a bool defaulting to True is offered as a
    --no-... flag); `group`: where the form puts it ("model", "data", "hyperparameters", "run");
    `form=False`: CLI only (resume and the like); `low_open`/`high_open`: the limit itself is excluded;
    `toggle`: the form offers an optional value as a checkbox that sets it to this value; `repeat`: a
    tuple of strings given by repeating the flag (argparse's append), such as --part."""
    metadata = {"help": help, "label": label, "choices": choices, "low": low, "high": high,
                "low_open": low_open, "high_open": high_open, "flag": flag, "group": group, "form": form,
                "step": step, "fmt": fmt, "choice_help": choice_help or {}, "toggle": toggle, "repeat": repeat}
    if isinstance(default, list | tuple | dict):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One request field as the CLI and the form see it."""

    name: str
    kind: type  # int, float, str, bool or tuple (a LOW,HIGH range)
    optional: bool  # None is allowed (means "not given")
    default: Any
    required: bool
    help: str
    label: str
    choices: tuple[Any, ...] | None
    low: float | None
    high: float | None
    low_open: bool
    high_open: bool
    flag: str
    group: str
    form: bool
    step: float | None
    fmt: str | None
    choice_help: dict[str, str]
    toggle: Any
    repeat: bool = False

    def limits_text(self) -> str:
        if self.low is None and self.high is None:
            return ""
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{low}, {high}{right}"


def _kind(annotation: Any) -> tuple[type, bool]:
    """(base type, whether None is allowed) of a field annotation such as `int | None`."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"tuple": tuple, "float": float, "int": int, "str": str,  # noqa: S307
                                       "bool": bool})
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(arguments) < len(typing.get_args(annotation))
        annotation = arguments[0]
    origin = typing.get_origin(annotation) or annotation
    return origin, optional


def fields(request: type | Any) -> list[FieldSpec]:
    """The fields of a request class (or object), in declaration order."""
    cls = request if isinstance(request, type) else type(request)
    specs = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        kind, optional = _kind(field.type)
        if field.default is not dataclasses.MISSING:
            default, required = field.default, False
        elif field.default_factory is not dataclasses.MISSING:
            default, required = field.default_factory(), False
        else:
            default, required = None, True
        flag = meta.get("flag") or ("--no-" if kind is bool and default is True else "--") + field.name.replace("_", "-")
        specs.append(FieldSpec(
            name=field.name, kind=kind, optional=optional, default=default, required=required,
            help=meta.get("help", ""), label=meta.get("label") or field.name.replace("_", " ").capitalize(),
            choices=meta.get("choices"), low=meta.get("low"), high=meta.get("high"),
            low_open=bool(meta.get("low_open")), high_open=bool(meta.get("high_open")), flag=flag,
            group=meta.get("group", "hyperparameters"), form=meta.get("form", True), step=meta.get("step"),
            fmt=meta.get("fmt"), choice_help=meta.get("choice_help") or {}, toggle=meta.get("toggle"),
            repeat=bool(meta.get("repeat"))))
    return specs


def field_spec(request: type | Any, name: str) -> FieldSpec:
    for spec in fields(request):
        if spec.name == name:
            return spec
    raise KeyError(name)


# -- the requests -------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class TrainingArguments:
    """The hyperparameters every training task shares (AdamW, warm-up then linear decay, early stopping)."""

    epochs: int = option(1, "passes over the training data", low=1, high=1000)
    batch_size: int = option(32, "rows per training step", low=2, high=4096)
    learning_rate: float = option(2e-5, "peak AdamW learning rate", low=0, high=1, low_open=True,
                                  high_open=True, step=1e-5, fmt="%.1e")
    warmup_ratio: float = option(0.1, "share of the steps spent warming the learning rate up", low=0, high=1,
                                 high_open=True, step=0.05)
    weight_decay: float = option(0.01, "AdamW weight decay", low=0, high=1, step=0.01, form=False)
    clipnorm: float = option(1.0, "gradient norm clip, per tensor", low=0, low_open=True, form=False)
    patience: int = option(2, "early stopping: epochs without a better validation score", low=1, high=100,
                           label="Patience (epochs)")
    seed: int = option(42, "seed of the shuffles, dropout and initialisation", low=0, form=False)
    validation_fraction: float = option(0.1, "share of the training data held out for validation when no "
                                        "validation data is given", low=0, high=0.5, low_open=True,
                                        high_open=True, form=False)
    max_steps_per_epoch: int | None = option(None, "stop each epoch after this many steps (default: the "
                                             "whole training set)", low=1)
    mixed_precision: str = option("auto", "bfloat16 compute with float32 weights; auto: on a GPU or a CPU "
                                          "with native bfloat16 (AVX512-BF16, AMX)",
                                  choices=("auto", "on", "off"), form=False)
    resume: bool = option(False, "continue an interrupted run from its checkpoint", group="run", form=False)
    overwrite: bool = option(False, "replace an existing model folder of this name", group="run",
                             label="Replace an existing model with this name")

    TASK: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise TrainingError naming the first field whose value is out of its limits."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is None:
                if spec.required or not spec.optional:
                    raise TrainingError(f"{spec.flag} is required")
                continue
            if spec.choices is not None and value not in spec.choices:
                raise TrainingError(f"{spec.flag} must be one of {', '.join(map(str, spec.choices))}, "
                                    f"not {value!r}")
            if spec.kind in (int, float) and not isinstance(value, bool):
                if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
                    raise TrainingError(f"{spec.flag} must be a number, not {value!r}")
                if spec.kind is int and value != int(value):
                    raise TrainingError(f"{spec.flag} must be a whole number, not {value!r}")
                too_low = spec.low is not None and (value <= spec.low if spec.low_open else value < spec.low)
                too_high = spec.high is not None and (value >= spec.high if spec.high_open else value > spec.high)
                if too_low or too_high:
                    raise TrainingError(f"{spec.flag} {value:g} is out of range {spec.limits_text()}")
            if spec.kind is str and spec.required and not str(value).strip():
                raise TrainingError(f"{spec.flag} must not be empty")
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve more than one field (subclasses add theirs)."""

    # JSON travels from the app to the background run; unknown keys are refused, not ignored.
    def to_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        names = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TrainingError(f"unknown request field(s) {', '.join(unknown)} for {cls.TASK or cls.__name__}")
        missing = [spec.flag for spec in names.values() if spec.required and spec.name not in values]
        if missing:
            raise TrainingError(f"the request lacks {', '.join(missing)}")
        converted = {k: tuple(v) if names[k].kind is tuple and v is not None else v for k, v in values.items()}
        return cls(**converted)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps({"task": self.TASK, "request": self.to_dict()}, indent=2), encoding="utf-8")

    @classmethod
    def read_json(cls, path: str | Path) -> Any:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrainingError(f"cannot read the request file {path}: {exc}") from None
        if not isinstance(document, dict) or document.get("task") != cls.TASK or not isinstance(
                document.get("request"), dict):
            raise TrainingError(f"{path} is not a {cls.TASK} training request")
        return cls.from_dict(document["request"])

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)


OBJECTIVE_HELP = {
    "cosent": "graded pairs: every pair ranked above another by score should be ranked above by cosine",
    "angular-mse": "graded pairs: angular similarity regressed onto the score (the classic recipe)",
    "mnrl": "positive pairs with in-batch negatives (graded data: only its high-scoring pairs)",
}


@dataclasses.dataclass(kw_only=True)
class PairTrainingRequest(TrainingArguments):
    """`semsim train pairs`: a Siamese bi-encoder on (text_a, text_b[, score]) pairs."""

    TASK: typing.ClassVar[str] = "pairs"

    base: str = option(DEFAULT_MODEL, "base encoder spec", group="model", form=False)  # the page has a picker
    data: str | None = option(None, "pairs CSV (text_a, text_b[, score]; mnrl: text_a, text_b[, negative]) or a "
                              "bundled name such as job-title-pairs: the first part, validated on",
                              group="data", form=False)
    out: str = option(help="folder for the tuned model", group="run", form=False)
    objective: str = option("cosent", "training objective of --data", choices=tuple(OBJECTIVE_HELP), group="data",
                            choice_help=OBJECTIVE_HELP)
    parts: tuple[str, ...] = option((), "another dataset trained alongside, in batches of its own with its own "
                                    "objective: DATASET:OBJECTIVE[:WEIGHT], WEIGHT = the share of its rows an "
                                    "epoch draws (default 1); repeat for more, e.g. --part job-title-groups:mnrl "
                                    "--part sts-b:cosent:0.5", flag="--part", repeat=True, group="data",
                                    label="More training parts, one DATASET:OBJECTIVE[:WEIGHT] a line")
    recipe: bool = option(True, "add the parts a bundled --data is best trained with (job-title-pairs: "
                          "job-title-groups positives with hierarchy-aware hard negatives, mnrl), chosen on "
                          "validation", flag="--no-recipe", group="data",
                          label="Use the dataset's recommended recipe (chosen on validation data)")
    rehearsal: bool = option(True, "forgetting guard: train on general-domain scored pairs (--rehearsal-data) "
                             "alongside, in batches of their own, for English base encoders",
                             flag="--no-rehearsal", group="data",
                             label="Rehearse general similarity (STS-B train pairs, in batches of their own)")
    rehearsal_data: str = option("sts-b", "the rehearsal pairs: a scored CSV or a bundled name", group="data",
                                 form=False)
    rehearsal_weight: float = option(1.0, "share of the rehearsal rows an epoch draws", low=0, high=100,
                                     low_open=True, group="data", form=False)
    rehearsal_score_range: tuple[float, float] | None = option(None, "LOW,HIGH of the rehearsal scores "
                                                               "(default: the bundled range, else "
                                                               "--score-range)", group="data", form=False)
    validation: str | None = option(None, "validation CSV or bundled name (default: a bundled --data's "
                                    "validation split, else split off --validation-fraction)", group="data",
                                    form=False)
    validation_rows: int | None = option(None, "evaluate on a seeded sample of this many validation rows "
                                         "(default: all)", low=2, group="data",
                                         label="Validation rows (sample of the validation split)")
    test: str | None = option(None, "test CSV or bundled name, evaluated for base and tuned in the model card",
                              group="data", form=False)
    score_range: tuple[float, float] = option((0.0, 1.0), "LOW,HIGH of the scores in --data and in CSV parts",
                                              group="data", form=False)
    evaluate_sts: bool = option(True, "forgetting guard in the model card: STS-B test and ESCO retrieval for "
                                "base and tuned", flag="--no-sts", group="data", form=False)
    guard_rows: int | None = option(None, "guard on a seeded sample of this many STS-B test pairs and ESCO "
                                    "queries (default: all)", low=2, group="data", form=False)
    merge_alpha: float = option(1.0, "keep base + ALPHA * (tuned - base) (WiSE-FT); below 1 forgets less",
                                low=0, high=1, low_open=True, step=0.05,
                                label="Keep this share of the update (WiSE-FT merge with the base)")
    matryoshka: str | None = option(None, "Matryoshka dimensions, e.g. 384,256,128,64: the loss is applied to "
                                    "the embedding cut to each (first N dimensions, re-normalised) and summed, "
                                    "so a prefix of the vector can be indexed on its own (--dim)",
                                    label="Matryoshka dimensions (comma-separated, e.g. 384,256,128,64)")

    @property
    def matryoshka_dims(self) -> tuple[int, ...]:
        from semsim.matryoshka import parse_dims

        return parse_dims(self.matryoshka)

    @property
    def unscored(self) -> bool:
        return self.objective == "mnrl"

    def _check_together(self) -> None:
        for name in ("score_range", "rehearsal_score_range"):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and value[1] > value[0]):
                raise TrainingError(f"--{name.replace('_', '-')} needs LOW,HIGH with HIGH > LOW, not {value!r}")
        if not (self.data or self.parts):
            raise TrainingError("nothing to train on: give --data, or one --part or more")
        if self.rehearsal and not str(self.rehearsal_data).strip():
            raise TrainingError("--rehearsal-data must not be empty (or pass --no-rehearsal)")
        from semsim.matryoshka import DimensionError

        try:
            self.matryoshka_dims  # noqa: B018 (parsed to check it)
        except DimensionError as exc:
            raise TrainingError(f"--matryoshka: {exc}") from None


CLASSIFIER_MODES = {"full": "fine-tune the encoder too", "frozen": "frozen encoder, train the head"}


@dataclasses.dataclass(kw_only=True)
class ClassifierTrainingRequest(TrainingArguments):
    """`semsim train sentiment`: encoder + dropout + dense head on (text, label) rows."""

    TASK: typing.ClassVar[str] = "sentiment"

    base: str = option(DEFAULT_MODEL, "base encoder spec", group="model", form=False)  # the page has a picker
    data: str = option(help="labelled CSV (text, label) or a bundled name such as rotten-tomatoes",
                       group="data", form=False)
    out: str = option(help="folder for the tuned model", group="run", form=False)
    learning_rate: float = option(3e-5, "peak AdamW learning rate", low=0, high=1, low_open=True,
                                  high_open=True, step=1e-5, fmt="%.1e")
    mode: str = option("full", "full: fine-tune the encoder too; frozen: train the head on fixed vectors",
                       choices=tuple(CLASSIFIER_MODES), group="data", choice_help=CLASSIFIER_MODES)
    head_warmup_epochs: int = option(0, "full mode: first fit the new head alone on frozen vectors for N "
                                     "epochs (LP-FT)", low=0, high=50, label="Head warm-up epochs (LP-FT)")
    dropout: float = option(0.1, "dropout before the classifier's dense layer", low=0, high=1, high_open=True,
                            form=False)
    validation: str | None = option(None, "validation CSV or bundled name (default: split off "
                                    "--validation-fraction)", group="data", form=False)
    validation_rows: int | None = option(None, "evaluate on a seeded sample of this many validation rows "
                                         "(default: all)", low=2, group="data",
                                         label="Validation rows (sample of the validation split)")
    test: str | None = option(None, "test CSV or bundled name, evaluated in the model card", group="data",
                              form=False)

    def _check_together(self) -> None:
        if self.head_warmup_epochs and self.mode != "full":
            raise TrainingError("head warm-up (LP-FT) applies to full fine-tuning only; a frozen run trains "
                                "just the head")


PAIR_ARCHITECTURES = {"cross": "cross-encoder: one encoder reads the two texts together ([CLS] a [SEP] b [SEP])",
                      "bi": "bi-encoder baseline: each text embedded alone, a head on [u, v, |u - v|, u * v]"}
PAIR_HEADS = {"auto": "classification for labelled pairs, regression for scored pairs",
              "classification": "one class per pair (text_a, text_b, label)",
              "regression": "a score per pair (text_a, text_b, score), predicted in --score-range"}


USE_CROSS_REFUSAL = (
    "use-multilingual cannot be a cross-encoder: its encoder is a stack of n-gram convolutions (windows of at "
    "most 5 tokens) summed over the tokens, with no attention, no segment ids and no separator token, so a "
    "joined pair would become little more than the sum of the two texts' features, with no way to compare one "
    "text against the other. Use --architecture bi (the bi-encoder baseline: a head on [u, v, |u - v|, u * v]), "
    "which suits it.")


def cross_encoder_base_refusal(base: str) -> str | None:
    """Why `base` cannot be a cross-encoder, told from its spec (and a folder's semsim.json) alone."""
    source = None
    if base == "use-multilingual":
        source = "use"
    elif base.startswith("tfhub:"):
        source = "tfhub"
    elif (Path(base).expanduser() / "semsim.json").is_file():
        try:
            source = json.loads((Path(base).expanduser() / "semsim.json").read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError, AttributeError):
            source = None
    if source == "use":
        return USE_CROSS_REFUSAL
    if source == "tfhub":
        return (f"{base} cannot be a cross-encoder: a TF Hub SavedModel takes one text per input and exposes no "
                f"pair preprocessing. Use a keras-hub backbone (minilm, keras-hub:...) or --architecture bi.")
    return None


@dataclasses.dataclass(kw_only=True)
class PairClassifierTrainingRequest(TrainingArguments):
    """`semsim train pair-classifier`: a cross-encoder (or the bi-encoder baseline) with a classification or
    regression head on (text_a, text_b, label | score) pairs."""

    TASK: typing.ClassVar[str] = "pair-classifier"

    base: str = option(DEFAULT_MODEL, "base encoder spec", group="model", form=False)
    data: str = option(help="pairs CSV (text_a, text_b, label or score), an SNLI/MultiNLI .jsonl, or a bundled "
                            "name such as job-title-relations, sts-b-bands or sts-b", group="data", form=False)
    out: str = option(help="folder for the trained pair classifier", group="run", form=False)
    architecture: str = option("cross", "cross: the pair read together by one encoder; bi: each text "
                               "embedded alone, a head on [u, v, |u - v|, u * v]",
                               choices=tuple(PAIR_ARCHITECTURES), group="model", choice_help=PAIR_ARCHITECTURES)
    head: str = option("auto", "classification (labels) or regression (scores); auto: from the data",
                       choices=tuple(PAIR_HEADS), group="data", choice_help=PAIR_HEADS)
    mode: str = option("full", "full: fine-tune the encoder too; frozen: train the head on fixed vectors",
                       choices=tuple(CLASSIFIER_MODES), group="data", choice_help=CLASSIFIER_MODES)
    dropout: float = option(0.1, "dropout before the head's dense layer", low=0, high=1, high_open=True,
                            form=False)
    max_length: int = option(128, "cross-encoder: tokens of the joined pair; past it the longer text is cut "
                             "first", low=8, high=512)
    validation: str | None = option(None, "validation CSV/.jsonl or bundled name (default: a bundled --data's "
                                    "validation split, else split off --validation-fraction)", group="data",
                                    form=False)
    validation_rows: int | None = option(None, "evaluate on a seeded sample of this many validation rows "
                                         "(default: all)", low=2, group="data",
                                         label="Validation rows (sample of the validation split)")
    test: str | None = option(None, "test CSV/.jsonl or bundled name, evaluated in the model card", group="data",
                              form=False)
    score_range: tuple[float, float] | None = option(None, "regression: LOW,HIGH of the scores (default: a "
                                                     "bundled dataset's range, else 0,1)", group="data",
                                                     form=False)
    label_order: str | None = option(None, "classification: the labels from least to most related, "
                                     "comma-separated; rerank scores a pair by its expected place in this "
                                     "order (default: known label sets in their order, else sorted)",
                                     group="data", form=False)

    def labels_in_order(self) -> list[str] | None:
        if not self.label_order:
            return None
        return [part.strip() for part in self.label_order.split(",")]

    def _check_together(self) -> None:
        if self.score_range is not None and not (len(self.score_range) == 2 and self.score_range[1] > self.score_range[0]):
            raise TrainingError(f"--score-range needs LOW,HIGH with HIGH > LOW, not {self.score_range!r}")
        order = self.labels_in_order()
        if order is not None and (not all(order) or len(set(order)) != len(order) or len(order) < 2):
            raise TrainingError(f"--label-order needs two or more distinct labels, comma-separated, not "
                                f"{self.label_order!r}")
        if self.architecture == "cross":
            refusal = cross_encoder_base_refusal(self.base)
            if refusal:
                raise TrainingError(refusal)


REQUESTS: dict[str, type[TrainingArguments]] = {
    PairTrainingRequest.TASK: PairTrainingRequest,
    ClassifierTrainingRequest.TASK: ClassifierTrainingRequest,
    PairClassifierTrainingRequest.TASK: PairClassifierTrainingRequest,
}


def form_fields(request: type | Any, group: str | None = None) -> Iterator[FieldSpec]:
    """The fields a page form offers, optionally of one group."""
    for spec in fields(request):
        if spec.form and (group is None or spec.group == group):
            yield spec
