"""Symmetry known from structure (simplify.is_symmetric): every claim is checked on numbers, and
the textbook results that need it read as the textbooks print them."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.language.simplify import is_symmetric
from helpers import grad_text
from test_derivatives import formulas

SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}


def value_of(text, seed=0):
    """The typed expression of a formula and its value on random arrays."""
    from gradcli.numeric.evaluate import compile_graph

    names = [n for n in SHAPES if n in text]
    expr = gradcli.analyze(text, data_shapes={n: SHAPES[n] for n in names}).expr
    rng = np.random.default_rng(seed)
    vals = {n: 0.5 * rng.normal(size=SHAPES[n]) for n in names}
    return expr, compile_graph([expr]).run(vals)[0]


@pytest.mark.parametrize("text, symmetric", [
    ("A'@A", True), ("A@A'", True), ("x@x'", True), ("A'@D@A", False), ("A'@(D + D')@A", True),
    ("A + A'", True), ("A + A' + A", False), ("2*(A@A') + eye(3)", True), ("inv(A@A' + eye(3))", True),
    ("exp(A'@A)", True), ("diag(x)", True), ("A@diag(x)@A'", True), ("A@D", False), ("A", False),
    ("A'@A@A'@A", True), ("A'@A@A", False), ("(A + A')^2", True), ("x@y'", False),
])
def test_symmetry_claims(text, symmetric):
    expr, value = value_of(text)
    assert is_symmetric(expr) == symmetric
    assert np.allclose(value, value.T) or not symmetric


@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=300)
@given(formulas("m", 3), st.integers(0, 100))
def test_a_symmetry_claim_always_holds_on_numbers(text, seed):
    expr, value = value_of(text, seed)
    if is_symmetric(expr) and np.all(np.isfinite(value)):
        assert np.allclose(value, value.T, rtol=1e-9, atol=1e-9), text


@pytest.mark.parametrize("text, expected", [
    ("log(det(X'@X)) wrt X", ["2X(XᵀX)⁻¹"]),
    ("x'@inv(A'@A)@x wrt x", ["2(AᵀA)⁻¹x"]),
    ("x'@(A@A' + eye(n))@x wrt x", ["2(AAᵀ + I)x"]),
])
def test_symmetric_middles_collect(text, expected):
    assert grad_text(text) == expected
