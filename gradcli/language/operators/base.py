"""What the operator families share: the precedence of notation, the notation of a function
call and of a norm.  Each operator's numbers are a kernel of `kernels.py` (its record's `impl`),
which the evaluator runs and `--emit` writes out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..expr import make
from .kernels import is_numpy as is_numpy  # (re-exported: blocked.py asks it)
from ..render import latex_function
from ..simplify import const, zeros

if TYPE_CHECKING:
    from ..expr import Expr, Notation
    from ..render import Renderer


# ----------------------------------------------------------------- precedence of notation
ADD, MUL, JUXT, NEG, POW, POST, ATOM = 1, 2, 3, 2, 4, 5, 6


# ----------------------------------------------------------------- notation helpers
def func(uni: str, asc: str | None = None, latex: str | None = None) -> Notation:
    asc = asc or uni
    latex = (latex or latex_function(asc)).replace("{", "{{").replace("}", "}}")
    return {"unicode": (uni + "({0})", ATOM), "ascii": (asc + "({0})", ATOM),
            "latex": (latex + r"\left({0}\right)", ATOM)}


# ----------------------------------------------------------------- adjoint helpers
def norm_notation(uni: str, asc: str, latex: str) -> Notation:
    """‖A‖ with the subscript of its kind (‖A‖₂, ||A||_inf, \\left\\|A\\right\\|_*)."""
    def render(r: Renderer, node: Expr) -> tuple[str, float]:
        inner = r.child(node.args[0], 0)
        if r.style == "unicode":
            return "‖" + inner + "‖" + uni, ATOM
        if r.style == "latex":
            return r"\left\|" + inner + r"\right\|" + latex, ATOM
        return "||" + inner + "||" + asc, ATOM
    return {"custom": render}


def zero_vjp(node: Expr, G: Expr) -> Expr:
    """The adjoint of a piecewise-constant operator's argument: zero."""
    return zeros(node.args[0].ty) if not node.args[0].ty.is_scalar else const(0.0)


def abs_slope(a: Expr) -> Expr:
    """sign(a) as the derivative of |a| (the operator that warns at a zero entry)."""
    return make("abs_slope", a)
