"""simplify._expand remembers the products whose expansion failed with the whole budget, so a
distribution that meets one inside a bigger product stops there.  That is only sound if the
memo never changes an answer: every derivative must come out the same with a memo that
forgets everything, and the memo must actually be used where it matters (deep chain rules)."""

import numpy as np
import pytest

import gradcli
from gradcli.api import render_derivatives
from gradcli.language import simplify as S
from gradcli.numeric.evaluate import compile_graph


class Forgetful:
    """A stand-in for the memo that never remembers."""

    def add(self, e):
        pass

    def __contains__(self, e):
        return False


def nested(depth: int, fn: str = "tanh") -> str:
    inner = "x"
    for _ in range(depth):
        inner = f"{fn}({inner})"
    return f"sum({inner}) wrt x"


def printed(text: str, hessian: bool) -> list:
    p = gradcli.analyze(text)
    derivs = p.hessians() if hessian else p.derivatives()
    return [render_derivatives(derivs, style) for style in ("unicode", "ascii")]


CASES = [nested(40), nested(25, "sigmoid"), "sum(log(1 + exp(-y*(X@w)))) wrt w",
         "-sum(y*log(sigmoid(X@w)) + (1-y)*log(1-sigmoid(X@w))) wrt w", "sum(tanh(W2@tanh(W1@x))) wrt x"]


@pytest.mark.parametrize("text", CASES)
@pytest.mark.parametrize("hessian", [False, True])
def test_the_memo_changes_no_derivative(text, hessian, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(S, "_unexpandable", Forgetful())
        without = printed(text, hessian)
    assert printed(text, hessian) == without


def test_a_deep_hessian_meets_remembered_products():
    """The memo is not dead code: the Hessian of a 40-deep chain looks products up in it and
    finds some.  Its value is the closed form: for g = tanh∘…∘tanh, g'' by the chain rule,
    computed here in numpy."""
    found = []

    class Watching(type(S._unexpandable)):
        def __contains__(self, e):
            hit = super().__contains__(e)
            found.append(hit)
            return hit

    original = S._unexpandable
    S._unexpandable = Watching()
    try:
        p = gradcli.analyze(nested(40) + " where x: (4)")
        (h,) = p.hessians()
    finally:
        S._unexpandable = original
    assert any(found)

    x = np.random.default_rng(0).normal(size=4)
    program = compile_graph([h.expr])
    got = np.asarray(program.run({"x": x})[0], float)
    y, d, s = x, np.ones_like(x), np.zeros_like(x)  # g_k, g_k', g_k''
    for _ in range(40):
        y = np.tanh(y)
        s = (1 - y**2) * s - 2 * y * (1 - y**2) * d**2
        d = (1 - y**2) * d
    np.testing.assert_allclose(got, np.diag(s), rtol=1e-9, atol=1e-12)
