"""What the operator families share: the precedence of notation, the notation of a function
call and of a norm, and the numeric helpers (the evaluator's deferred values, the test for numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..expr import make
from ..render import latex_function
from ..simplify import const, zeros

if TYPE_CHECKING:
    from ..expr import Array, Expr, Impl, Namespace, Notation
    from ..render import Renderer


# ----------------------------------------------------------------- precedence of notation
ADD, MUL, JUXT, NEG, POW, POST, ATOM = 1, 2, 3, 2, 4, 5, 6


# ----------------------------------------------------------------- notation helpers
def func(uni: str, asc: str | None = None, latex: str | None = None) -> Notation:
    asc = asc or uni
    latex = (latex or latex_function(asc)).replace("{", "{{").replace("}", "}}")
    return {"unicode": (uni + "({0})", ATOM), "ascii": (asc + "({0})", ATOM),
            "latex": (latex + r"\left({0}\right)", ATOM)}


# ----------------------------------------------------------------- numeric helpers
class Deferred:
    """A value the evaluator keeps in a cheaper form for the only operators that consume it."""

    __slots__ = ()


class Diag(Deferred):
    """diag(d) kept as its vector d: the evaluator hands this to matmul instead of an n×n matrix
    when every user of a diag(·) node is a matrix product (a 2000×2000 Jacobian of tanh(Wx + b)
    is then d[:, None] * W, never diag(d) @ W)."""

    __slots__ = ("d",)

    def __init__(self, d: Array):
        self.d = d


class Scaled(Deferred):
    """c·z kept unmultiplied when only sums use it: a + (−1)·z is computed as a − z, one pass
    over the data instead of two (M − UVᵀ on a 3000×3000 M)."""

    __slots__ = ("c", "z")

    def __init__(self, c: Array, z: Array):
        self.c, self.z = c, z


def is_numpy(xp: Namespace) -> bool:
    """Whether xp is numpy itself: its fast paths (ufunc.outer, in-place writes, `np.diag`, the
    numpy-1 names) are for numpy only; any other namespace gets the array API standard's spelling
    (through array-api-compat for libraries that need a wrapper)."""
    return getattr(xp, "__name__", "") == "numpy"


def named(np_name: str, api_name: str) -> Impl:
    """An element-wise function numpy spells `np_name` and the array API standard `api_name`
    (numpy 1.x has only the first, array-api-strict only the second)."""
    def impl(xp: Namespace, node: Expr, a: Array) -> Array:
        return getattr(xp, np_name if is_numpy(xp) else api_name)(a)
    return impl


def diag_matrix(xp: Namespace, v: Array) -> Array:
    """diag(v) as an n×n matrix (the array API standard has no `diag`)."""
    if is_numpy(xp):
        return xp.diag(v)
    return v[:, None] * xp.eye(v.shape[0], dtype=v.dtype)


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


def products_of_others(xp: Namespace, flat: Array) -> Array:
    """(∏_{j≠i} v_j)ᵢ of a vector v: prefix times suffix products, with no division."""
    ones = xp.ones((1,), dtype=flat.dtype)
    if is_numpy(xp):  # numpy 1.x has cumprod and concatenate, not the standard's names
        return xp.concatenate([ones, xp.cumprod(flat)[:-1]]) * xp.concatenate([xp.cumprod(flat[::-1])[:-1][::-1], ones])
    before = xp.concat([ones, xp.cumulative_prod(flat)[:-1]])
    after = xp.concat([xp.flip(xp.cumulative_prod(xp.flip(flat)))[1:], ones])
    return before * after
