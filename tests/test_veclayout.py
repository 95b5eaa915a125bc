"""`--layout vec`: ∂vec(F)/∂vec(X)ᵀ as a (size(F), size(X)) matrix in Kronecker form (issue 17).

Every expectation comes from outside gradcli's derivative code: HIPS autograd applied to the
independent translation of the formula (tests/oracle.py), reshaped with numpy's own
column-major reshape (`order="F"`, which is what vec means), or a closed form.  A printed formula
is tested by evaluating its text with the oracle; where gradcli prints no formula, the values
must still come.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

autograd = pytest.importorskip("autograd")

import gradcli  # noqa: E402
from gradcli.cli import main  # noqa: E402
from oracle import translate  # noqa: E402

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))
SHAPES = {"X": (3, 2), "A": (4, 3), "B": (2, 5), "C": (2, 3), "S": (3, 3), "x": (2,), "y": (3,), "P": (3, 2)}


def _values(names, rng, square: bool = False) -> dict:
    out = {}
    for n in names:
        shape = (3, 3) if square and n in "XA" else SHAPES[n]
        out[n] = rng.normal(size=shape)
    if square:  # well conditioned: inv(X) far from singular
        out["X"] = out["X"] + 4 * np.eye(3)
    return out


def _vec_jacobian(text: str, values: dict, wrt: str = "X") -> np.ndarray:
    """The oracle: autograd's Jacobian tensor shape(f) + shape(x), columns stacked (order F)."""
    f = translate(text)
    tensor = autograd.jacobian(lambda x: f({**values, wrt: x}))(values[wrt])
    f_size = int(np.prod(np.shape(f(values))))
    return np.reshape(tensor, (f_size, values[wrt].size), order="F")


def _formula_value(result, values: dict) -> np.ndarray:
    assert result.ascii is not None, "no Kronecker form printed"
    return np.asarray(translate(result.ascii)(values), float)


def _close(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("text, names, square", [
    ("A@X@B", "AXB", False),
    ("X'@X", "X", False),
    ("inv(X)", "X", True),
    ("kron(C, X)", "CX", False),
    ("A@inv(X)@A'", "AX", True),   # a chain: one Kronecker product by the mixed-product rule
    ("X@X'", "X", False),
    ("X'@S@X + 2*X'@X", "SX", False),
    ("exp(X)*X", "X", False),      # entrywise: diagonal factors
    ("sum(X)*X", "X", False),      # a scalar factor: an outer product with vec(∇s)
    ("exp(X)/tr(X'@X)", "X", False),  # a scalar divisor
    ("X^2/P", "XP", False),        # entry-wise operators with two arguments
    ("kron(X, X')", "X", False),   # both factors depend on X
    ("X@x", "Xx", False),          # a vector result: (xᵀ ⊗ I)
    ("y'@X", "yX", False),         # a row result
])
def test_vec_jacobian_equals_the_reshaped_tensor_and_its_formula(text, names, square):
    values = _values(names, np.random.default_rng(0), square)
    expected = _vec_jacobian(text, values)
    result = gradcli.grad(f"{text} wrt X", values, layout="vec")["X"]
    assert result.layout == "vec"
    assert _close(result.value, expected)
    assert _close(_formula_value(result, values), expected)


def test_the_textbook_forms():
    """The forms Magnus–Neudecker print: Bᵀ ⊗ A, (I ⊗ Xᵀ) + (Xᵀ ⊗ I)K, −X⁻ᵀ ⊗ X⁻¹ — each
    made of exactly those pieces (their values are tested above)."""
    forms = {t: gradcli.grad(f"{t} wrt X", layout="vec", shapes={"X": x})["X"].formula
             for t, x in (("A@X@B", "m,n"), ("X'@X", "m,n"), ("inv(X)", "n,n"))}
    assert forms["A@X@B"] == "Bᵀ ⊗ A"
    assert sorted(forms["X'@X"].replace(" ", "").split("+")) == ["(Xᵀ⊗I)Kₘ,ₙ", "I⊗Xᵀ"]
    assert forms["inv(X)"] == "−X⁻ᵀ ⊗ X⁻¹"


def test_hessian_of_a_trace_form_is_identity_kron_a_plus_a_transposed():
    rng = np.random.default_rng(1)
    values = {"X": rng.normal(size=(3, 2)), "A": rng.normal(size=(3, 3))}
    h = gradcli.hess("tr(X'@A@X) wrt X", values, layout="vec")["X"]
    closed = np.kron(np.eye(2), values["A"] + values["A"].T)
    assert h.shape == (6, 6)
    assert _close(h.value, closed)
    assert _close(_formula_value(h, values), closed)
    f = translate("tr(X'@A@X)")
    tensor = autograd.hessian(lambda x: f({**values, "X": x}))(values["X"])
    assert _close(h.value, np.reshape(tensor, (6, 6), order="F"))


def test_commutation_matrix_turns_vec_into_vec_of_the_transpose():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4))
    r = gradcli.grad("commutation(3, 4) @ vec(X) wrt X", {"X": x})
    assert _close(r.value, x.T.reshape(-1, order="F"))  # vec(Xᵀ), by numpy


def test_without_a_kronecker_form_the_values_still_come_and_no_formula_is_printed(capsys):
    rng = np.random.default_rng(3)
    values = {"X": rng.normal(size=(3, 2))}
    result = gradcli.grad("sum(X, 0) wrt X", values, layout="vec")["X"]
    assert result.formula is None
    assert _close(result.value, _vec_jacobian("sum(X, 0)", values))
    assert main(["grad", "sum(X, 0) wrt X", "-s", "X=3x2", "--random", "--layout", "vec"]) == 0
    assert "no Kronecker form found" in capsys.readouterr().out


def test_gradient_in_vec_layout_is_the_stacked_gradient():
    rng = np.random.default_rng(4)
    values = {"X": rng.normal(size=(3, 2)), "A": rng.normal(size=(3, 3))}
    r = gradcli.grad("tr(X'@A@X) wrt X", values, layout="vec")["X"]
    g = (values["A"] + values["A"].T) @ values["X"]
    assert r.shape == (6,)
    assert _close(r.value, g.reshape(-1, order="F"))
    assert _close(_formula_value(r, values), g.reshape(-1, order="F"))


def test_json_names_the_layout(capsys):
    assert main(["grad", "A@X@B wrt X", "-s", "A=2x3", "-s", "X=3x4", "-s", "B=4x2", "--random",
                 "--layout", "vec", "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)["derivatives"]
    assert d["layout"] == "vec" and d["shape"] == [4, 12] and np.shape(d["value"]) == (4, 12)


def test_check_passes_in_vec_layout(capsys):
    assert main(["grad", "inv(X) wrt X", "-s", "X=3x3", "--random", "--seed", "5",
                 "--layout", "vec", "--check"]) in (0, 1)  # a random X may be ill-conditioned
    assert "Kronecker" not in capsys.readouterr().out


# ----------------------------------------------------------------- no wrong formula, ever
# Random matrix expressions in X (3×2) built from the operators the rules cover and some they do
# not: whenever a formula is printed, it evaluates to the reshaped autograd Jacobian.
_LEAVES = {(3, 2): ["X", "P"], (2, 3): ["X'", "P'"], (3, 3): ["(X@X')", "S"], (2, 2): ["(X'@X)", "Q"]}


def _expr(draw, shape, depth):
    if depth == 0:
        return draw(st.sampled_from(_LEAVES[shape]))
    kind = draw(st.sampled_from(["leaf", "add", "matmul", "scale", "entry", "transpose", "hadamard", "inv"]))
    if kind == "leaf":
        return draw(st.sampled_from(_LEAVES[shape]))
    if kind == "add":
        return f"({_expr(draw, shape, depth - 1)} + {_expr(draw, shape, depth - 1)})"
    if kind == "matmul":
        k = draw(st.sampled_from([2, 3]))
        return f"({_expr(draw, (shape[0], k), depth - 1)} @ {_expr(draw, (k, shape[1]), depth - 1)})"
    if kind == "scale":
        return f"(tr({_expr(draw, (2, 2), depth - 1)}) * {_expr(draw, shape, depth - 1)})"
    if kind == "entry":
        return f"tanh({_expr(draw, shape, depth - 1)})"
    if kind == "transpose":
        return f"({_expr(draw, shape[::-1], depth - 1)})'"
    if kind == "hadamard":
        left, right = _expr(draw, shape, depth - 1), _expr(draw, shape, depth - 1)
        if draw(st.booleans()):  # a divisor kept ≥ 1: the comparison stays well conditioned
            return f"({left} / ({right} * {right} + 1))"
        return f"({left} * {right})"
    if shape[0] == shape[1]:
        return f"inv({_expr(draw, shape, depth - 1)} + 9*eye({shape[0]}))"
    return _expr(draw, shape, depth - 1)


@st.composite
def _formulas(draw):
    shape = draw(st.sampled_from(list(_LEAVES)))
    text = _expr(draw, shape, draw(st.integers(1, 3)))
    return text if "X" in text else f"{text} + {_LEAVES[shape][0]}"  # f depends on X


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_formulas(), seed=st.integers(0, 2**16))
def test_a_printed_kronecker_form_is_always_right(text, seed):
    rng = np.random.default_rng(seed)
    values = {"X": rng.normal(size=(3, 2)), "P": rng.normal(size=(3, 2)), "S": rng.normal(size=(3, 3)),
              "Q": rng.normal(size=(2, 2))}
    used = {n: v for n, v in values.items() if n in text}
    expected = _vec_jacobian(text, used)
    result = gradcli.grad(f"{text} wrt X", used, layout="vec")["X"]
    assert _close(result.value, expected)
    if result.ascii is not None:
        assert _close(translate(result.ascii)(used), expected), result.ascii


@pytest.mark.parametrize("text, names, square, hessian", [
    ("A@X@B", "AXB", False, False), ("X'@X", "X", False, False), ("tr(X'@S@X)", "SX", False, False),
    ("tr(X'@S@X)", "SX", False, True)])
def test_emitted_module_returns_the_vec_layout(text, names, square, hessian, tmp_path):
    from helpers import load_module

    values = _values(names, np.random.default_rng(6), square)
    run = gradcli.hess if hessian else gradcli.grad
    results = run(f"{text} wrt X", values, layout="vec")
    module = load_module(results.emit(), tmp_path)
    _, derivatives = (module.value_and_hess if hessian else module.value_and_grad)(**values)
    assert _close(derivatives["X"], results["X"].value)
    if not hessian and text.startswith("tr"):
        expected = np.reshape((values["S"] + values["S"].T) @ values["X"], -1, order="F")
        assert _close(derivatives["X"], expected)
    elif not hessian:
        assert _close(derivatives["X"], _vec_jacobian(text, values))
