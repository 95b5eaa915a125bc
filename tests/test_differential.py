"""Differential testing: gradcli's symbolic gradients, Jacobians and Hessians, evaluated
numerically, against HIPS autograd applied to an independent translation of the same formula
(tests/oracle.py), over random well-shaped formulas mixing the whole language.

The default run checks a few hundred formulas; the slow profile thousands:
    GRADCLI_EXAMPLES=10000 python -m pytest tests/test_differential.py
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

autograd = pytest.importorskip("autograd")

import gradcli  # noqa: E402
from oracle import translate  # noqa: E402
from test_derivatives import _names, formulas  # noqa: E402

SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def data(names, seed):
    rng = np.random.default_rng(seed)
    return {n: 0.5 * rng.normal(size=SHAPES[n]) for n in names}


def agree(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)))
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0)) <= 1e-8 * scale


def symbols_in(text):
    return sorted(s for s in SHAPES if s in _names(text))


def run_case(text, seed, kind):
    names = symbols_in(text)
    if not names:
        return
    values = data(names, seed)
    p = gradcli.analyze(f"{text} wrt {', '.join(names)}", data_shapes={n: SHAPES[n] for n in names})
    f_oracle = translate(text)
    hessian = kind == "hessian"
    compiled = p.compile(hessian=hessian)
    f, derivs = compiled(**values)
    assert agree(f, f_oracle(values)), (text, f)
    for d in compiled.derivs:
        a, _, b = d.wrt.partition(",")
        b = b or a

        def along(name, fn, base):
            return lambda x: fn({**base, name: x})

        if kind == "gradient":
            expected = autograd.grad(along(a, f_oracle, values))(values[a])
        elif kind == "jacobian":
            expected = autograd.jacobian(along(a, f_oracle, values))(values[a])
        else:  # ∂/∂b of ∂f/∂a
            def grad_a(vals):
                return autograd.grad(along(a, f_oracle, vals))(vals[a])
            expected = autograd.jacobian(lambda y: grad_a({**values, b: y}))(values[b])
        if not np.all(np.isfinite(expected)):  # the oracle's own singularity (e.g. ‖0‖): no verdict
            continue
        assert agree(derivs[d.wrt], expected), (text, d.wrt, derivs[d.wrt], expected)


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SCALAR = st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                   st.builds(lambda p: f"sum({p})", formulas("m", 3)))


@SETTINGS
@given(SCALAR, st.integers(0, 10_000))
def test_gradients_agree_with_autograd(text, seed):
    run_case(text, seed, "gradient")


@SETTINGS
@given(st.one_of(formulas("v", 3), formulas("m", 2)), st.integers(0, 10_000))
def test_jacobians_agree_with_autograd(text, seed):
    run_case(text, seed, "jacobian")


@settings(max_examples=max(20, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(formulas("s", 2, twice=True), st.builds(lambda p: f"sum({p})", formulas("v", 2, twice=True))),
       st.integers(0, 10_000))
def test_hessians_agree_with_autograd(text, seed):
    run_case(text, seed, "hessian")


@pytest.mark.parametrize("text", [
    "x'@((A') + x)@x",                # a broadcast sum under a transpose (found by this test)
    "sum(diag(softmax(x)))",          # an exactly-zero gradient
    "(tanh((tanh((sum(A))))))",
])
def test_regressions(text):
    run_case(text, 0, "gradient")


@pytest.mark.parametrize("text", [
    "(sum((A + x), 0))",  # Σ over copies of a broadcast vector: a size factor (found by this test)
])
def test_jacobian_regressions(text):
    run_case(text, 0, "jacobian")
