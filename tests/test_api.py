"""The API is the application and the CLI prints it (issue 13): every command is one call of
gradcli.run with keywords, the CLI's JSON document is the API result's `to_json()`, Hessian
steps, emitted code, draws, checks, claims and saved folders are reachable from Python, and
the API's messages name its keywords, never the command's flags."""

from __future__ import annotations

import inspect
import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli import cli
from gradcli.cli import main
from gradcli.errors import GradcliError

from helpers import load_module
from test_derivatives import _names, formulas

FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])(?![\w-])")


def command(capsys, *args) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# (CLI arguments after the formula, the same request as keywords of gradcli.grad)
AGREEING = [
    ("||y - X@theta||^2 wrt theta", ["-s", "X=4x3", "--random"], dict(shapes={"X": "4x3"}, random=True)),
    ("x'@A@x wrt x", ["-s", "A=3x3", "--random", "--seed", "7", "--check"],
     dict(shapes={"A": (3, 3)}, random=True, seed=7, check=True)),
    ("tanh(W@x + b) wrt x, W", ["-s", "W=2x3", "--random", "--layout", "denominator"],
     dict(shapes={"W": "2x3"}, random=True, layout="denominator")),
    ("sum(h(X@w)) wrt w", ["-s", "X=5x2", "--fn", "h=tanh", "--random", "--check", "--tol", "1e-4"],
     dict(shapes={"X": "5x2"}, fns={"h": "tanh"}, random=True, check=True, tol=1e-4)),
    ("sum(exp(x)) wrt x", ["-s", "x=3", "--claim", "exp(x)"], dict(shapes={"x": "3"}, claims="exp(x)")),
    ("sum(log(x)) wrt x", ["-s", "x=3", "--random", "--steps"], dict(shapes={"x": "3"}, random=True, steps=True)),
]


@pytest.mark.parametrize("hessian", [False, True])
@pytest.mark.parametrize("formula, args, keywords", AGREEING)
def test_the_cli_json_document_is_the_api_results_to_json(capsys, formula, args, keywords, hessian):
    if hessian and "tanh(W" in formula:
        return  # a vector f has no Hessian (the error is tested below)
    rc, out, err = command(capsys, "hess" if hessian else "grad", formula, *args, "--json")
    keywords = dict(keywords)
    steps = keywords.pop("steps", False)
    results = (gradcli.hess if hessian else gradcli.grad)(formula, **keywords)
    assert json.loads(out) == json.loads(json.dumps(results.to_json(steps=steps)))
    assert rc == (0 if all(c.ok for c in (results.checks or {}).values()) and all(v.ok for v in results.claims) else 1)


def test_shape_and_its_json_are_one_call(capsys):
    rc, out, _ = command(capsys, "shape", "0.5*sum((y - h(X@Theta))^2) wrt Theta", "-s", "X=M,in", "--json")
    assert rc == 0
    assert json.loads(out) == gradcli.shape("0.5*sum((y - h(X@Theta))^2) wrt Theta", shapes={"X": "M,in"}).to_json()


def test_data_files_are_a_keyword(capsys, tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "X.npy", rng.normal(size=(6, 2)))
    np.savez(tmp_path / "run.npz", y=rng.normal(size=6), w=rng.normal(size=2))
    rc, out, _ = command(capsys, "grad", "||y - X@w||^2 wrt w", "-d", f"X={tmp_path / 'X.npy'}",
                         "-d", str(tmp_path / "run.npz"), "--json")
    results = gradcli.grad("||y - X@w||^2 wrt w", data=[f"X={tmp_path / 'X.npy'}", str(tmp_path / "run.npz")])
    assert rc == 0 and json.loads(out) == json.loads(json.dumps(results.to_json()))
    X, z = np.load(tmp_path / "X.npy"), np.load(tmp_path / "run.npz")
    np.testing.assert_allclose(results["w"].value, -2 * X.T @ (z["y"] - X @ z["w"]))


def test_hessian_steps_are_reachable_from_python(capsys):
    rc, out, _ = command(capsys, "hess", "x'@A@x + sum(exp(x)) wrt x", "-s", "A=3x3", "--steps", "--json")
    results = gradcli.hess("x'@A@x + sum(exp(x)) wrt x", shapes={"A": "3x3"})
    steps = results.steps
    assert rc == 0 and steps.records == json.loads(out)["steps"] and steps.records
    assert any(r.get("block") == "x" for r in steps.records)  # the Hessian block's own steps
    rc, text, _ = command(capsys, "hess", "x'@A@x + sum(exp(x)) wrt x", "-s", "A=3x3", "--steps")
    assert text.rstrip().endswith(str(steps).rstrip().split("\n")[-1])


@pytest.mark.parametrize("target", ["numpy", "array-api", "latex"])
@pytest.mark.parametrize("hessian", [False, True])
def test_emitted_code_is_the_commands_and_computes_the_results(capsys, tmp_path, target, hessian):
    formula = "sum(log(1 + exp(-y*(X@w)))) wrt w"
    rc, out, _ = command(capsys, "hess" if hessian else "grad", formula, "-s", "X=5x3", "--emit", target)
    results = gradcli.grad(formula, shapes={"X": "5x3"}, order=2 if hessian else 1)
    assert rc == 0 and out == results.emit(target)
    if target != "numpy":
        return
    module = load_module(out, tmp_path)
    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(5, 3)), "y": rng.choice([-1.0, 1.0], size=5), "w": rng.normal(size=3)}
    numbers = gradcli.grad(formula, order=2 if hessian else 1, **arrays)
    value, derivative = (module.value_and_hess if hessian else module.value_and_grad)(**arrays)
    np.testing.assert_allclose(value, numbers.value)
    np.testing.assert_allclose(derivative["w"] if isinstance(derivative, dict) else derivative, numbers["w"].value)


def test_draws_checks_and_saved_folders_from_python(tmp_path):
    from gradcli.outputs import read_outputs

    results = gradcli.hess("x'@A@x wrt x", sizes={"m": 3}, random=True, seed=4, check=True, save=str(tmp_path))
    assert results.checks is not None and results.checks.ok
    saved = read_outputs(str(tmp_path))
    np.testing.assert_allclose(saved["h_x"], results["x"].value)
    drawn = np.load(tmp_path / "inputs.npz")
    np.testing.assert_allclose(saved["h_x"], drawn["A"] + drawn["A"].T)
    again = gradcli.hess("x'@A@x wrt x", sizes={"m": 3}, random=True, seed=4)
    np.testing.assert_array_equal(again["x"].value, results["x"].value)  # seeded: the same draws
    other = gradcli.hess("x'@A@x wrt x", sizes={"m": 3}, random=True, seed=5)
    assert not np.array_equal(other["x"].value, results["x"].value)


def test_order_two_is_hess_and_order_k_a_tensor():
    # issue 17: order=3 is the third derivative, and a vector's Hessian a 3-index tensor
    # (tests/test_directions.py checks their values against the oracle)
    assert gradcli.grad("x'@A@x wrt x", order=2)["x"].kind == "hessian"
    assert gradcli.grad("x'@A@x wrt x", order=3)["x"].kind == "tensor"
    with pytest.raises(GradcliError, match="order=9"):
        gradcli.grad("x'@A@x wrt x", order=9)
    assert len(gradcli.hess("A@x wrt x")["x"].shape) == 3


# every API error names the keyword the caller gave, never a flag (the CLI says the flag)
API_ERRORS = [
    (dict(tol=-1.0), "tol=-1.0", "--tol -1.0"),
    (dict(save=""), "save", "-o"),
    (dict(sizes={"m": 3}, save="/tmp/x"), "save=", None),
    (dict(check=True), "check=True", "--check"),
    (dict(data=["1Q=3"]), "data", "-d"),
    (dict(data="weights.txt"), "data", "-d"),
    (dict(backend="spark"), "backend", "--backend"),
    (dict(scheduler="tcp://localhost:1"), "scheduler", "--scheduler"),
    (dict(claims={"q": "x"}), "claims", "--claim"),
    (dict(claims=["x", "x"]), "claims", "--claim"),
    (dict(fns={"exp": "log"}), "fns", "--fn"),
    (dict(fns={"h": "relu2"}), "fns", "--fn"),
    (dict(random=True), "random=True", "--random"),
]


@pytest.mark.parametrize("keywords, keyword, flag", API_ERRORS)
def test_api_errors_name_keywords_not_flags(keywords, keyword, flag):
    with pytest.raises(GradcliError) as caught:
        gradcli.grad("x'@A@x wrt x", **keywords)
    message = caught.value.message
    assert keyword in message and not FLAG.search(message), message


CLI_ERRORS = [
    (["--tol", "-1", "--check", "--random"], "--tol -1.0"), (["-o", ""], "-o needs a folder name"),
    (["--check"], "--check needs numbers: give -d data or --random"),
    (["-d", "weights.txt"], "-d weights.txt"), (["--backend", "spark"], "--backend spark"),
    (["--claim", "q=x"], "--claim"), (["--fn", "exp=log"], "--fn exp=log"), (["--random"], "--random"),
]


@pytest.mark.parametrize("args, flag", CLI_ERRORS)
def test_the_cli_still_says_its_flags(capsys, args, flag):
    rc, _, err = command(capsys, "grad", "x'@A@x wrt x", *args)
    assert rc in (1, 2) and flag in err, err


def test_a_drawn_domain_error_says_how_to_draw_again():
    with pytest.raises(GradcliError) as caught:
        gradcli.grad("sum(log(x - 3)) wrt x", sizes={"m": 3}, random=True)
    assert "seed=" in caught.value.message and not FLAG.search(caught.value.message)


def test_cli_functions_take_an_options_object_not_long_parameter_lists():
    """Only typer's declarations of a command's options list them one by one."""
    long = [name for name, fn in inspect.getmembers(cli, inspect.isfunction)
            if fn.__module__ == cli.__name__ and len(inspect.signature(fn).parameters) > 8
            and fn.__name__ != "command"]
    assert long == []
    assert len(inspect.signature(cli._differentiate).parameters) <= 2


# ----------------------------------------------------------------------------- random formulas
EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))
SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(formulas("s", 2), formulas("v", 2), formulas("m", 2)), st.integers(0, 10_000), st.booleans())
def test_the_cli_and_the_api_agree_on_random_formulas(formula, seed, steps):
    """The same document, or the same kind of error, for any formula: the CLI adds nothing."""
    import contextlib
    import io

    names = sorted(n for n in SHAPES if n in _names(formula))
    assume(names)
    text = f"{formula} wrt {', '.join(names)}"
    args = [a for n in names for a in ("-s", f"{n}={'x'.join(map(str, SHAPES[n])) or 'scalar'}")]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["grad", text, *args, "--random", "--seed", str(seed), "--allow-nonfinite", "--json"]
                  + ["--steps"] * steps)
    doc = json.loads(out.getvalue())
    try:
        results = gradcli.grad(text, shapes={n: SHAPES[n] for n in names}, random=True, seed=seed,
                               allow_nonfinite=True)
    except GradcliError as caught:
        event(f"error: {caught.kind}")
        assert rc != 0 and doc["error"]["kind"] == caught.kind
        return
    event("the same document")
    assert rc == 0 and doc == json.loads(json.dumps(results.to_json(steps=steps)))


@pytest.mark.parametrize("message, python", [
    ("-o out: exists and is not a folder", "save out: exists and is not a folder"),
    ("log of 0 in log(x) (--allow-nonfinite gives IEEE results)", "log of 0 in log(x) (allow_nonfinite=True gives IEEE results)"),
    ("give -s x=... or data", "give shapes x=... or data"),
    ("x: 3-d arrays are not supported", "x: 3-d arrays are not supported"),  # not a flag
    ("log of a negative entry in exp(-s) - d", "log of a negative entry in exp(-s) - d"),  # a formula
])
def test_messages_of_the_stages_below_are_translated_for_python_only(message, python):
    from gradcli.spelling import CLI, PYTHON

    assert PYTHON.translate(GradcliError("data", message)).message == python
    assert CLI.translate(GradcliError("data", message)).message == message


@pytest.mark.parametrize("tol", [-1.0, float("nan"), float("inf")])
def test_check_refuses_a_tolerance_grad_refuses(tol: float) -> None:
    # gradcli.check's own tol went to Results.check unchecked: -1 reported every derivative FAILED
    # and inf reported anything ok, where grad(check=True, tol=...) and --tol refuse them
    with pytest.raises(gradcli.GradcliError, match=r"tol=.*finite number ≥ 0") as caught:
        gradcli.check("sum(x^2) wrt x", x=np.ones(3), tol=tol)
    assert "--" not in str(caught.value)


def test_arrays_shape_the_formula_as_data_files_do(tmp_path) -> None:
    # the arrays' shapes were bound only after a symbolic analysis, which refused unvec(vec(L), 2)
    # (is m·n a multiple of 2?) although -d L=L.npy at the same shape was fine
    L = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "L.npy", L)
    formula = "sum(unvec(vec(L), 2)^2) wrt L"
    by_array = gradcli.grad(formula, L=L)
    by_file = gradcli.grad(formula, data={"L": str(tmp_path / "L.npy")})
    assert np.allclose(by_array["L"].value, 2 * L) and np.allclose(by_file["L"].value, by_array["L"].value)
    assert by_array.value == pytest.approx(float(np.sum(L ** 2)))


def test_analyze_reads_shape_strings_as_dash_s_does_structure_included():
    """analyze(shapes={"S": "3,3,spd"}) once iterated the string character by character (an
    IndexError); it reads it as -s S=3,3,spd does: a 3×3 S declared SPD, so the gradient of
    x'Sx wrt S is the symmetric part of xxᵀ (numpy's, by hand) — not the general xxᵀ."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=3)
    B = rng.normal(size=(3, 3))
    S = B @ B.T + 3 * np.eye(3)
    problem = gradcli.analyze("x'@S@x wrt S", shapes={"S": "3,3,spd", "x": "3"})
    f, g = problem.compile()(S=S, x=x)
    outer = np.outer(x, x)
    assert np.isclose(f, x @ S @ x)
    assert np.allclose(g["S"], (outer + outer.T) / 2)
    u = rng.normal(size=3)
    for declared, expected in (("3,3,spd", (np.outer(u, x) + np.outer(x, u)) / 2), ((3, 3), np.outer(u, x))):
        _, g2 = gradcli.analyze("u'@S@x wrt S", shapes={"S": declared}).compile()(S=S, x=x, u=u)
        assert np.allclose(g2["S"], expected)  # the declaration, and only it, symmetrises


@pytest.mark.parametrize("bad", ["3,3,3", 5, (0, 3), ("a b",), (True,), (2, 3, 4), "n,n,sqaure"])
def test_analyze_refuses_what_is_not_a_shape_with_a_usage_error(bad):
    with pytest.raises(gradcli.GradcliError) as caught:
        gradcli.analyze("sum(S) wrt S", shapes={"S": bad})
    assert caught.value.kind == "usage"
