"""The evaluator on other array libraries: every sample formula and random well-shaped formulas
evaluated (f, gradients and, for a scalar f, Hessians) with array-api-strict arrays — which
refuse anything outside the array API standard: numpy-only functions, Python numbers where an
array is needed, mixed dtypes, in-place writes — and with dask arrays chunked along their rows
(`--backend dask`'s `to_dask`, tiny chunks so that every reduction crosses chunks).  Values,
math errors and their messages must equal the numpy evaluation's."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.checks.claimeval import size_sets
from gradcli.numeric.draws import random_inputs
from gradcli.errors import GradcliError
from test_derivatives import _names, formulas
from test_emit_xp import SAMPLES, close

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def _strict():
    xs = pytest.importorskip("array_api_strict", reason="array-api-strict is in the test extra")
    return (lambda values: {k: xs.asarray(v) for k, v in values.items()}), xs


def _dask():
    pytest.importorskip("dask.array", reason="dask is the optional extra gradcli[dask]")
    from gradcli.numeric.backends import DaskBackend, to_dask

    return (lambda values: to_dask(values, chunk_rows=2)), DaskBackend()


LIBRARIES = {"array-api-strict": _strict, "dask": _dask}


def _outcome(compiled, values, xp=None):
    """(f, {wrt: derivative}) as numpy arrays, or the math error's message."""
    try:
        f, d = compiled.evaluate(values, xp)
    except GradcliError as err:
        if err.kind != "math":
            raise
        return err.message
    return np.asarray(f, dtype=float), {k: np.asarray(v, dtype=float) for k, v in d.items()}


def _same(a, b, where) -> None:
    if isinstance(b, str):
        assert a == b, where
        return
    assert not isinstance(a, str), (where, a)
    assert close(a[0], b[0]), (where, a[0], b[0])
    assert a[1].keys() == b[1].keys()
    for k in b[1]:
        assert close(a[1][k], b[1][k]), (where, k, a[1][k], b[1][k])


def check_everywhere(text: str, libraries, seed: int = 0, shapes=None) -> int:
    """Evaluate text's f and derivatives (and Hessian) with numpy, then with each library:
    the same numbers or the same math error.  Returns how many evaluations were compared."""
    p = gradcli.analyze(text, shapes=shapes)
    if not p.wrt:
        p = gradcli.analyze(text, shapes=shapes, wrt=list(p.symbols))
    sizes = size_sets(p)[0]
    dims = {n: tuple(d if isinstance(d, int) else sizes[d] for d in s.shape) for n, s in p.symbols.items()}
    values = random_inputs(dims, seed, p.expr)
    numeric = gradcli.analyze(text, data_shapes=dims, wrt=p.wrt)
    fns = {n: "tanh" for n in _abstract(numeric)}
    compared = 0
    for hessian in ([False, True] if numeric.shape in ((), (1, 1)) else [False]):
        try:
            compiled = numeric.compile(fns, hessian=hessian)
        except GradcliError as err:
            if err.kind != "math":
                raise
            continue  # no second derivative (‖A‖₂): nothing to evaluate anywhere
        expected = _outcome(compiled, values)
        for library in libraries:
            convert, xp = LIBRARIES[library]()
            _same(_outcome(compiled, convert(values), xp), expected, (text, library, hessian))
            compared += 1
    return compared


def _abstract(problem) -> set:
    from gradcli.language.expr import topological

    return {n.params[0] for n in topological([problem.expr]) if n.op == "apply"}


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("text", SAMPLES)
def test_every_sample_formula_evaluates_on_each_library(text, library):
    assert check_everywhere(text, [library]) >= 1


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
RANDOM_FORMULAS = st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                            formulas("v", 2), formulas("m", 2))


@SETTINGS
@given(RANDOM_FORMULAS, st.integers(0, 1000))
def test_random_formulas_under_array_api_strict(text, seed):
    names = sorted(s for s in SHAPES if s in _names(text))
    check_everywhere(f"{text} wrt {', '.join(names)}" if names else text, ["array-api-strict"], seed,
                     {n: SHAPES[n] for n in names})


@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck))
@given(RANDOM_FORMULAS, st.integers(0, 1000))
def test_random_formulas_under_dask(text, seed):
    names = sorted(s for s in SHAPES if s in _names(text))
    check_everywhere(f"{text} wrt {', '.join(names)}" if names else text, ["dask"], seed,
                     {n: SHAPES[n] for n in names})


# ----------------------------------------------------------------------------- row-chunked data
def _regression(m=40, n=3, seed=1):
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(m, n)), "y": np.sign(rng.normal(size=m)), "theta": rng.normal(size=n)}


LOSSES = ["||y - X@theta||^2 wrt theta", "sum(log(1 + exp(-y*(X@theta)))) wrt theta",
          "logsumexp(X@theta) + logdet(X'@X) wrt theta, X", "sqrt(sum((X@theta)^2)) / mean(y^2) wrt theta"]


@pytest.mark.parametrize("text", LOSSES)
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_data_losses_on_row_chunks_equal_numpy(text, chunk_rows):
    _dask()
    from gradcli.numeric.backends import DaskBackend, to_dask

    values = _regression()
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    for hessian in (False, True):
        compiled = p.compile(hessian=hessian)
        expected = _outcome(compiled, values)
        lazy = to_dask(values, chunk_rows)
        assert lazy["X"].numblocks[0] == -(-40 // chunk_rows) and lazy["theta"].numblocks == (1,)
        _same(_outcome(compiled, lazy, DaskBackend()), expected, (text, chunk_rows))


def test_dask_computes_once_and_checks_lazily(monkeypatch):
    """f, the gradient, the Hessian and every domain check come from one dask.compute."""
    _dask()
    import dask

    from gradcli.numeric.backends import DaskBackend, to_dask

    calls = []
    real = dask.compute
    monkeypatch.setattr(dask, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    values = _regression()
    values["y"] = np.abs(values["y"]) + 1
    p = gradcli.analyze("sum(log(y + (X@theta)^2)) + sum(sqrt(y)) wrt theta",
                        data_shapes={k: v.shape for k, v in values.items()})
    compiled = p.compile(hessian=True)
    _same(_outcome(compiled, to_dask(values, 5), DaskBackend()), _outcome(compiled, values), "once")
    assert len(calls) == 1


@pytest.mark.parametrize("text, values, message", [
    ("sum(log(X@theta)) wrt theta", None, "log of a value that is not positive in log(X @ theta)"),
    ("logdet(X'@X - 100*eye(3)) wrt X", None, "logdet of a matrix whose determinant is not positive"),
    ("sum(inv(X'@X - X'@X)) wrt X", None, "inverse of a singular matrix"),
    ("sum(exp(1000*X@theta)) wrt theta", None, "overflow"),
])
def test_math_errors_from_dask_name_the_subexpression_as_numpy_does(text, values, message):
    _dask()
    from gradcli.numeric.backends import DaskBackend, to_dask

    values = _regression()
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    compiled = p.compile()
    expected = _outcome(compiled, values)
    assert isinstance(expected, str) and message in expected
    assert _outcome(compiled, to_dask(values, 3), DaskBackend()) == expected
    convert, xs = _strict()
    assert _outcome(compiled, convert(values), xs) == expected


def test_the_sample_axis_is_the_largest_inputs_first_axis():
    _dask()
    from gradcli.numeric.backends import default_chunk_rows, to_dask

    values = {"X": np.zeros((10, 4)), "y": np.zeros(10), "w": np.zeros(4), "A": np.zeros((4, 4)), "c": 2.0}
    lazy = to_dask(values, 3)
    assert lazy["X"].chunks == ((3, 3, 3, 1), (4,)) and lazy["y"].chunks == ((3, 3, 3, 1),)
    assert lazy["w"].chunks == ((4,),) and lazy["A"].chunks == ((4,), (4,)) and lazy["c"] == 2.0
    assert default_chunk_rows({"X": np.zeros((10, 4))}, 10) == 64 * 2**20 // 32


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler does nothing without --backend dask"),
    (["--chunk-rows", "10"], "--chunk-rows does nothing without --backend dask"),
    (["--backend", "numpy", "--chunk-rows", "10"], "--chunk-rows does nothing without --backend dask"),
    (["--backend", "gpu"], "--backend gpu: expected numpy or dask"),
    (["--backend", "dask", "--emit", "numpy"], "--emit numpy and --backend cannot be used together"),
])
def test_backend_options_misused_are_usage_errors(args, message):
    import subprocess
    import sys

    extra = [] if "--emit" in args else ["--random"]
    r = subprocess.run([sys.executable, "-m", "gradcli", "grad", "x'@x wrt x", *extra, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {message}") and r.stderr.count("\n") == 1
