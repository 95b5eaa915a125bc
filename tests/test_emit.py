"""`--emit numpy`: the generated module imports, and agrees with the evaluator (which the other
tests check against finite differences) on gradients, Jacobians, tensors and Hessians."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import gradcli
from gradcli.emit import emit_numpy
from helpers import random_data
from test_derivatives import N, RULES, _names
from test_jacobians import HESSIANS, JACOBIANS


def load_module(source: str, tmp_path, name="generated"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(text, shapes, tmp_path, hessian=False, layout=None, fns=None, positive=False):
    p0 = gradcli.analyze(text, shapes=shapes)
    values = random_data(p0, 5, positive)
    # symbolic dimensions in the generated code: shapes only from where/-s, not data
    p = gradcli.analyze(text, shapes=shapes, layout=layout)
    derivs = p.hessians() if hessian else p.derivatives()
    module = load_module(emit_numpy(p, derivs, fns or {}, hessian), tmp_path)
    fn = module.value_and_hess if hessian else module.value_and_grad
    f_emit, d_emit = fn(**values)
    pn = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()}, layout=layout)
    f_eval, d_eval = pn.compile(fns, hessian=hessian)(**values)
    assert np.allclose(f_emit, f_eval)
    assert d_emit.keys() == d_eval.keys()
    for k in d_eval:
        assert d_emit[k].shape == d_eval[k].shape and np.allclose(d_emit[k], d_eval[k]), k


@pytest.mark.parametrize("name, text, positive", RULES, ids=[r[0] for r in RULES])
def test_emitted_gradients_match_evaluator(name, text, positive, tmp_path):
    symbols = sorted({s for s in N if s in _names(text)})
    compare(text + " wrt " + ", ".join(symbols), {k: N[k] for k in symbols}, tmp_path, fns={"h": "tanh"},
            positive=positive)


@pytest.mark.parametrize("text, shapes", JACOBIANS[:12], ids=[j[0] for j in JACOBIANS[:12]])
def test_emitted_jacobians_match_evaluator(text, shapes, tmp_path):
    names = sorted(set(_names(text)) - {"tanh", "softmax", "exp", "sigmoid", "relu", "softplus", "log",
                                        "sum", "diag", "inv", "outer"})
    compare(f"{text} wrt {', '.join(names)}", shapes, tmp_path, layout="denominator")


@pytest.mark.parametrize("text, shapes, formula", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_emitted_hessians_match_evaluator(text, shapes, formula, tmp_path):
    compare(text, shapes, tmp_path, hessian=True)


def test_emitted_module_keeps_symbolic_sizes(tmp_path):
    p = gradcli.analyze("mean((X@w - y)^2) wrt w")
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path)
    for m in (4, 9):  # the same module works for any size: m comes from the inputs' shapes
        X, y, w = np.ones((m, 2)), np.zeros(m), np.ones(2)
        f, d = module.value_and_grad(X=X, y=y, w=w)
        assert np.isclose(f, 4.0) and np.allclose(d["w"], 2 * X.T @ (X @ w - y) / m)


@pytest.mark.parametrize("sample", ["least_squares", "logistic", "net", "factorization"])
def test_cli_emit_for_every_sample_imports_and_runs(sample, tmp_path):
    formulas = {
        "least_squares": ["||y - X@theta||^2 wrt theta"],
        "logistic": ["sum(log(1 + exp(-y*(X@w)))) + lam*||w||^2 wrt w"],
        "net": ["0.5*sum((y - h(X@Theta))^2) wrt Theta", "--fn", "h=tanh"],
        "factorization": ["||M - U@V'||_F^2 wrt U, V"],
    }[sample]
    out = subprocess.run([sys.executable, "-m", "gradcli", "grad", *formulas, "--emit", "numpy"],
                         capture_output=True, text=True, check=True).stdout
    (tmp_path / "f.py").write_text(out)
    data = np.load(f"samples/{sample}.npz")
    code = ("import f, numpy as np, json; d = np.load(%r); v, g = f.value_and_grad(**{k: d[k] for k in d.files "
            "if k in f.value_and_grad.__code__.co_varnames}); print(json.dumps(float(v)))" % str(
                __import__("pathlib").Path(f"samples/{sample}.npz").resolve()))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    fns = formulas[2:] and {"h": "tanh"}
    p = gradcli.analyze(formulas[0], data_shapes={k: data[k].shape for k in data.files})
    f_eval, _ = p.compile(fns or None)(**{k: data[k] for k in p.symbols})
    assert np.isclose(json.loads(res.stdout), f_eval)
