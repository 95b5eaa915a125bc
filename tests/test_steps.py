"""`--steps`: each step's stated shape is the numeric shape of that intermediate, and each
adjoint, evaluated numerically, matches finite differences of f wrt that intermediate."""

import json

import numpy as np
import pytest

import gradcli
from gradcli.language import operators  # noqa: F401  (fills the operator registry)
from gradcli.language import simplify as S
from gradcli.cli import main
from gradcli.numeric.evaluate import compile_graph
from gradcli.language.expr import make, topological
from gradcli.numeric.fdcheck import check_derivative
from gradcli.calculus.steps import Derivation
from helpers import random_data


def replace_node(root, node, symbol):
    """f with one intermediate made an independent input (every use of it)."""
    done = {}
    for n in topological([root]):
        if n is node:
            done[id(n)] = symbol
        elif not n.args:
            done[id(n)] = n
        else:
            done[id(n)] = make(n.op, *(done[id(a)] for a in n.args), params=n.params)
    return done[id(root)]


CASES = [
    ("||y - X@theta||^2 wrt theta", {"X": (6, 3)}, None),
    ("sum(log(1 + exp(-y*(X@w)))) + lam*||w||^2 wrt w", {"X": (6, 3)}, None),
    ("0.5*||tanh(X@W1)@W2 - Y||_F^2 wrt W1, W2", {"X": (5, 3), "W1": (3, 4), "W2": (4, 2)}, None),
    ("tr(A@X'@B@X@C) wrt X", {"A": (2, 3), "X": (4, 3), "B": (4, 4), "C": (3, 2)}, None),
    ("0.5*sum((y - h(X@Theta))^2) wrt Theta", {"X": (5, 3), "Theta": (3, 2), "y": (5, 2)}, {"h": "tanh"}),
]


@pytest.mark.parametrize("text, shapes, fns", CASES, ids=[c[0] for c in CASES])
def test_steps_shapes_and_adjoints(text, shapes, fns):
    p0 = gradcli.analyze(text, shapes=shapes)
    values = random_data(p0, 11)
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    d = Derivation(p.expr, [p.symbol(w) for w in p.wrt])
    steps = d.steps()
    assert steps and steps[-1].expr is p.expr
    for s in steps:
        (value,) = compile_graph([s.expr], fns).run(values)
        assert np.shape(value) == tuple(x for x in s.shape if not (s.expr.ty.row and x == 1)) or \
            np.shape(value) == s.shape, s.name
        if s.adjoint is None:
            continue
        z = S.sym("\0node", s.expr.ty)
        f_of_node = replace_node(p.expr, s.expr, z)
        program = compile_graph([f_of_node], fns)
        (adjoint,) = compile_graph([s.adjoint], fns).run(values)
        adjoint = np.broadcast_to(adjoint, np.shape(value))
        err = check_derivative(lambda vals: program.run(vals)[0], {**values, "\0node": np.asarray(value)},
                               "\0node", adjoint)
        assert err < 1e-6, (s.name, err)


def test_steps_cli_text_and_json(capsys):
    args = ["grad", "0.5*sum((y - h(X@Theta))^2) wrt Theta", "-s", "X=M,in", "-s", "Theta=in,out",
            "-s", "y=M,out", "--steps"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "a = XΘ    (M, out)" in out and "b = h(a)    (M, out)" in out
    assert "∂L/∂a = (b − y) ⊙ h'(a)    (M, out)" in out
    assert "∂L/∂Θ = Xᵀ((b − y) ⊙ h'(a))    (in, out)" in out
    assert out.rstrip().endswith("∂L/∂Θ = Xᵀ((h(XΘ) − y) ⊙ h'(XΘ))")
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in doc["steps"]]
    assert names[:1] == ["e"] and names[-1] == "Theta"
    step_a = next(s for s in doc["steps"] if s["name"] == "a")
    assert step_a == {"name": "a", "expression": "X @ Theta", "shape": ["M", "out"],
                      "rule": step_a["rule"], "adjoint": "(b - y) * h'(a)"}
    assert "element-wise chain rule" in step_a["rule"]


def test_steps_numerator_layout_names_the_tensors(capsys):
    assert main(["grad", "0.5*sum((y - h(X@Theta))^2) wrt Theta", "--steps", "--layout", "numerator"]) == 0
    out = capsys.readouterr().out
    assert "Jacobian view: ∂a/∂Θ is a 4th-order tensor" in out
    assert "contracting" in out


def test_hessian_steps_derive_the_gradient_then_its_jacobian(capsys):
    assert main(["hess", "x'@A@x wrt x", "--steps", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    blocks = [s for s in doc["steps"] if s.get("block") == "x"]
    assert blocks and blocks[-1]["name"] == "x" and blocks[-1]["adjoint"] == "a @ V"
    assert main(["hess", "x'@A@x wrt x", "--steps"]) == 0
    assert "∂²f/∂x²: the Jacobian of ∂f/∂x wrt x" in capsys.readouterr().out
