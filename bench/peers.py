"""The tools people use instead of gradcli, on the same workloads: autograd, jax, torch.

Each workload's loss is written once against a small array namespace, and each peer
differentiates it its own way (value_and_grad, hessian, jacobian).  A peer that is not installed
is skipped.  Everything runs in float64 on the CPU.
"""

from __future__ import annotations

import numpy as np


def available(name: str) -> bool:
    try:
        __import__(name)
        return True
    except Exception:
        return False


class TorchNS:
    """The few numpy names the losses use, on torch tensors."""

    def __init__(self):
        import torch

        self.t = torch

    def sum(self, a):
        return self.t.sum(a)

    def tanh(self, a):
        return self.t.tanh(a)

    def logaddexp(self, a, b):
        return self.t.logaddexp(self.t.as_tensor(a, dtype=self.t.float64), b)

    def logdet(self, a):
        return self.t.linalg.slogdet(a)[1]

    def trace(self, a):
        return self.t.trace(a)


class NumpyNS:
    def __init__(self, mod, logdet):
        self.m = mod
        self.logdet = logdet

    def __getattr__(self, name):
        return getattr(self.m, name)


# the losses: (xp, wrt values..., fixed arrays) -> scalar (or vector for the Jacobian)
def least_squares(xp, theta, X, y):
    r = y - X @ theta
    return xp.sum(r * r)


def logistic(xp, w, X, y, lam):
    return xp.sum(xp.logaddexp(0.0, -y * (X @ w))) + lam * xp.sum(w * w)


def net(xp, W1, W2, X, Y):
    R = xp.tanh(X @ W1) @ W2 - Y
    return 0.5 * xp.sum(R * R)


def factorization(xp, U, V, M):
    R = M - U @ V.T
    return xp.sum(R * R)


def logdet_trace(xp, X, A, B):
    return xp.logdet(X) + xp.trace(A @ X @ B)


def logistic_plain(xp, w, X, y):
    return xp.sum(xp.logaddexp(0.0, -y * (X @ w)))


def tanh_layer(xp, x, W, b):
    return xp.tanh(W @ x + b)


def tanh_w(xp, W, x, b):
    return xp.tanh(W @ x + b)


LOSSES = {"least squares": (least_squares, ["theta"], ["X", "y"]),
          "logistic + ridge": (logistic, ["w"], ["X", "y", "lam"]),
          "2-layer tanh net": (net, ["W1", "W2"], ["X", "Y"]),
          "matrix factorisation": (factorization, ["U", "V"], ["M"]),
          "logdet(X) + tr(AXB)": (logdet_trace, ["X"], ["A", "B"]),
          "Hessian of logistic loss": (logistic_plain, ["w"], ["X", "y"]),
          "Jacobian of tanh(Wx + b) wrt x": (tanh_layer, ["x"], ["W", "b"]),
          "Jacobian of tanh(Wx + b) wrt W": (tanh_w, ["W"], ["x", "b"])}


def peer_functions(key: str, arrays: dict, mode: str) -> dict:
    """{peer name: zero-argument function} computing the value and derivative(s)."""
    loss, wrt, fixed = LOSSES[key]
    out = {}
    if available("autograd"):
        import autograd
        import autograd.numpy as anp

        ns_ag = NumpyNS(anp, lambda a: anp.linalg.slogdet(a)[1])

        def f_ag(*ws):
            return loss(ns_ag, *ws, *[arrays[k] for k in fixed])
        args = [arrays[k] for k in wrt]
        if mode == "grad":
            grad = autograd.grad(f_ag, list(range(len(wrt))))
            out["autograd"] = lambda: (f_ag(*args), grad(*args))
        elif mode == "hessian":
            hess = autograd.hessian(f_ag)
            out["autograd"] = lambda: (f_ag(*args), hess(*args))
        else:
            jac = autograd.jacobian(f_ag)
            out["autograd"] = lambda: (f_ag(*args), jac(*args))
    if available("jax"):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        ns_jx = NumpyNS(jnp, lambda a: jnp.linalg.slogdet(a)[1])
        fixed_vals = [jnp.asarray(arrays[k]) for k in fixed]

        def f_jx(*ws):
            return loss(ns_jx, *ws, *fixed_vals)
        jargs = [jnp.asarray(arrays[k]) for k in wrt]
        if mode == "grad":
            fn = jax.jit(jax.value_and_grad(f_jx, argnums=tuple(range(len(wrt)))))
        elif mode == "hessian":
            fn = jax.jit(lambda *ws: (f_jx(*ws), jax.hessian(f_jx)(*ws)))
        else:
            fn = jax.jit(lambda *ws: (f_jx(*ws), jax.jacrev(f_jx)(*ws)))
        out["jax"] = lambda: jax.block_until_ready(fn(*jargs))
    if available("torch"):
        import torch

        ns_t = TorchNS()
        fixed_t = [torch.as_tensor(np.asarray(arrays[k], dtype=float)) for k in fixed]
        w0 = [torch.as_tensor(np.asarray(arrays[k], dtype=float)) for k in wrt]

        def f_t(*ws):
            return loss(ns_t, *ws, *fixed_t)
        if mode == "grad":
            def run_torch():
                ws = [w.clone().requires_grad_(True) for w in w0]
                value = f_t(*ws)
                grads = torch.autograd.grad(value, ws)
                return value.detach(), grads
        elif mode == "hessian":
            def run_torch():
                return f_t(*w0), torch.autograd.functional.hessian(f_t, tuple(w0))
        else:
            def run_torch():
                return f_t(*w0), torch.autograd.functional.jacobian(f_t, tuple(w0))
        out["torch"] = run_torch
    return out
