"""Central finite differences: the independent check of every numeric derivative (`--check`).

For each coordinate i of x (all of them for small x, a seeded sample of `max_coords` for large
ones), (f(x + hᵢeᵢ) − f(x − hᵢeᵢ)) / 2hᵢ with hᵢ = 1e-6·max(1, |xᵢ|) is compared with the
symbolic derivative.  The error reported is norm-wise relative over the sampled coordinates,
‖fd − g‖∞ / max(‖fd‖∞, ‖g‖∞, 1e-12), so tiny entries do not blow it up.
"""

from __future__ import annotations

from typing import Any, Callable

TOLERANCE = 1e-5


def relative_error(approx, exact) -> float:
    import numpy as np

    approx, exact = np.asarray(approx, float), np.asarray(exact, float)
    scale = max(float(np.max(np.abs(approx), initial=0.0)), float(np.max(np.abs(exact), initial=0.0)), 1e-12)
    return float(np.max(np.abs(approx - exact), initial=0.0)) / scale


def finite_difference(f: Callable[[dict], Any], values: dict, name: str, max_coords: int = 64,
                      seed: int = 0, on_step: Callable[[], None] | None = None):
    """(indices, fd) where fd[k] approximates ∂f/∂x at flat index indices[k] (f may be an array:
    then fd[k] has f's shape)."""
    import numpy as np

    x = np.asarray(values[name], dtype=float)
    n = x.size
    rng = np.random.default_rng(seed)
    idx = np.arange(n) if n <= max_coords else np.sort(rng.choice(n, size=max_coords, replace=False))
    out = []
    for i in idx:
        flat = x.reshape(-1).copy()
        h = 1e-6 * max(1.0, abs(flat[i]))
        flat[i] += h
        plus = np.array(f({**values, name: flat.reshape(x.shape)}), dtype=float)  # a copy: f may return x
        flat[i] -= 2 * h
        minus = np.asarray(f({**values, name: flat.reshape(x.shape)}), dtype=float)
        out.append((plus - minus) / (2 * h))
        if on_step:
            on_step()
    return idx, np.array(out)


def check_gradient(f: Callable[[dict], Any], values: dict, name: str, gradient, **kw) -> float:
    """Max relative error between a gradient (shape of x) and finite differences of scalar f."""
    import numpy as np

    idx, fd = finite_difference(f, values, name, **kw)
    exact = np.asarray(gradient, dtype=float).reshape(-1)[idx]
    return relative_error(fd, exact)
