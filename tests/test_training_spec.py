"""Training requests: one dataclass per task is the only home of each default, help text and check;
the CLI options are made from it and a request survives its JSON trip to a background run."""

from __future__ import annotations

import dataclasses
import json

import pytest

from semsim.training.spec import (
    REQUESTS,
    ClassifierTrainingRequest,
    PairTrainingRequest,
    TrainingError,
    fields,
)

NEEDED = {"data": "job-title-pairs", "out": "out"}


@pytest.mark.parametrize("task", sorted(REQUESTS))
def test_cli_defaults_are_the_dataclass_defaults(task):
    """Parse `semsim train TASK` with only the required options: every field comes out at its default."""
    from semsim.cli import build_parser
    from semsim.cli.request_options import request_from_args

    args = build_parser().parse_args(["train", task, "--data", "x.csv", "--out", "m"])
    request = request_from_args(REQUESTS[task], args)
    expected = REQUESTS[task](data="x.csv", out="m")
    assert request == expected
    for spec in fields(REQUESTS[task]):
        if not spec.required and spec.name != "data":  # --data is optional for pairs (--part may replace it)
            assert getattr(request, spec.name) == spec.default, spec.name


def test_every_field_has_a_cli_flag_and_help():
    from semsim.cli import build_parser

    parser = build_parser()
    for task, request in REQUESTS.items():
        sub = parser._subparsers._group_actions[0].choices["train"]._subparsers._group_actions[0].choices[task]
        flags = {flag for action in sub._actions for flag in action.option_strings}
        for spec in fields(request):
            assert spec.flag in flags, (task, spec.flag)
            assert spec.help, (task, spec.name)


def test_cli_values_reach_the_request():
    from semsim.cli import build_parser
    from semsim.cli.request_options import request_from_args

    args = build_parser().parse_args(["train", "pairs", "--data", "d.csv", "--out", "m", "--epochs", "3",
                                      "--learning-rate", "3e-5", "--no-sts", "--score-range", "0,5",
                                      "--max-steps-per-epoch", "7", "--rehearsal-data", "sts-b"])
    request = request_from_args(PairTrainingRequest, args)
    assert (request.epochs, request.learning_rate, request.evaluate_sts, request.score_range,
            request.max_steps_per_epoch, request.rehearsal_data) == (3, 3e-5, False, (0.0, 5.0), 7, "sts-b")


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, "--epochs 0 is out of range"),
    ({"batch_size": 1}, "--batch-size 1 is out of range"),
    ({"learning_rate": 1.0}, "--learning-rate 1 is out of range"),
    ({"warmup_ratio": 1.0}, "--warmup-ratio 1 is out of range"),
    ({"validation_fraction": 0.5}, "--validation-fraction 0.5 is out of range"),
    ({"objective": "triplet"}, "--objective must be one of cosent, angular-mse, mnrl"),
    ({"merge_alpha": 1.5}, "--merge-alpha 1.5 is out of range"),
    ({"score_range": (1.0, 1.0)}, "--score-range needs LOW,HIGH"),
    ({"data": None}, "nothing to train on: give --data, or one --part"),
    ({"rehearsal_data": " "}, "--rehearsal-data must not be empty"),
    ({"epochs": 1.5}, "--epochs must be a whole number"),
    ({"learning_rate": float("nan")}, "--learning-rate must be a number"),
    ({"out": "  "}, "--out must not be empty"),
])
def test_bad_values_are_refused_with_the_flag_named(changes, message):
    with pytest.raises(TrainingError, match=message.replace("(", r"\(")):
        PairTrainingRequest(**{**NEEDED, **changes})


def test_classifier_request_has_its_own_defaults_and_checks():
    request = ClassifierTrainingRequest(data="rotten-tomatoes", out="m")
    assert request.learning_rate == 3e-5 and request.mode == "full"
    assert PairTrainingRequest(**NEEDED).learning_rate == 2e-5
    with pytest.raises(TrainingError, match="full fine-tuning only"):
        ClassifierTrainingRequest(data="d", out="m", mode="frozen", head_warmup_epochs=3)


def test_json_round_trip_and_refusals(tmp_path):
    request = PairTrainingRequest(**NEEDED, epochs=3, score_range=(0.0, 5.0), max_steps_per_epoch=10)
    path = tmp_path / "request.json"
    request.write_json(path)
    assert PairTrainingRequest.read_json(path) == request
    with pytest.raises(TrainingError, match="not a sentiment training request"):
        ClassifierTrainingRequest.read_json(path)
    document = json.loads(path.read_text())
    document["request"]["learning_rte"] = 1e-3
    path.write_text(json.dumps(document))
    with pytest.raises(TrainingError, match="unknown request field"):
        PairTrainingRequest.read_json(path)
    document["request"].pop("learning_rte")
    document["request"]["epochs"] = -1  # a hand-edited file is checked like any other request
    path.write_text(json.dumps(document))
    with pytest.raises(TrainingError, match="--epochs -1"):
        PairTrainingRequest.read_json(path)
    path.write_text("{not json")
    with pytest.raises(TrainingError, match="cannot read the request file"):
        PairTrainingRequest.read_json(path)


def test_request_file_on_the_cli_excludes_other_options(tmp_path):
    from semsim.cli import build_parser
    from semsim.cli.request_options import request_from_args

    path = tmp_path / "request.json"
    PairTrainingRequest(**NEEDED, epochs=2).write_json(path)
    parser = build_parser()
    assert request_from_args(PairTrainingRequest, parser.parse_args(
        ["train", "pairs", "--request", str(path)])).epochs == 2
    with pytest.raises(TrainingError, match="drop --epochs"):
        request_from_args(PairTrainingRequest, parser.parse_args(
            ["train", "pairs", "--request", str(path), "--epochs", "4"]))
    with pytest.raises(TrainingError, match="required: --out"):
        request_from_args(PairTrainingRequest, parser.parse_args(["train", "pairs"]))


def test_requests_are_plain_dataclasses_with_help_on_every_field():
    for request in REQUESTS.values():
        assert dataclasses.is_dataclass(request)
        assert all(spec.help for spec in fields(request))
