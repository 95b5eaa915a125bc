"""Numbers for declared structure (symmetric, spd, diagonal): drawing them, refusing data that
contradicts them, and the directions `--check` perturbs along.

Why its own module: these are the numeric halves of `language/structures.py`, used by the draws,
the data loader and the finite-difference check alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..errors import GradcliError

if TYPE_CHECKING:
    from ..language.expr import Array

# asymmetry (or off-diagonal mass) above this, relative to the largest entry, contradicts a
# declaration: data written out by numpy after S = (A + Aᵀ)/2 is symmetric to the last bit, a
# matrix read from text with 8 digits to about 1e-8
TOLERANCE = 1e-7


def conform(arr: Array, structure: str) -> Array:
    """A drawn square matrix made to have the declared structure: its symmetric part; for spd,
    AAᵀ/n + I (a symmetric matrix that is not positive definite otherwise); for diagonal, its
    diagonal (kept positive when the draw was)."""
    import numpy as np

    n = arr.shape[0]
    if structure == "diagonal":
        return np.diag(np.diag(arr))
    if structure == "spd" and not _cholesky_ok(arr):
        return arr @ arr.T / n + np.eye(n)
    return (arr + arr.T) / 2


def _cholesky_ok(arr: Array) -> bool:
    import numpy as np

    if not np.allclose(arr, arr.T, rtol=0, atol=TOLERANCE * max(1.0, float(np.max(np.abs(arr), initial=0.0)))):
        return False
    try:
        np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        return False
    return True


def check_structure(name: str, value: Any, structure: str) -> None:
    """A data error (exit 1) naming the symbol when its value contradicts its declaration."""
    import numpy as np

    a = np.asarray(value, dtype=float)
    scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
    if structure == "diagonal":
        off = float(np.max(np.abs(a - np.diag(np.diag(a))), initial=0.0))
        if off > TOLERANCE * scale:
            raise GradcliError("data", f"{name} is declared diagonal but has an off-diagonal entry of size {off:.3g}")
        return
    asym = float(np.max(np.abs(a - a.T), initial=0.0))
    if asym > TOLERANCE * scale:
        raise GradcliError("data", f"{name} is declared {structure} but is not symmetric "
                                   f"(max |{name} − {name}ᵀ| = {asym:.3g})")
    if structure == "spd":
        try:
            np.linalg.cholesky((a + a.T) / 2)
        except np.linalg.LinAlgError:
            raise GradcliError("data", f"{name} is declared spd but is not positive definite "
                                       "(its Cholesky factorisation fails)") from None


def distinct_entries(gradient: Array, convention: str) -> Array:
    """The derivative wrt each distinct entry (i ≤ j) as an n×n array read at i ≤ j: what a
    central difference along the symmetric direction eᵢeⱼᵀ + eⱼeᵢᵀ (eᵢeᵢᵀ on the diagonal)
    measures.  From (G + Gᵀ)/2 ("sym") that is 2·∇ᵢⱼ off the diagonal; "vech" is that already."""
    import numpy as np

    g = np.asarray(gradient, dtype=float)
    if convention == "sym":
        return g + g.T - g * np.eye(g.shape[0])
    return g


def structured_check(f: Callable[[dict[str, Array]], Array], values: dict[str, Array], name: str,
                     gradient: Array, structure: str, convention: str,
                     on_step: Callable[[], None] | None = None, max_directions: int = 64, seed: int = 0) -> float:
    """Max relative error of a gradient wrt a structured matrix against central differences
    along directions of that structure (the diagonal ones for diagonal, eᵢeⱼᵀ + eⱼeᵢᵀ for
    symmetric and spd), so f is only ever evaluated on matrices of the declared structure."""
    import numpy as np

    from .fdcheck import noise_floor, relative_error

    x = np.asarray(values[name], dtype=float)
    n = x.shape[0]
    pairs = [(i, i) for i in range(n)] if structure == "diagonal" else \
        [(i, j) for i in range(n) for j in range(i, n)]
    if len(pairs) > max_directions:
        rng = np.random.default_rng(seed)
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), size=max_directions, replace=False))]
    predicted = distinct_entries(gradient, "vech" if structure == "diagonal" else convention)
    fd, exact = [], []
    for i, j in pairs:
        e = np.zeros_like(x)
        e[i, j] = e[j, i] = 1.0
        h = 1e-6 * max(1.0, abs(x[i, j]))
        plus = float(np.asarray(f({**values, name: x + h * e})))
        minus = float(np.asarray(f({**values, name: x - h * e})))
        fd.append((plus - minus) / (2 * h))
        exact.append(predicted[i, j])
        if on_step:
            on_step()
    error = relative_error(np.array(fd), np.array(exact), noise_floor(f(values)))
    if structure == "diagonal":  # and nothing off the diagonal
        g = np.asarray(gradient, dtype=float)
        off = float(np.max(np.abs(g - np.diag(np.diag(g))), initial=0.0))
        error = max(error, off / max(1e-12, float(np.max(np.abs(g), initial=0.0))))
    return error
