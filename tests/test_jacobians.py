"""Jacobians and Hessians: every rule against finite differences in both layouts, the matrix
formulas of the textbooks, and index notation where no matrix formula exists."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli
from helpers import random_data
from test_derivatives import formulas


def check_all(text, shapes=None, hessian=False, layout=None, positive=False, fns=None):
    """Compile, evaluate, FD-check every derivative; also that layouts are transposes."""
    p0 = gradcli.analyze(text, shapes=shapes)
    values = random_data(p0, 3, positive)
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()}, layout=layout)
    compiled = p.compile(fns, hessian=hessian)
    f, base = compiled.evaluate(values)
    errors = compiled.check(values, base, fns)
    assert errors and all(e < 1e-6 for e in errors.values()), errors
    _, shown = compiled(**values)
    for d in compiled.derivs:
        assert shown[d.wrt].shape == tuple(d.shape)
    return p, compiled, base


JACOBIANS = [
    ("A@x", {"A": (4, 3)}), ("x'@A", {"A": (3, 4)}), ("tanh(W@x + b)", {"W": (4, 3), "b": (4,)}),
    ("softmax(z)", {"z": (4,)}), ("exp(x) * y", {"x": (3,)}), ("x / (1 + y^2)", {"x": (3,)}),
    ("sigmoid(x) + relu(y) + softplus(x)", {"x": (3,)}), ("a * x + x * (x'@y)", {"x": (3,)}),
    ("log(1 + exp(x))", {"x": (3,)}), ("sum(A, 0)", {"A": (3, 4)}), ("diag(A)", {"A": (3, 3)}),
    ("diag(x)@y", {"x": (3,)}), ("inv(A)@x", {"A": (3, 3)}), ("A'@x", {"A": (3, 4)}),
    ("R'@R", {"R": (4, 3)}), ("X * Y", {"X": (2, 3)}), ("A@X@B", {"A": (2, 3), "X": (3, 4), "B": (4, 2)}),
    ("inv(X)", {"X": (3, 3)}), ("outer(x, y)", {"x": (3,), "y": (2,)}), ("tanh(W@x)", {"W": (2, 3)}),
    ("X@W + v", {"X": (3, 2), "W": (2, 4)}), ("x'", {"x": (3,)}),
    ("x@x'@x", {"x": (3,)}), ("A@x@x'@y", {"A": (2, 3), "y": (3,)}),
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("text, shapes", JACOBIANS, ids=[j[0] for j in JACOBIANS])
def test_jacobian_matches_finite_differences(text, shapes, layout):
    import re

    names = sorted(set(re.findall(r"[A-Za-z]\w*", text)) - {"tanh", "softmax", "exp", "sigmoid", "relu",
                                                            "softplus", "log", "sum", "diag", "inv", "outer"})
    check_all(f"{text} wrt {', '.join(names)}", shapes, layout=layout)


def test_denominator_is_the_transpose_of_numerator():
    p, compiled, base = check_all("tanh(W@x + b) wrt x", {"W": (4, 3), "b": (4,)}, layout="denominator")
    (d,) = compiled.derivs
    assert d.shape == (3, 4) and d.text() == "Wᵀ diag(1 − tanh(Wx + b)²)"


@pytest.mark.parametrize("text, wrt, formula", [
    ("A@x", "x", "A"),
    ("tanh(W@x + b)", "b where b: (m)", "diag(1 − tanh(Wx + b)²)"),
    ("tanh(W@x + b)", "x where b: (m)", "diag(1 − tanh(Wx + b)²) W"),
    ("softmax(v)", "v", "diag(softmax(v)) − softmax(v) softmax(v)ᵀ"),
    ("x*y", "x", "diag(y)"),
    ("(A + A')@x", "x", "A + Aᵀ"),
    # an outer product times a vector: x(dxᵀb) is regrouped as (xbᵀ)dx to read the matrix off
    ("x@x'@x", "x", "2xxᵀ + xᵀx·I"),
    ("A@x@x'@b", "x where b: (m)", "Axbᵀ + bᵀx·A"),
])
def test_jacobian_matrix_formulas(text, wrt, formula):
    (d,) = gradcli.analyze(f"{text} wrt {wrt}").derivatives()
    assert d.kind == "jacobian" and d.text() == formula


def test_seed_examples_shapes_and_index_notation():
    p = gradcli.analyze("A@x wrt x, A where A: (M, N)")
    dx, dA = p.derivatives()
    assert dx.shape == ("M", "N") and dx.text() == "A"
    assert dA.shape == ("M", "M", "N") and dA.text() == ""
    assert dA.formula() == "[i,k,l] = δ(i,k) x[l]"
    (dR,) = gradcli.analyze("R'@R wrt R where R: (M, N)").derivatives()
    assert dR.shape == ("N", "N", "M", "N")
    assert dR.formula() == "[i,j,k,l] = δ(j,l) R[k,i] + δ(i,l) R[k,j]"


HESSIANS = [
    ("x'@A@x wrt x", {"A": (3, 3)}, "A + Aᵀ"),
    ("||A@x - y||^2 wrt x", {"A": (4, 3)}, "2AᵀA"),
    ("||y - X@theta||^2 wrt theta", {"X": (5, 3)}, "2XᵀX"),
    ("sum(log(1 + exp(-y*(X@w)))) wrt w", {"X": (6, 3)},
     "Xᵀ diag((1 − σ(−y ⊙ Xw)) ⊙ (σ(−y ⊙ Xw) ⊙ y²)) X"),
    ("logsumexp(z) - y'@z wrt z", {"z": (4,)}, "diag(softmax(z)) − softmax(z) softmax(z)ᵀ"),
    ("-sum(y*log(softmax(z))) wrt z", {"z": (4,)}, None),
    ("logdet(X) wrt X", {"X": (3, 3)}, ""),
    ("x'@A@y wrt x, y", {"A": (2, 3)}, None),
    ("sum(tanh(W@x)) wrt W, x", {"W": (2, 3)}, None),
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("text, shapes, formula", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessians_match_finite_differences(text, shapes, formula, layout):
    p, compiled, base = check_all(text, shapes, hessian=True, layout=layout)
    if formula is not None:
        assert compiled.derivs[0].text() == formula


def test_logdet_hessian_is_a_4_tensor_in_index_notation():
    (h,) = gradcli.analyze("logdet(X) wrt X").hessians()
    assert h.shape == ("m", "m", "m", "m") and h.formula() == "[i,j,k,l] = −(X⁻¹)[j,k] (X⁻¹)[l,i]"


def test_large_jacobian_never_builds_the_diagonal():
    from gradcli.language import operators  # noqa: F401  (fills the operator registry)
    n = 300
    p = gradcli.analyze("tanh(W@x + b) wrt x", data_shapes={"W": (n, n), "x": (n,), "b": (n,)})
    compiled = p.compile()
    lazy = [node for node in compiled.program.order if node in compiled.program.deferred]
    assert [n.op for n in lazy if n.op == "diagm"] == ["diagm"]
    rng = np.random.default_rng(0)
    W, x, b = rng.normal(size=(n, n)) / n, rng.normal(size=n), rng.normal(size=n)
    _, d = compiled(W=W, x=x, b=b)
    assert np.allclose(d["x"], (1 - np.tanh(W @ x + b) ** 2)[:, None] * W)


def test_products_are_evaluated_in_the_cheapest_order():
    from gradcli.numeric.evaluate import compile_graph

    p = gradcli.analyze("sum(A@B@x)", data_shapes={"A": (50, 60), "B": (60, 70), "x": (70,)})
    program = compile_graph([p.expr])
    products = [n for n in program.order if n.op == "matmul"]
    inner = products[0]
    assert inner.args[0].params[0] == "B" and inner.args[1].params[0] == "x"  # A(Bx), not (AB)x
    rng = np.random.default_rng(0)
    A, B, x = rng.normal(size=(50, 60)), rng.normal(size=(60, 70)), rng.normal(size=70)
    assert np.isclose(program.run({"A": A, "B": B, "x": x})[0], np.sum(A @ B @ x))
    # a wide right factor flips the choice: (xᵀA)B keeps everything a row
    q = gradcli.analyze("x'@A@B", data_shapes={"A": (50, 60), "B": (60, 70), "x": (50,)})
    first = [n for n in compile_graph([q.expr]).order if n.op == "matmul"][0]
    assert first.args[1].params[0] == "A"


@pytest.mark.parametrize("text, weights", [
    ("x'@X'@diag(w)@X@x wrt x", "nonnegative"),   # Xᵀ diag(w) X with w ≥ 0: B = √w X, BᵀB
    ("x'@X'@diag(w)@X@x wrt x", "mixed"),         # a negative weight: (Xᵀw)X as written
    ("x'@X@diag(w)@X'@x wrt x", "nonnegative"),   # X diag(w) Xᵀ: the same with P = Xᵀ
])
def test_congruences_are_evaluated_as_symmetric_updates(text, weights):
    from gradcli.numeric.evaluate import compile_graph

    rng = np.random.default_rng(3)
    X = rng.normal(size=(7, 7))
    w = rng.random(7) + (0.0 if weights == "nonnegative" else -0.5)
    x = rng.normal(size=7)
    p = gradcli.analyze(text, data_shapes={"X": X.shape, "w": w.shape, "x": x.shape})
    (h,) = p.hessians()
    program = compile_graph([h.expr])
    assert [n.op for n in program.order].count("congruence") == 1
    M = X.T @ np.diag(w) @ X if "X'@diag" in text else X @ np.diag(w) @ X.T
    value = program.run({"X": X, "w": w, "x": x})[0]
    assert np.allclose(value, M + M.T)
    assert np.array_equal(value, value.T) or weights == "mixed"


def test_chain_with_symbolic_sizes_is_a_clean_data_error():
    from gradcli import GradcliError
    from gradcli.numeric.evaluate import compile_graph

    p = gradcli.analyze("sum(A@B@C@x)")
    with pytest.raises(GradcliError) as info:
        compile_graph([p.expr])
    assert info.value.kind == "data" and "has no size" in info.value.message


@pytest.mark.parametrize("text, shapes", [
    ("||X@W - Y||_F^2 wrt W", {"X": (4, 3), "W": (3, 2), "Y": (4, 2)}),
    ("inv(A)@x wrt A", {"A": (3, 3), "x": (3,)}),
    ("A@x@x'@b wrt A", {"A": (2, 3), "x": (3,), "b": (3,)}),
    ("inv(X'@X)@X'@y wrt X", {"X": (5, 3), "y": (5,)}),
    ("A@X@B wrt X", {"A": (2, 3), "X": (3, 4), "B": (4, 2)}),
    ("tr(X'@A@X) wrt X", {"X": (3, 2), "A": (3, 3)}),
    ("tanh(W@x + b) wrt W", {"W": (3, 2), "x": (2,), "b": (3,)}),
])
def test_printed_index_notation_evaluates_to_the_derivative(text, shapes):
    # the printed form writes Σ_r X[r,k] X[r,i] as (XᵀX)[k,i]: evaluate what is printed, by
    # einsum, and compare it with the derivative's value
    from gradcli.calculus.differentiate import gradients, seed_for
    from gradcli.numeric.evaluate import compile_graph
    from gradcli.calculus.indexform import display_terms, evaluate_terms

    hessian = text.startswith(("||", "tr("))
    p = gradcli.analyze(text, shapes=shapes)
    values = random_data(p, 5, positive=False)
    (d,) = p.hessians() if hessian else p.derivatives()
    assert d.expr is None and d.formula()  # a tensor, printed in index notation
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    f_dims = d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims
    terms = display_terms(g, v, f_dims, d.x_ty.dims)
    factors = {f[3]: f[3] for t in terms for f in t.factors if f[0] == "t"}
    computed = dict(zip(factors, compile_graph(list(factors.values())).run(values)))
    from gradcli.calculus.indexform import F_INDEX, X_INDEX

    printed = evaluate_terms(terms, F_INDEX[:len(f_dims)], X_INDEX[:len(d.x_ty.dims)],
                             tuple(d.shape), computed)
    _, derivs = p.compile(hessian=hessian).evaluate(values)
    assert np.allclose(printed, derivs[d.wrt])


@settings(deadline=None, suppress_health_check=list(HealthCheck),
          max_examples=int(os.environ.get("GRADCLI_EXAMPLES", "200")))
@given(st.one_of(formulas("v", 3), formulas("m", 2)), st.integers(0, 50))
def test_printed_index_notation_of_random_tensors_evaluates_to_the_derivative(text, seed):
    from gradcli.calculus.differentiate import gradients, seed_for
    from gradcli.numeric.evaluate import compile_graph
    from gradcli.calculus.indexform import F_INDEX, X_INDEX, display_terms, evaluate_terms

    if "A" not in text:
        return
    shapes = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
    names = [n for n in shapes if n in text]
    p = gradcli.analyze(f"{text} wrt A", data_shapes={n: shapes[n] for n in names})
    (d,) = p.derivatives()
    if d.expr is not None:
        return
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    f_dims = d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims
    terms = display_terms(g, v, f_dims, d.x_ty.dims)
    if terms is None:
        return
    rng = np.random.default_rng(seed)
    values = {n: 0.5 * rng.normal(size=shapes[n]) for n in names}
    factors = {f[3]: f[3] for t in terms for f in t.factors if f[0] == "t"}
    computed = dict(zip(factors, compile_graph(list(factors.values())).run(values)))
    printed = evaluate_terms(terms, F_INDEX[:len(f_dims)], X_INDEX[:len(d.x_ty.dims)], tuple(d.shape),
                             computed)
    _, derivs = p.compile().evaluate(values)
    if np.all(np.isfinite(derivs["A"])):
        assert np.allclose(printed, derivs["A"], rtol=1e-8, atol=1e-8), text


def test_a_row_vector_f_has_its_singleton_axis_in_index_notation():
    # printed as the matrix of its entries (tests/test_rowjacobians.py); the index form keeps
    # the axis of length 1 as the index 0
    (d,) = gradcli.analyze("x'@A wrt x").derivatives()
    assert d.shape == (1, "n", "m") and d.formula() == "Aᵀ"
    assert d.index_names() == ["0", "i", "k"] and d.index_text() == "A[k,i]"
    check_all("x'@A wrt x", {"A": (3, 2)})


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("text, shapes, hessian", [
    ("W@x wrt W", {"W": (2, 3)}, False),
    ("x'@W wrt W", {"W": (3, 2)}, False),
    ("inv(X) wrt X", {"X": (3, 3)}, False),
    ("R'@R wrt R", {"R": (4, 3)}, False),
    ("tanh(W@x + b) wrt W", {"W": (3, 2), "b": (3,)}, False),
    ("logdet(X) wrt X", {"X": (3, 3)}, True),
    ("tr(X'@A@X) wrt X", {"X": (3, 2), "A": (3, 3)}, True),
])
def test_printed_index_notation_follows_the_layout(text, shapes, hessian, layout):
    # J[k,l,i,j] = … in denominator layout: the printed indices are named in the order of the
    # value's axes.  Evaluate the printed form by einsum in that order, compare with the values.
    from gradcli.calculus.differentiate import gradients, seed_for
    from gradcli.numeric.evaluate import compile_graph
    from gradcli.calculus.indexform import display_terms, evaluate_terms

    p0 = gradcli.analyze(text, shapes=shapes)
    values = random_data(p0, 2)
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()}, layout=layout)
    (d,) = p.hessians() if hessian else p.derivatives()
    printed = d.formula("ascii")
    assert d.expr is None and printed.startswith("[")
    names = printed[1:printed.index("]")].split(",")
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    terms = display_terms(g, v, d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims, d.x_ty.dims)
    factors = {f[3]: f[3] for t in terms for f in t.factors if f[0] == "t"}
    computed = dict(zip(factors, compile_graph(list(factors.values())).run(values)))
    value = evaluate_terms(terms, tuple(names), (), tuple(d.shape), computed)
    _, shown = p.compile(hessian=hessian)(**values)
    assert np.allclose(value, shown[d.wrt])
