"""Issue 19's canonical forms for diagonals, determinants and the piecewise functions:

- diag(u) ± diag(v) = diag(u ± v) (with scalar factors: s·diag(u) + diag(v) = diag(s·u + v)),
  diag(u) ⊙ diag(v) = diag(u ⊙ v);
- det, logdet and log|det| of a product of square factors split into the factors:
  ∂ det(AXB)/∂X = det(AXB)·X⁻ᵀ, ∂ det(XXX)/∂X = 3det(XXX)·X⁻ᵀ, ∂ logdet(AX)/∂X = X⁻ᵀ,
  ∂ log|det X|/∂X = X⁻ᵀ (from F(RF)⁻¹ = R⁻¹ where F is square, and sign(d)·d = |d|);
- relu(u) ⊙ 𝟙(u > 0) = relu(u) and the other products the records state (`Op.products`).

Every derivative is checked at random points against numpy closed forms written here, and so is
its printed ASCII, parsed back and evaluated by the test oracle (tests/oracle.py, which computes
with autograd's numpy, not with gradcli's evaluator); the printed form is the short one.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.language import simplify as S
from gradcli.language.expr import OPS, make, make_raw
from gradcli.language.shapes import Ty
from gradcli.numeric.evaluate import compile_graph

from oracle import translate

N = 4


def _square(rng, n=N):
    return rng.normal(size=(n, n)) + n * np.eye(n)  # well conditioned


def _flip_sign(X):
    """X with its first row negated: det(X) < 0 (log|det X| is still defined there)."""
    X = X.copy()
    X[0] *= -1
    return X


def _pseudo_huber_hessian(v):
    r = v["X"] @ v["w"] - v["y"]
    return v["X"].T @ np.diag((1 + r ** 2) ** -1.5) @ v["X"]


def _hinge_hessian(v):
    r = v["X"] @ v["w"] - v["y"]
    return v["X"].T @ np.diag((r > 0).astype(float)) @ v["X"]


def _cauchy_hessian(v):
    r = v["X"] @ v["w"] - v["y"]
    return v["X"].T @ np.diag(2 * (1 - r ** 2) / (1 + r ** 2) ** 2) @ v["X"]


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _inv_T(M):
    return np.linalg.inv(M).T


# (command, formula, shapes, draw the values, the derivative in numpy, the short form (ASCII: the
#  textbook's, or for the robust-loss Hessians the one diag these rules give, whose entries
#  the power and rational-function rules of issue 19 shorten further), what the printed form may not contain)
CASES = [
    ("grad", "log(abs(det(X))) wrt X", {"X": (N, N)},
     lambda rng: {"X": _flip_sign(_square(rng))}, lambda v: _inv_T(v["X"]), "inv(X)'", ("sign", "abs")),
    ("grad", "log(abs(det(X))) wrt X", {"X": (N, N)},
     lambda rng: {"X": _square(rng)}, lambda v: _inv_T(v["X"]), "inv(X)'", ("sign", "abs")),
    ("grad", "det(A@X@B) wrt X", {"A": (N, N), "X": (N, N), "B": (N, N)},
     lambda rng: {"A": _square(rng), "X": _square(rng), "B": _square(rng)},
     lambda v: np.linalg.det(v["A"] @ v["X"] @ v["B"]) * _inv_T(v["X"]), "det(A@X@B)*inv(X)'", ("A'", "B'")),
    ("grad", "det(X@X@X) wrt X", {"X": (N, N)}, lambda rng: {"X": _square(rng)},
     lambda v: 3 * np.linalg.det(v["X"]) ** 3 * _inv_T(v["X"]), "3*det(X@X@X)*inv(X)'", ()),
    ("grad", "logdet(A@X) wrt X", {"A": (N, N), "X": (N, N)},
     lambda rng: {"A": _square(rng), "X": _square(rng)}, lambda v: _inv_T(v["X"]), "inv(X)'", ("A",)),
    ("grad", "logdet(X'@X) wrt X", {"X": (N, N)}, lambda rng: {"X": _square(rng)},
     lambda v: 2 * _inv_T(v["X"]), "2*inv(X)'", ()),
    ("grad", "logdet(X@X) wrt X", {"X": (N, N)}, lambda rng: {"X": _square(rng)},
     lambda v: 2 * _inv_T(v["X"]), "2*inv(X)'", ()),
    ("grad", "tr(inv(A@X@B)) wrt X", {"A": (N, N), "X": (N, N), "B": (N, N)},
     lambda rng: {"A": _square(rng), "X": _square(rng), "B": _square(rng)},
     lambda v: -v["A"].T @ np.linalg.matrix_power(_inv_T(v["A"] @ v["X"] @ v["B"]), 2) @ v["B"].T,
     "-inv(X@B)'@inv(A@X)'", ()),
    ("grad", "sum(relu(u)^2)/2 wrt u", {"u": (7,)}, lambda rng: {"u": rng.normal(size=7)},
     lambda v: np.maximum(v["u"], 0), "relu(u)", ("sign",)),
    ("grad", "sum(relu(X@w - y)^2) wrt w", {"X": (6, 3), "w": (3,), "y": (6,)},
     lambda rng: {"X": rng.normal(size=(6, 3)), "w": rng.normal(size=3), "y": rng.normal(size=6)},
     lambda v: 2 * v["X"].T @ np.maximum(v["X"] @ v["w"] - v["y"], 0), "2*X'@relu(X@w - y)", ("sign",)),
    ("grad", "sum(abs(x)^2) wrt x", {"x": (5,)}, lambda rng: {"x": rng.normal(size=5)},
     lambda v: 2 * v["x"], "2*x", ("sign",)),
    ("hess", "sum(relu(X@w - y)^2)/2 wrt w", {"X": (6, 3), "w": (3,), "y": (6,)},
     lambda rng: {"X": rng.normal(size=(6, 3)), "w": rng.normal(size=3), "y": rng.normal(size=6)},
     _hinge_hessian, "X'@diag(sign(relu(X@w - y)))@X", ("^",)),
    ("hess", "sum(sqrt(1 + (X@w - y)^2)) wrt w", {"X": (6, 3), "w": (3,), "y": (6,)},
     lambda rng: {"X": rng.normal(size=(6, 3)), "w": rng.normal(size=3), "y": rng.normal(size=6)},
     _pseudo_huber_hessian, "X'@diag(1/sqrt(1 + (X@w - y)^2) - (X@w - y)^2/sqrt(1 + (X@w - y)^2)^3)@X",
     ("diag(1/sqrt(1 + (X@w - y)^2)) - ",)),
    ("hess", "sum(log(1 + (X@w - y)^2)) wrt w", {"X": (6, 3), "w": (3,), "y": (6,)},
     lambda rng: {"X": rng.normal(size=(6, 3)), "w": rng.normal(size=3), "y": rng.normal(size=6)},
     _cauchy_hessian, "X'@diag(2/(1 + (X@w - y)^2) - 4*(X@w - y)^2/(1 + (X@w - y)^2)^2)@X",
     ("2*1", "2*diag", ") - 4*diag")),
    ("hess", "sum(sigmoid(x)) wrt x", {"x": (5,)}, lambda rng: {"x": rng.normal(size=5)},
     lambda v: np.diag(_sigmoid(v["x"]) * (1 - _sigmoid(v["x"])) * (1 - 2 * _sigmoid(v["x"]))),
     "diag(sigmoid(x)*(1 - sigmoid(x))*(1 - 2*sigmoid(x)))", ("eye",)),
    ("hess", "sum(exp(x)) + sum(sin(x)) wrt x", {"x": (5,)}, lambda rng: {"x": rng.normal(size=5)},
     lambda v: np.diag(np.exp(v["x"]) - np.sin(v["x"])), "diag(exp(x) - sin(x))", ()),
    ("hess", "s*sum(exp(x)) + sum(x^4) wrt x", {"x": (5,), "s": ()},
     lambda rng: {"x": rng.normal(size=5), "s": rng.normal()},
     lambda v: np.diag(v["s"] * np.exp(v["x"]) + 12 * v["x"] ** 2), "diag(s*exp(x) + 12*x^2)", ()),
]


def _derivative(command, text, shapes):
    p = gradcli.analyze(text, data_shapes=shapes)
    (d,) = p.derivatives() if command == "grad" else p.hessians()
    return p, d


@pytest.mark.parametrize("command, text, shapes, draw, closed, textbook, absent", CASES)
def test_the_derivative_and_its_printed_form_equal_the_closed_form(command, text, shapes, draw, closed,
                                                                   textbook, absent):
    p, d = _derivative(command, text, shapes)
    printed = d.text("ascii")
    for seed in range(3):
        values = {k: np.asarray(x, float) for k, x in draw(np.random.default_rng(seed)).items()}
        expected = closed(values)
        assert np.allclose(translate(textbook)(values), expected, rtol=1e-9, atol=1e-12)  # the oracle's own check
        _, derivatives = p.compile(hessian=command == "hess")(**values)
        assert np.allclose(derivatives[d.wrt], expected, rtol=1e-9, atol=1e-12), printed
        assert np.allclose(translate(printed)(values), expected, rtol=1e-9, atol=1e-12), printed


@pytest.mark.parametrize("command, text, shapes, draw, closed, textbook, absent", CASES)
def test_the_printed_form_is_as_short_as_the_textbook_form(command, text, shapes, draw, closed, textbook,
                                                            absent):
    _, d = _derivative(command, text, shapes)
    printed = d.text("ascii")
    assert len(printed.replace(" ", "")) <= len(textbook.replace(" ", "")), printed
    assert not any(part in printed for part in absent), printed


def test_factors_not_known_square_are_not_split():
    """logdet(XᵀX) for a tall X: (XᵀX)⁻¹ is not X⁻¹X⁻ᵀ (X has no inverse), and stays."""
    p = gradcli.analyze("logdet(X'@X) wrt X", data_shapes={"X": (6, 3)})
    (d,) = p.derivatives()
    assert d.text("ascii").replace(" ", "") == "2*X@inv(X'@X)"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    expected = 2 * X @ np.linalg.inv(X.T @ X)
    _, grads = p.compile()(X=X)
    assert np.allclose(grads["X"], expected)
    assert np.allclose(translate(d.text("ascii"))({"X": X}), expected)


def test_a_users_formula_is_echoed_as_written():
    p = gradcli.analyze("tr(diag(a) + diag(b)) + sum(relu(u)*sign(u)) + tr(inv(A@B)@A)")
    assert p.text("ascii").replace(" ", "") == "tr(diag(a)+diag(b))+sum(relu(u)*sign(u))+tr(inv(A@B)@A)"


# ------------------------------------------------------------- the rules, one by one
def _value(e, values):
    program = compile_graph([e])
    program.allow_nonfinite = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(program.run(values)[0], float)


VEC = Ty((N,))
SQ = Ty((N, N))


def test_diagonals_fold_into_one():
    u, v, s = S.sym("u", VEC), S.sym("v", VEC), S.sym("s", Ty(()))
    Du, Dv = make("diagm", u), make("diagm", v)
    rng = np.random.default_rng(1)
    values = {"u": rng.normal(size=N), "v": rng.normal(size=N), "s": np.float64(rng.normal())}
    U, V, sv = np.diag(values["u"]), np.diag(values["v"]), values["s"]
    for built, expected in [
        (make_raw("add", (Du, S.neg(Dv))), U - V),
        (make_raw("add", (S.mul(s, Du), Dv)), sv * U + V),
        (make_raw("add", (S.div(Du, s), S.scale(3.0, Dv))), U / sv + 3 * V),
        (make_raw("mul", (Du, Dv)), U * V),
        # a sum of an identity and diagonals times a diagonal: one diag
        (make_raw("matmul", (make_raw("add", (S.eye(N), S.scale(-2.0, Du))), Dv)), (np.eye(N) - 2 * U) @ V),
        (make_raw("matmul", (Dv, make_raw("add", (Du, S.div(S.eye(N), s))))), V @ (U + np.eye(N) / sv)),
    ]:
        tidied = S.derivative_form([built], ())[0]
        assert tidied.op == "diagm", tidied
        assert np.allclose(_value(tidied, values), expected)
        assert np.allclose(_value(built, values), expected)
    assert S.mul(Du, Dv) is make("diagm", S.mul(u, v))  # as diag(u)diag(v) is, also as written


def test_inverses_cancel_against_square_factors_only():
    A, X, B = (S.sym(n, SQ) for n in "AXB")
    rng = np.random.default_rng(2)
    values = {n: _square(rng) for n in "AXB"}
    a, x, b = values["A"], values["X"], values["B"]
    M = S.matmul(S.matmul(A, X), B)
    for built, expected, short in [
        (make_raw("matmul", (S.T(A), S.T(make("inv", M)))), _inv_T(x @ b), "inv(X@B)'"),
        (make_raw("matmul", (S.T(make("inv", M)), S.T(B))), _inv_T(a @ x), "inv(A@X)'"),
        (make_raw("matmul", (B, make("inv", M))), np.linalg.inv(a @ x), "inv(A@X)"),
        (make_raw("matmul", (make("inv", M), A)), np.linalg.inv(x @ b), "inv(X@B)"),
        (make_raw("matmul", (make("inv", X), X)), np.eye(N), "eye(4)"),
    ]:
        tidied = S.derivative_form([built], ())[0]
        assert _render(tidied).replace(" ", "") == short
        assert np.allclose(_value(tidied, values), expected)
        assert np.allclose(_value(built, values), expected)
    # a tall factor: P(QP)⁻¹ is not Q⁻¹ (Q, P have no inverses)
    P, Q = S.sym("P", Ty((N, 2))), S.sym("Q", Ty((2, N)))
    built = make_raw("matmul", (P, make("inv", S.matmul(Q, P))))
    assert S.derivative_form([built], ())[0] is built


def _render(e):
    from gradcli.language.render import render

    return render(e, "ascii")


# the piecewise functions of u, each with its own numpy oracle ("" is u itself)
NUMPY = {"": lambda u: u, "relu": lambda u: np.maximum(u, 0.0), "step": lambda u: (u > 0).astype(float),
         "sign": np.sign, "abs_slope": np.sign, "abs": np.abs}
POINTS = np.array([-2.0, -0.5, 0.0, 0.0, 0.5, 2.0])  # zero included: the identities hold everywhere


def test_every_product_a_record_states_holds_everywhere():
    stated = [(f, g, h) for f, op in OPS.items() for g, h in op.products.items()]
    assert len(stated) >= 10
    for f, g, h in stated:
        assert np.array_equal(NUMPY[f](POINTS) * NUMPY[g](POINTS), NUMPY[h](POINTS)), (f, g, h)


FACTORS = ["", "relu", "step", "sign", "abs_slope", "abs"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(FACTORS), st.integers(1, 3)), min_size=2, max_size=5))
def test_products_of_piecewise_functions_keep_their_values(factors):
    """A product of powers of u, relu(u), 𝟙(u > 0), sign(u), |u| in derivative form: the same
    value at every u (zeros and negatives included)."""
    u = S.sym("u", Ty((POINTS.size,)))
    terms = [(u if f == "" else make(f, u), k) for f, k in factors]
    built = None
    for t, k in terms:
        t = make_raw("pow", (t, S.const(float(k)))) if k > 1 else t
        built = t if built is None else make_raw("mul", (built, t))
    tidied = S.derivative_form([built], ())[0]
    expected = np.prod([NUMPY[f](POINTS) ** k for f, k in factors], axis=0)
    assert np.array_equal(_value(tidied, {"u": POINTS}), expected), (factors, tidied)
    assert tidied.size <= built.size


@pytest.mark.parametrize("text", ["det(A@X@B) wrt X", "det(X@X@X) wrt X", "det(X'@A@X) wrt X",
                                  "det(X@B) + det(A@X) wrt X", "det(A@X)^2 wrt X", "det(A@X)^3 wrt X"])
def test_the_split_det_gradient_is_right_at_a_singular_factor(text):
    """det(AXB)·X⁻ᵀ at a singular X (rank n − 1): X⁻ᵀ does not exist, the gradient does; the
    evaluator takes it as det(AB)·adj(X)ᵀ.  Checked against central differences of numpy's det."""
    rng = np.random.default_rng(5)
    n = 3
    X = rng.normal(size=(n, n - 1)) @ rng.normal(size=(n - 1, n))
    values = {"X": X, "A": _square(rng, n), "B": _square(rng, n)}
    p = gradcli.analyze(text, data_shapes={k: (n, n) for k in values})
    (d,) = p.derivatives()
    assert "inv(X)'" in d.text("ascii").replace(" ", "")  # it is the split form that is evaluated
    used = {k: v for k, v in values.items() if k in p.symbols}
    f = translate(text.split(" wrt ")[0])
    _, grads = p.compile()(**used)
    h = 1e-6
    fd = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            E = np.zeros((n, n))
            E[i, j] = h
            fd[i, j] = (f({**used, "X": X + E}) - f({**used, "X": X - E})) / (2 * h)
    assert np.all(np.isfinite(grads["X"]))
    assert np.allclose(grads["X"], fd, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(fd).max()))
