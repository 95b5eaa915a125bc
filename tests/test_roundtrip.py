"""What gradcli prints is gradcli: every matrix-notation derivative, printed in ASCII, re-parses
(with the same symbol shapes) to an expression of the same shape and value as the derivative
itself — for gradients, Jacobians with a matrix formula and Hessians, and for the JSON document,
whose formulas name shared subexpressions in a `bindings` list.  A print that does not re-parse
is a failure, like one that evaluates to something else.

    GRADCLI_EXAMPLES=10000 python -m pytest tests/test_roundtrip.py --hypothesis-show-statistics
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.evaluate import compile_graph
from test_derivatives import _names, formulas

SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "300"))


def _values(names, seed, shapes):
    rng = np.random.default_rng(seed)
    return {n: 0.5 * rng.normal(size=shapes[n]) for n in names}


def _run(exprs, values):
    program = compile_graph(list(exprs))
    program.allow_nonfinite = True
    return program.run(values)


def _agree(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(a)
    scale = max(1.0, float(np.max(np.abs(a[finite]), initial=0.0)))
    return bool(np.all(np.abs(a[finite] - b[finite]) <= 1e-9 * scale))


def reparse(text: str, shapes: dict, bindings=()) -> tuple:
    """Parse printed text with the given symbol shapes (bindings first, each a symbol of its own
    shape): (expression, {binding name: expression}) — raises if it does not re-parse."""
    bound = {}
    shapes = dict(shapes)
    for name, formula in bindings:
        e = gradcli.analyze(formula, shapes={k: v for k, v in shapes.items()
                                             if k in _names(formula)}).expr
        bound[name] = e
        shapes[name] = e.ty.full_dims if not e.ty.row else (1,) + e.ty.dims
    p = gradcli.analyze(text, shapes={k: v for k, v in shapes.items() if k in _names(text)})
    return p.expr, bound


def value_of_reparsed(text, shapes, values, bindings=()):
    expr, bound = reparse(text, shapes, bindings)
    values = dict(values)
    for name, e in bound.items():  # in order: each binding may use the ones before it
        values[name] = _run([e], values)[0]
    return expr, _run([expr], values)[0]


def assert_round_trip(expr, text, shapes, values, bindings=()):
    """The printed text re-parses to the shape of expr and evaluates to its value."""
    (own,) = _run([expr], values)
    back, value = value_of_reparsed(text, shapes, values, bindings)
    assert back.ty.full_dims == expr.ty.full_dims and back.ty.row == expr.ty.row, (text, back.ty, expr.ty)
    if np.all(np.isfinite(own)):
        assert _agree(own, value), (text, own, value)


def derivatives_of(text, kind):
    names = sorted(s for s in SHAPES if s in _names(text))
    p = gradcli.analyze(f"{text} wrt {', '.join(names)}", data_shapes={n: SHAPES[n] for n in names})
    return p, (p.hessians() if kind == "hessian" else p.derivatives())


def check_formula(text, kind, seed):
    from gradcli.cli import _document

    names = sorted(s for s in SHAPES if s in _names(text))
    if not names:
        event("no symbol")
        return
    p, derivs = derivatives_of(text, kind)
    values = _values(names, seed, SHAPES)
    printed = [d for d in derivs if d.expr is not None]
    event(f"{kind}: {'matrix formula' if printed else 'index notation'}")
    for d in printed:
        assert_round_trip(d.shown(), d.text("ascii"), SHAPES, values)
    doc = _document(p, derivs, None, {}, {})
    bindings = [(b["name"], b["formula"]) for b in doc.get("bindings", [])]
    for d, entry in zip(derivs, doc["derivatives"]):
        if d.expr is not None:
            assert_round_trip(d.shown(), entry["formula"], SHAPES, values, bindings)


SCALAR = st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                   st.builds(lambda p: f"sum({p})", formulas("m", 3)))
CASES = st.one_of(
    st.tuples(SCALAR, st.just("gradient")),
    st.tuples(st.one_of(formulas("v", 3), formulas("m", 2)), st.just("jacobian")),
    st.tuples(st.one_of(formulas("s", 2), st.builds(lambda p: f"sum({p})", formulas("v", 2))),
              st.just("hessian")),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(CASES, st.integers(0, 10_000))
def test_printed_derivatives_reparse_to_their_value(case, seed):
    text, kind = case
    check_formula(text, kind, seed)
