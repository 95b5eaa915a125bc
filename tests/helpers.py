"""Shared test helpers: run the pipeline on random data and compare with finite differences."""

from __future__ import annotations

import importlib.util

import numpy as np

import gradcli
from gradcli.numeric.fdcheck import check_derivative


def random_data(problem, seed: int = 0, positive: bool = False, scale: float = 1.0,
                shift_square: bool = True) -> dict:
    """Values for every symbol of a problem with numeric shapes; square matrices well conditioned."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, info in problem.symbols.items():
        dims = info.shape
        if positive:
            arr = rng.uniform(0.5, 1.5, size=dims)
        else:
            arr = scale * rng.normal(size=dims)
        if shift_square and len(dims) == 2 and dims[0] == dims[1]:
            arr = arr + dims[0] * np.eye(dims[0])
        out[name] = np.asarray(arr, dtype=float)
    return out


def fd_errors(text: str, shapes: dict | None = None, positive: bool = False, seed: int = 0,
              fns: dict | None = None, **data_kw) -> dict:
    """{wrt: max relative error} between gradcli's gradients and central differences."""
    p0 = gradcli.analyze(text, shapes=shapes)
    values = random_data(p0, seed, positive, **data_kw)
    problem = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    compiled = problem.compile(fns)

    def f(vals):
        from gradcli.numeric.evaluate import compile_graph

        return compile_graph([problem.expr], fns).run(vals)[0]

    _, grads = compiled(**values)
    return {name: check_derivative(f, values, name, g) for name, g in grads.items()}


def grad_text(text: str, style: str = "unicode", **kw) -> list[str]:
    return [d.text(style) for d in gradcli.analyze(text, **kw).derivatives()]


def load_module(source: str, tmp_path, name: str = "generated"):
    """Import generated code (--emit) from a file, as a user would."""
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fd_jacobian(f, vals, name, h=1e-6):
    """Central differences of f (numpy, taking the dict of values) wrt vals[name]: an array of
    shape f.shape + x.shape, the oracle of the Jacobian tests (numpy only, no gradcli)."""
    x = vals[name]
    f0 = np.asarray(f(vals))
    out = np.zeros(f0.shape + x.shape)
    for k in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[k] = h
        out[(...,) + k] = (np.asarray(f({**vals, name: x + e})) - np.asarray(f({**vals, name: x - e}))) / (2 * h)
    return out
