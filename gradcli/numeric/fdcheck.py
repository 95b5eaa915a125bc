"""Central finite differences: the independent check of every numeric derivative (`--check`).

For each coordinate i of x (all of them for small x, a seeded sample of `max_coords` for large
ones), (f(x + hᵢeᵢ) − f(x − hᵢeᵢ)) / 2hᵢ with hᵢ = 1e-6·max(1, |xᵢ|) is compared with the
symbolic derivative.  The error reported is norm-wise relative over the sampled coordinates,
‖fd − g‖∞ / max(‖fd‖∞, ‖g‖∞, floor), so tiny entries do not blow it up; the floor,
1e-4·max(1, ‖f(x)‖∞), is the size below which central differences are only rounding noise
(≈ machine-ε·|f|/h), so an exactly-zero gradient is not reported as a 100% error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..language.expr import Array

    Function = Callable[[dict[str, Array]], Array]  # the values of the symbols → f's value

TOLERANCE = 1e-5


def relative_error(approx: Array, exact: Array, floor: float = 1e-12) -> float:
    """Over the entries where both are finite (others exist only under --allow-nonfinite,
    where the user accepted them); NaN when there is no such entry."""
    import numpy as np

    approx, exact = np.asarray(approx, float), np.asarray(exact, float)
    finite = np.isfinite(approx) & np.isfinite(exact)
    if not finite.all():
        if not finite.any():
            return float("nan")
        approx, exact = approx[finite], exact[finite]
    scale = max(float(np.max(np.abs(approx), initial=0.0)), float(np.max(np.abs(exact), initial=0.0)), floor)
    return float(np.max(np.abs(approx - exact), initial=0.0)) / scale


def finite_difference(f: Function, values: dict[str, Array], name: str, max_coords: int = 64,
                      seed: int = 0, on_step: Callable[[], None] | None = None) -> tuple[Array, Array]:
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
        with np.errstate(all="ignore"):  # inf − inf under --allow-nonfinite: a NaN, skipped later
            out.append((plus - minus) / (2 * h))
        if on_step:
            on_step()
    return idx, np.array(out)


def check_derivative(f: Function, values: dict[str, Array], name: str, derivative: Array,
                     max_coords: int = 64, seed: int = 0, on_step: Callable[[], None] | None = None) -> float:
    """Max relative error between a derivative in base layout (shape(f) + shape(x); a gradient
    has the shape of x) and finite differences of f."""
    import numpy as np

    x_size = np.asarray(values[name]).size
    if x_size == 0 or np.asarray(derivative).size == 0:
        return 0.0  # an empty derivative has no entry that could be wrong
    idx, fd = finite_difference(f, values, name, max_coords=max_coords, seed=seed, on_step=on_step)
    exact = np.asarray(derivative, dtype=float).reshape(-1, x_size)[:, idx].T  # (K, size of f)
    fd = fd.reshape(len(idx), -1)
    return relative_error(fd, exact, noise_floor(f(values)))


def noise_floor(f_value: Array) -> float:
    import numpy as np

    f_value = np.asarray(f_value, dtype=float)
    return 1e-4 * max(1.0, float(np.max(np.abs(f_value[np.isfinite(f_value)]), initial=0.0)))


def distinct_entries(gradient: Array, convention: str) -> Array:
    """The derivative wrt each distinct entry (i ≤ j) as an n×n array (on the last two axes,
    after f's own for a Jacobian) read at i ≤ j: what a central difference along the symmetric
    direction eᵢeⱼᵀ + eⱼeᵢᵀ (eᵢeᵢᵀ on the diagonal) measures.  From (G + Gᵀ)/2 ("sym") that is
    2·∇ᵢⱼ off the diagonal; "vech" is that already."""
    import numpy as np

    g = np.asarray(gradient, dtype=float)
    if convention == "sym":
        return g + np.swapaxes(g, -1, -2) - g * np.eye(g.shape[-1])
    return g


def structured_check(f: Callable[[dict[str, Array]], Array], values: dict[str, Array], name: str,
                     derivative: Array, structure: str, convention: str,
                     on_step: Callable[[], None] | None = None, max_directions: int = 64, seed: int = 0) -> float:
    """Max relative error of a derivative wrt a structured matrix (a gradient; a Jacobian or
    Hessian block in base layout, S's axes last) against central differences along directions
    of that structure (the diagonal ones for diagonal, eᵢeⱼᵀ + eⱼeᵢᵀ for symmetric and spd), so f
    is only ever evaluated on matrices of the declared structure."""
    import numpy as np

    x = np.asarray(values[name], dtype=float)
    n = x.shape[0]
    pairs = [(i, i) for i in range(n)] if structure == "diagonal" else \
        [(i, j) for i in range(n) for j in range(i, n)]
    if len(pairs) > max_directions:
        rng = np.random.default_rng(seed)
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), size=max_directions, replace=False))]
    g = np.asarray(derivative, dtype=float)
    g = g.reshape(g.shape[:-2] + (n, n)) if g.ndim >= 2 else g.reshape(n, n)
    predicted = distinct_entries(g, "vech" if structure == "diagonal" else convention)
    fd, exact = [], []
    for i, j in pairs:
        e = np.zeros_like(x)
        e[i, j] = e[j, i] = 1.0
        h = 1e-6 * max(1.0, abs(x[i, j]))
        plus = np.asarray(f({**values, name: x + h * e}), dtype=float)
        minus = np.asarray(f({**values, name: x - h * e}), dtype=float)
        fd.append(((plus - minus) / (2 * h)).reshape(-1))
        exact.append(predicted[..., i, j].reshape(-1))
        if on_step:
            on_step()
    error = relative_error(np.array(fd), np.array(exact), noise_floor(f(values)))
    if structure == "diagonal":  # and nothing off the diagonal
        off = float(np.max(np.abs(g - g * np.eye(n)), initial=0.0))
        error = max(error, off / max(1e-12, float(np.max(np.abs(g), initial=0.0))))
    return error
