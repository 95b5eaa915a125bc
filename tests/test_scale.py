"""Formulas nested 1,000 deep and sums of 100,000 terms: parsed, shape-checked, differentiated
(gradients and Hessians) and evaluated correctly, with Python's recursion limit cut to 300 so
that nothing can lean on it, and under a memory limit.  Not timed: each case runs in its own
process with a generous timeout; values are compared with finite differences or with numpy.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import pytest

MEMORY = 2 * 1024 ** 3  # bytes of address space for one case


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _run(body: str, helpers: str = "") -> str:
    """Run body (Python, with numpy as np and gradcli.api as api) in a fresh process whose
    recursion limit is 300 and whose memory is limited; return its stdout."""
    code = "import sys\nsys.setrecursionlimit(300)\nimport numpy as np\nfrom gradcli import api\n" + \
        helpers + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          preexec_fn=_limit_memory, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# f(x) and its finite-difference gradient, for a scalar f of a vector x
_FD = """
def fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x); e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g
"""


@pytest.mark.parametrize("fn,numpy_fn", [("tanh", "np.tanh"), ("sin", "np.sin"), ("sigmoid", "lambda z: 1 / (1 + np.exp(-z))")])
def test_function_nested_1000_deep_gradient_and_hessian(fn, numpy_fn):
    out = _run(f"""
        depth = 1000
        p = api.analyze("sum(" + "{fn}(" * depth + "x" + ")" * depth + ") wrt x", shapes={{"x": (3,)}})
        x = np.array([0.7, -0.4, 1.3])
        g_prog = p.compile()
        f, d = g_prog(x=x)
        ref = {numpy_fn}
        def f_np(v):
            for _ in range(depth):
                v = ref(v)
            return v.sum()
        assert abs(float(f) - f_np(x)) < 1e-9 * max(1, abs(f_np(x)))
        g_fd = fd_grad(f_np, x)
        assert np.allclose(d["x"], g_fd, rtol=1e-5, atol=1e-9), (d["x"], g_fd)
        h_prog = p.compile(hessian=True)
        _, h = h_prog(x=x)
        def grad_np(v):
            return g_prog(x=v)[1]["x"]
        h_fd = np.array([fd_grad(lambda v, i=i: grad_np(v)[i], x) for i in range(3)])
        assert np.allclose(h["x"], h_fd, rtol=1e-4, atol=1e-7), (h["x"], h_fd)
        print("ok")
    """, helpers=_FD)
    assert out.strip() == "ok"


def test_matrix_product_chain_1000_deep():
    out = _run("""
        depth = 1000
        p = api.analyze("sum(" + "A@(" * depth + "x" + ")" * depth + ") wrt x, A",
                        shapes={"x": (3,), "A": (3, 3)})
        rng = np.random.default_rng(0)
        A = np.eye(3) + 0.001 * rng.standard_normal((3, 3))
        x = rng.standard_normal(3)
        f, d = p.compile()(x=x, A=A)
        P = np.linalg.matrix_power(A, depth)
        assert np.isclose(float(f), (P @ x).sum())
        assert np.allclose(d["x"], P.T @ np.ones(3))
        # d/dA of 1ᵀA^k x = Σ_j (Aᵀ)^j 1 xᵀ (Aᵀ)^(k-1-j)
        ones, dA = np.ones(3), np.zeros((3, 3))
        for j in range(depth):
            dA += np.outer(np.linalg.matrix_power(A.T, j) @ ones, np.linalg.matrix_power(A, depth - 1 - j) @ x)
        assert np.allclose(d["A"], dA, rtol=1e-8)
        px = api.analyze("sum(" + "A@(" * depth + "x" + ")" * depth + ") wrt x", shapes={"x": (3,), "A": (3, 3)})
        _, h = px.compile(hessian=True)(x=x, A=A)
        assert np.allclose(h["x"], 0)  # linear in x
        print("ok")
    """)
    assert out.strip() == "ok"


def test_sum_of_100000_terms():
    out = _run("""
        n = 100_000
        text = " + ".join(f"x{i}" for i in range(n)) + " wrt x1, x99999"  # parsed and shape-checked
        p = api.analyze(text, shapes={"x1": (2,)})
        assert len(p.symbols) == n and p.shape == (2,)
        n = 20_000  # differentiated and evaluated (100,000 works too, in a minute on a busy machine)
        for body, grad in (("a*x", lambda a, x: n * a * np.ones(2)), ("x^2", lambda a, x: 2 * n * x)):
            p = api.analyze("sum(" + " + ".join([body] * n) + ") wrt x", shapes={"x": (2,), "a": ()})
            x, a = np.array([0.3, -1.2]), 0.7
            f, d = p.compile()(x=x, a=a) if "a" in body else p.compile()(x=x)
            assert np.allclose(d["x"], grad(a, x)), (body, d["x"])
            _, h = p.compile(hessian=True)(x=x, a=a) if "a" in body else p.compile(hessian=True)(x=x)
            assert np.allclose(h["x"], 0 if "a" in body else 2 * n * np.eye(2))
        # distinct terms: y_i * x summed, the gradient is the sum of the y_i
        m = 5_000
        p = api.analyze("sum(" + " + ".join(f"y{i}*x" for i in range(m)) + ") wrt x",
                        shapes={"x": (2,), **{f"y{i}": () for i in range(m)}})
        ys = {f"y{i}": float(i % 7) for i in range(m)}
        f, d = p.compile()(x=np.ones(2), **ys)
        assert np.allclose(d["x"], sum(ys.values()))
        print("ok")
    """)
    assert out.strip() == "ok"


def test_cli_on_a_deep_formula_passes_its_check():
    """The command line itself, with the formula on standard input: --random --check passes."""
    depth = 1200
    formula = "sum(" + "tanh(" * depth + "x" + ")" * depth + ") wrt x"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    check = subprocess.run([sys.executable, "-m", "gradcli", "grad", "--random", "--check", "-s", "x=3", "-"],
                           input=formula, capture_output=True, text=True, timeout=600,
                           preexec_fn=_limit_memory, env=env)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "error" not in check.stderr


@pytest.mark.parametrize("kind", ["distinct products", "ten like terms", "symbols and multiples"])
def test_sums_of_100000_terms_of_each_kind(kind):
    """Each kind of long sum, 100,000 terms, shape-checked, differentiated and evaluated: products
    of distinct symbols (every term its own), a few like terms repeated (merged as they come:
    the sum of ten distinct terms stays ten terms), and distinct symbols mixed with multiples of
    one (a Jacobian).  Values against numpy."""
    out = _run(f"""
        n, kind = 100_000, {kind!r}
        rng = np.random.default_rng(0)
        if kind == "distinct products":  # f = sum_i x_i * y_i (vectors), df/dx1 = diag(y1)
            p = api.analyze(" + ".join(f"x{{i}}*y{{i}}" for i in range(n)) + " wrt x1", shapes={{"x1": (2,)}})
            assert len(p.symbols) == 2 * n and p.shape == (2,)
            arrays = {{name: rng.standard_normal(2) for name in p.symbols}}
            f, d = p.compile()(**arrays)
            assert np.allclose(f, sum(arrays[f"x{{i}}"] * arrays[f"y{{i}}"] for i in range(n)))
            assert np.allclose(d["x1"], np.diag(arrays["y1"]))
        elif kind == "ten like terms":  # f = sum_i a_(i mod 10) x^2, df/dx = 2 x sum_i a_(i mod 10)
            p = api.analyze("sum(" + " + ".join(f"a{{i % 10}}*x^2" for i in range(n)) + ") wrt x",
                            shapes={{"x": (3,), **{{f"a{{k}}": () for k in range(10)}}}})
            assert p.expr.size < 200  # merged: ten terms, not 100,000
            a = rng.standard_normal(10)
            x = rng.standard_normal(3)
            f, d = p.compile()(x=x, **{{f"a{{k}}": a[k] for k in range(10)}})
            total = (n // 10) * a.sum()
            assert np.isclose(f, total * (x ** 2).sum())
            assert np.allclose(d["x"], 2 * total * x)
        else:  # x_i for even i, (i mod 7 + 1) x for odd i: df/dx = (sum of the multiples) I
            p = api.analyze(" + ".join(f"{{i % 7 + 1}}*x" if i % 2 else f"x{{i}}" for i in range(n)) + " wrt x",
                            shapes={{"x": (2,)}})
            assert p.shape == (2,)
            _, d = p.compile()(**{{name: rng.standard_normal(2) for name in p.symbols}})
            assert np.allclose(d["x"], sum(i % 7 + 1 for i in range(1, n, 2)) * np.eye(2))
        print("ok")
    """)
    assert out.strip() == "ok"
