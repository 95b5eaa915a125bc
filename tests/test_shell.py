"""Shell use (issue 16): -h, one formula a line on standard input, conflicting options, -o
without numbers, repeated wrt names; --random's draws (scale, domain, seed) and the inputs.npz
that -o saves; --emit array-api and abstract functions from the command line."""

import io
import json
import sys

import numpy as np
import pytest

import gradcli
from gradcli.cli import main
from helpers import load_module


def run(capsys, *args, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- -h
@pytest.mark.parametrize("args", [["-h"], ["grad", "-h"], ["hess", "-h"], ["shape", "-h"], ["check", "-h"],
                                  ["grad", "x'@x wrt x", "-h"]])
def test_dash_h_is_help(capsys, args):
    rc, out, err = run(capsys, *args)
    assert rc == 0 and out.startswith("Usage: gradcli") and err == ""
    assert out == run(capsys, *[a if a != "-h" else "--help" for a in args])[1]


# ----------------------------------------------------------------------------- FORMULA -
def test_each_line_of_stdin_is_its_own_formula(capsys, monkeypatch):
    stdin = "x'@x wrt x\n\n# a comment\nsum(exp(y)) wrt y\n"
    rc, out, err = run(capsys, "grad", "-", stdin=stdin, monkeypatch=monkeypatch)
    assert rc == 0 and err == ""
    assert out.count("f = ") == 2 and "∂f/∂x = 2x" in out and "∂f/∂y = exp(y)" in out


def test_stdin_json_lines_and_the_worst_exit_status(capsys, monkeypatch):
    stdin = "x'@x wrt x\nsum(log(x wrt x\nsum(A) wrt A\n"
    rc, out, err = run(capsys, "grad", "-", "--json", stdin=stdin, monkeypatch=monkeypatch)
    docs = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and len(docs) == 3
    assert docs[0]["derivatives"][0]["wrt"] == "x" and docs[2]["derivatives"][0]["wrt"] == "A"
    assert docs[1]["error"]["kind"] == "parse" and "standard input line 2" in docs[1]["error"]["message"]
    assert "standard input line 2" in err


def test_shape_reads_each_line_too(capsys, monkeypatch):
    rc, out, _ = run(capsys, "shape", "-", "--json", stdin="A@x\nx'@x\n", monkeypatch=monkeypatch)
    assert rc == 0 and [json.loads(line)["shape"] for line in out.splitlines()] == [["m"], []]


def test_one_output_options_take_one_formula(capsys, monkeypatch, tmp_path):
    rc, out, err = run(capsys, "grad", "-", "--emit", "numpy", stdin="x'@x wrt x\nsum(y) wrt y\n",
                       monkeypatch=monkeypatch)
    assert rc == 2 and out == "" and "--emit takes one formula" in err


# ----------------------------------------------------------------------------- conflicts
@pytest.mark.parametrize("args, a, b", [
    (["--json", "--emit", "numpy"], "--emit", "--json"),
    (["--json", "--emit", "array-api"], "--emit", "--json"),
    (["--emit", "numpy", "--check", "--random"], "--emit", "--check"),
    (["--emit", "numpy", "--random"], "--emit", "--random"),
    (["--emit", "numpy", "--latex"], "--emit", "--latex"),
    (["--emit", "array-api", "--steps"], "--emit", "--steps"),
    (["--emit", "latex", "--json"], "--emit latex", "--json"),
    (["--emit", "latex", "--check", "--random"], "--emit latex", "--check"),
    (["--seed", "3"], "--seed", "--random"),
    (["--tol", "1e-3", "--random"], "--tol", "--check"),
])
def test_conflicting_options_are_a_usage_error_naming_both(capsys, args, a, b):
    rc, out, err = run(capsys, "grad", "x'@x wrt x", "-s", "x=3", *args)
    assert rc == 2 and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert a in line and b in line
    if "--json" in args:
        assert json.loads(out)["error"]["kind"] == "usage"
    else:
        assert out == ""


def test_out_without_numbers_is_a_usage_error_and_writes_nothing(capsys, tmp_path):
    rc, out, err = run(capsys, "grad", "x'@x wrt x", "-s", "x=3", "-o", str(tmp_path / "out"))
    assert rc == 2 and "-o needs numbers" in err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- wrt
@pytest.mark.parametrize("args", [["x'@A@x wrt x, x"], ["x'@A@x wrt x", "--wrt", "x"],
                                  ["x'@A@x", "--wrt", "x", "--wrt", "x"]])
def test_a_repeated_wrt_name_is_one_derivative(capsys, args):
    rc, out, _ = run(capsys, "grad", *args, "--json")
    assert rc == 0 and [d["wrt"] for d in json.loads(out)["derivatives"]] == ["x"]
    rc, out, _ = run(capsys, "hess", *args, "--json")
    assert rc == 0 and [d["wrt"] for d in json.loads(out)["derivatives"]] == ["x"]


# ----------------------------------------------------------------------------- --random
def test_random_tanh_layer_has_a_gradient(capsys, tmp_path):
    """The issue's case: uniform [0.5, 1.5) draws made X@W about 1000 in every entry, tanh
    saturated, and the gradient was exactly 0."""
    out_dir = tmp_path / "out"
    rc, _, err = run(capsys, "grad", "sum(tanh(X@W)) wrt W", "-s", "X=3000x1000", "-s", "W=1000x4", "--random",
                     "-o", str(out_dir))
    assert rc == 0, err
    g = np.load(out_dir / "d_W.npy")
    assert np.count_nonzero(g) == g.size and np.std(g) > 1.0
    inputs = np.load(out_dir / "inputs.npz")
    assert sorted(inputs.files) == ["W", "X"]
    for name in ("X", "W"):  # standard normal / sqrt(fan-in): 1000 for both
        assert abs(np.std(inputs[name]) * np.sqrt(1000) - 1.0) < 0.05
        assert abs(np.mean(inputs[name])) < 0.01


def test_inputs_npz_reproduces_the_run_with_d(capsys, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    formula = "sum(log(x)) + y'@A@y + c*sum(y) wrt y"
    rc, _, err = run(capsys, "grad", formula, "-s", "x=4", "-s", "y=3", "-s", "A=3x3", "-s", "c=scalar",
                     "--random", "--seed", "11", "-o", str(first))
    assert rc == 0, err
    rc, _, err = run(capsys, "grad", formula, "-d", str(first / "inputs.npz"), "-o", str(second))
    assert rc == 0, err
    assert np.load(first / "inputs.npz")["c"].shape == ()
    for name in ("f.npy", "d_y.npy"):
        assert np.array_equal(np.load(first / name), np.load(second / name))


def test_only_drawn_inputs_are_saved(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.arange(3.0))
    rc, _, err = run(capsys, "grad", "x'@A@x wrt x", "-d", f"x={tmp_path / 'x.npy'}", "-s", "A=3x3", "--random",
                     "-o", str(tmp_path / "out"))
    assert rc == 0, err
    assert np.load(tmp_path / "out" / "inputs.npz").files == ["A"]


def _drawn(text: str, shapes: dict, seed: int = 0):
    from gradcli.numeric.draws import random_inputs

    p = gradcli.analyze(text, data_shapes=shapes)
    return random_inputs(shapes, seed, p.expr), p


def test_positive_and_positive_definite_where_the_formula_needs_it():
    values, _ = _drawn("sum(log(x)) + sum(sqrt(B@y)) + logdet(A) + tr(inv(C)) + sum(z)",
                       {"x": (50,), "B": (6, 6), "y": (6,), "A": (5, 5), "C": (4, 4), "z": (50,)})
    assert np.all(values["x"] > 0) and np.all(values["B"] > 0) and np.all(values["y"] > 0)
    assert np.any(values["z"] < 0) and np.any(values["z"] > 0)  # no constraint: both signs
    for name in ("A", "C"):
        m = values[name]
        assert np.allclose(m, m.T) and np.min(np.linalg.eigvalsh(m)) >= 1.0 - 1e-12


def test_an_argument_positive_whatever_the_signs_leaves_them_mixed():
    from gradcli.numeric.draws import domain

    d = domain(gradcli.analyze("sum(log(1 + exp(-y*(X@w)))) + sum(sqrt(x^2 + 1))").expr)
    assert d.positive == frozenset()
    d = domain(gradcli.analyze("sum(log(x - y))").expr)
    assert d.positive == {"x", "y"}
    d = domain(gradcli.analyze("sum(arcsin(x))").expr)
    assert d.unit == {"x"}


def test_fan_in_is_the_contracted_axis():
    from gradcli.numeric.draws import domain

    d = domain(gradcli.analyze("sum(tanh(X@W)) + v'@W'@u", data_shapes={"X": (7, 5), "W": (5, 3), "v": (3,),
                                                                         "u": (5,)}).expr)
    assert d.fan_in == {"X": 5, "W": 5, "v": 3, "u": 5}


def test_draws_are_seeded():
    shapes = {"x": (4,), "A": (3, 3)}
    a, p = _drawn("x'@x + sum(A)", shapes, seed=1)
    b, _ = _drawn("x'@x + sum(A)", shapes, seed=1)
    c, _ = _drawn("x'@x + sum(A)", shapes, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["x"], c["x"])


# ----------------------------------------------------------------------------- --emit
@pytest.mark.parametrize("dialect", ["numpy", "array-api"])
def test_emit_takes_an_unbound_abstract_function(capsys, tmp_path, dialect):
    rc, out, err = run(capsys, "grad", "0.5*sum((y - h(X@w))^2) wrt w", "--emit", dialect)
    assert rc == 0, err
    module = load_module(out, tmp_path, "m_" + dialect.replace("-", "_"))
    assert module.FUNCTIONS == {"h": 2}
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3)
    f, d = module.value_and_grad((np.tanh, lambda z: 1 - np.tanh(z) ** 2), X=X, y=y, w=w)
    f_eval, d_eval = gradcli.analyze("0.5*sum((y - h(X@w))^2) wrt w", data_shapes={"X": (6, 3)}).compile(
        {"h": "tanh"})(X=X, y=y, w=w)
    assert np.isclose(float(f), f_eval) and np.allclose(np.asarray(d["w"]), d_eval["w"])
    with pytest.raises(TypeError, match="sequence of 2 callables"):
        module.value_and_grad(np.tanh, X=X, y=y, w=w)


def test_array_api_names_never_collide(capsys, tmp_path):
    """Symbols named like what the module uses (the namespace, its helpers) and a symbol with
    the abstract function's name: each stays itself."""
    xs = pytest.importorskip("array_api_strict")
    text = "sum(h(xp*array_namespace)) + INPUTS*FUNCTIONS + h'@h + sum(lambda) wrt xp, h"
    rc, out, err = run(capsys, "grad", text, "--emit", "array-api")
    assert rc == 0, err
    module = load_module(out, tmp_path, "collide")
    rng = np.random.default_rng(1)
    values = {"xp": rng.normal(size=3), "array_namespace": rng.normal(size=3), "INPUTS": 0.5, "FUNCTIONS": 1.5,
              "h": rng.normal(size=3), "lambda": 0.25}
    f, d = module.value_and_grad((xs.tanh, lambda z: 1 - xs.tanh(z) ** 2),
                                 **{k: xs.asarray(v) for k, v in values.items()})
    f_eval, d_eval = gradcli.analyze(text, data_shapes={k: np.shape(v) for k, v in values.items()}).compile(
        {"h": "tanh"}).evaluate(values)  # (a dict: the API's call takes xp= itself)
    assert np.isclose(float(f), f_eval)
    for k in d_eval:
        assert np.allclose(np.from_dlpack(d[k]), d_eval[k])


def test_emit_names_the_dialects(capsys):
    rc, _, err = run(capsys, "grad", "x'@x wrt x", "--emit", "jax")
    assert rc == 2 and "numpy, array-api or latex" in err
