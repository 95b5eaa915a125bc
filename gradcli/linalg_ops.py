"""Operators beyond the element-wise core: the norms of numpy's `norm`, the reductions max, min
and prod, and the adjugate that keeps det's gradient finite at a singular matrix.

Each record is complete (shape rule, derivative, numeric value, notation, numpy source), as in
`ops.py`.  Derivatives that exist only almost everywhere are written with the helper functions
`u1v1(A)` (u₁v₁ᵀ of the top singular pair), `polar(A)` (UVᵀ of the thin SVD), `ismax(a)` and
`ismin(a)` (where a reaches its maximum, minimum); evaluated at a point where the function has no
derivative they give a subgradient and warn (`nondiff.py`, README "Decisions").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .expr import Op, make, register
from .ops import is_numpy as _is_numpy
from .nondiff import tied, warn_nondifferentiable
from .render import latex_function
from .shaperules import _shape_err, same_shape, to_scalar
from .shapes import SCALAR, fmt
from .simplify import const, mul, zeros

if TYPE_CHECKING:
    from .expr import Array, Expr, Impl, Namespace, Notation, Params, ShapeContext, ShapeRule, Vjp
    from .render import Renderer
    from .shapes import Ty

ATOM = 6


def _fn_notation(name: str, latex: str | None = None) -> Notation:
    latex = latex or latex_function(name)
    latex = latex.replace("{", "{{").replace("}", "}}")
    return {"unicode": (name + "({0})", ATOM), "ascii": (name + "({0})", ATOM),
            "latex": (latex + r"\left({0}\right)", ATOM)}


def _norm_notation(uni: str, asc: str, latex: str) -> Notation:
    def render(r: Renderer, node: Expr) -> tuple[str, float]:
        inner = r.child(node.args[0], 0)
        if r.style == "unicode":
            return "‖" + inner + "‖" + uni, ATOM
        if r.style == "latex":
            return r"\left\|" + inner + r"\right\|" + latex, ATOM
        return "||" + inner + "||" + asc, ATOM
    return {"custom": render}


def _matrix_only(name: str) -> ShapeRule:
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        if not tys[0].is_matrix:
            raise _shape_err(name, f"needs a matrix, got {tys[0].kind()} {getattr(ctx, 'show', fmt)(tys[0])}")
        return SCALAR
    return rule


def _second_derivative(what: str) -> Vjp:
    def vjp(node: Expr, G: Expr) -> Expr:
        from .errors import GradcliError

        raise GradcliError("math", f"the second derivative of {what} is not available (its first "
                                   "derivative is a function of the SVD)")
    return vjp


def _zero_vjp(node: Expr, G: Expr) -> Expr:
    return zeros(node.args[0].ty) if not node.args[0].ty.is_scalar else const(0.0)


def _abs_slope(a: Expr) -> Expr:
    return make("abs_slope", a)


# ----------------------------------------------------------------- max, min, prod
def _np_extreme_mask(sign: float, name: str) -> Impl:
    def impl(xp: Namespace, node: Expr, a: Array) -> Array:
        """Where a reaches its max (min); at a tie the weight is shared equally (the average of
        the tied entries' one-hot vectors, a subgradient) and a warning says so."""
        top = xp.max(a) if sign > 0 else xp.min(a)
        near = xp.abs(a - top) <= 1e-12 * (float(abs(top)) or 1.0)
        mask = near * 1.0 if _is_numpy(xp) else xp.astype(near, a.dtype)
        count = xp.sum(mask)
        if count > 1:
            warn_nondifferentiable(f"{name}({{0}}) at a tie between {int(count)} entries", node.args[0],
                                   "the average over the tied entries (a subgradient)")
        return mask / count
    return impl


for _name, _sign, _np in (("ismax", 1.0, "max"), ("ismin", -1.0, "min")):
    register(Op(_name, same_shape, _np_extreme_mask(_sign, _np), vjp=(_zero_vjp,),
                notation=_fn_notation(_name), emit=f"_{_name}({{0}})",
                rule=f"d {_name}(a) = 0 (piecewise constant)"))

register(Op("max", to_scalar, lambda xp, node, a: xp.max(a),
            vjp=(lambda node, G: mul(G, make("ismax", node.args[0])),),
            notation=_fn_notation("max", r"\max"), emit="np.max({0})",
            rule="d max(a) = ⟨ismax(a), da⟩ (the one-hot vector of the maximum)"))
register(Op("min", to_scalar, lambda xp, node, a: xp.min(a),
            vjp=(lambda node, G: mul(G, make("ismin", node.args[0])),),
            notation=_fn_notation("min", r"\min"), emit="np.min({0})",
            rule="d min(a) = ⟨ismin(a), da⟩ (the one-hot vector of the minimum)"))


def _np_prod_others(xp: Namespace, node: Expr, a: Array) -> Array:
    """∏_{j≠i} a_j for every i, from prefix and suffix products: exact where some a_j = 0, where
    prod(a)/a would divide zero by zero."""
    flat = xp.reshape(a, (-1,)) if getattr(a, "ndim", 0) else xp.reshape(xp.asarray(a, dtype=xp.float64), (-1,))
    out = _products_of_others(xp, flat)
    return xp.reshape(out, node.ty.dims) if node.ty.dims else out[0]


def _products_of_others(xp: Namespace, flat: Array) -> Array:
    """(∏_{j≠i} v_j)ᵢ of a vector v: prefix times suffix products, with no division."""
    ones = xp.ones((1,), dtype=flat.dtype)
    if _is_numpy(xp):  # numpy 1.x has cumprod and concatenate, not the standard's names
        return xp.concatenate([ones, xp.cumprod(flat)[:-1]]) * xp.concatenate([xp.cumprod(flat[::-1])[:-1][::-1], ones])
    before = xp.concat([ones, xp.cumulative_prod(flat)[:-1]])
    after = xp.concat([xp.flip(xp.cumulative_prod(xp.flip(flat)))[1:], ones])
    return before * after


def _prod_others_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a = node.args[0]
    if r.style == "latex":
        return rf"\frac{{\prod {r.child(a, 7)}}}{{{r.child(a, 0)}}}", ATOM
    sep = " / " if (a.ty.is_scalar or r.style == "ascii") else " ⊘ "
    return f"prod({r.child(a, 0)}){sep}{r.child(a, 4)}", 2


# The gradient of prod(a), printed prod(a) / a as textbooks write it, evaluated without the
# division so that it is right where an entry is 0.
register(Op("prod_others", same_shape, _np_prod_others,
            vjp=(lambda node, G: _prod_others_second(node, G),),
            notation={"custom": _prod_others_notation}, emit="_prod_others({0})",
            rule="∂prod(a)/∂aᵢ = ∏_{j≠i} aⱼ"))


def _prod_others_second(node: Expr, G: Expr) -> Expr:
    from .simplify import div, summ, sub

    a = node.args[0]  # ∂/∂a_k of Σᵢ Gᵢ ∏_{j≠i} a_j = Σ_{i≠k} Gᵢ ∏_{j≠i,k} a_j, as (⟨G, p⟩ − G⊙p)/a
    return div(sub(summ(mul(G, node)), mul(G, node)), a)


register(Op("prod", to_scalar, lambda xp, node, a: xp.prod(a),
            vjp=(lambda node, G: mul(G, make("prod_others", node.args[0])),),
            notation=_fn_notation("prod", r"\prod"), emit="np.prod({0})",
            rule="d prod(a) = ⟨prod(a) ⊘ a, da⟩"))


# ----------------------------------------------------------------- norms (numpy's `norm`)
def _np_u1v1(xp: Namespace, node: Expr, a: Array) -> Array:
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    if s.shape[0] > 1 and tied(xp, s, s[0]):
        warn_nondifferentiable("||{0}||_2 where the largest singular value is repeated", node.args[0],
                               "u1v1 of one top singular pair (a subgradient)")
    return u[:, :1] @ vt[:1, :]


def _np_polar(xp: Namespace, node: Expr, a: Array) -> Array:
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    keep = s > max(a.shape) * 2.220446049250313e-16 * (float(s[0]) if s.shape[0] else 0.0)
    if not bool(xp.all(keep)):
        warn_nondifferentiable("||{0}||_* where the matrix is rank-deficient", node.args[0],
                               "U V' over the nonzero singular values (a subgradient)")
    if bool(xp.all(keep)):
        return u @ vt
    if _is_numpy(xp):
        return u[:, keep] @ vt[keep, :]
    return (u * xp.astype(keep, u.dtype)) @ vt  # the array API indexes by a mask only alone


register(Op("u1v1", same_shape, _np_u1v1, vjp=(_second_derivative("||A||_2"),),
            notation=_fn_notation("u1v1"), emit="_u1v1({0})",
            rule="u1v1(A) = u₁v₁ᵀ for the largest singular value σ₁ = u₁ᵀAv₁"))
register(Op("polar", same_shape, _np_polar, vjp=(_second_derivative("||A||_*"),),
            notation=_fn_notation("polar"), emit="_polar({0})",
            rule="polar(A) = UVᵀ for the thin SVD A = UΣVᵀ"))

def _singular_values(xp: Namespace, a: Array) -> Array:
    return xp.linalg.svd(a, compute_uv=False) if _is_numpy(xp) else xp.linalg.svdvals(a)


register(Op("specnorm", _matrix_only("||·||_2"), lambda xp, node, a: _singular_values(xp, a)[0],
            vjp=(lambda node, G: mul(G, make("u1v1", node.args[0])),),
            notation=_norm_notation("₂", "_2", "_2"), emit="np.linalg.norm({0}, 2)",
            rule="d‖A‖₂ = ⟨u₁v₁ᵀ, dA⟩ (σ₁ = u₁ᵀAv₁, simple)"))
register(Op("nucnorm", _matrix_only("||·||_*"), lambda xp, node, a: xp.sum(_singular_values(xp, a)),
            vjp=(lambda node, G: mul(G, make("polar", node.args[0])),),
            notation=_norm_notation("_*", "_*", "_*"), emit="np.linalg.norm({0}, 'nuc')",
            rule="d‖A‖_* = ⟨UVᵀ, dA⟩ (A = UΣVᵀ of full rank)"))


def _vjp_induced(axis: int) -> Vjp:
    """‖A‖₁ = max(sum(|A|, 0)) (‖A‖_∞ along axis 1): the chain rule through that composition,
    written sign(A) diag(ismax(sum(|A|, 0))) (the sign pattern of the largest column), or
    diag(ismax(sum(|A|, 1))) sign(A) (of the largest row)."""
    def vjp(node: Expr, G: Expr) -> Expr:
        from .simplify import fn, matmul, summ

        a = node.args[0]
        pick = make("diagm", make("ismax", summ(fn("abs", a), axis)))
        slope = _abs_slope(a)
        return mul(G, matmul(slope, pick) if axis == 0 else matmul(pick, slope))
    return vjp


register(Op("opnorm1", _matrix_only("||·||_1"), lambda xp, node, a: xp.max(xp.sum(xp.abs(a), axis=0)),
            vjp=(_vjp_induced(0),), notation=_norm_notation("₁", "_1", "_1"),
            emit="np.linalg.norm({0}, 1)",
            rule="‖A‖₁ = max(sum(|A|, 0)): the largest column sum"))
register(Op("opnorminf", _matrix_only("||·||_inf"), lambda xp, node, a: xp.max(xp.sum(xp.abs(a), axis=1)),
            vjp=(_vjp_induced(1),), notation=_norm_notation("_∞", "_inf", r"_\infty"),
            emit="np.linalg.norm({0}, np.inf)",
            rule="‖A‖_∞ = max(sum(|A|, 1)): the largest row sum"))


def _vector_only(name: str) -> ShapeRule:
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        if tys[0].is_matrix:
            raise _shape_err(name, f"needs a vector, got matrix {getattr(ctx, 'show', fmt)(tys[0])}")
        return SCALAR
    return rule


register(Op("norminf", _vector_only("||·||_inf"), lambda xp, node, a: xp.max(xp.abs(a)),
            vjp=(lambda node, G: mul(mul(G, make("ismax", make("abs", node.args[0]))),
                                     _abs_slope(node.args[0])),),
            notation=_norm_notation("_∞", "_inf", r"_\infty"), emit="np.max(np.abs({0}))",
            rule="‖v‖_∞ = max(|v|)"))


# ----------------------------------------------------------------- det's gradient at a singular X
if TYPE_CHECKING:  # its signature: the definition has no annotations, because --emit copies its source
    def adjugate_transpose(xp: Namespace, a: Array) -> Array: ...
else:
    def adjugate_transpose(xp, a):
        """adj(X)ᵀ = det(X)·X⁻ᵀ from the SVD X = U diag(s) Vᵀ: det(U)det(V)·U diag(∏_{j≠i} s_j) Vᵀ.
        The products leave each singular value out instead of dividing by it, so the result is exact
        at rank n − 1 (and 0 below), where X⁻ᵀ does not exist.  Self-contained (only `xp`): the
        evaluator runs it, and `--emit numpy` copies its source into the generated module."""
        u, s, vt = xp.linalg.svd(a)
        ones = xp.ones((1,))
        others = xp.concatenate([ones, xp.cumprod(s)[:-1]]) * xp.concatenate([xp.cumprod(s[::-1])[:-1][::-1], ones])
        sign = xp.linalg.det(u) * xp.linalg.det(vt)
        return sign * ((u * others[None, :]) @ vt)


def _adj_t_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    x = node.args[0]
    return r.child(mul(make("det", x), make("T", make("inv", x))), 0), 2


# Evaluation only, like `congruence`: the evaluator rewrites det(X)ᵖ·X⁻ᵀ (p ≥ 1) in a derivative
# into det(X)ᵖ⁻¹·adjT(X); formulas never contain it, and it prints as det(X) X⁻ᵀ.
def _np_adjugate_transpose(xp: Namespace, node: Expr, a: Array) -> Array:
    if _is_numpy(xp):
        return adjugate_transpose(xp, a)
    u, s, vt = xp.linalg.svd(a)
    return xp.linalg.det(u) * xp.linalg.det(vt) * ((u * _products_of_others(xp, s)[None, :]) @ vt)


register(Op("adjT", same_shape, _np_adjugate_transpose,
            notation={"custom": _adj_t_notation}, emit="_adjugate_transpose(np, {0})"))
