"""The commutation matrix K_{m,n}: the (m·n, m·n) permutation with K_{m,n} vec(X) = vec(Xᵀ) for
an (m, n) matrix X (Magnus & Neudecker).

Why an operator: the vec layout (`--layout vec`) writes the derivative of a matrix function in
Kronecker form, and a transpose inside the function (`X'@X`) is a K there; a formula may also
call it, `commutation(m, n)`, so every printed Kronecker form reads back as gradcli syntax.  Like
`eye` it is made from dimensions alone, a constant: its derivative is zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import shape_error
from ..expr import Op, register
from ..shapes import Ty, mat, product
from . import kernels as K
from .base import ATOM
from .kernels import Helper, Size

if TYPE_CHECKING:
    from ..expr import CallContext, Expr, Params, ShapeContext
    from ..render import Renderer
    from ..syntax import Call

_SUBSCRIPTS = str.maketrans("0123456789aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


def _shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    m, n = params
    return mat(product(m, n), product(m, n))


def _call(b: CallContext, call: Call) -> Expr:
    """commutation(m, n): two dimensions, no operand."""
    if len(call.args) != 2:
        raise shape_error("commutation takes two dimensions: commutation(m, n)", call.col)
    m, n = (b.dim("commutation", a) for a in call.args)
    return b.raw("commutation", (), (m, n), call.col)


def _notation(r: Renderer, node: Expr) -> tuple[str, float]:
    """K_{m,n}: `commutation(m, n)` in ASCII (gradcli syntax), K with subscripts otherwise."""
    m, n = (str(d) for d in node.params)
    if r.style == "ascii":
        return f"commutation({m}, {n})", ATOM
    if r.style == "latex":
        return f"K_{{{m},{n}}}", ATOM
    sub = f"{m},{n}".translate(_SUBSCRIPTS)
    if any(ch.isascii() and ch != "," for ch in sub):  # a name with no subscript letters
        return f"K[{m},{n}]", ATOM
    return "K" + sub, ATOM


register(Op("commutation", _shape,
            Helper(K._commutation, settings=lambda n: (Size(n.params[0]), Size(n.params[1]))),
            notation={"custom": _notation},
            rule="K_{m,n} is a constant: d K = 0",
            names=("commutation",), arity=(2,), operands=0, call=_call, trivial=True,
            hint="commutation(m, n): the (m·n, m·n) matrix with K vec(X) = vec(Xᵀ) for X (m, n)"))
