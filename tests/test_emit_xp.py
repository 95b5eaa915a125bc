"""`--emit array-api`: one module that runs on any array API library and matches the evaluator.

For every formula of the samples (samples/*.md fences and samples/formulas.gradcli) and for random
well-shaped formulas, the module is emitted once with its sizes symbolic and run under numpy and
under array-api-strict (which refuses anything outside the standard: numpy-only functions,
Python numbers where arrays are required, mixed dtypes, in-place writes hidden in numpy
idioms); jax.numpy and torch too where installed.  The numpy module of `--emit numpy` is run on
the same inputs.  Abstract functions are passed as parameters (no --fn) and the results must
equal the evaluator's with h bound to the same builtin.
"""

import glob
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.checks.checkfiles import entries
from gradcli.checks.claimeval import size_sets
from gradcli.numeric.draws import random_inputs
from gradcli.numeric.emit import emit_module
from gradcli.errors import GradcliError
from helpers import load_module
from test_derivatives import _names, formulas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def _strict():
    return pytest.importorskip("array_api_strict", reason="array-api-strict is in the test extra")


def _jax():
    pytest.importorskip("jax", reason="jax is not installed here")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jnp


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed here")


# name → (make an array from numpy, the library's tanh); numpy arrays go in as they are
LIBRARIES = {
    "numpy": lambda: (np.asarray, np.tanh),
    "array-api-strict": lambda: (_strict().asarray, _strict().tanh),
    "jax": lambda: (_jax().asarray, _jax().tanh),
    "torch": lambda: (_torch().asarray, _torch().tanh),
}


def to_numpy(value):
    if isinstance(value, (int, float)):
        return np.asarray(value, dtype=float)
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(value)


def tanh_and_derivatives(tanh):
    """h = tanh and its first two derivatives, written with the library's own tanh."""
    def d1(z):
        t = tanh(z)
        return 1.0 - t * t

    def d2(z):
        t = tanh(z)
        return -2.0 * t * (1.0 - t * t)
    return (tanh, d1, d2)


def close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    both_nan = np.isnan(a) & np.isnan(b)
    return a.shape == b.shape and bool(np.all(both_nan | (np.abs(a - b) <= 1e-8 * scale)))


def case(text: str, seed: int = 0, wrt=None, shapes=None):
    """(symbolic problem, its values, evaluator results for grad and, for scalar f, hess), or
    None where the evaluator has no numbers (a math error at the draw)."""
    p = gradcli.analyze(text, shapes=shapes, wrt=wrt)
    if not p.wrt:
        p = gradcli.analyze(text, shapes=shapes, wrt=list(p.symbols))
    sizes = size_sets(p)[0]
    shapes = {n: tuple(d if isinstance(d, int) else sizes[d] for d in s.shape) for n, s in p.symbols.items()}
    values = random_inputs(shapes, seed, p.expr)
    numeric = gradcli.analyze(text, data_shapes=shapes, wrt=p.wrt)
    fns = {name: "tanh" for name in _abstract(numeric)}
    out = {}
    kinds = [False, True] if numeric.shape in ((), (1, 1)) else [False]
    for hessian in kinds:
        try:
            compiled = numeric.compile(fns, hessian=hessian)
            f, base = compiled.evaluate(values)  # (not compiled(**values): a symbol may be named xp)
            out[hessian] = f, {d.wrt: d.to_layout(base[d.wrt]) for d in compiled.derivs}
        except GradcliError as err:
            if err.kind != "math" or not out:
                raise
    return p, values, out


def _abstract(problem) -> set:
    from gradcli.language.expr import topological

    return {n.params[0] for n in topological([problem.expr]) if n.op == "apply"}


def run_module(p, values, expected, hessian, library, tmp_path, dialect="array-api"):
    make, tanh = LIBRARIES[library]()
    derivs = p.hessians() if hessian else p.derivatives()
    module = load_module(emit_module(p, derivs, {}, hessian, dialect), tmp_path,
                  f"m_{dialect.replace('-', '_')}_{library.replace('-', '_')}_{int(hessian)}")
    fn = module.value_and_hess if hessian else module.value_and_grad
    functions = [tanh_and_derivatives(tanh)[: n] for n in getattr(module, "FUNCTIONS", {}).values()]
    f, d = fn(*functions, **{k: make(v) for k, v in values.items()})
    f_eval, d_eval = expected
    assert close(to_numpy(f), f_eval), (to_numpy(f), f_eval)
    assert d.keys() == d_eval.keys()
    for k in d_eval:
        assert close(to_numpy(d[k]), d_eval[k]), (k, to_numpy(d[k]), d_eval[k])


def sample_formulas() -> list[str]:
    files = sorted(glob.glob(os.path.join(ROOT, "samples", "*.md"))) + [os.path.join(ROOT, "samples", "formulas.gradcli")]
    out = []
    for name in files:
        for e in entries(name):
            if e.expect and e.expect.strip().startswith("error"):
                continue
            try:
                gradcli.analyze(e.text)
            except GradcliError:
                continue  # an expected failure of the sample file itself
            out.append(e.text)
    return out


SAMPLES = sample_formulas()


def test_the_samples_are_read():
    assert len(SAMPLES) >= 50


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("text", SAMPLES)
def test_every_sample_formula_runs_on_each_library(text, library, tmp_path):
    p, values, expected = case(text)
    for hessian, result in expected.items():
        run_module(p, values, result, hessian, library, tmp_path)


@pytest.mark.parametrize("text", SAMPLES)
def test_every_sample_formula_numpy_module_takes_abstract_functions(text, tmp_path):
    p, values, expected = case(text)
    for hessian, result in expected.items():
        run_module(p, values, result, hessian, "numpy", tmp_path, dialect="numpy")


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}


@SETTINGS
@given(st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                 formulas("v", 2), formulas("m", 2)), st.integers(0, 1000))
def test_random_formulas_under_numpy_and_array_api_strict(text, seed):
    import tempfile
    from pathlib import Path

    names = sorted(s for s in SHAPES if s in _names(text))
    symbolic = {n: tuple("n" for _ in SHAPES[n]) for n in names}  # sizes stay symbolic in the module
    p, values, expected = case(f"{text} wrt {', '.join(names)}" if names else text, shapes=symbolic)
    with tempfile.TemporaryDirectory() as tmp:
        for hessian, result in expected.items():
            for library in ("numpy", "array-api-strict"):
                run_module(p, values, result, hessian, library, Path(tmp))


# ----------------------------------------------------------------------------- names
def _adversarial():
    from test_emit import ADVERSARIAL, _accepted_as_symbol

    extra = ["xp", "array_namespace", "device", "FUNCTIONS", "dtype", "math", "asarray", "h", "float64"]
    return sorted(set(ADVERSARIAL) | {n for n in extra if _accepted_as_symbol(n)})


@settings(max_examples=max(20, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.integers(0, 1000))
def test_array_api_modules_match_whatever_the_symbols_are_called(data, seed):
    """The same safety as --emit numpy's: symbols named like the module's own names (its
    namespace, helpers, keywords, builtins) keep their values."""
    import tempfile
    from pathlib import Path

    from test_emit import GENERATOR_SYMBOLS, KINDS_AND_FORMULAS, _rename

    kind, text = data.draw(KINDS_AND_FORMULAS)
    names = data.draw(st.lists(st.sampled_from(_adversarial()), min_size=5, max_size=5, unique=True))
    mapping = dict(zip(GENERATOR_SYMBOLS, names))
    present = [s for s in GENERATOR_SYMBOLS if s in _names(text)] or ["x"]
    formula = text if present != ["x"] or "x" in _names(text) else f"{text} + 0*sum(x)"
    formula = _rename(f"{formula} wrt {', '.join(present)}", mapping)
    shapes = {mapping[s]: GENERATOR_SYMBOLS[s] for s in present}  # a renamed matrix stays one
    p, values, expected = case(formula, seed, shapes=shapes)
    with tempfile.TemporaryDirectory() as tmp:
        for hessian, result in expected.items():
            run_module(p, values, result, hessian, "array-api-strict", Path(tmp))


def test_det_at_a_singular_matrix_uses_the_adjugate():
    """det(X)'s gradient is adj(X)ᵀ, which exists where X⁻ᵀ does not (as in the evaluator)."""
    import tempfile
    from pathlib import Path

    p = gradcli.analyze("det(X) wrt X", data_shapes={"X": (3, 3)})
    X = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2
    expected = p.compile().evaluate({"X": X})
    with tempfile.TemporaryDirectory() as tmp:
        run_module(gradcli.analyze("det(X) wrt X"), {"X": X}, expected, False, "array-api-strict", Path(tmp))
    assert np.count_nonzero(expected[1]["X"]) > 0


def test_deep_formulas_emit_without_recursion():
    """Which nodes are Python numbers is decided in one pass in order, not by recursion: a chain
    a thousand deep emits (and a shorter one runs) like any other."""
    import tempfile
    from pathlib import Path

    deep = "sum(" + "tanh(0.5*" * 1200 + "x" + ")" * 1200 + ") wrt x"
    p = gradcli.analyze(deep)
    assert "_xp.tanh(" in emit_module(p, p.derivatives(), {}, False, "array-api")
    p, values, expected = case("sum(" + "tanh(0.5*" * 40 + "x" + ")" * 40 + ") wrt x")
    with tempfile.TemporaryDirectory() as tmp:
        run_module(p, values, expected[False], False, "array-api-strict", Path(tmp))


@pytest.mark.parametrize("name", ["try", "type", "tuple"])
def test_a_symbol_renamed_like_a_temporary_is_never_deleted(name, tmp_path):
    # `try` is written _try in the module; temporaries were told apart by their prefix "_t", so the
    # per-entry VJP helper of a tensor derivative deleted _try before its last use (UnboundLocalError)
    rng = np.random.default_rng(0)
    arrays = {"A": rng.normal(size=(2, 2)) + 3 * np.eye(2), name: rng.normal(size=2)}
    result = gradcli.grad(f"inv(A)@{name} + softmax(A@{name}) wrt A", arrays)
    module = load_module(result.emit("array-api"), tmp_path)
    f, d = module.value_and_grad(**arrays)
    assert np.allclose(f, result.value) and np.allclose(d["A"], result["A"].value)
