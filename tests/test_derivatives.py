"""Every derivative rule, checked against central finite differences on random data, and a
property test over random well-shaped formulas mixing all operators."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import fd_errors

TOL = 1e-6
N = {"x": (3,), "y": (3,), "z": (3,), "A": (3, 3), "B": (3, 4), "C": (4, 3), "X": (5, 3), "a": ()}

# One formula per rule (the rule named first), wrt every symbol in it.
RULES = [
    ("add/broadcast", "sum(X + x') + sum(A + a) + sum(B*2 + C')", False),
    ("sub", "sum((x - y)^3)", False),
    ("mul element-wise", "sum(x * y * z)", False),
    ("mul broadcast matrix-vector", "sum(X * x') + sum(A * x)", False),
    ("scalar times array", "sum(a * A) + a*a", False),
    ("div", "sum(x / y) + sum(A / a)", True),
    ("pow constant exponent", "sum(x^3) + sum(A^2)", False),
    ("pow variable exponent", "sum(x^a)", True),
    ("matmul matrix-matrix", "sum(A@B@C)", False),
    ("matmul matrix-vector", "sum(A@x) + sum(C@x)", False),
    ("matmul row-matrix", "x'@A@y", False),
    ("matmul inner numpy style", "x@y + x'@z", False),
    ("matmul vector@matrix (numpy)", "sum(x@B)", False),
    ("matmul outer", "sum(x@y') + sum(outer(x, z)*A)", False),
    ("transpose", "sum(B' * C) + sum(x' @ A')", False),
    ("exp", "sum(exp(x))", False),
    ("log", "sum(log(x))", True),
    ("sqrt", "sum(sqrt(A))", True),
    ("sin cos tan", "sum(sin(x) + cos(y) + tan(0.3*z))", False),
    ("tanh", "sum(tanh(A@x))", False),
    ("sigmoid", "sum(sigmoid(B'@x))", False),
    ("relu", "sum(relu(x))", False),
    ("softplus", "sum(softplus(x))", False),
    ("abs", "sum(abs(x))", False),
    ("sign (zero derivative)", "sum(sign(x) * y)", False),
    ("sum axis 0", "sum(sum(X, 0) * x)", False),
    ("sum axis 1", "sum(sum(B, 1)^2)", False),
    ("mean", "mean(X^2) + mean(x)", False),
    ("mean along an axis", "sum(mean(X, 0) * x) + sum(mean(B^2, 1))", False),
    ("logsumexp vector", "logsumexp(x)", False),
    ("logsumexp matrix", "logsumexp(A)", False),
    ("softmax", "sum(softmax(x) * y)", False),
    ("norm2", "norm(x) + ||A||", False),
    ("squared norm", "||x - A@y||^2 + ||B||_F^2", False),
    ("norm1", "norm1(x) + ||x - y||_1 + sum(abs(B))", False),
    ("vector inf-norm", "||x||_inf + ||A@x||_inf", False),
    ("spectral norm", "||A||_2 + norm2(B) + ||B'@A||_2", False),
    ("nuclear norm", "||A||_* + ||B||_* + ||C@A||_*", False),
    ("induced 1- and inf-norms", "||A||_1 + ||B||_inf + norm1(C) + ||C@B||_1", False),
    ("Frobenius norm by every name", "||A||_F + norm(B) + ||C||", False),
    ("max min", "max(x) + min(A) + max(C@x) + min(x)", False),
    ("prod", "prod(x) + prod(A)", False),
    ("square reciprocal", "sum(square(x) + reciprocal(y)) + sum(square(A))", True),
    ("log1p expm1 log2 log10", "sum(log1p(x) + expm1(y) + log2(z) + log10(A))", True),
    ("sinh cosh arctan arcsinh", "sum(sinh(x) + cosh(y) + arctan(z) + arcsinh(A))", False),
    ("arcsin arccos arctanh", "sum(arcsin(0.5*x) + arccos(0.5*y) + arctanh(0.5*z))", True),
    ("cbrt", "sum(cbrt(x) + cbrt(-A))", True),
    ("det, also of a singular C@B (adjugate)", "det(A)^2 + det(B@C) + det(C@B)", False),
    ("dot", "dot(x, A@y)", False),
    ("trace", "tr(A@A) + trace(B@C)", False),
    ("det", "det(A)", False),
    ("logdet", "logdet(A)", False),
    ("log det", "log(det(A))", False),
    ("inv", "sum(inv(A)) + x'@inv(A)@y", False),
    ("det inv", "log(det(inv(A)))", False),
    ("diag vector to matrix", "sum(diag(x)@A)", False),
    ("diag matrix to vector", "sum(diag(A) * x)", False),
    ("eye", "sum((A + eye(3))@x)", False),
    ("abstract h (bound to tanh)", "sum(h(A@x))", False),
    ("derivative of builtin written tanh'", "sum(tanh'(x))", False),
]


@pytest.mark.parametrize("name, text, positive", RULES, ids=[r[0] for r in RULES])
def test_rule_matches_finite_differences(name, text, positive):
    symbols = sorted({s for s in N if s in _names(text)})
    errors = fd_errors(text + " wrt " + ", ".join(symbols), shapes={k: N[k] for k in symbols},
                       positive=positive, fns={"h": "tanh"})
    assert errors and all(e < TOL for e in errors.values()), errors


def _names(text):
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def test_gradient_of_formula_independent_of_x_is_zero():
    import gradcli

    (d,) = gradcli.analyze("sum(y) + 0*sum(x) wrt x", shapes={"x": (3,), "y": (3,)}).derivatives()
    assert d.text() == "0"


# ----------------------------------------------------------------------------- random formulas
def _leaf(kind):
    return {"s": st.sampled_from(["a", "0.5", "2"]), "v": st.sampled_from(["x", "y"]),
            "m": st.sampled_from(["A", "D"])}[kind]


def formulas(kind: str, depth: int, twice: bool = False):
    """Strings of gradcli formulas of a given kind: s scalar, v vector (3), m matrix (3×3).
    twice: only operators with a second derivative (for Hessians: not ‖A‖₂, ‖A‖_*)."""
    if depth == 0:
        return _leaf(kind)
    s, v, m = (formulas(k, depth - 1, twice) for k in "svm")
    def b(template, *parts):  # every composite is parenthesised, so precedence never bites
        return st.builds(lambda *xs: "(" + template.format(*xs) + ")", *parts)

    if kind == "s":
        options = [
            b("sum({})", v), b("sum({})", m), b("{}'@{}", v, v), b("{}'@{}@{}", v, m, v),
            b("{} + {}", s, s), b("{}*{}", s, s), b("tanh({})", s), b("||{}||^2", v),
            b("tr({})", m), b("logsumexp({})", v), b("mean({})", m), b("norm({} + 3)", v),
            b("logdet({0}@{0}' + eye(3))", m), b("log(1 + exp({}))", s), b("sqrt(1 + {}^2)", s),
            b("{}/(2 + sigmoid({}))", s, s),
            # numpy's norm(·, ord) and the non-smooth reductions (a generic D keeps the matrix
            # away from a repeated top singular value and from rank deficiency)
            *([] if twice else [b("||{} + D||_2", m), b("||{} + D||_*", m), b("norm2({} + A)", m)]),
            b("||{}||_1", m), b("||{}||_inf", m), b("||{}||_inf", v), b("||{}||_1", v),
            b("max({})", v), b("min({})", v), b("max({})", m), b("prod({})", v),
            b("log1p({}^2)", s), b("arctan({})", s),
        ]
    elif kind == "v":
        options = [
            b("{}@{}", m, v), b("{} + {}", v, v), b("{} - {}", v, v), b("{}*{}", v, v),
            b("{}*{}", s, v), b("tanh({})", v), b("sigmoid({})", v), b("softmax({})", v),
            b("sin({})", v), b("diag({})", m), b("sum({}, 0)", m), b("mean({}, 1)", m),
            b("{}^2", v), b("{}@{}", v, m), b("{}/(1 + {}^2)", v, v), b("softplus({})", v),
            # numpy's element-wise functions, each inside its domain
            b("square({})", v), b("reciprocal(2 + sin({}))", v), b("expm1({})", v),
            b("log2(1 + {}^2)", v), b("log10(2 + cos({}))", v), b("sinh({})", v), b("cosh({})", v),
            b("arcsin(tanh({}))", v), b("arccos(0.9*tanh({}))", v), b("arcsinh({})", v),
            b("arctanh(0.9*tanh({}))", v), b("cbrt(2 + tanh({}))", v),
        ]
    else:
        options = [
            b("{}@{}", m, m), b("{}'", m), b("{} + {}", m, m), b("{}*{}", m, m),
            b("{}@{}'", v, v), b("diag({})", v), b("tanh({})", m), b("{} + {}", m, v),
            b("{}*{}", s, m), b("inv({0}@{0}' + eye(3))", m), b("exp(0.1*{})", m),
        ]
    return st.one_of(_leaf(kind), *options)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
          max_examples=int(os.environ.get("GRADCLI_EXAMPLES", "300")))
@given(st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                 st.builds(lambda p: f"sum({p})", formulas("m", 3))),
       st.integers(0, 1000))
def test_random_formulas_match_finite_differences(text, seed):
    symbols = sorted({s for s in ("a", "x", "y", "A", "D") if s in _names(text)})
    if not symbols:
        return
    shapes = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
    errors = fd_errors(text + " wrt " + ", ".join(symbols), shapes={k: shapes[k] for k in symbols},
                       seed=seed, scale=0.5, shift_square=False)
    bad = {k: e for k, e in errors.items() if not e < 1e-5}
    assert not bad, (text, bad)
