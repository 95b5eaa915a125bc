"""Linear algebra: trace, determinant, log-determinant, inverse, the matrix norms of numpy's
`norm` (spectral, nuclear, induced 1 and ∞), and the evaluation-only nodes the evaluator rewrites
derivatives into (`congruence` PᵀDP, `adjT` the transposed adjugate).

Derivatives that exist only almost everywhere are written with the helper functions `u1v1(A)`
(u₁v₁ᵀ of the top singular pair) and `polar(A)` (UVᵀ of the thin SVD); evaluated at a point where
the function has no derivative they give a subgradient and warn (`nondiff.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import GradcliError
from ..expr import Op, make, register
from ..nondiff import tied, warn_nondifferentiable
from ..shaperules import _shape_err, same_shape, square_to
from ..shapes import SCALAR, STRICT, divide, fmt, mat, product
from ..simplify import (_simplify_det, _simplify_inv, _simplify_logdet, _simplify_tr, T, eye, fill, matmul, mul, neg, summ,
                        symmetric_as_argument)
from .base import ADD, ATOM, JUXT, MUL, POST, abs_slope, func, is_numpy, norm_notation, products_of_others

if TYPE_CHECKING:
    from ..expr import Array, Expr, Namespace, Params, ShapeContext, ShapeRule, Vjp, Notation, Simplify
    from ..render import Renderer
    from ..shapes import Ty


def _matrix_only(name: str, same: bool = False) -> ShapeRule:
    """A function of a matrix only: a scalar of it, or (same) a matrix of its shape."""
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        if not tys[0].is_matrix:
            raise _shape_err(name, f"needs a matrix, got {tys[0].kind()} {getattr(ctx, 'show', fmt)(tys[0])}")
        return tys[0] if same else SCALAR
    return rule


def _second_derivative(what: str) -> Vjp:
    def vjp(node: Expr, G: Expr) -> Expr:
        raise GradcliError("math", f"the second derivative of {what} is not available (its first "
                                   "derivative is a function of the SVD)")
    return vjp


def _np_logdet(xp: Namespace, node: Expr, a: Array) -> Array:
    sign, value = xp.linalg.slogdet(a)
    if not is_numpy(xp):  # no branch on a value: a lazy array stays lazy
        return xp.where(sign > 0, value, xp.full_like(value, float("nan")))
    if sign <= 0:
        return float("nan")
    return value


def _np_trace(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.trace(a) if is_numpy(xp) else xp.linalg.trace(a)


def _inv_T(a: Expr) -> Expr:
    return T(make("inv", a))


register(Op("tr", square_to("tr", lambda ty: SCALAR), _np_trace,
            vjp=(lambda node, G: mul(G, eye(node.args[0].ty.dims[0])),),
            notation=func("tr", latex=r"\operatorname{tr}"), simplify=_simplify_tr,
            emit="np.trace({0})",
            rule='d tr(A) = ⟨I, dA⟩', names=("tr", "trace")))
register(Op("det", square_to("det", lambda ty: SCALAR), lambda xp, node, a: xp.linalg.det(a),
            vjp=(lambda node, G: mul(mul(G, node), _inv_T(node.args[0])),),
            notation=func("det", latex=r"\det"), simplify=_simplify_det,
            emit="np.linalg.det({0})",
            rule='d det(A) = det(A)·⟨A⁻ᵀ, dA⟩', names=("det",)))
register(Op("logdet", square_to("logdet", lambda ty: SCALAR), _np_logdet,
            vjp=(lambda node, G: mul(G, _inv_T(node.args[0])),),
            notation=func("logdet", latex=r"\log\det"), simplify=_simplify_logdet,
            fails="logdet of a matrix whose determinant is not positive",
            emit="_logdet({0})",
            rule='d log det(A) = ⟨A⁻ᵀ, dA⟩', names=("logdet",), domain="spd"))


def _inv_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    if r.style == "ascii":
        return "inv(" + r.child(node.args[0], 0) + ")", ATOM
    return r.child(node.args[0], POST + 0.5) + ("⁻¹" if r.style == "unicode" else "^{-1}"), POST


def _np_inv(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.linalg.inv(a)


register(Op("inv", square_to("inv", lambda ty: ty), _np_inv,
            vjp=(lambda node, G: neg(matmul(matmul(T(node), G), T(node))),),
            notation={"custom": _inv_notation}, simplify=_simplify_inv,
            fails="inverse of a singular matrix",
            emit="np.linalg.inv({0})",
            rule='d(A⁻¹) = −A⁻¹ dA A⁻¹ and ⟨G, −A⁻¹dA A⁻¹⟩ = ⟨−A⁻ᵀGA⁻ᵀ, dA⟩',
            names=("inv",), symmetric=symmetric_as_argument, domain="spd"))

def _np_congruence(xp: Namespace, node: Expr, p: Array, w: Array) -> Array:
    """Pᵀ diag(w) P.  With w ≥ 0 it is BᵀB for B = diag(√w) P, and a product of a matrix with
    its own transpose is a symmetric rank-k update in BLAS: half the flops of a general product,
    and a result that is symmetric to the last bit.  Otherwise (Pᵀ w) P as written."""
    if is_numpy(xp) and bool(xp.all(w >= 0)):  # (a branch on values: numpy only, not lazily)
        b = xp.sqrt(w)[:, None] * p
        return b.T @ b
    return (p.T * w) @ p


def _congruence_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    p, w = tys
    ctx.same(p.dims[0], w.dims[0])
    return mat(p.dims[1], p.dims[1])


def _congruence_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    p, w = r.child(node.args[0], JUXT), r.child(node.args[1], ADD)
    pt = r.child(T(node.args[0]), JUXT)
    if r.style == "ascii":
        return f"{pt} @ diag({w}) @ {p}", MUL
    diag = r"\operatorname{diag}\left(" + w + r"\right)" if r.style == "latex" else f"diag({w})"
    return f"{pt} {diag} {p}", JUXT


# Evaluation only: the evaluator rewrites a product Pᵀ diag(w) P (the Hessian of every
# generalised linear model, XᵀDX) into this node; formulas never contain it, and `--emit numpy`
# writes the DAG as built, so it has no derivative rule and no numpy source.
register(Op("congruence", _congruence_shape, _np_congruence,
            notation={"custom": _congruence_notation}))

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
    if is_numpy(xp):
        return u[:, keep] @ vt[keep, :]
    return (u * xp.astype(keep, u.dtype)) @ vt  # the array API indexes by a mask only alone


register(Op("u1v1", _matrix_only("u1v1", same=True), _np_u1v1, vjp=(_second_derivative("||A||_2"),),
            notation=func("u1v1"), emit="_u1v1({0})",
            rule="u1v1(A) = u₁v₁ᵀ for the largest singular value σ₁ = u₁ᵀAv₁", names=("u1v1",), listed=False))
register(Op("polar", _matrix_only("polar", same=True), _np_polar, vjp=(_second_derivative("||A||_*"),),
            notation=func("polar"), emit="_polar({0})",
            rule="polar(A) = UVᵀ for the thin SVD A = UΣVᵀ", names=("polar",), listed=False))

def _singular_values(xp: Namespace, a: Array) -> Array:
    return xp.linalg.svd(a, compute_uv=False) if is_numpy(xp) else xp.linalg.svdvals(a)


register(Op("specnorm", _matrix_only("||·||_2"), lambda xp, node, a: _singular_values(xp, a)[0],
            vjp=(lambda node, G: mul(G, make("u1v1", node.args[0])),),
            notation=norm_notation("₂", "_2", "_2"), emit="np.linalg.norm({0}, 2)",
            rule="d‖A‖₂ = ⟨u₁v₁ᵀ, dA⟩ (σ₁ = u₁ᵀAv₁, simple)"))
register(Op("nucnorm", _matrix_only("||·||_*"), lambda xp, node, a: xp.sum(_singular_values(xp, a)),
            vjp=(lambda node, G: mul(G, make("polar", node.args[0])),),
            notation=norm_notation("_*", "_*", "_*"), emit="np.linalg.norm({0}, 'nuc')",
            rule="d‖A‖_* = ⟨UVᵀ, dA⟩ (A = UΣVᵀ of full rank)"))


def _vjp_induced(axis: int) -> Vjp:
    """‖A‖₁ = max(sum(|A|, 0)) (‖A‖_∞ along axis 1): the chain rule through that composition,
    written sign(A) diag(ismax(sum(|A|, 0))) (the sign pattern of the largest column), or
    diag(ismax(sum(|A|, 1))) sign(A) (of the largest row)."""
    def vjp(node: Expr, G: Expr) -> Expr:
        from ..simplify import fn, matmul, summ

        a = node.args[0]
        pick = make("diagm", make("ismax", summ(fn("abs", a), axis)))
        slope = abs_slope(a)
        return mul(G, matmul(slope, pick) if axis == 0 else matmul(pick, slope))
    return vjp


register(Op("opnorm1", _matrix_only("||·||_1"), lambda xp, node, a: xp.max(xp.sum(xp.abs(a), axis=0)),
            vjp=(_vjp_induced(0),), notation=norm_notation("₁", "_1", "_1"),
            emit="np.linalg.norm({0}, 1)",
            rule="‖A‖₁ = max(sum(|A|, 0)): the largest column sum"))
register(Op("opnorminf", _matrix_only("||·||_inf"), lambda xp, node, a: xp.max(xp.sum(xp.abs(a), axis=1)),
            vjp=(_vjp_induced(1),), notation=norm_notation("_∞", "_inf", r"_\infty"),
            emit="np.linalg.norm({0}, np.inf)",
            rule="‖A‖_∞ = max(sum(|A|, 1)): the largest row sum"))


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
    if is_numpy(xp):
        return adjugate_transpose(xp, a)
    u, s, vt = xp.linalg.svd(a)
    return xp.linalg.det(u) * xp.linalg.det(vt) * ((u * products_of_others(xp, s)[None, :]) @ vt)


register(Op("adjT", same_shape, _np_adjugate_transpose,
            notation={"custom": _adj_t_notation}, emit="_adjugate_transpose(np, {0})"))


# ----------------------------------------------------------------- the Kronecker product
# kron(A, B) for A (m, n) and B (p, q) is the (m·p, n·q) block matrix [A_ij B]: its shape is a
# product of dimensions (shapes.DimProduct).  Its adjoints are the two contractions of a
# (m·p, n·q) matrix G against one factor, kron_a(G, B)_ij = Σ_kl G_(ik),(jl) B_kl and
# kron_b(G, A)_kl = Σ_ij G_(ik),(jl) A_ij, each linear in both arguments, so the three close
# under differentiation (Hessians too).
def _two_matrices(name: str, a: Ty, b: Ty, show: Callable[[Ty], str]) -> None:
    if not (a.is_matrix and b.is_matrix):
        raise _shape_err(name, f"needs two matrices, got {a.kind()} {show(a)} and {b.kind()} {show(b)}")


def _kron_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    a, b = tys
    _two_matrices("kron", a, b, getattr(ctx, "show", fmt))
    return mat(product(a.dims[0], b.dims[0]), product(a.dims[1], b.dims[1]))


def _contraction_shape(name: str) -> ShapeRule:
    """kron_a(G, B) is G's rows and columns divided by B's; kron_b(G, A) by A's."""
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        g, f = tys
        show = getattr(ctx, "show", fmt)
        _two_matrices(name, g, f, show)
        rows, cols = (divide(ctx, d, e) for d, e in zip(g.dims, f.dims))
        if rows is None or cols is None:
            raise _shape_err(name, f"needs a matrix whose sizes are multiples of {show(f)}'s, got {show(g)}")
        return mat(rows, cols)
    return rule


def _simplify_contraction(name: str) -> Simplify:
    """A constant G contracts to a constant: kron_a(c𝟙, B) = c·sum(B)𝟙 (∂ sum(A ⊗ B)/∂A)."""
    def hook(args: tuple[Expr, ...], params: Params) -> Expr | None:
        g, f = args
        if g.op != "fill":
            return None
        return fill(mul(g.args[0], summ(f)), _contraction_shape(name)(STRICT, (g.ty, f.ty), ()))
    return hook


def _np_kron(xp: Namespace, node: Expr, a: Array, b: Array) -> Array:
    if is_numpy(xp):
        return xp.kron(a, b)
    (m, n), (p, q) = a.shape, b.shape
    return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (m * p, n * q))


def _np_kron_a(xp: Namespace, node: Expr, g: Array, b: Array) -> Array:
    (p, q), (r, c) = b.shape, g.shape
    return xp.sum(xp.reshape(g, (r // p, p, c // q, q)) * b[None, :, None, :], axis=(1, 3))


def _np_kron_b(xp: Namespace, node: Expr, g: Array, a: Array) -> Array:
    (m, n), (r, c) = a.shape, g.shape
    return xp.sum(xp.reshape(g, (m, r // m, n, c // n)) * a[:, None, :, None], axis=(0, 2))


def _kron_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if r.style == "ascii":
        return f"kron({r.child(a, 0)}, {r.child(b, 0)})", ATOM
    sep = " ⊗ " if r.style == "unicode" else r" \otimes "
    return r.child(a, MUL + 0.5) + sep + r.child(b, MUL + 0.5), MUL


def _call_notation(name: str) -> Notation:
    latex = r"\operatorname{" + name.replace("_", r"\_") + "}"
    latex = latex.replace("{", "{{").replace("}", "}}")
    return {"unicode": (name + "({0}, {1})", ATOM), "ascii": (name + "({0}, {1})", ATOM),
            "latex": (latex + r"\left({0}, {1}\right)", ATOM)}


register(Op("kron", _kron_shape, _np_kron,
            vjp=(lambda node, G: make("kron_a", G, node.args[1]), lambda node, G: make("kron_b", G, node.args[0])),
            notation={"custom": _kron_notation}, emit="np.kron({0}, {1})",
            rule="d(A ⊗ B) = dA ⊗ B + A ⊗ dB and ⟨G, dA ⊗ B⟩ = ⟨kron_a(G, B), dA⟩, ⟨G, A ⊗ dB⟩ = ⟨kron_b(G, A), dB⟩",
            names=("kron",), arity=(2,)))
register(Op("kron_a", _contraction_shape("kron_a"), _np_kron_a,
            vjp=(lambda node, H: make("kron", H, node.args[1]), lambda node, H: make("kron_b", node.args[0], H)),
            notation=_call_notation("kron_a"), simplify=_simplify_contraction("kron_a"),
            emit='np.einsum("ikjl,kl->ij", {0}.reshape(-1, {1}.shape[0], {0}.shape[1] // {1}.shape[1], {1}.shape[1]), {1})',
            rule="kron_a(G, B)ᵢⱼ = Σₖₗ G₍ᵢₖ₎₍ⱼₗ₎ Bₖₗ (linear in G and in B)",
            names=("kron_a",), arity=(2,), listed=False))
register(Op("kron_b", _contraction_shape("kron_b"), _np_kron_b,
            vjp=(lambda node, H: make("kron", node.args[1], H), lambda node, H: make("kron_a", node.args[0], H)),
            notation=_call_notation("kron_b"), simplify=_simplify_contraction("kron_b"),
            emit='np.einsum("ikjl,ij->kl", {0}.reshape({1}.shape[0], -1, {1}.shape[1], {0}.shape[1] // {1}.shape[1]), {1})',
            rule="kron_b(G, A)ₖₗ = Σᵢⱼ G₍ᵢₖ₎₍ⱼₗ₎ Aᵢⱼ (linear in G and in A)",
            names=("kron_b",), arity=(2,), listed=False))
