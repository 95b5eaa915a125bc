"""`--emit numpy`: the generated module imports, and agrees with the evaluator (which the other
tests check against finite differences) on gradients, Jacobians, tensors and Hessians."""

import json
import subprocess
import sys

import numpy as np
import pytest

import gradcli
from gradcli.numeric.emit import emit_numpy
from helpers import load_module, random_data
from test_derivatives import N, RULES, _names
from test_jacobians import HESSIANS, JACOBIANS


def compare(text, shapes, tmp_path, hessian=False, layout=None, fns=None, positive=False):
    p0 = gradcli.analyze(text, shapes=shapes)
    compare_on(text, shapes, random_data(p0, 5, positive), tmp_path, hessian, layout, fns)


def compare_on(text, shapes, values, tmp_path, hessian=False, layout=None, fns=None):
    # symbolic dimensions in the generated code: shapes only from where/-s, not data
    p = gradcli.analyze(text, shapes=shapes, layout=layout)
    derivs = p.hessians() if hessian else p.derivatives()
    module = load_module(emit_numpy(p, derivs, fns or {}, hessian), tmp_path)
    fn = module.value_and_hess if hessian else module.value_and_grad
    f_emit, d_emit = fn(**values)
    pn = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()}, layout=layout)
    f_eval, d_eval = pn.compile(fns, hessian=hessian)(**values)
    assert np.shape(f_emit) == np.shape(f_eval) and np.allclose(f_emit, f_eval)
    assert d_emit.keys() == d_eval.keys()
    for k in d_eval:
        assert d_emit[k].shape == d_eval[k].shape and np.allclose(d_emit[k], d_eval[k]), k


@pytest.mark.parametrize("name, text, positive", RULES, ids=[r[0] for r in RULES])
def test_emitted_gradients_match_evaluator(name, text, positive, tmp_path):
    symbols = sorted({s for s in N if s in _names(text)})
    compare(text + " wrt " + ", ".join(symbols), {k: N[k] for k in symbols}, tmp_path, fns={"h": "tanh"},
            positive=positive)


@pytest.mark.parametrize("text, shapes", JACOBIANS[:12], ids=[j[0] for j in JACOBIANS[:12]])
def test_emitted_jacobians_match_evaluator(text, shapes, tmp_path):
    names = sorted(set(_names(text)) - {"tanh", "softmax", "exp", "sigmoid", "relu", "softplus", "log",
                                        "sum", "diag", "inv", "outer"})
    compare(f"{text} wrt {', '.join(names)}", shapes, tmp_path, layout="denominator")


@pytest.mark.parametrize("text, shapes, formula", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_emitted_hessians_match_evaluator(text, shapes, formula, tmp_path):
    compare(text, shapes, tmp_path, hessian=True)


def test_emitted_module_keeps_symbolic_sizes(tmp_path):
    p = gradcli.analyze("mean((X@w - y)^2) wrt w")
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path)
    for m in (4, 9):  # the same module works for any size: m comes from the inputs' shapes
        X, y, w = np.ones((m, 2)), np.zeros(m), np.ones(2)
        f, d = module.value_and_grad(X=X, y=y, w=w)
        assert np.isclose(f, 4.0) and np.allclose(d["w"], 2 * X.T @ (X @ w - y) / m)


@pytest.mark.parametrize("sample", ["least_squares", "logistic", "net", "factorization"])
def test_cli_emit_for_every_sample_imports_and_runs(sample, tmp_path):
    formulas = {
        "least_squares": ["||y - X@theta||^2 wrt theta"],
        "logistic": ["sum(log(1 + exp(-y*(X@w)))) + lam*||w||^2 wrt w"],
        "net": ["0.5*sum((y - h(X@Theta))^2) wrt Theta", "--fn", "h=tanh"],
        "factorization": ["||M - U@V'||_F^2 wrt U, V"],
    }[sample]
    out = subprocess.run([sys.executable, "-m", "gradcli", "grad", *formulas, "--emit", "numpy"],
                         capture_output=True, text=True, check=True).stdout
    (tmp_path / "f.py").write_text(out)
    data = np.load(f"samples/{sample}.npz")
    code = ("import f, numpy as np, json; d = np.load(%r); v, g = f.value_and_grad(**{k: d[k] for k in f.INPUTS}); "
            "print(json.dumps(float(v)))" % str(
                __import__("pathlib").Path(f"samples/{sample}.npz").resolve()))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    fns = formulas[2:] and {"h": "tanh"}
    p = gradcli.analyze(formulas[0], data_shapes={k: data[k].shape for k in data.files})
    f_eval, _ = p.compile(fns or None)(**{k: data[k] for k in p.symbols})
    assert np.isclose(json.loads(res.stdout), f_eval)


# ----------------------------------------------------------------------------- names and literals
# The generated code mixes the user's symbols with names of its own (temporaries, the Jacobian
# loop, numpy, builtins): none may shadow another, whatever the symbols are called.
def run_emitted(text, shapes, values, tmp_path, hessian=False):
    p = gradcli.analyze(text, shapes=shapes)
    derivs = p.hessians() if hessian else p.derivatives()
    module = load_module(emit_numpy(p, derivs, {}, hessian), tmp_path)
    return module, (module.value_and_hess if hessian else module.value_and_grad)(**values)


def test_a_temporary_never_overwrites_an_input_named_like_it(tmp_path):
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=4), rng.normal(size=4)
    for name in ("t1", "t2", "t3", "t4"):
        _, (f, d) = run_emitted(f"sum(exp(x)*{name}) wrt x", None, {"x": x, name: t}, tmp_path)
        assert np.isclose(f, np.sum(np.exp(x) * t)) and np.allclose(d["x"], np.exp(x) * t), name


@pytest.mark.parametrize("name", ["seed", "idx", "J0", "np", "float", "arrays", "INPUTS"])
def test_jacobian_loop_names_never_overwrite_an_input(name, tmp_path):
    rng = np.random.default_rng(1)
    W, x, b = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=3)
    _, (f, d) = run_emitted(f"tanh(W@x + {name}) wrt W, {name}", {name: (3,)}, {"W": W, "x": x, name: b},
                            tmp_path)
    s = 1 - np.tanh(W @ x + b) ** 2
    assert np.allclose(f, np.tanh(W @ x + b)) and np.allclose(d[name], np.diag(s))
    assert np.allclose(d["W"], np.einsum("ik,l->ikl", np.diag(s), x))  # ∂f_i/∂W_kl = δ_ik s_i x_l


@pytest.mark.parametrize("name", ["lambda", "in", "if", "None", "True", "class", "sum", "np", "float"])
def test_keywords_and_builtins_as_symbol_names(name, tmp_path):
    rng = np.random.default_rng(2)
    x, c = rng.normal(size=3), 0.7
    module, (f, d) = run_emitted(f"{name}*||x||^2 wrt x, {name}", {name: ()}, {"x": x, name: c}, tmp_path)
    assert np.isclose(f, c * x @ x) and np.allclose(d["x"], 2 * c * x) and np.isclose(d[name], x @ x)
    assert f"{name} is _{name}" in module.value_and_grad.__doc__  # the renaming is documented


def test_a_symbol_python_cannot_name_is_renamed(tmp_path):
    """U+03A2 lies in the Greek block the grammar accepts but is no Python identifier."""
    name = "\u03a2"
    x = np.array([0.5, -1.0, 2.0])
    module, (f, d) = run_emitted(f"sum({name}*x) wrt {name}", None, {name: 2 * x, "x": x}, tmp_path)
    assert np.isclose(f, 2 * x @ x) and np.allclose(d[name], x)
    assert f"{name} is _symbol1" in module.value_and_grad.__doc__


def test_literals_python_cannot_spell(tmp_path):
    x = np.array([1.0, 2.0])
    # 1e400 is a parse error; 1e308*10 is left unfolded (no constant is infinite), and the
    # emitted module overflows where the evaluator does under --allow-nonfinite
    text = "sum(1e308*10*x) wrt x"
    _, (f, d) = run_emitted(text, None, {"x": x}, tmp_path)
    f_eval, d_eval = gradcli.analyze(text, shapes={"x": (2,)}).compile(allow_nonfinite=True)(x=x)
    assert f == f_eval == np.inf and np.array_equal(d["x"], d_eval["x"]) and np.all(d["x"] == np.inf)
    with pytest.raises(gradcli.GradcliError, match="overflow"):
        gradcli.analyze(text, shapes={"x": (2,)}).compile()(x=x)
    _, (f, d) = run_emitted("(-2)^a*sum(x) wrt x", None, {"x": x, "a": 2.0}, tmp_path)  # not -(2^a)
    assert np.isclose(f, 4 * np.sum(x)) and np.allclose(d["x"], 4.0)


def test_missing_input_is_named(tmp_path):
    p = gradcli.analyze("lambda*||x||^2 wrt x")
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path)
    assert module.INPUTS == ("lambda", "x")
    with pytest.raises(TypeError, match="missing the input.*'lambda'"):
        module.value_and_grad(x=np.ones(2))
    f, _ = module.value_and_grad(x=np.ones(2), **{"lambda": 2.0}, unused=np.zeros(1))  # extras are ignored
    assert np.isclose(f, 4.0)


# ----------------------------------------------------------------------------- property: any names
import keyword  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gradcli.numeric.emit import RESERVED  # noqa: E402
from test_derivatives import formulas  # noqa: E402

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))
GENERATOR_SYMBOLS = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
# names the generated code itself uses or used (temporaries, the Jacobian loop, the kwargs),
# Python's keywords and a few builtins, numpy's alias, Greek letters, and a Greek code point
# that is no Python identifier
CANDIDATES = sorted(set(keyword.kwlist) | {"t1", "t2", "t3", "t4", "t10", "J0", "J", "idx", "index", "seed",
                                           "symbol1", "vjp", "vjp0", "np", "numpy", "float", "list", "len",
                                           "TypeError", "print", "arrays", "INPUTS", "missing", "name",
                                           "value_and_grad", "value_and_hess", "sigmoid", "softmax",
                                           "logdet", "logsumexp", "θ", "Θ", "λ", "Σ", "ς", "\u03a2"}
                    | {n for n in RESERVED if n.isalpha() and len(n) < 6})


def _accepted_as_symbol(name):
    """Whether the language takes `name` as a symbol (some words are its own keywords)."""
    try:
        p = gradcli.analyze(f"sum({name}*x) wrt {name}", shapes={name: (3,), "x": (3,)})
    except gradcli.GradcliError:
        return False
    return set(p.symbols) == {name, "x"}


ADVERSARIAL = [n for n in CANDIDATES if _accepted_as_symbol(n)]


def test_most_adversarial_names_are_symbols():
    assert len(ADVERSARIAL) > 0.8 * len(CANDIDATES) and {"lambda", "t1", "np", "seed", "θ"} <= set(ADVERSARIAL)


def _rename(text, mapping):
    return re.sub(r"(?<![A-Za-z0-9_])(" + "|".join(mapping) + r")(?![A-Za-z0-9_(])",
                  lambda m: mapping[m.group(1)], text)


_counter = iter(range(10**9))


KINDS_AND_FORMULAS = st.one_of(st.tuples(st.just("gradient"), formulas("s", 3)),  # random formulas of
                               st.tuples(st.just("jacobian"), formulas("v", 2)),  # tests/test_derivatives
                               st.tuples(st.just("hessian"), formulas("s", 2, twice=True)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(KINDS_AND_FORMULAS, st.lists(st.sampled_from(ADVERSARIAL), min_size=5, max_size=5, unique=True),
       st.sampled_from([None, "numerator", "denominator"]), st.integers(0, 1000))
def test_emitted_modules_match_the_evaluator_whatever_the_symbols_are_called(kind_text, names, layout, seed):
    kind, text = kind_text
    mapping = dict(zip(GENERATOR_SYMBOLS, names))
    present = [s for s in GENERATOR_SYMBOLS if re.search(rf"(?<![A-Za-z0-9_]){s}(?![A-Za-z0-9_(])", text)]
    assume(present)
    wrt = present if kind != "hessian" else [present[seed % len(present)]]
    text = _rename(f"{text} wrt {', '.join(wrt)}", mapping)
    shapes = {mapping[s]: GENERATOR_SYMBOLS[s] for s in present}
    hessian = kind == "hessian"
    p = gradcli.analyze(text, shapes=shapes, layout=None if hessian else layout)
    values = random_data(p, seed, scale=0.5)
    derivs = p.hessians() if hessian else p.derivatives()
    source = emit_numpy(p, derivs, {}, hessian)
    with tempfile.TemporaryDirectory() as folder:
        import pathlib

        module = load_module(source, pathlib.Path(folder), name=f"emitted_{next(_counter)}")
    fn = module.value_and_hess if hessian else module.value_and_grad
    f_emit, d_emit = fn(**values)
    try:
        f_eval, d_eval = p.compile(hessian=hessian)(**values)
    except gradcli.GradcliError as err:  # a non-finite value on this data (never seen at scale 0.5)
        assert err.kind == "math"
        assume(False)
    assert np.shape(f_emit) == np.shape(f_eval) and np.allclose(f_emit, f_eval), text
    assert d_emit.keys() == d_eval.keys() == {d.wrt for d in derivs}
    for k in d_eval:
        assert d_emit[k].shape == d_eval[k].shape and np.allclose(d_emit[k], d_eval[k]), (text, k)


# ----------------------------------------------------------------------------- det at a singular X
# The evaluator writes det(X)ᵖ·X⁻ᵀ through the adjugate, which exists where X⁻ᵀ does not; the
# emitted module must compute the same numbers (before, it called inv and failed or gave inf/nan).
def _singular(rng, rank):
    """A 3×3 matrix of small integers with exactly the given rank (exact in floating point)."""
    left, right = rng.integers(-3, 4, size=(3, rank)), rng.integers(-3, 4, size=(rank, 3))
    while rank and np.linalg.matrix_rank(left @ right) != rank:
        left, right = rng.integers(-3, 4, size=(3, rank)), rng.integers(-3, 4, size=(rank, 3))
    return (left @ right).astype(float)


def _central_differences(f, X, h=1e-5):
    out = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        out[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return out


DET_CASES = [
    ("det(X)", lambda X, A, B: np.linalg.det(X)),
    ("det(A@X@B)", lambda X, A, B: np.linalg.det(A @ X @ B)),
    ("det(X)^2", lambda X, A, B: np.linalg.det(X) ** 2),
    ("det(X)^3*sum(X)", lambda X, A, B: np.linalg.det(X) ** 3 * np.sum(X)),
    ("log(1 + det(X)^2)", lambda X, A, B: np.log(1 + np.linalg.det(X) ** 2)),
    ("det(X)*tr(A@X)", lambda X, A, B: np.linalg.det(X) * np.trace(A @ X)),
]


@pytest.mark.parametrize("text, numpy_f", DET_CASES, ids=[c[0] for c in DET_CASES])
@pytest.mark.parametrize("rank", [0, 1, 2])
def test_det_gradient_at_a_singular_matrix(text, numpy_f, rank, tmp_path):
    rng = np.random.default_rng(rank)
    X = _singular(rng, rank)
    A, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    values = {k: v for k, v in {"X": X, "A": A, "B": B}.items() if k in _names(text)}
    p = gradcli.analyze(f"{text} wrt X", data_shapes={k: v.shape for k, v in values.items()})
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path, name=f"det{rank}")
    f_emit, d_emit = module.value_and_grad(**values)
    f_eval, d_eval = p.compile()(**values)
    fd = _central_differences(lambda Y: numpy_f(Y, A, B), X)
    assert np.all(np.isfinite(d_emit["X"])) and np.allclose(f_emit, f_eval)
    assert np.allclose(d_emit["X"], d_eval["X"], atol=1e-9)
    assert np.allclose(d_emit["X"], fd, rtol=1e-5, atol=1e-4)  # FD truncation: det³ ~ h²


@pytest.mark.parametrize("text", ["det(X) wrt X", "sum(sigmoid(X@x)) + logsumexp(x) wrt x",
                                  "||X||_2 + ||X||_* + logdet(X) + max(x) wrt X, x",
                                  "sum(softplus(x)) + prod(x) + ||x||_inf wrt x"])
@pytest.mark.parametrize("dialect", ["numpy", "array-api"])
def test_emitted_helpers_are_the_evaluators_own_code(text, dialect):
    """One numeric implementation: every function the module defines is the source of the kernel
    the evaluator runs (kernels.py), or the module's own plumbing; no operator is written twice."""
    import ast
    import inspect
    import textwrap

    from gradcli.numeric.emit import MODULE_FUNCTIONS, emit_module
    from gradcli.language.operators.kernels import HELPERS

    p = gradcli.analyze(text, shapes={"X": (3, 3), "x": (3,)})
    source = emit_module(p, p.derivatives(), {}, False, dialect)
    defined = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
    helpers = [d.name for d in defined if d.name in HELPERS]
    assert helpers and ("np.linalg.inv" not in source or "logdet" in text)  # det's gradient: the adjugate
    for name in helpers:  # the same body, the same parameters (their annotations left out)
        own = textwrap.dedent(inspect.getsource(HELPERS[name])).strip()
        assert own.split(":\n", 1)[1] in source, name
        emitted = next(d for d in defined if d.name == name)
        assert [a.arg for a in emitted.args.args] == list(inspect.signature(HELPERS[name]).parameters)
    others = {d.name for d in defined} - set(HELPERS) - set(MODULE_FUNCTIONS)
    assert others <= {"value_and_grad"} | {d.name for d in defined if d.name.startswith("_vjp")}


# ----------------------------------------------------------------------------- a 1×1 f
# `x'@A@x where x: (n,1)` is 1×1: the CLI and the evaluator take it as the scalar it holds, and so
# does the emitted module (f has shape (), its derivatives the shapes of a scalar's).
UNIT_CASES = [
    ("x'@A@x wrt x, A where x: (n,1)", False, None),
    ("x'@A@x wrt x, A where x: (n,1)", False, "numerator"),
    ("x'@A@x wrt x where x: (n,1)", True, None),
    ("tanh(x'@y) * (x'@A@x) wrt x, y where x: (n,1), y: (n,1)", False, "denominator"),
    ("(y'@A)@x + sum(x) wrt x where x: (n,1), y: (n,1)", False, "numerator"),
    ("exp(x@y) wrt x where x: (1,n), y: (n,1)", False, "numerator"),
]


@pytest.mark.parametrize("text, hessian, layout", UNIT_CASES)
def test_a_one_by_one_f_is_returned_as_a_scalar(text, hessian, layout, tmp_path):
    rng = np.random.default_rng(7)
    shapes = {"x": (1, 3) if "x: (1,n)" in text else (3, 1), "y": (3, 1), "A": (3, 3)}
    values = {k: rng.normal(size=v) for k, v in shapes.items() if k in _names(text)}
    compare_on(text, None, values, tmp_path, hessian=hessian, layout=layout)  # f's shape too
    p = gradcli.analyze(text, layout=layout)
    module = load_module(emit_numpy(p, p.hessians() if hessian else p.derivatives(), {}, hessian), tmp_path, "unit")
    f, _ = (module.value_and_hess if hessian else module.value_and_grad)(**values)
    assert np.shape(f) == ()


# ----------------------------------------------------------------------------- property: newer forms
# Column vectors (c, d: 3×1, so xᵀAx is 1×1), det, ones/zeros and the newer operators, mixed
# with the formulas above: the emitted module computes what `Problem.compile` does.
COLUMN_SYMBOLS = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3), "c": (3, 1), "d": (3, 1)}


def _columns(depth, twice):
    if depth == 0:
        return st.sampled_from(["c", "d"])
    c, m = _columns(depth - 1, twice), formulas("m", 1, twice)

    def b(template, *parts):
        return st.builds(lambda *xs: "(" + template.format(*xs) + ")", *parts)
    return st.one_of(c, b("{}@{}", m, c), b("tanh({})", c), b("{}*{}", c, c), b("{} + ones(3, 1)", c),
                     b("{} - zeros(3, 1)", c), b("arcsin(tanh({}))", c), b("{}*{}", formulas("s", 1, twice), c),
                     b("{}@ones(3, 1)", b("{}@{}'", c, c)), b("expm1({})", c))


def _extended_scalars(twice):
    c, m, s = _columns(2, twice), formulas("m", 2, twice), formulas("s", 2, twice)

    def b(template, *parts):
        return st.builds(lambda *xs: "(" + template.format(*xs) + ")", *parts)
    return st.one_of(
        b("{}'@{}", c, c), b("{}'@{}@{}", c, m, c), b("tanh({}'@{})", c, c),  # 1×1 fs
        b("sum({})", c), b("det({})", m), b("det({})^2", m), b("det({} + 3*eye(3))", m),
        b("prod({})", c), b("max({})", c), b("min({})", c), b("||{}||_1", c), b("||{}||_inf", c),
        *([] if twice else [b("||{}@{}' + D||_2", c, c), b("||{}@{}' + D||_*", c, c)]),
        b("sum(ones(1, 3)@{})", c), b("{}*sum({})", s, c), b("{} + {}'@{}", s, c, c),
        b("arctan({})", s), b("sum(zeros(3, 3) + {})", m))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans().flatmap(lambda h: st.tuples(st.just(h), _extended_scalars(h))),
       st.sampled_from([None, "numerator", "denominator"]), st.integers(0, 1000))
def test_emitted_modules_match_the_evaluator_on_columns_det_and_reductions(hess_text, layout, seed):
    hessian, text = hess_text
    present = [s for s in COLUMN_SYMBOLS if re.search(rf"(?<![A-Za-z0-9_]){s}(?![A-Za-z0-9_(])", text)]
    assume(present)
    wrt = [present[seed % len(present)]] if hessian else present
    text = f"{text} wrt {', '.join(wrt)}"
    shapes = {s: COLUMN_SYMBOLS[s] for s in present}
    p = gradcli.analyze(text, shapes=shapes, layout=None if hessian else layout)
    values = random_data(p, seed, scale=0.5)
    derivs = p.hessians() if hessian else p.derivatives()
    with tempfile.TemporaryDirectory() as folder:
        import pathlib

        module = load_module(emit_numpy(p, derivs, {}, hessian), pathlib.Path(folder),
                             name=f"emitted_{next(_counter)}")
    try:
        f_eval, d_eval = p.compile(hessian=hessian)(**values)
    except gradcli.GradcliError as err:  # a non-finite value on this data
        assert err.kind == "math"
        assume(False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f_emit, d_emit = (module.value_and_hess if hessian else module.value_and_grad)(**values)
    assert np.shape(f_emit) == np.shape(f_eval) and np.allclose(f_emit, f_eval, equal_nan=True), text
    assert d_emit.keys() == d_eval.keys() == {d.wrt for d in derivs}
    for k in d_eval:
        assert d_emit[k].shape == d_eval[k].shape, (text, k)
        assert np.allclose(d_emit[k], d_eval[k], rtol=1e-7, atol=1e-9, equal_nan=True), (text, k)


# ----------------------------------------------------------------------------- one implementation
def test_every_operator_has_one_kernel_that_emit_can_write():
    """Every operator the evaluator computes has a kernel (kernels.py) as its numeric
    implementation, and every helper a kernel calls is one --emit can copy (a function of
    kernels.py taking the namespace first): a lambda or a numpy-only function fails here."""
    import inspect

    from gradcli.language.expr import OPS
    from gradcli.language.operators.kernels import HELPERS, Helper, Kernel

    unevaluated = {"const", "sym", "apply", "elemderiv"}  # literals, inputs, bound away, rewritten
    for name, op in OPS.items():
        if name in unevaluated:
            assert op.impl is None, name
            continue
        assert isinstance(op.impl, Kernel), name
        if isinstance(op.impl, Helper):
            assert HELPERS.get(op.impl.fn.__name__) is op.impl.fn, name
            assert list(inspect.signature(op.impl.fn).parameters)[0] == "xp", name


@pytest.mark.parametrize("dialect", ["numpy", "array-api"])
@pytest.mark.parametrize("structure, good, bad", [
    ("symmetric", np.array([[2.0, 0.5], [0.5, -1.0]]), np.array([[2.0, 0.5], [0.4, -1.0]])),
    ("spd", np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[1.0, 2.0], [2.0, 1.0]])),  # eigenvalues 3, −1
    ("diagonal", np.diag([2.0, 3.0]), np.array([[2.0, 0.1], [0.0, 3.0]])),
])
def test_emitted_module_refuses_data_that_contradicts_a_declared_structure(structure, good, bad, dialect, tmp_path):
    """The derivative wrt a declared-structured S is projected on that structure, so on other
    data it would be wrong without a word: the module raises ValueError, as the CLI refuses
    such data (exit 1).  On data of the structure: u'Sx's gradient is sym(uxᵀ) (the diagonal of
    uxᵀ for a diagonal S), numpy's closed form."""
    from gradcli.numeric.emit import emit_module

    p = gradcli.analyze("u'@S@x wrt S", {"S": (2, 2), "u": (2,), "x": (2,)}, structures={"S": structure})
    module = load_module(emit_module(p, p.derivatives(), {}, False, dialect), tmp_path, f"m_{structure}_{dialect[:5]}")
    u, x = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    f, g = module.value_and_grad(S=good, u=u, x=x)
    outer = np.outer(u, x)
    expected = np.diag(np.diag(outer)) if structure == "diagonal" else (outer + outer.T) / 2
    assert np.isclose(float(f), u @ good @ x)
    assert np.allclose(np.asarray(g["S"]), expected)
    with pytest.raises(ValueError, match=f"declared {structure}"):
        module.value_and_grad(S=bad, u=u, x=x)
