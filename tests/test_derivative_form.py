"""The derivative-only rewrites (factoring AX + BX, cancelling p ⊘ p, distributing and collecting):
they shorten derivatives, never touch the formula a user typed, and are chosen by a value passed
down (`simplify.Rules`), not by a switch that building a derivative flips.

    GRADCLI_EXAMPLES=5000 python -m pytest tests/test_derivative_form.py
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.language import simplify as S
from gradcli.language.expr import Expr, topological
from gradcli.language.shapes import Ty
from gradcli.numeric.evaluate import compile_graph

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))
rng = np.random.default_rng(13)


def value(e: Expr, values: dict) -> np.ndarray:
    program = compile_graph([e])
    program.allow_nonfinite = True  # a quotient by zero gives inf or nan, and no verdict
    return np.asarray(program.run(values)[0], float)


def nodes(e: Expr) -> list[Expr]:
    return topological([e])


# ------------------------------------------------------------- patterns the rules rewrite
def cancellable(e: Expr) -> bool:
    """A quotient whose denominator is a factor of its numerator (x ⊙ y ⊘ x, x ⊘ x)."""
    return any(n.op == "div" and (n.args[0] is n.args[1] or n.args[0].op == "mul" and n.args[1] in n.args[0].args)
               for n in nodes(e))


def common_factor(e: Expr) -> bool:
    """A sum of two products ending in the same factor (AWx + BWx), or of two quotients by the
    same scalar (x ⊘ s + y ⊘ s)."""
    for n in nodes(e):
        if n.op != "add":
            continue
        a, b = n.args
        if a.op == b.op == "matmul":
            fa, fb = S.matmul_factors(a, []), S.matmul_factors(b, [])
            if fa and fb and fa[-1] is fb[-1]:
                return True
        if a.op == b.op == "div" and a.args[1] is b.args[1]:
            return True
    return False


def distributable(e: Expr) -> bool:
    """An element-wise product of a sum ((x + y) ⊙ z)."""
    return any(n.op == "mul" and "add" in (a.op for a in n.args) and n.args[0].ty == n.args[1].ty
               for n in nodes(e))


# (formula, the pattern it holds as typed, its derivative wrt the last symbol written in numpy,
#  the derivative as the textbook writes it, no longer than which gradcli's must be)
CASES = [
    ("sum(x*y/x) wrt y", cancellable, lambda v: np.ones(3), "y/y"),
    ("sum(x/x + y) wrt y", cancellable, lambda v: np.ones(3), "y/y"),
    ("u'@A@W@x + u'@B@W@x wrt x", common_factor, lambda v: v["W"].T @ (v["A"] + v["B"]).T @ v["u"],
     "W'@(A' + B')@u"),
    ("sum(x/s + y/s) wrt x", common_factor, lambda v: np.ones(3) / v["s"], "x/x/s"),
    ("sum((x + y)*z - x*z) wrt z", distributable, lambda v: v["y"], "y"),
    ("-sum(y*log(sigmoid(X@w)) + (1-y)*log(1-sigmoid(X@w))) wrt w", None,
     lambda v: v["X"].T @ (1 / (1 + np.exp(-v["X"] @ v["w"])) - v["y"]), "X'@(sigmoid(X@w) - y)"),
]
SHAPES = {"x": (3,), "y": (3,), "z": (3,), "u": (3,), "w": (3,), "s": (), "A": (3, 3), "B": (3, 3),
          "W": (3, 3), "X": (3, 3)}


def draw(names):
    # positive values away from zero: every cancelled quotient is defined there
    return {n: rng.uniform(0.5, 2.0, size=SHAPES[n]) for n in names}


def symbols(p) -> list[str]:
    return sorted(p.typed.symbols)


@pytest.mark.parametrize("text, pattern", [(c[0], c[1]) for c in CASES if c[1] is not None])
def test_the_formula_is_echoed_as_typed_even_after_its_derivatives(text, pattern):
    p = gradcli.analyze(text, data_shapes={n: SHAPES[n] for n in SHAPES if n in text})
    p.derivatives()
    p.hessians()
    assert pattern(p.expr)  # the user's formula keeps what the derivative rules would rewrite...
    # ...and they would: put in derivative form, the same graph loses it
    assert not pattern(S.derivative_form([p.expr], ())[0])


@pytest.mark.parametrize("text, pattern, closed, textbook", CASES)
def test_derivatives_are_in_derivative_form(text, pattern, closed, textbook):
    p = gradcli.analyze(text, data_shapes={n: SHAPES[n] for n in SHAPES if n in text})
    (d,) = p.derivatives()
    assert pattern is None or not pattern(d.expr)
    # as short as the textbook's form (written as a formula: nothing derivative-only applied)
    shapes = {n: SHAPES[n] for n in SHAPES if n in textbook}
    assert d.expr.size <= gradcli.analyze(textbook, data_shapes=shapes).expr.size
    values = draw(symbols(p))
    _, grads = p.compile()(**values)
    assert np.allclose(grads[d.wrt], closed(values), rtol=1e-10, atol=1e-12)


def test_the_rules_are_a_value_not_a_switch():
    x = S.sym("x", Ty((3,)))
    as_written = S.div(x, x)
    assert as_written.op == "div"
    assert S.div(x, x, S.Rules.DERIVATIVE) is S.fill(S.const(1.0), x.ty)
    assert S.div(x, x) is as_written  # asking for the derivative rules changed nothing after
    # a derivative computed in between leaves the plain constructors as they were
    gradcli.analyze("sum(x*y/x) wrt y").derivatives()
    assert S.div(x, x) is as_written


# ------------------------------------------------------------- property: the rules keep values
VEC = Ty((3,))
LEAVES = {"x": VEC, "y": VEC, "z": VEC, "s": Ty(())}
A = S.sym("A", Ty((3, 3)))


def _leaf(name):
    return S.sym(name, LEAVES[name])


def _unary(e):
    return st.sampled_from([
        lambda a: S.fn("sigmoid", a), lambda a: S.fn("exp", S.mul(S.const(0.3), a)),
        lambda a: S.neg(a), lambda a: S.matmul(A, a) if a.ty == VEC else a,
        lambda a: S.T(S.matmul(S.T(a), A)) if a.ty == VEC else a,
        # powers of one base in their several spellings (√, ‖v‖, ‖v‖², powers of powers):
        # positive bases, so that every one is defined where the test draws
        lambda a: S.fn("sqrt", S.fn("sigmoid", a)),
        lambda a: S.power(S.fn("sqrt", S.fn("exp", a)), S.const(3.0)),
        lambda a: S.power(S.fn("sigmoid", a), S.const(1.5)),
        lambda a: S.fn("norm2", a) if a.ty == VEC else S.power(a, S.const(2.0)),
        lambda a: S.fn("sqnorm", a) if a.ty == VEC else S.power(S.power(a, S.const(2.0)), S.const(0.5)),
    ]).map(lambda f: f(e))


def _binary(pair):
    a, b = pair
    return st.sampled_from([
        S.add, S.sub, S.mul, S.div,
        # shapes the derivative rules look for, built as written: a ⊙ b ⊘ a, a ⊘ b + b ⊘ b,
        # (a + b) ⊙ a − a ⊙ a, Aa + A(b ⊙ a)
        lambda a, b: S.div(S.mul(a, b), a),
        lambda a, b: S.add(S.div(a, b), S.div(b, b)),
        lambda a, b: S.sub(S.mul(S.add(a, b), a), S.mul(a, a)),
        lambda a, b: S.add(S.matmul(A, a), S.matmul(A, S.mul(b, a))) if a.ty == VEC else S.mul(a, b),
        # a common factor, and a common denominator: s·a + s·b, a ⊘ √q − b ⊘ √q³
        lambda a, b: S.add(S.mul(S.fn("exp", S.summ(b)), a), S.mul(S.fn("exp", S.summ(b)), b)),
        lambda a, b: S.sub(S.div(a, S.fn("sqrt", S.fn("exp", b))),
                           S.div(b, S.power(S.fn("sqrt", S.fn("exp", b)), S.const(3.0)))),
        lambda a, b: S.mul(S.div(a, S.power(S.fn("sqrt", S.fn("sigmoid", b)), S.const(3.0))),
                           S.fn("sqrt", S.fn("sigmoid", b))),
    ]).map(lambda f: f(a, b))


EXPRS = st.recursive(
    st.sampled_from(sorted(LEAVES)).map(_leaf),
    lambda inner: st.one_of(inner.flatmap(_unary), st.tuples(inner, inner).flatmap(_binary)),
    max_leaves=10,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(EXPRS, st.integers(0, 10_000))
def test_the_derivative_form_of_any_expression_has_its_value(e, seed):
    """Every derivative-only rewrite is an identity where the expression is defined: the
    derivative form of a random expression (sums, products, quotients, shared subterms) takes its
    value at points away from the zeros of its denominators."""
    values = {n: np.random.default_rng(seed).uniform(0.5, 2.0, size=t.dims) for n, t in LEAVES.items()}
    values["A"] = np.random.default_rng(seed + 1).uniform(0.5, 2.0, size=(3, 3))
    tidied = S.derivative_form([e], ())[0]
    assert tidied.ty == e.ty
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before, after = value(e, values), value(tidied, values)
    if not np.all(np.isfinite(before)) or np.max(np.abs(before), initial=0) > 1e6:
        event("no verdict: a quotient by zero")
        return  # a quotient by zero (s − s) or nearly: no verdict
    event("rewritten" if tidied is not e else "unchanged")
    scale = max(1.0, float(np.max(np.abs(before))))
    assert np.max(np.abs(after - before)) <= 1e-9 * scale, (e, tidied)
