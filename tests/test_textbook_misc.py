"""Issue 19's causes outside its list, each a general rule checked against numpy:

- sinh(z)/cosh(z) is tanh(z) (the quotient's hook): the log-cosh loss's gradient and Hessian;
- an ASCII sum writes a constant array as its scalar where another term carries the shape
  (`log(x) + 1`, numpy's broadcasting), `ones(m)` where it alone carries it;
- the printer writes a transpose outside a product or sum where that is shorter
  (`(X @ B + B @ X)'` for `B' @ X' + X' @ B'`).

Every printed formula is parsed back and evaluated against a closed form or central differences
written here."""

import numpy as np
import pytest

import gradcli
from gradcli.numeric.evaluate import compile_graph

rng = np.random.default_rng(19)


def value(text: str, values: dict) -> np.ndarray:
    """The value of a formula (printed ASCII read back) at the given arrays."""
    p = gradcli.analyze(text, data_shapes={k: np.shape(v) for k, v in values.items() if k in text})
    return compile_graph([p.expr]).run({k: v for k, v in values.items() if k in text})[0]


def printed(text: str, kind: str = "grad", **shapes) -> str:
    p = gradcli.analyze(text, shapes=shapes or None)
    (d,) = p.hessians() if kind == "hess" else p.derivatives()
    return d.text("ascii")


def central_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# ----------------------------------------------------------------- sinh/cosh = tanh
@pytest.mark.parametrize("text, expected_op", [
    ("sinh(x)/cosh(x)", "tanh"),
    ("sinh(x + y)/cosh(x + y)", "tanh"),
    ("2*sinh(x)/cosh(x)", "mul"),       # 2·tanh(x)
    ("sinh(x)/cosh(y)", "div"),         # other arguments: no identity
    ("cosh(x)/sinh(x)", "div"),
])
def test_sinh_over_cosh_is_tanh_where_the_arguments_agree(text, expected_op):
    p = gradcli.analyze(text, shapes={"x": (5,), "y": (5,)})
    assert p.expr.op == expected_op
    x, y = rng.normal(size=5), rng.normal(size=5)
    numpy_value = {"sinh(x)/cosh(x)": np.sinh(x) / np.cosh(x),
                   "sinh(x + y)/cosh(x + y)": np.sinh(x + y) / np.cosh(x + y),
                   "2*sinh(x)/cosh(x)": 2 * np.sinh(x) / np.cosh(x),
                   "sinh(x)/cosh(y)": np.sinh(x) / np.cosh(y),
                   "cosh(x)/sinh(x)": np.cosh(x) / np.sinh(x)}[text]
    assert np.allclose(compile_graph([p.expr]).run({"x": x, "y": y})[0], numpy_value, rtol=1e-12)


def test_log_cosh_loss_gradient_and_hessian_read_back_to_their_values():
    X, w, y = rng.normal(size=(7, 3)), rng.normal(size=3), rng.normal(size=7)
    formula = "sum(log(cosh(X@w - y))) wrt w"
    grad, hess = printed(formula), printed(formula, "hess")
    assert "tanh" in grad and "sinh" not in grad and "cosh" not in hess, (grad, hess)

    def f(w_):
        return np.sum(np.log(np.cosh(X @ w_ - y)))

    values = {"X": X, "w": w, "y": y}
    assert np.allclose(value(grad, values), central_gradient(f, w), rtol=1e-6, atol=1e-8)
    r = X @ w - y
    assert np.allclose(value(hess, values), X.T @ np.diag(1 - np.tanh(r) ** 2) @ X, rtol=1e-10)
    rows = [central_gradient(lambda v: (np.tanh(X @ v - y) @ X)[i], w) for i in range(3)]
    assert np.allclose(value(hess, values), np.array(rows), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------- c·𝟙 in an ASCII sum
def test_a_constant_array_in_a_sum_prints_as_its_scalar():
    text = printed("sum(x*log(x)) wrt x")
    assert text == "log(x) + 1"
    x = rng.uniform(0.5, 2.0, size=6)
    assert np.allclose(value(text, {"x": x}), central_gradient(lambda v: np.sum(v * np.log(v)), x), rtol=1e-6)


@pytest.mark.parametrize("formula, numpy_gradient", [
    ("sum(x) wrt x", lambda x, A: np.ones_like(x)),               # ones(m) alone carries the shape
    ("sum(3*x) wrt x", lambda x, A: 3 * np.ones_like(x)),
    ("sum(x*log(x) - 2*x) wrt x", lambda x, A: np.log(x) - 1),
    ("sum(A*log(A) + A) wrt A", lambda x, A: np.log(A) + 2),
])
def test_constant_arrays_read_back_to_their_shape_and_value(formula, numpy_gradient):
    x, A = rng.uniform(0.5, 2.0, size=4), rng.uniform(0.5, 2.0, size=(4, 3))
    shapes = {"x": (4,), "A": (4, 3)}
    p = gradcli.analyze(formula, shapes={k: v for k, v in shapes.items() if k in formula})
    (d,) = p.derivatives()
    text = d.text("ascii")
    back = value(text, {"x": x, "A": A} if "A" in formula else {"x": x})
    expected = numpy_gradient(x, A)
    assert back.shape == expected.shape and np.allclose(back, expected), text
    if formula.startswith("sum(x) ") or formula.startswith("sum(3*x)"):
        assert "ones(" in text  # needed for the shape
    else:
        assert "ones(" not in text, text


# ----------------------------------------------------------------- transposes outside
@pytest.mark.parametrize("formula, expected, closed_form, f", [
    ("tr(X@X@B) wrt X", "(X @ B + B @ X)'", lambda X, A, B: (X @ B + B @ X).T,
     lambda X, A, B: np.trace(X @ X @ B)),
    ("tr(A@inv(X)@B) wrt X", "-(inv(X) @ B @ A @ inv(X))'",
     lambda X, A, B: -(np.linalg.inv(X) @ B @ A @ np.linalg.inv(X)).T,
     lambda X, A, B: np.trace(A @ np.linalg.inv(X) @ B)),
    # writing it outside, -(inv(X) @ inv(X))', is not shorter: the transposes stay on the factors
    ("tr(inv(X)) wrt X", "-inv(X)' @ inv(X)'", lambda X, A, B: -(np.linalg.inv(X) @ np.linalg.inv(X)).T,
     lambda X, A, B: np.trace(np.linalg.inv(X))),
    ("tr(X'@B@X) wrt X", "(B + B') @ X", lambda X, A, B: (B + B.T) @ X, lambda X, A, B: np.trace(X.T @ B @ X)),
])
def test_a_transpose_is_written_outside_where_that_is_shorter(formula, expected, closed_form, f):
    text = printed(formula)
    assert text == expected
    X = rng.normal(size=(4, 4)) + 4 * np.eye(4)
    A, B = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    values = {"X": X, "A": A, "B": B}
    back = value(text, values)
    assert np.allclose(back, closed_form(X, A, B), rtol=1e-10)
    assert np.allclose(back, central_gradient(lambda v: f(v, A, B), X), rtol=1e-6, atol=1e-8)


def test_every_style_makes_the_ascii_choice():
    p = gradcli.analyze("tr(X@X@B) wrt X")
    (d,) = p.derivatives()
    assert d.text("unicode") == "(XB + BX)ᵀ"
    assert d.text("latex").endswith(r"\right)^\top")


def test_a_long_product_is_written_outside_once():
    # each node's untransposed form is remembered, so a 160-factor chain is looked into once
    # and printed with one transpose, each factor once
    chain = " @ ".join(["A", "B"] * 80)
    p = gradcli.analyze(f"tr({chain} @ X) wrt X", shapes={"A": (3, 3), "B": (3, 3), "X": (3, 3)})
    (d,) = p.derivatives()
    text = d.text("ascii")
    assert text.count("A") == 80 and text.count("'") == 1, text
    A, B = rng.normal(size=(3, 3)) / 2, rng.normal(size=(3, 3)) / 2
    X = rng.normal(size=(3, 3))
    assert np.allclose(value(text, {"A": A, "B": B, "X": X}), np.linalg.matrix_power(A @ B, 80).T)


# ----------------------------------------------------------------- constant arrays collect
@pytest.mark.parametrize("c", [2.0, 3.0, 0.5, -1.5])
def test_constant_arrays_of_a_sum_collect_into_one_and_print_with_a_minus(c):
    """d/dx Σ(x log x − c x) = log x + 𝟙 − c·𝟙: the two constant arrays are one, (1 − c)·𝟙,
    printed `log(x) − (c − 1)·𝟙` (never `+ −…`), and the printed ASCII read back equals
    central differences of numpy's Σ(x log x − c x)."""
    x = rng.uniform(0.5, 2.0, size=4)
    p = gradcli.analyze(f"sum(x*log(x) - {c}*x) wrt x", data_shapes={"x": x.shape})
    (d,) = p.derivatives()
    unicode, ascii_text = d.text("unicode"), d.text("ascii")
    assert unicode.count("𝟙") == 1 and "+ −" not in unicode and "+ -" not in ascii_text
    expected = central_gradient(lambda v: np.sum(v * np.log(v) - c * v), x)
    assert np.allclose(value(ascii_text, {"x": x}), expected, atol=1e-6)
    assert np.allclose(value(unicode.replace("𝟙", "ones(4)").replace("·", "*").replace("−", "-"), {"x": x}),
                       expected, atol=1e-6)


@pytest.mark.parametrize("text, hessian_diag", [
    ("sum(1/(1+x^2)) wrt x", lambda x: (6 * x**2 - 2) / (1 + x**2) ** 3),
    ("sum(x/(1+x^2)) wrt x", lambda x: (2 * x**3 - 6 * x) / (1 + x**2) ** 3),
])
def test_a_folded_diagonal_keeps_its_minus_outside_the_fraction(text, hessian_diag):
    """Folding c·diag(d ⊘ w) into one diagonal once wrote a negative c into the numerator, so
    the sum printed `+ −2 ⊘ (1 + x²)²`; the minus stays a minus.  The printed ASCII, read
    back, equals numpy's closed-form Hessian diag((6x² − 2)/(1 + x²)³) (and its x/(1+x²) twin)."""
    x = rng.normal(size=4)
    p = gradcli.analyze(text, data_shapes={"x": x.shape})
    (h,) = p.hessians()
    assert "+ −" not in h.text("unicode") and "+ -" not in h.text("ascii")
    assert np.allclose(value(h.text("ascii"), {"x": x}), np.diag(hessian_diag(x)), atol=1e-9)
