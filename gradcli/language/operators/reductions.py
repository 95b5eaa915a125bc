"""Reductions to a scalar (sum, mean, logsumexp, the vector norms, max, min, prod) and the
nodes their gradients are written with (softmax, the one-hot `ismax`/`ismin`, `prod_others`).

Derivatives that exist only almost everywhere (max, min, the 1- and ∞-norms) give a subgradient
where the function has no derivative, and warn (`nondiff.py`, README "Decisions").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..expr import NoMatrixForm, Op, make, make_raw, register
from ..nondiff import warn_nondifferentiable
from ..shaperules import _shape_err, same_shape, sum_shape, to_scalar, vector_only
from ..shapes import SCALAR, Ty, col, fmt
from ..simplify import _simplify_sum, T, const, div, fill, fn, like, matmul, mul, sub, summ
from . import kernels as K
from .kernels import Helper
from .base import ATOM, MUL, POW, abs_slope, func, norm_notation, zero_vjp

if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from ..expr import (CallContext, Expr, IndexContext, Indices, MatrixContext, Notation,
                        Params, Row, ShapeContext, ShapeRule)
    from ..render import Renderer
    from ..syntax import Call


# ----------------------------------------------------------------- how a formula calls them
_NORM_HINT = "numpy's norm(a, ord) is written ||a||_ord here (_1, _2, _inf, _F, _*)"


def norm_operator(kind: str, ty: Ty) -> str:
    """The operator numpy's norm(a, ord) computes: for vectors 2 (default), 1, inf; for matrices
    Frobenius (default, F), 2 spectral, * nuclear, 1 and inf induced (largest column/row sum)."""
    if ty.is_matrix:
        return {"": "norm2", "F": "norm2", "2": "specnorm", "*": "nucnorm", "1": "opnorm1",
                "inf": "opnorminf"}[kind]
    return {"1": "norm1", "inf": "norminf"}.get(kind, "norm2")


def _call_norm(b: CallContext, call: Call) -> Expr:
    """norm(a) is ||a||, norm2(a) ||a||_2 and norm1(a) ||a||_1: which operator, the shape says."""
    a = b.build(call.args[0])
    kind = {"norm": "", "norm1": "1", "norm2": "2"}[call.name]
    return b.raw(norm_operator(kind, a.ty), (a,), (), call.col)


def _call_sum(b: CallContext, call: Call) -> Expr:
    """sum(A), and numpy's sum(A, axis) (an integer, or axis=...)."""
    a = b.build(call.args[0])
    return b.raw("sum", (a,), (b.axis(call, a), False), call.col)


def _call_mean(b: CallContext, call: Call) -> Expr:
    """mean(A); numpy's mean(A, axis) is the sum along the axis over that axis' length."""
    a = b.build(call.args[0])
    axis = b.axis(call, a)
    if axis is None:
        return b.raw("mean", (a,), (), call.col)
    total = b.raw("sum", (a,), (axis, False), call.col)
    count = b.raw("numel", (), (Ty((a.ty.dims[axis % a.ty.rank],)),), call.col)
    return b.raw("div", (total, count), (), call.col)


# ----------------------------------------------------------------- matrix and index forms
def _matrix_sum(c: MatrixContext, e: Expr) -> Generator["Expr | Row", Expr, Expr]:
    if e.params != (None, False) or not e.args[0].ty.is_col:
        raise NoMatrixForm
    return T(summ((yield e.args[0]), 0))  # sum(u) = 𝟙ᵀu


def _index_sum(c: IndexContext, e: Expr, idx: Indices) -> list[Any]:
    a = e.args[0]
    axis, keep = e.params
    if axis is None:
        inner = tuple(c.fresh(d) for d in a.ty.dims)
        return c.summed(c.of(a, inner), inner)
    s = c.fresh(a.ty.dims[axis])
    with_s = list(idx)
    if keep:
        with_s[axis] = s
    else:
        with_s.insert(axis, s)
    return c.summed(c.of(a, tuple(with_s)), (s,))


def _vjp_sum(node: Expr, G: Expr) -> Expr:
    a = node.args[0]
    axis, keep = node.params
    if axis is None:
        return fill(G, a.ty)
    return make("expand", G, params=(axis % a.ty.rank, keep, a.ty))


def _sum_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    axis, keep = node.params
    inner = r.child(node.args[0], 0)
    if r.style == "latex":
        return (r"\sum " if axis is None else rf"\sum_{{\mathrm{{axis}}={axis}}} ") + r.child(node.args[0], MUL + 0.5), MUL
    if axis is None:
        return f"sum({inner})", ATOM
    if not keep:
        return f"sum({inner}, {axis})", ATOM
    a = node.args[0]
    if r.style == "ascii":  # numpy's keepdims as a product with ones: 𝟙ᵀA, A𝟙
        if a.ty.is_vector:
            return f"{r.ones((1, a.ty.dims[0]))} @ {r.child(a, MUL + 0.5)}", MUL
        if axis % 2 == 0:
            return f"{r.ones((1, a.ty.dims[0]))} @ {r.child(a, MUL + 0.5)}", MUL
        return f"{r.child(a, MUL)} @ {r.ones((a.ty.dims[1], 1))}", MUL
    return f"sum({inner}, {axis}, keepdims)", ATOM


def _sum_keywords(node: Expr) -> dict[str, int | bool]:
    axis, keep = node.params
    return {} if axis is None else {"axis": axis, "keepdims": keep}


register(Op("sum", sum_shape, K.Call("sum", keywords=_sum_keywords), vjp=(_vjp_sum,), notation={"custom": _sum_notation},
            simplify=_simplify_sum,
            rule='d sum(A) = ⟨𝟙, dA⟩',
            names=("sum",), arity=(1, 2), axis=True, operands=1, call=_call_sum, total=lambda n: n.params == (None, False),
            matrix=_matrix_sum, index=_index_sum))


register(Op("mean", to_scalar, K.Call("mean"),
            vjp=(lambda node, G: G if node.args[0].ty.is_scalar  # the mean of one number is it
                 else fill(div(G, make_raw("numel", (), (node.args[0].ty,))), node.args[0].ty),),
            notation=func("mean"),
            rule='d mean(A) = ⟨𝟙/N, dA⟩',
            names=("mean",), arity=(1, 2), axis=True, operands=1, call=_call_mean, total=True))
register(Op("logsumexp", to_scalar, Helper(K._logsumexp),
            vjp=(lambda node, G: mul(G, fn("exp", sub(node.args[0], node)))
                 if not node.args[0].ty.is_vector else mul(G, fn("softmax", node.args[0])),),
            notation=func("logsumexp"),
            rule='d logsumexp(a) = ⟨softmax(a), da⟩',
            names=("logsumexp",), total=True))


def _vjp_softmax(node: Expr, G: Expr) -> Expr:
    s = node  # d softmax: s ⊙ (G − sᵀG)
    return sub(mul(s, G), mul(matmul(T(like(s, col(s.ty.dims[0]))), like(G, col(s.ty.dims[0]))), s))


register(Op("softmax", vector_only("softmax", lambda ty: ty), Helper(K._softmax),
            vjp=(_vjp_softmax,), notation=func("softmax"),
            rule='d softmax(v) = (diag(s) − ssᵀ) dv with s = softmax(v)',
            names=("softmax",)))


def _norm_notation(sub_u: str, sub_l: str, sq: bool = False) -> Notation:
    def render(r: Renderer, node: Expr) -> tuple[str, float]:
        inner = r.child(node.args[0], 0)
        if r.style == "unicode":
            return "‖" + inner + "‖" + sub_u + ("²" if sq else ""), ATOM if not sq else POW
        if r.style == "latex":
            return r"\left\|" + inner + r"\right\|" + sub_l + ("^2" if sq else ""), ATOM if not sq else POW
        if sub_u == "₁" and node.args[0].ty.is_matrix:  # entry-wise: not the induced ||A||_1
            return "sum(abs(" + inner + "))", ATOM
        return "||" + inner + "||" + ("_1" if sub_u == "₁" else "") + ("^2" if sq else ""), ATOM if not sq else POW
    return {"custom": render}


register(Op("norm2", to_scalar, Helper(K._norm2),
            vjp=(lambda node, G: mul(div(G, node), node.args[0]),),
            notation=_norm_notation("", ""),
            rule='d‖A‖ = ⟨A/‖A‖, dA⟩',
            names=("norm", "norm2"), call=_call_norm, hint=_NORM_HINT, total=True))
register(Op("sqnorm", to_scalar, Helper(K._sqnorm),
            vjp=(lambda node, G: mul(mul(const(2.0), G), node.args[0]),),
            notation=_norm_notation("", "", sq=True),
            rule='d‖A‖² = ⟨2A, dA⟩', total=True))
register(Op("norm1", to_scalar, Helper(K._norm1),
            vjp=(lambda node, G: mul(G, make("abs_slope", node.args[0])),),
            notation=_norm_notation("₁", "_1"),
            rule='d‖A‖₁ = ⟨sign(A), dA⟩',
            names=("norm1",), call=_call_norm, hint=_NORM_HINT))


# ----------------------------------------------------------------- max, min, prod
def _report_tie(name: str) -> Callable[[Expr, int], None]:
    """At a tie the weight is shared equally (the average of the tied entries' one-hot vectors,
    a subgradient), and a warning says so."""
    def report(node: Expr, count: int) -> None:
        warn_nondifferentiable(f"{name}({{0}}) at a tie between {count} entries", node.args[0],
                               "the average over the tied entries (a subgradient)")
    return report


for _name, _kernel, _np in (("ismax", K._ismax, "max"), ("ismin", K._ismin, "min")):
    register(Op(_name, same_shape, Helper(_kernel, report=_report_tie(_np)), vjp=(zero_vjp,),
                notation=func(_name),
                rule=f"d {_name}(a) = 0 (piecewise constant)", names=(_name,), listed=False))

register(Op("max", to_scalar, K.Call("max"),
            vjp=(lambda node, G: mul(G, make("ismax", node.args[0])),),
            notation=func("max", latex=r"\max"),
            rule="d max(a) = ⟨ismax(a), da⟩ (the one-hot vector of the maximum)", names=("max",),
            hint="max(a) is the largest entry of a (numpy's max without an axis; along an axis it is not "
                 "supported); for numpy's maximum(x, 0) write relu(x)", domain="distinct"))
register(Op("min", to_scalar, K.Call("min"),
            vjp=(lambda node, G: mul(G, make("ismin", node.args[0])),),
            notation=func("min", latex=r"\min"),
            rule="d min(a) = ⟨ismin(a), da⟩ (the one-hot vector of the minimum)", names=("min",),
            hint="min(a) is the smallest entry of a (numpy's min without an axis; along an axis it is not "
                 "supported); for numpy's minimum(x, 0) write -relu(-x)", domain="distinct"))


def _prod_others_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a = node.args[0]
    if r.style == "latex":
        return rf"\frac{{\prod {r.child(a, 7)}}}{{{r.child(a, 0)}}}", ATOM
    sep = " / " if (a.ty.is_scalar or r.style == "ascii") else " ⊘ "
    return f"prod({r.child(a, 0)}){sep}{r.child(a, 4)}", 2


# The gradient of prod(a), printed prod(a) / a as textbooks write it, evaluated without the
# division so that it is right where an entry is 0.
register(Op("prod_others", same_shape, Helper(K._prod_others),
            vjp=(lambda node, G: _prod_others_second(node, G),),
            notation={"custom": _prod_others_notation},
            rule="∂prod(a)/∂aᵢ = ∏_{j≠i} aⱼ"))


def _prod_others_second(node: Expr, G: Expr) -> Expr:
    from ..simplify import div, summ, sub

    a = node.args[0]  # ∂/∂a_k of Σᵢ Gᵢ ∏_{j≠i} a_j = Σ_{i≠k} Gᵢ ∏_{j≠i,k} a_j, as (⟨G, p⟩ − G⊙p)/a
    return div(sub(summ(mul(G, node)), mul(G, node)), a)


register(Op("prod", to_scalar, K.Call("prod"),
            vjp=(lambda node, G: mul(G, make("prod_others", node.args[0])),),
            notation=func("prod", latex=r"\prod"),
            rule="d prod(a) = ⟨prod(a) ⊘ a, da⟩", names=("prod",), domain="distinct"))


def _vector_only(name: str) -> ShapeRule:
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        if tys[0].is_matrix:
            raise _shape_err(name, f"needs a vector, got matrix {getattr(ctx, 'show', fmt)(tys[0])}")
        return SCALAR
    return rule


register(Op("norminf", _vector_only("||·||_inf"), Helper(K._norminf),
            vjp=(lambda node, G: mul(mul(G, make("ismax", make("abs", node.args[0]))),
                                     abs_slope(node.args[0])),),
            notation=norm_notation("_∞", "_inf", r"_\infty"),
            rule="‖v‖_∞ = max(|v|)"))
