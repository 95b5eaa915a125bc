"""Evaluation in row blocks (plan.py, blocked.py) equals the whole evaluation: random formulas
whose data symbols share a sample axis, and the usual losses, with blocks of 1–4 rows."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.numeric import blocked
from gradcli.numeric.plan import make_plan

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))
M, N = 7, 3
SHAPES = {"X": (M, N), "Z": (M, N), "y": (M,), "u": (M,), "w": (N,), "v": (N,), "W": (N, N), "a": ()}
PARAMS = {"w", "v", "W", "a"}


def _values(seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.normal(size=s) if s else float(rng.normal())) for k, s in SHAPES.items()}


def formulas(kind: str, depth: int):
    """r: a vector over the samples (M), R: data rows (M×N), p: a parameter vector (N),
    P: N×N, s: a scalar."""
    leaves = {"r": ["y", "u"], "R": ["X", "Z"], "p": ["w", "v"], "P": ["W"], "s": ["a", "0.5"]}
    if depth == 0:
        return st.sampled_from(leaves[kind])
    r, R, p, P, s = (formulas(k, depth - 1) for k in "rRpPs")

    def b(template, *parts):
        return st.builds(lambda *xs: "(" + template.format(*xs) + ")", *parts)

    options = {
        "r": [b("{}@{}", R, p), b("{} + {}", r, r), b("{}*{}", r, r), b("tanh({})", r),
              b("sigmoid({})", r), b("softplus({})", r), b("{}*{}", s, r), b("sum({}, 1)", R),
              b("log(1 + {}^2)", r), b("softmax({})", r), b("{}@{}", R, b("{}@{}", P, p))],
        "R": [b("{} + {}", R, R), b("{}*{}", R, R), b("tanh({})", R), b("{}@{}", R, P),
              b("{}*{}", s, R), b("{} + {}'", R, p), b("diag({})@{}", r, R)],
        "p": [b("{}'@{}", R, r), b("{}@{}", P, p), b("{} + {}", p, p), b("tanh({})", p),
              b("sum({}, 0)", R), b("{}*{}", s, p), b("mean({}, 0)", R)],
        "P": [b("{}'@{}", R, R), b("{} + {}", P, P), b("{}'@diag({})@{}", R, r, R)],
        "s": [b("sum({})", r), b("{}'@{}", r, r), b("sum({})", R), b("||{}||^2", r),
              b("logsumexp({})", r), b("mean({})", r), b("max({})", r), b("norm({} + 3)", r),
              b("{}'@{}", p, p), b("log(1 + {}^2)", s), b("tanh({})", s), b("{}*{}", s, s),
              b("{} + {}", s, s), b("tr({})", P), b("||{}||_1", r), b("min({})", r)],
    }[kind]
    return st.one_of(*options)


def _blocked_vs_whole(text: str, hessian: bool, rows: int) -> bool:
    """Compare; return whether the plan split the program."""
    wrt = sorted(PARAMS & set(__import__("re").findall(r"[A-Za-z]+", text)))
    if not wrt:
        text, wrt = f"{text} + w'@w", ["w"]
    problem = gradcli.analyze(f"{text} wrt {', '.join(wrt)}", shapes={k: SHAPES[k] for k in SHAPES})
    compiled = problem.compile(hessian=hessian, allow_nonfinite=True)
    values = {k: v for k, v in _values().items() if k in problem.symbols}
    whole = compiled.program.run(values)
    cut = blocked.evaluate(compiled.program, values, set(wrt), block_rows=rows)
    # again: the kernels compiled by the first call run every block (blockprogram.py), their buffers reused
    again = blocked.evaluate(compiled.program, values, set(wrt), block_rows=rows)
    for a, b, c in zip(whole, cut, again):
        a, b, c = (np.asarray(x, dtype=float) for x in (a, b, c))
        scale = np.max(np.abs(a), initial=1.0)
        assert a.shape == b.shape == c.shape
        # Blocks add the same terms in another order: rounding, amplified where a result is a
        # difference of large terms (a log-sum-exp Hessian p - ppᵀ on big inputs gave 3.5e-10
        # relative).  A wrong plan is off by O(1), so 1e-9 still catches every real error.
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * scale, err_msg=text)
        np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-9 * scale, err_msg=text)
    return blocked.plan_for(compiled.program, set(wrt)).splits


SPLIT = []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(formulas("s", 3), st.integers(1, 4), st.booleans())
@example("(logsumexp(((X + v')@((X'@X)@(a*v)))))", 1, True)  # rounding 3.5e-10 relative, not a bug
def test_blocked_equals_whole_on_random_formulas(text, rows, hessian):
    SPLIT.append(_blocked_vs_whole(text, hessian, rows))


def test_random_formulas_mostly_split():
    """The property test above is not vacuous: most of its formulas are evaluated in blocks."""
    if len(SPLIT) < 20:
        pytest.skip("run with the property test")
    assert sum(SPLIT) > 0.5 * len(SPLIT), f"{sum(SPLIT)} of {len(SPLIT)} split"


LOSSES = {
    "least squares": "sum((X@w - y)^2)",
    "ridge": "||X@w - y||^2 + a*w'@w",
    "logistic": "sum(softplus(X@w) - y*(X@w))",
    "softmax cross-entropy": "-y'@log(softmax(X@w))",
    "log-sum-exp": "log(sum(exp(X@w))) + logsumexp(X@v)",
    "multi-output least squares": "sum((X@W - Z)^2)",
    "2-norm residual": "norm(X@w - y) + mean(abs(X@w - y))",
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("hessian", [False, True])
@pytest.mark.parametrize("rows", [1, 3, 5])
def test_losses_blocked_equal_whole(name, hessian, rows):
    splits = _blocked_vs_whole(LOSSES[name], hessian, rows)
    assert splits or hessian


@pytest.mark.parametrize("text, why", [
    ("sum(exp(X@X')) + w'@w", "pairs samples"),
    ("sum(X@X'@y) + w'@w", None),  # X(Xᵀy): a sum over samples, then a second pass
    ("logdet(X'@X + W@W')", None),
    ("sum(inv(X@W@X' + diag(y^2) + eye(7)))", "pairs samples"),
    ("sum(softmax(X@w)*y) + max(X@w)", "not separable"),
    ("sum(u@X@w)", None),
])
def test_what_cannot_be_cut_says_why(text, why):
    wrt = ["w"] if "w" in text else ["W"]
    problem = gradcli.analyze(f"{text} wrt {wrt[0]}", shapes=SHAPES)
    compiled = problem.compile()
    plan = make_plan(compiled.program.roots, set(wrt))
    if why is None:  # X'X is a sum over samples; logdet of it is computed once after it
        assert plan.splits, plan.reason
    else:
        assert why in plan.reason and "evaluated whole" in plan.note()
    _blocked_vs_whole(text, False, 2)


def test_large_in_memory_data_is_blocked_by_default(monkeypatch):
    """Above MIN_BYTES the runner cuts rows without being asked; below it never does."""
    calls = []
    real = blocked.Runner.run
    monkeypatch.setattr(blocked.Runner, "run", lambda self, *a, **k: calls.append(a[1]) or real(self, *a, **k))
    monkeypatch.setattr(blocked, "MIN_BYTES", 10 * M * N * 8)
    problem = gradcli.analyze("sum((X@w - y)^2) wrt w", shapes={"X": (M, N), "y": (M,), "w": (N,)})
    f = problem.compile()
    small = {k: v for k, v in _values().items() if k in "Xyw"}
    f(**small)
    assert calls == []
    monkeypatch.setattr(blocked, "MIN_BYTES", 1)
    monkeypatch.setattr(blocked, "BLOCK_BYTES", 3 * N * 8)
    value, grads = f(**small)
    assert calls == [16]  # at least 16 rows per block
    X, y, w = small["X"], small["y"], small["w"]
    np.testing.assert_allclose(grads["w"], -2 * X.T @ (y - X @ w), rtol=1e-12)


@pytest.mark.parametrize("columns, blocked_", [(8, True), (blocked.NARROW_ROW_BYTES // 8 + 1, False)])
def test_in_memory_blocks_only_for_narrow_rows(monkeypatch, columns, blocked_):
    """Wide rows in memory are evaluated whole (blocks measured slower there); narrow ones in
    blocks; the gradient is the same either way."""
    calls = []
    real = blocked.Runner.run
    monkeypatch.setattr(blocked.Runner, "run", lambda self, *a, **k: calls.append(a[1]) or real(self, *a, **k))
    monkeypatch.setattr(blocked, "MIN_BYTES", 1)
    rng = np.random.default_rng(7)
    X, y, w = rng.normal(size=(200, columns)), rng.normal(size=200), rng.normal(size=columns)
    problem = gradcli.analyze("sum((X@w - y)^2) wrt w", shapes={"X": X.shape, "y": y.shape, "w": w.shape})
    grads = problem.compile()(X=X, y=y, w=w)[1]
    assert bool(calls) is blocked_
    np.testing.assert_allclose(grads["w"], -2 * X.T @ (y - X @ w), rtol=1e-12)


@pytest.mark.parametrize("text, wrt", [
    ("sum((X@w - y)^2) wrt w, y", {"w", "y"}),  # ∂f/∂y runs over the samples: filled block by block
    ("tanh(X@w) wrt w", {"w"}),  # a Jacobian with a row per sample
    ("sum(softplus(X@w)) wrt X, w", {"X", "w"}),
])
@pytest.mark.parametrize("rows", [1, 4])
def test_results_over_the_samples_are_assembled(text, wrt, rows):
    problem = gradcli.analyze(text, shapes={k: SHAPES[k] for k in "Xyw"})
    compiled = problem.compile()
    values = {k: v for k, v in _values(1).items() if k in problem.symbols}
    whole = compiled.program.run(values)
    cut = blocked.evaluate(compiled.program, values, wrt, block_rows=rows)
    assert blocked.plan_for(compiled.program, wrt).splits
    for a, b in zip(whole, cut):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-14)


def _least_squares(m=M):
    problem = gradcli.analyze("sum((X@w - y)^2) + sum(softplus(X@w)) wrt w",
                              shapes={"X": (m, N), "y": (m,), "w": (N,)})
    return problem.compile()


def test_blocks_run_a_compiled_kernel_not_the_evaluator(monkeypatch):
    """Each block size's program is compiled once; blocks never go through `Program.run` (whose
    walk of the graph per block cost what the cache saved)."""
    from gradcli.numeric.evaluate import Program

    compiled = _least_squares(40)
    rng = np.random.default_rng(3)
    values = {"X": rng.normal(size=(40, N)), "y": rng.normal(size=40), "w": rng.normal(size=N)}
    runs = []
    real = Program.run
    monkeypatch.setattr(Program, "run", lambda self, *a, **k: runs.append(self) or real(self, *a, **k))
    out = blocked.evaluate(compiled.program, values, {"w"}, block_rows=3)
    assert len(runs) <= 2  # what is computed once (the gradient's 2·, the sum of the parts)
    X, y, w = values["X"], values["y"], values["w"]
    want = 2 * X.T @ (X @ w - y) + X.T @ (0.5 * (np.tanh(0.5 * (X @ w)) + 1.0))
    np.testing.assert_allclose(out[1], want, rtol=1e-12)


def test_results_do_not_share_the_kernels_buffers():
    """A later evaluation reuses the kernels' buffers; what an earlier one returned is unchanged."""
    problem = gradcli.analyze("sum(softplus(X@w)) wrt X, w", shapes={k: SHAPES[k] for k in "Xw"})
    compiled = problem.compile()
    rng = np.random.default_rng(4)
    first = {"X": rng.normal(size=(M, N)), "w": rng.normal(size=N)}
    second = {"X": rng.normal(size=(M, N)), "w": rng.normal(size=N)}
    out = blocked.evaluate(compiled.program, first, {"X", "w"}, block_rows=2)
    kept = [np.array(v, copy=True) for v in out]
    blocked.evaluate(compiled.program, second, {"X", "w"}, block_rows=2)
    for a, b in zip(out, kept):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(out, compiled.program.run(first)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_math_error_in_a_later_block_is_the_whole_evaluations():
    """log of a negative in the 6th row (the kernel's fast steps, not its first block): the
    error a whole evaluation gives, not a blocked result."""
    problem = gradcli.analyze("sum(log(X@w)) wrt w", shapes={k: SHAPES[k] for k in "Xw"})
    compiled = problem.compile()
    X, w = np.ones((M, N)), np.ones(N)
    X[5] = -1.0
    with pytest.raises(gradcli.GradcliError) as whole:
        compiled.program.run({"X": X, "w": w})
    with pytest.raises(gradcli.GradcliError) as cut:
        blocked.evaluate(compiled.program, {"X": X, "w": w}, {"w"}, block_rows=2)
    assert str(cut.value) == str(whole.value) and cut.value.kind == "math"


@pytest.mark.parametrize("text, hessian, pays", [
    ("sum((X@w - y)^2)", False, True),
    ("sum(softplus(X@w) - y*(X@w))", False, True),
    ("sum(softplus(X@w) - y*(X@w))", True, False),  # XᵀDX: a matrix product, bound by arithmetic
    ("-y'@log(softmax(X@w))", False, False),  # the data read twice
])
def test_in_memory_blocks_where_they_measured_faster(monkeypatch, text, hessian, pays):
    calls = []
    real = blocked.Runner.run
    monkeypatch.setattr(blocked.Runner, "run", lambda self, *a, **k: calls.append(a[1]) or real(self, *a, **k))
    monkeypatch.setattr(blocked, "MIN_BYTES", 1)
    problem = gradcli.analyze(f"{text} wrt w", shapes={k: SHAPES[k] for k in "Xyw"})
    compiled = problem.compile(hessian=hessian)
    values = {k: v for k, v in _values().items() if k in "Xyw"}
    compiled(**values)
    assert bool(calls) == pays
    assert (compiled.evaluation_note() is not None) == pays


def test_block_size_follows_the_cache_and_the_row_width(monkeypatch):
    calls = []
    real = blocked.Runner.run
    monkeypatch.setattr(blocked.Runner, "run", lambda self, *a, **k: calls.append(a[1]) or real(self, *a, **k))
    monkeypatch.setattr(blocked, "MIN_BYTES", 1)
    monkeypatch.setattr(blocked.os, "sysconf", lambda name: 512 << 10)  # a 512 KB L2 cache
    compiled = _least_squares(5000)
    rng = np.random.default_rng(5)
    compiled(X=rng.normal(size=(5000, N)), y=rng.normal(size=5000), w=rng.normal(size=N))
    assert calls == [(512 << 10) // (8 * (N + 1))]  # a row of X and an entry of y in each row


def test_the_kept_kernels_hold_no_data(monkeypatch):
    """The runner kept for the next call does not keep the caller's arrays alive."""
    import gc
    import weakref

    monkeypatch.setattr(blocked, "MIN_BYTES", 1)
    compiled = _least_squares(40)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, N))
    gone = weakref.ref(X)
    for _ in range(2):  # the first call traces, the second runs the compiled steps
        compiled(X=X, y=rng.normal(size=40), w=rng.normal(size=N))
    assert compiled.evaluation_note().startswith("evaluated in blocks")
    del X
    gc.collect()
    assert gone() is None


def test_the_graph_is_freed_with_its_program():
    """The evaluator's tables are keyed by the nodes themselves, and a key holds its node: every
    such table that outlives a call lives on the program (its schedule, the row-block plan, the
    kept runners and their compiled block programs), so when the program goes, the graph goes.
    (Built as written, `make_raw`: the simplifier's memo of recent sums is not the evaluator's.)"""
    import gc
    import weakref

    from gradcli.language.expr import make_raw, topological
    from gradcli.language.shapes import col, mat
    from gradcli.numeric.evaluate import compile_graph

    def raw(op, *args, params=()):
        return make_raw(op, args, params)

    X = raw("sym", params=("X_freed", mat(40, N)))
    y, w = raw("sym", params=("y_freed", col(40))), raw("sym", params=("w_freed", col(N)))
    r = raw("add", raw("matmul", X, w), raw("mul", raw("const", params=(-1.0,)), y))
    f = raw("add", raw("sum", raw("mul", r, r), params=(None, False)),
            raw("sum", raw("softplus", raw("matmul", X, w)), params=(None, False)))
    g = raw("matmul", raw("T", X), raw("add", r, raw("sigmoid", raw("matmul", X, w))))
    program = compile_graph([f, g])
    rng = np.random.default_rng(7)
    values = {"X_freed": rng.normal(size=(40, N)), "y_freed": rng.normal(size=40), "w_freed": rng.normal(size=N)}
    whole = program.run(values)
    for _ in range(2):  # the first call traces the block programs, the second runs them
        cut = blocked.evaluate(program, values, {"w_freed"}, block_rows=3)
    np.testing.assert_allclose(cut[1], whole[1], rtol=1e-12)
    assert program.__dict__["_block_plan"].splits and program.__dict__["_block_runners"]
    nodes = [weakref.ref(n) for n in topological(program.roots + [f, g])]
    del X, y, w, r, f, g, program
    gc.collect()
    assert [ref() for ref in nodes if ref() is not None and _mentions_freed(ref())] == []


def _mentions_freed(node) -> bool:
    from gradcli.language.expr import topological

    return any(n.op == "sym" and n.params[0].endswith("_freed") for n in topological([node]))


def test_an_operators_kernel_into_its_arguments_own_array_is_its_value():
    """A kernel that computes into a given array (`Helper.into`) may be handed the array of its
    argument (the block program writes a dying argument in place): the value is the one it
    computes into a new array."""
    from gradcli.language.expr import OPS
    from gradcli.language.operators.kernels import Helper

    into = [op for op in OPS.values() if isinstance(op.impl, Helper) and op.impl.into]
    assert {"sigmoid", "softplus", "relu"} <= {op.name for op in into}
    a = np.random.default_rng(8).normal(size=50) * 30
    for op in into:
        want = op.impl.fn(np, a.copy())
        own = a.copy()
        got = op.impl.fn(np, own, out=own)
        np.testing.assert_array_equal(got, want, err_msg=op.name)
        assert got is own, op.name
