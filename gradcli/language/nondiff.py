"""Points where a function has no derivative: gradcli evaluates a subgradient there and says so.

|x| at x = 0, max at a tie, ‖A‖₂ when the largest singular value is repeated, ‖A‖_* at a
rank-deficient A, the induced norms at a tie between columns (rows): each derivative operator
checks its own point while it is evaluated and calls `warn_nondifferentiable`, so the user gets
a number *and* learns that another subgradient would have been as right.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .expr import Array, Expr, Namespace


def warn_nondifferentiable(where: str, arg: Expr | str, choice: str) -> None:
    """where: a template whose {0} is the argument's text, e.g. "max({0}) at a tie" (arg: the
    argument, or its text already rendered: a dask task has no formula objects)."""
    from .render import render

    text = arg if isinstance(arg, str) else render(arg, "ascii")
    text = text if len(text) <= 50 else text[:47] + "..."
    warnings.warn(f"{where.format(text)}: not differentiable there; the derivative given is {choice}",
                  RuntimeWarning, stacklevel=2)


def tied(xp: Namespace, values: Array, top: Array) -> bool:
    """More than one entry of `values` equals the extreme `top` (to rounding)."""
    scale = float(abs(top)) or 1.0
    return int(xp.count_nonzero(xp.abs(values - top) <= 1e-12 * scale)) > 1
