"""The JSON output's schema (`gradcli --json-schema`, README "JSON output") describes every JSON
document gradcli prints: the ones below and, last in the session, every one the other tests made."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

import json_outputs  # noqa: E402
from gradcli.cli import main  # noqa: E402
from gradcli.schema import SCHEMA  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def problems(doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def run_json(capsys, *args) -> dict:
    rc = main([*args, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc in (0, 1, 2)
    return doc


def test_schema_is_draft_2020_12_and_printed_by_the_command(capsys):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert main(["--json-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


CASES = [
    ("grad", "||y - X@theta||^2 wrt theta"),
    ("grad", "||y - X@theta||^2 wrt theta", "-d", str(SAMPLES / "least_squares.npz"), "--check"),
    ("grad", "R'@R wrt R", "-s", "R=3x2", "--random"),
    ("grad", "sum(tanh(A@tanh(A@tanh(A@x)))) wrt x, A", "-s", "A=3x3", "--random"),
    ("grad", "x'@A@x wrt x", "--steps"),
    ("grad", "x'@A@x wrt x", "--claim", "2*A@x"),
    ("grad", "sum(log(x)) wrt x", "-s", "x=3", "--random", "--allow-nonfinite"),
    ("hess", "x'@A@y wrt x, y", "-s", "A=2x3", "--random", "--check"),
    ("hess", "sum(exp(x)) wrt x", "--steps"),
    ("grad", "X'@X wrt X", "-s", "X=3x2", "--random", "--layout", "vec"),
    ("grad", "sum(X, 0) wrt X", "-s", "X=3x2", "--random", "--layout", "vec"),  # no Kronecker form
    ("hess", "tr(X'@A@X) wrt X", "-s", "X=3x2", "--random", "--layout", "vec"),
    ("hess", "x'@A@x wrt x", "--direction", "x=v", "-s", "A=3x3", "--random", "--check"),  # issue 17
    ("grad", "tanh(W@x) wrt W, x", "--direction", "W=V", "--direction", "x=u", "-s", "W=2x3", "--random"),
    ("grad", "logsumexp(x) wrt x", "--order", "3", "-s", "x=3", "--random", "--check"),
    ("hess", "tanh(W@x) wrt x", "-s", "W=2x3", "--random", "--check"),
    ("shape", "0.5*sum((y - h(X@Theta))^2) wrt Theta", "-s", "X=M,in", "-s", "Theta=in,out", "-s", "y=M,out"),
    ("check", str(SAMPLES)),
    ("check", str(SAMPLES / "formulas.gradcli")),
    ("grad", "x +* y wrt x"),  # parse error
    ("grad", "A@x wrt x where A: (2, 3), x: (2)"),  # shape error
    ("grad", "x wrt x", "--layout", "sideways"),  # usage error
    ("grad", "x wrt x", "--no-such-option"),  # usage error from the option parser
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a)[:60])
def test_outputs_validate(capsys, args):
    doc = run_json(capsys, *args)
    assert problems(doc) == []


def test_the_schema_rejects_what_gradcli_never_prints(capsys):
    doc = run_json(capsys, "grad", "||y - X@theta||^2 wrt theta", "-d", str(SAMPLES / "least_squares.npz"))
    assert problems(doc) == []
    for change in (lambda d: d["derivatives"][0].pop("check"),
                   lambda d: d["derivatives"][0].update(value="1.0"),
                   lambda d: d["derivatives"][0].update(kind="gradients"),
                   lambda d: d.update(shape=[-1]),
                   lambda d: d["symbols"]["X"].update(source="guessed"),
                   lambda d: d.pop("notes")):
        broken = copy.deepcopy(doc)
        change(broken)
        assert problems(broken), broken
    assert problems({"error": {"kind": "usage", "message": "x"}})  # line and column are always there


def test_every_json_output_of_the_session_validates():
    """Runs last (conftest): every JSON document any test of this session made."""
    assert json_outputs.SEEN, "no JSON output was recorded"
    bad = [(where, problems(doc)) for where, doc in json_outputs.SEEN if problems(doc)]
    assert not bad, bad[:5]
