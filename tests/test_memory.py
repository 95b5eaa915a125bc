"""The memory check before a run counts the evaluation's peak, not only its inputs and outputs:
`peak_entries` follows the compiled schedule (allocation at each step, free after last use) and
the run is refused before anything is allocated.  No test here allocates what it describes."""

import pytest

import gradcli
import gradcli.numeric.data
from gradcli.cli import main
from gradcli.numeric.evaluate import peak_entries

N = 10 ** 6  # an outer product of two such vectors is 8 TB


def _never_allocate(*args, **kwargs):
    raise AssertionError("the run allocated its arrays: the memory check let it through")


def _run(capsys, monkeypatch, *args):
    monkeypatch.setattr(gradcli.numeric.data, "random_values", _never_allocate)
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_intermediates_that_do_not_fit_are_refused_before_allocating(capsys, monkeypatch):
    monkeypatch.setattr(gradcli.numeric.data, "available_memory", lambda: 64 * 10 ** 9)
    # inputs, f and ∂f/∂x are 16 MB; tanh(x yᵀ) and its derivative's temporaries are terabytes
    rc, out, err = _run(capsys, monkeypatch, "grad", "sum(tanh(x@y')) wrt x", "-s", f"x={N}", "-s", f"y={N}", "--random")
    assert rc == 1 and out == ""
    assert "estimated" in err and "intermediates" in err and "TB" in err and "64.0 GB is available" in err


def test_a_product_with_a_broadcast_counts_the_copy_blas_makes(capsys, monkeypatch):
    # X, Y and the gradient 1Yᵀ are 3 × 7.2 GB (what the old check counted); XY is freed before
    # the gradient is made, but the product copies the broadcast 1 while it runs (7.2 GB more)
    monkeypatch.setattr(gradcli.numeric.data, "available_memory", lambda: 26 * 10 ** 9)
    rc, _, err = _run(capsys, monkeypatch, "grad", "sum(X@Y) wrt X", "-s", "X=30000x30000", "-s", "Y=30000x30000", "--random")
    assert rc == 1 and "estimated 28.8 GB" in err


@pytest.mark.parametrize("text, shapes, expected", [
    # x³ is freed after sum; 3x² is made by pow then mul written over it: one n-array at a time
    ("sum(x^3) wrt x", {"x": (1000,)}, 1000 + 1),
    # x yᵀ (n²) and tanh of it (n², x yᵀ is dead after but both live during the step)
    ("sum(tanh(x@y')) wrt x", {"x": (100,), "y": (100,)}, 2 * 100 ** 2),
])
def test_peak_follows_the_schedule(text, shapes, expected):
    program = gradcli.analyze(text, shapes=shapes).compile().program
    assert peak_entries(program) >= expected
    assert peak_entries(program) <= 3 * expected  # an estimate, not a sum of every node



def _writes_into():
    from gradcli.language.expr import OPS
    from gradcli.language.operators.kernels import Helper

    return sorted(name for name, op in OPS.items() if isinstance(op.impl, Helper) and op.impl.into)


@pytest.mark.parametrize("name", _writes_into())
def test_a_kernel_that_computes_into_an_array_reuses_a_dead_temporary(name):
    """sigmoid, softplus, relu (`Helper.into`) write their result over a temporary nothing reads
    afterwards, as a ufunc does: the evaluator (and `--emit`) hold one array where they held two."""
    import numpy as np

    from gradcli.language import simplify as S
    from gradcli.language.expr import OPS
    from gradcli.language.shapes import col, mat
    from gradcli.numeric.evaluate import compile_graph

    A, x = S.sym("A", mat(50, 40)), S.sym("x", col(40))
    program = compile_graph([S.summ(S.fn(name, S.matmul(A, x)))])
    (step,) = [st for st in program.plan.steps if st.node.op == name]
    assert step.overwrite == 0  # A@x, dead after this step
    assert peak_entries(program) == 50 + 1  # A@x, then its image in the same array; the sum
    rng = np.random.default_rng(0)
    values = {"A": rng.normal(size=(50, 40)), "x": rng.normal(size=40)}
    (value,) = program.run(values)
    assert np.isclose(value, np.sum(OPS[name].impl.fn(np, values["A"] @ values["x"])))


@pytest.mark.parametrize("text, products", [
    ("tr(A@X@B)", 1),          # sum(A ⊙ (XB)ᵀ): one product, not two
    ("tr(A@X) + sum(A@X)", 1),  # AX is used twice: formed once, its trace read from it
    ("tr(A@X@B@C)", 2),
])
def test_the_trace_of_a_product_forms_one_product_fewer(text, products):
    """tr(PQ) is evaluated as the sum of P ⊙ Qᵀ (an entry-wise product instead of a matrix
    product), and still equals numpy's trace of the product."""
    import numpy as np

    from gradcli.language.expr import topological
    from gradcli.numeric.evaluate import reassociate

    rng = np.random.default_rng(3)
    arrays = {k: rng.standard_normal((5, 5)) for k in "AXBC" if k in text}
    problem = gradcli.analyze(text, data_shapes={k: v.shape for k, v in arrays.items()})
    graph = reassociate([problem.expr])
    assert sum(n.op == "matmul" for n in topological(graph)) == products
    A, X = arrays["A"], arrays["X"]
    expected = {"tr(A@X@B)": lambda: np.trace(A @ X @ arrays["B"]),
                "tr(A@X) + sum(A@X)": lambda: np.trace(A @ X) + np.sum(A @ X),
                "tr(A@X@B@C)": lambda: np.trace(A @ X @ arrays["B"] @ arrays["C"])}[text]()
    value = problem.compile(hessian=False).evaluate(arrays)[0]
    np.testing.assert_allclose(value, expected, rtol=1e-12)
