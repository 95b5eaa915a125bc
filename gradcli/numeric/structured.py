"""Data that contradicts a declared structure (symmetric, spd, diagonal) is refused: the numeric
half of `language/structures.py` for given arrays and data files (drawing such matrices is in
draws.py, checking along their directions in fdcheck.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import GradcliError

# asymmetry (or off-diagonal mass) above this, relative to the largest entry, contradicts a
# declaration: data written out by numpy after S = (A + Aᵀ)/2 is symmetric to the last bit, a
# matrix read from text with 8 digits to about 1e-8
TOLERANCE = 1e-7


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


def project(value: Any, convention: str, axes: tuple[int, int] = (-2, -1)) -> Any:
    """A derivative's value projected on the two axes of a structured matrix (the numeric half
    of language/structures.py's convention for Jacobians and Hessians): sym ½(J + Jᵀ), vech
    J + Jᵀ − J⊙I, diagonal J⊙I, Jᵀ swapping those two axes."""
    import numpy as np

    j = np.asarray(value, dtype=float)
    a, b = axes
    eye = np.eye(j.shape[a]).reshape([j.shape[a] if k in (a % j.ndim, b % j.ndim) else 1 for k in range(j.ndim)])
    if convention == "diagonal":
        return np.where(eye == 1.0, j, 0.0)  # (not j·I: no −0.0 off the diagonal)
    both = j + np.swapaxes(j, a, b)
    return both - j * eye if convention == "vech" else both / 2
