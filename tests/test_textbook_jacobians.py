"""Jacobians of vector functions print as the textbook writes them (issue 19).

Each case names the textbook's matrix formula; the test checks that gradcli prints that matrix
formula (not index notation), and evaluates the printed ASCII, parsed back, against a central
finite-difference Jacobian of a numpy translation of f written here by hand.
"""

import numpy as np
import pytest

from gradcli import analyze
from helpers import fd_jacobian

N = 4


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# formula, the textbook's Jacobian (unicode, as printed), numpy f
CASES = [
    ("diag(x)@y", "diag(y)", lambda v: np.diag(v["x"]) @ v["y"]),
    ("A@diag(x)@y", "A diag(y)", lambda v: v["A"] @ np.diag(v["x"]) @ v["y"]),
    ("diag(x)@A@y", "diag(Ay)", lambda v: np.diag(v["x"]) @ v["A"] @ v["y"]),
    ("diag(x)@A@x", "diag(x) A + diag(Ax)", lambda v: np.diag(v["x"]) @ v["A"] @ v["x"]),
    ("diag(A@x)@y", "diag(y) A", lambda v: np.diag(v["A"] @ v["x"]) @ v["y"]),
    ("log(softmax(x))", "I − 𝟙 softmax(x)ᵀ", lambda v: np.log(softmax(v["x"]))),
    ("log(softmax(A@x))", "(I − 𝟙 softmax(Ax)ᵀ)A", lambda v: np.log(softmax(v["A"] @ v["x"]))),
    ("x - mean(x)", f"I − 𝟙𝟙ᵀ / {N}", lambda v: v["x"] - v["x"].mean()),
    # the ones the textbook shares with gradcli already, kept honest here
    ("softmax(x)", "diag(softmax(x)) − softmax(x) softmax(x)ᵀ", lambda v: softmax(v["x"])),
    ("tanh(A@x)", "diag(1 − tanh(Ax)²) A", lambda v: np.tanh(v["A"] @ v["x"])),
    ("x*y", "diag(y)", lambda v: v["x"] * v["y"]),
    ("A@x", "A", lambda v: v["A"] @ v["x"]),
]


@pytest.mark.parametrize("text, textbook, f", CASES)
def test_the_jacobian_is_the_textbooks_matrix_formula(text, textbook, f):
    sizes = {"x": (N,), "y": (N,), "A": (N, N)}
    used = {n: s for n, s in sizes.items() if n in text}
    where = ", ".join(f"{n}: ({', '.join(map(str, s))})" for n, s in used.items())
    p = analyze(f"{text} wrt x where {where}")
    (d,) = p.derivatives()
    assert d.expr is not None and d.text() == textbook
    rng = np.random.default_rng(7)
    vals = {n: 0.5 * rng.normal(size=s) for n, s in used.items()}
    expected = fd_jacobian(f, vals, "x")
    printed = d.formula("ascii")
    assert "[" not in printed
    again = analyze(printed, data_shapes={n: v.shape for n, v in vals.items()})
    value, _ = again.compile()(**{n: vals[n] for n in again.symbols})
    assert np.allclose(np.broadcast_to(value, expected.shape), expected, rtol=1e-6, atol=1e-8)


def test_the_mean_of_one_number_is_that_number():
    # x − mean(x) of a scalar x (use makes x a scalar) is 0; its derivative was printed "1 + −1 / ()"
    p = analyze("x - mean(x) wrt x")
    (d,) = p.derivatives()
    assert p.symbols["x"].shape == () and d.text() == "0" and d.text("latex") == "0"


# a row or a matrix f wrt a scalar a: the derivative has f's shape and a matrix formula
SCALAR_CASES = [
    ("A*a", "A", lambda v: v["A"] * v["a"]),
    ("inv(A + a*B)", "−(A + a·B)⁻¹B(A + a·B)⁻¹", lambda v: np.linalg.inv(v["A"] + v["a"] * v["B"])),
    ("a^2*A + B/a", "2a·A − B / a²", lambda v: v["a"] ** 2 * v["A"] + v["B"] / v["a"]),
    ("(A + a*B)@(A + a*B)", "(A + a·B)B + B(A + a·B)",
     lambda v: (v["A"] + v["a"] * v["B"]) @ (v["A"] + v["a"] * v["B"])),
    ("x'*a", "xᵀ", lambda v: v["x"][None, :] * v["a"]),
    ("exp(a*x')", "xᵀ ⊙ exp(a·xᵀ)", lambda v: np.exp(v["a"] * v["x"][None, :])),
]


@pytest.mark.parametrize("text, textbook, f", SCALAR_CASES)
def test_a_row_or_matrix_wrt_a_scalar_has_its_matrix_formula(text, textbook, f):
    sizes = {"A": (3, 3), "B": (3, 3), "x": (N,), "a": ()}
    used = {n: s for n, s in sizes.items() if n in text}
    where = ", ".join(f"{n}: ({', '.join(map(str, s))})" for n, s in used.items() if s)
    p = analyze(f"{text} wrt a where {where}")
    (d,) = p.derivatives()
    assert d.expr is not None and d.text() == textbook and d.printed_dims() is None
    rng = np.random.default_rng(11)
    vals = {n: 0.5 * rng.normal(size=s) for n, s in used.items()}
    vals["a"] = np.float64(0.8)
    expected = fd_jacobian(f, vals, "a")
    _, got = p.compile()(**vals)
    assert got["a"].shape == expected.shape == tuple(d.shape)
    assert np.allclose(got["a"], expected, rtol=1e-6, atol=1e-8)
    again = analyze(d.formula("ascii"), data_shapes={n: v.shape for n, v in vals.items()})
    value, _ = again.compile()(**{n: vals[n] for n in again.symbols})
    assert np.allclose(value, expected, rtol=1e-6, atol=1e-8)
