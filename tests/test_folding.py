"""Constant folding never makes a constant the language cannot spell: a product or sum of
literals that would overflow (`1e200*1e200`, `1e308*10`) stays as written, the printed formula
re-parses with the same symbols, and evaluating it reports the overflow as a math error (exit 1)
unless --allow-nonfinite asks for IEEE results."""

import json

import numpy as np
import pytest

import gradcli
from gradcli.cli import main

OVERFLOWING = ["sum(x*1e200*1e200)", "sum(1e308*10*x)", "x'@A@x + 1e308*10", "sum(x)/1e-300/1e-300",
               "sum(x) + 1e308 + 1e308", "sum(-1e308*10*x)", "1e200*1e200*sum(x) + 1e200*1e300*sum(x)"]


def _run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("text", OVERFLOWING)
def test_printed_formulas_reparse_with_the_same_symbols(text):
    p = gradcli.analyze(text + " wrt x", shapes={"x": (3,), "A": (3, 3)})
    printed = [p.text("ascii")] + [d.formula("ascii") for d in p.derivatives()]
    for formula in printed:
        assert "inf" not in formula and "nan" not in formula, formula
        again = gradcli.analyze(formula, shapes={"x": (3,), "A": (3, 3)})
        assert set(again.symbols) <= {"x", "A"}, formula


@pytest.mark.parametrize("text", OVERFLOWING)
def test_overflow_is_a_math_error(capsys, text):
    rc, out, err = _run(capsys, "grad", text + " wrt x", "-s", "x=2", "-s", "A=2x2", "--random")
    assert rc == 1 and out == "" and "overflow" in err and "--allow-nonfinite" in err
    assert "Traceback" not in err


def test_allow_nonfinite_gives_ieee_results(capsys):
    rc, out, _ = _run(capsys, "grad", "sum(x*1e200*1e200) wrt x", "-s", "x=2", "--random", "--allow-nonfinite", "--json")
    doc = json.loads(out)
    assert rc == 0 and "inf" not in doc["formula"]
    p = gradcli.analyze(doc["formula"], shapes={"x": (2,)})
    compiled = p.compile(allow_nonfinite=True)
    f, _ = compiled(x=np.array([1.0, 2.0]))
    assert f == np.inf


def test_nonfinite_inputs_through_the_api_are_not_called_overflow():
    p = gradcli.analyze("sum(2*x) wrt x", shapes={"x": (2,)})
    f, d = p.compile()(x=np.array([np.inf, 1.0]))
    assert f == np.inf and np.all(d["x"] == 2.0)


def test_finite_results_do_not_cost_a_pass_over_the_inputs(monkeypatch):
    """The overflow check reads the inputs only when a result is not finite: a data matrix is
    most of a gradient's memory traffic (a pass over X cost least squares 1.6× hand numpy)."""
    import numpy as np

    import gradcli
    from gradcli.numeric import evaluate

    X = np.ones((40, 3))
    seen = []
    real = evaluate._all_finite
    monkeypatch.setattr(evaluate, "_all_finite", lambda xp, v: seen.append(v) or real(xp, v))
    p = gradcli.analyze("||y - X@theta||^2 wrt theta", data_shapes={"X": (40, 3), "y": (40,), "theta": (3,)})
    p.compile().evaluate({"X": X, "y": np.zeros(40), "theta": np.ones(3)})
    assert seen and not any(v is X for v in seen)
