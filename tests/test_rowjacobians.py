"""Jacobians of row vectors and other tensors with axes of length 1 get their matrix formula.

The Jacobian of a 1×n row f wrt x ∈ ℝᵐ is a (1, n, m) tensor, J[0,i,k] = ∂fᵢ/∂xₖ; its entries
are the n×m matrix of the column fᵀ's Jacobian (numerator layout), which is what is printed:
`x'@A wrt x` gives Aᵀ, not index notation.  Likewise with x an (m, 1) column or a (1, m) row.
The values keep their declared shapes.

Each printed formula is parsed back and evaluated (with the declared n×1 / 1×n symbols as the
vectors of their entries, as the note says) and compared with a central finite-difference
Jacobian computed here, in numpy, of a numpy translation of f written by hand.
"""

import json

import numpy as np
import pytest

from gradcli import analyze
from gradcli.cli import main
from helpers import fd_jacobian



def fd_hessian(f, vals, name):
    """Central differences of a finite-difference gradient: the Hessian of a scalar f."""
    return fd_jacobian(lambda v: fd_jacobian(f, v, name).reshape(vals[name].shape), vals, name)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# formula, wrt, declared sizes, f in numpy (rows as (1, n) arrays, as gradcli's values)
CASES = [
    ("x'@A", "x", {"x": (3,), "A": (3, 2)}, lambda v: v["x"][None, :] @ v["A"]),
    ("x'", "x", {"x": (4,)}, lambda v: v["x"][None, :]),
    ("tanh(x'@A)", "x", {"x": (3,), "A": (3, 2)}, lambda v: np.tanh(v["x"][None, :] @ v["A"])),
    ("exp(x'@A + b')", "x", {"x": (3,), "A": (3, 2), "b": (2,)},
     lambda v: np.exp(v["x"][None, :] @ v["A"] + v["b"][None, :])),
    ("(x'@A)^2 / c", "x", {"x": (3,), "A": (3, 4), "c": ()}, lambda v: (v["x"][None, :] @ v["A"]) ** 2 / v["c"]),
    ("sigmoid(x'@A) * y'", "x", {"x": (3,), "A": (3, 2), "y": (2,)},
     lambda v: sigmoid(v["x"][None, :] @ v["A"]) * v["y"][None, :]),
    ("softmax(x)'", "x", {"x": (4,)}, lambda v: (np.exp(v["x"]) / np.exp(v["x"]).sum())[None, :]),
    ("x'@A", "A", {"x": (3,), "A": (3, 1)}, lambda v: v["x"][None, :] @ v["A"]),  # (1, 1): a scalar
    ("x'@A", "x", {"x": (3, 1), "A": (3, 2)}, lambda v: v["x"].T @ v["A"]),  # a declared column
    ("h(x@A)", "x", {"x": (1, 3), "A": (3, 2)}, lambda v: np.tanh(v["x"] @ v["A"])),  # a declared row
    ("A@x", "x", {"A": (2, 3), "x": (3, 1)}, lambda v: v["A"] @ v["x"]),
    ("w'@X'", "w", {"w": (3,), "X": (5, 3)}, lambda v: v["w"][None, :] @ v["X"].T),  # predictions as a row
]


def declared(text, wrt, sizes):
    where = ", ".join(f"{n}: ({', '.join(map(str, s))})" for n, s in sizes.items() if s)
    return f"{text} wrt {wrt}" + (f" where {where}" if where else "")


def draw(sizes, seed=0):
    rng = np.random.default_rng(seed)
    vals = {n: 0.5 * rng.normal(size=s) for n, s in sizes.items()}
    if "c" in vals:
        vals["c"] = np.float64(1.5)
    return vals


def entries(vals):
    """The declared n×1 and 1×n arrays as the vectors of their entries (the printed formula's)."""
    return {n: v.reshape(-1) if v.ndim == 2 and 1 in v.shape else v for n, v in vals.items()}


def evaluate_printed(text, vals):
    again = analyze(text, data_shapes={n: v.shape for n, v in vals.items()}, functions=("h",))
    value, _ = again.compile({"h": "tanh"})(**{n: vals[n] for n in again.symbols})
    return np.asarray(value)


@pytest.mark.parametrize("text, wrt, sizes, f", CASES)
def test_the_printed_matrix_is_the_jacobians_entries(text, wrt, sizes, f):
    p = analyze(declared(text, wrt, sizes), functions=("h",))
    (d,) = p.derivatives()
    vals = draw(sizes)
    expected = fd_jacobian(f, vals, wrt)
    if np.shape(f(vals)) == (1, 1):  # a (1, 1) f is the scalar it holds: its gradient
        expected = expected.reshape(vals[wrt].shape)
    # the values keep the declared shape
    _, got = p.compile({"h": "tanh"})(**vals)
    assert got[wrt].shape == tuple(d.shape) == expected.shape
    assert np.allclose(got[wrt], expected, rtol=1e-6, atol=1e-8)
    # the printed formula is a matrix formula (no index notation), whose entries are the Jacobian's
    printed = d.formula("ascii")
    assert printed == d.text("ascii") and "[" not in printed and "δ" not in printed
    value = evaluate_printed(printed, entries(vals))
    squeezed = tuple(k for k in expected.shape if k != 1)
    assert tuple(k for k in value.shape if k != 1) == squeezed
    assert np.allclose(value.reshape(squeezed), expected.reshape(squeezed), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("text, wrt, sizes, f", [c for c in CASES if c[1] == "x" and c[0] != "A@x"])
def test_in_denominator_layout_the_printed_matrix_is_transposed(text, wrt, sizes, f):
    p = analyze(declared(text, wrt, sizes), functions=("h",), layout="denominator")
    (d,) = p.derivatives()
    vals = draw(sizes, seed=3)
    expected = fd_jacobian(f, vals, wrt)  # shape(f) + shape(x)
    n = expected.shape[1]
    m = int(np.prod(vals[wrt].shape))
    assert d.printed_dims() is not None and len(d.printed_dims()) == 2
    value = evaluate_printed(d.formula("ascii"), entries(vals))
    assert np.allclose(value.reshape(m, n), expected.reshape(n, m).T, rtol=1e-6, atol=1e-8)


def test_x_transpose_A_prints_A_transpose_and_says_how_the_shapes_relate(capsys):
    assert main(["grad", "x'@A wrt x"]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂x = Aᵀ\n" in out and "[0,i,k]" not in out
    assert ("shape (1, n, m)  (numerator layout: shape(f) + shape(x), J[i,j] = ∂fᵢ/∂xⱼ; printed as the "
            "(n, m) matrix, its axis of length 1 dropped)") in out
    assert "note: ∂f/∂x is printed with singleton axes dropped" in out
    assert main(["grad", "x'@A wrt x", "--layout", "denominator"]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂x = A\n" in out and "shape (m, 1, n)" in out and "printed as the (m, n) matrix" in out


def test_json_keeps_the_documented_shape_and_the_values(capsys):
    assert main(["grad", "x'@A wrt x", "-s", "x=3", "-s", "A=3x2", "--random", "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (d,) = doc["derivatives"]
    assert d["formula"] == "A'" and d["shape"] == [1, 2, 3] and d["check"]["ok"]
    assert np.asarray(d["value"]).shape == (1, 2, 3)
    assert [n["kind"] for n in doc["notes"]] == ["squeezed"]


def test_a_row_wrt_a_scalar_is_the_row_itself():
    # ∂(c xᵀ)/∂c has shape (1, m) = the printed xᵀ: no axis is dropped and no note is needed
    p = analyze("exp(c*x') wrt c where x: (3)")
    (d,) = p.derivatives()
    assert d.expr is not None and d.printed_dims() is None and d.shape == (1, 3)
    assert not [n for n in p.notes if n.kind == "squeezed"]
    vals = {"x": np.array([0.3, -0.2, 0.5]), "c": np.float64(0.7)}
    expected = fd_jacobian(lambda v: np.exp(v["c"] * v["x"][None, :]), vals, "c")
    value = evaluate_printed(d.formula("ascii"), vals)
    assert value.shape == (1, 3) and np.allclose(value, expected, rtol=1e-6, atol=1e-8)


def test_the_hessian_wrt_a_declared_row_is_its_matrix():
    sizes = {"x": (1, 3), "A": (3, 3)}
    p = analyze(declared("x@A@x'", "x", sizes))
    (d,) = p.hessians()
    vals = draw(sizes, seed=5)
    expected = fd_hessian(lambda v: (v["x"] @ v["A"] @ v["x"].T).item(), vals, "x")
    _, hess = p.compile(hessian=True)(**vals)
    assert hess["x"].shape == (1, 3, 1, 3) and np.allclose(hess["x"], expected, rtol=1e-4, atol=1e-6)
    assert d.printed_dims() == (3, 3)
    value = evaluate_printed(d.formula("ascii"), entries(vals))
    assert np.allclose(value, expected.reshape(3, 3), rtol=1e-4, atol=1e-6)


def test_without_a_matrix_formula_it_stays_index_notation():
    # xᵀA wrt A is (1, n, m, n): three axes of length > 1, no matrix formula
    p = analyze("x'@A wrt A")
    (d,) = p.derivatives()
    assert d.text() == "" and d.formula("ascii").startswith("[0,i,k,l] =")
