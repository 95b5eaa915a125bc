"""Hessian-vector products (issue 17): `hess --direction x=v` against forming the Hessian.

For each workload, in one process, interleaved rounds: hand-written numpy H·v (no H formed),
gradcli's Hessian-vector product (`gradcli.hess(..., direction={"x": "v"})`: the whole call,
formula analysis included), and the Hessian formed and then multiplied (gradcli's `hess`, and
hand numpy forming H).  Peak memory by tracemalloc (numpy reports its buffers to it), in MB:
the HVP's peak is the data's order, the formed Hessian's n² · 8 bytes.

    python -m bench --part hvp [--quick] [--repeats N]
"""

from __future__ import annotations

import statistics

import numpy as np

import gradcli.run as run
from bench.run import interleaved, peak_mb


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def hvp_workloads(quick: bool):
    """(label, formula, wrt, arrays, hand H·v, hand H): a logistic loss over a wide X (many
    features: H is n×n) and the fourth power of a residual norm."""
    rng = np.random.default_rng(0)
    m, n = (500, 1000) if quick else (2000, 4000)
    X = rng.standard_normal((m, n)) / np.sqrt(n)
    y = (rng.random(m) < 0.5).astype(float)
    w, v = rng.standard_normal(n), rng.standard_normal(n)

    def logistic_hv():
        s = _sigmoid(X @ w)
        return X.T @ (s * (1 - s) * (X @ v))

    def logistic_h():
        s = _sigmoid(X @ w)
        return (X.T * (s * (1 - s))) @ X @ v

    A, b = X, rng.standard_normal(m)

    def quartic_hv():  # f = (rᵀr)², r = Ax − b: H v = 4(rᵀr) AᵀA v + 8 Aᵀr (rᵀ A v)
        r = A @ w - b
        Av = A @ v
        return 4 * (r @ r) * (A.T @ Av) + 8 * (A.T @ r) * (r @ Av)

    def quartic_h():
        r = A @ w - b
        g = A.T @ r
        return (4 * (r @ r) * (A.T @ A) + 8 * np.outer(g, g)) @ v

    return [
        (f"logistic loss, X {m}×{n}", "sum(softplus(X@w) - y*(X@w)) wrt w",
         dict(X=X, y=y, w=w, v=v), logistic_hv, logistic_h),
        (f"‖A@w − b‖⁴, A {m}×{n}", "||A@w - b||^4 wrt w",
         dict(A=A, b=b, w=w, v=v), quartic_hv, quartic_h),
    ]


def hvp_table(quick: bool, repeats: int) -> None:
    print("\n## Hessian-vector products (median ms; peak MB by tracemalloc; × = ratio to hand numpy H·v)\n")
    print("| workload | hand H·v | gradcli --direction | gradcli hess, then H·v | hand H, then H·v "
          "| peak MB hand H·v | peak MB --direction | peak MB hess | agree |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, formula, arrays, hand_hv, hand_h in hvp_workloads(quick):
        data = {k: a for k, a in arrays.items() if k != "v"}

        def directed():
            return run.hess(formula, **arrays, direction={"w": "v"})["w"].value

        def formed():
            return run.hess(formula, **data)["w"].value @ arrays["v"]

        agree = all(np.allclose(f(), hand_hv(), rtol=1e-8, atol=1e-10) for f in (directed, formed, hand_h))
        times = {k: statistics.median(t) * 1000 for k, t in interleaved(
            {"hand": hand_hv, "directed": directed, "formed": formed, "hand_h": hand_h}, repeats).items()}
        peaks = [peak_mb(f) for f in (hand_hv, directed, formed)]
        base = times["hand"]
        print(f"| {label} | {base:.1f} | {times['directed']:.1f} ({times['directed'] / base:.2f}×) "
              f"| {times['formed']:.1f} ({times['formed'] / base:.2f}×) "
              f"| {times['hand_h']:.1f} ({times['hand_h'] / base:.2f}×) "
              f"| {peaks[0]:.1f} | {peaks[1]:.1f} | {peaks[2]:.1f} | {'yes' if agree else 'NO'} |", flush=True)
