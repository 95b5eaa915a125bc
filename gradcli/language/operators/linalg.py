"""Linear algebra: trace, determinant, log-determinant, inverse, the matrix norms of numpy's
`norm` (spectral, nuclear, induced 1 and ∞), and the evaluation-only nodes the evaluator rewrites
derivatives into (`congruence` PᵀDP, `adjT` the transposed adjugate).

Derivatives that exist only almost everywhere are written with the helper functions `u1v1(A)`
(u₁v₁ᵀ of the top singular pair) and `polar(A)` (UVᵀ of the thin SVD); evaluated at a point where
the function has no derivative they give a subgradient and warn (`nondiff.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ...errors import GradcliError
from ..expr import NoMatrixForm, Op, make, register
from . import kernels as K
from .kernels import Helper
from ..nondiff import warn_nondifferentiable
from ..shaperules import _shape_err, same_shape, square_to
from ..shapes import SCALAR, STRICT, Ty, divide, fmt, mat, product
from ..simplify import (_simplify_det, _simplify_inv, _simplify_logdet, _simplify_tr, T, eye, fill, matmul, mul, neg, summ,
                        symmetric_as_argument)
from .base import ADD, ATOM, JUXT, MUL, POST, abs_slope, func, norm_notation

if TYPE_CHECKING:
    from typing import Any

    from collections.abc import Generator

    from ..expr import (Expr, IndexContext, Indices, IndexRule, KroneckerContext, MatrixContext, MatrixRule, Notation,
                        Params, Row, ShapeContext, ShapeRule, Simplify, Vjp)
    from ..shapes import Dim

    from ..render import Renderer

    Terms = list[Any]
    MatrixSteps = Generator["Expr | Row", Expr, Expr]


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


def _inv_T(a: Expr) -> Expr:
    return T(make("inv", a))


register(Op("tr", square_to("tr", lambda ty: SCALAR), Helper(K._trace),
            vjp=(lambda node, G: mul(G, eye(node.args[0].ty.dims[0])),),
            notation=func("tr", latex=r"\operatorname{tr}"), simplify=_simplify_tr,
            rule='d tr(A) = ⟨I, dA⟩', names=("tr", "trace")))
register(Op("det", square_to("det", lambda ty: SCALAR), K.Call("linalg.det"),
            vjp=(lambda node, G: mul(mul(G, node), _inv_T(node.args[0])),),
            notation=func("det", latex=r"\det"), simplify=_simplify_det,
            rule='d det(A) = det(A)·⟨A⁻ᵀ, dA⟩', names=("det",)))
register(Op("logdet", square_to("logdet", lambda ty: SCALAR), Helper(K._logdet),
            vjp=(lambda node, G: mul(G, _inv_T(node.args[0])),),
            notation=func("logdet", latex=r"\log\det"), simplify=_simplify_logdet,
            fails="logdet of a matrix whose determinant is not positive",
            rule='d log det(A) = ⟨A⁻ᵀ, dA⟩', names=("logdet",), domain="spd"))


def _inv_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    if r.style == "ascii":
        return "inv(" + r.child(node.args[0], 0) + ")", ATOM
    return r.child(node.args[0], POST + 0.5) + ("⁻¹" if r.style == "unicode" else "^{-1}"), POST


def _kronecker_inv(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(A⁻¹) = −(A⁻ᵀ ⊗ A⁻¹) d vec(A)."""
    return neg(c.times(c.kron(T(e), e), c.of(e.args[0])))


register(Op("inv", square_to("inv", lambda ty: ty), K.Call("linalg.inv"),
            vjp=(lambda node, G: neg(matmul(matmul(T(node), G), T(node))),),
            notation={"custom": _inv_notation}, simplify=_simplify_inv,
            fails="inverse of a singular matrix",
            rule='d(A⁻¹) = −A⁻¹ dA A⁻¹ and ⟨G, −A⁻¹dA A⁻¹⟩ = ⟨−A⁻ᵀGA⁻ᵀ, dA⟩',
            names=("inv",), symmetric=symmetric_as_argument, domain="spd", kronecker=_kronecker_inv))

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
# generalised linear model, XᵀDX) into this node (`evaluate.prepare`, which --emit shares);
# formulas never contain it, so it has no derivative rule.
register(Op("congruence", _congruence_shape, Helper(K._congruence),
            notation={"custom": _congruence_notation}))

# ----------------------------------------------------------------- norms (numpy's `norm`)
def _report_repeated_top(node: Expr) -> None:
    warn_nondifferentiable("||{0}||_2 where the largest singular value is repeated", node.args[0],
                           "u1v1 of one top singular pair (a subgradient)")


def _report_rank_deficient(node: Expr) -> None:
    warn_nondifferentiable("||{0}||_* where the matrix is rank-deficient", node.args[0],
                           "U V' over the nonzero singular values (a subgradient)")


register(Op("u1v1", _matrix_only("u1v1", same=True), Helper(K._u1v1, report=_report_repeated_top), vjp=(_second_derivative("||A||_2"),),
            notation=func("u1v1"),
            rule="u1v1(A) = u₁v₁ᵀ for the largest singular value σ₁ = u₁ᵀAv₁", names=("u1v1",), listed=False))
register(Op("polar", _matrix_only("polar", same=True), Helper(K._polar, report=_report_rank_deficient), vjp=(_second_derivative("||A||_*"),),
            notation=func("polar"),
            rule="polar(A) = UVᵀ for the thin SVD A = UΣVᵀ", names=("polar",), listed=False))

register(Op("specnorm", _matrix_only("||·||_2"), Helper(K._specnorm),
            vjp=(lambda node, G: mul(G, make("u1v1", node.args[0])),),
            notation=norm_notation("₂", "_2", "_2"),
            rule="d‖A‖₂ = ⟨u₁v₁ᵀ, dA⟩ (σ₁ = u₁ᵀAv₁, simple)"))
register(Op("nucnorm", _matrix_only("||·||_*"), Helper(K._nucnorm),
            vjp=(lambda node, G: mul(G, make("polar", node.args[0])),),
            notation=norm_notation("_*", "_*", "_*"),
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


register(Op("opnorm1", _matrix_only("||·||_1"), Helper(K._column_sums_max),
            vjp=(_vjp_induced(0),), notation=norm_notation("₁", "_1", "_1"),
            rule="‖A‖₁ = max(sum(|A|, 0)): the largest column sum"))
register(Op("opnorminf", _matrix_only("||·||_inf"), Helper(K._row_sums_max),
            vjp=(_vjp_induced(1),), notation=norm_notation("_∞", "_inf", r"_\infty"),
            rule="‖A‖_∞ = max(sum(|A|, 1)): the largest row sum"))


# ----------------------------------------------------------------- det's gradient at a singular X
def _adj_t_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    x = node.args[0]
    return r.child(mul(make("det", x), make("T", make("inv", x))), 0), 2


# Evaluation only, like `congruence`: the evaluator rewrites det(X)ᵖ·X⁻ᵀ (p ≥ 1) in a derivative
# into det(X)ᵖ⁻¹·adjT(X); formulas never contain it, and it prints as det(X) X⁻ᵀ.
register(Op("adjT", same_shape, Helper(K._adjugate_transpose),
            notation={"custom": _adj_t_notation}))


# ----------------------------------------------------------------- the Kronecker product
# kron(A, B) for A (m, n) and B (p, q) is the (m·p, n·q) block matrix [A_ij B]: its shape is a
# product of dimensions (shapes.DimProduct).  Its adjoints are the two contractions of a
# (m·p, n·q) matrix G against one factor, kron_a(G, B)_ij = Σ_kl G_(ik),(jl) B_kl and
# kron_b(G, A)_kl = Σ_ij G_(ik),(jl) A_ij, each linear in both arguments, so the three close
# under differentiation (Hessians too).
# Of two vectors (both columns or both rows) kron is the vector of length m·p, as numpy's np.kron
# of 1-D arrays.  A vector with a matrix is refused: numpy reads a 1-D array as a row there,
# gradcli's vectors are columns, and either reading would surprise someone.
def _two_matrices(name: str, a: Ty, b: Ty, show: Callable[[Ty], str]) -> None:
    if a.is_vector and b.is_vector and a.row == b.row:
        return
    if a.is_vector and b.is_vector:
        raise _shape_err(name, f"needs two vectors of one orientation, got {a.kind()} {show(a)} and "
                               f"{b.kind()} {show(b)} (u ⊗ vᵀ is the outer product u@v')")
    if (a.is_vector or b.is_vector) and not (a.is_scalar or b.is_scalar):
        raise _shape_err(name, f"of a vector and a matrix is ambiguous (numpy's np.kron reads a 1-D array as a "
                               f"row, gradcli's vectors are columns), got {a.kind()} {show(a)} and {b.kind()} "
                               f"{show(b)}: write the vector as a matrix, unvec(u, 1) (a row) or unvec(u, m) "
                               f"(a column)")
    if not (a.is_matrix and b.is_matrix):
        raise _shape_err(name, f"needs two matrices or two vectors, got {a.kind()} {show(a)} and {b.kind()} {show(b)}")


def _kron_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    a, b = tys
    _two_matrices("kron", a, b, getattr(ctx, "show", fmt))
    return Ty(tuple(product(d, e) for d, e in zip(a.dims, b.dims)), a.row)


def _index_kron(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    """kron(A, B)[(i,k), (j,l)] = A[i,j] B[k,l]: each index of the product is a pair (A's, B's)."""
    a, b = e.args
    ia, ib, deltas = _pairs(c, idx, a.ty.dims, b.ty.dims)
    return c.summed(c.times(deltas, c.times(c.of(a, ia), c.of(b, ib))), ia + ib)


def _index_contraction(first: bool) -> IndexRule:
    """kron_a(G, B)[i,j] = Σ_kl G[(i,k),(j,l)] B[k,l]; kron_b(G, A)[k,l] = Σ_ij G[(i,k),(j,l)] A[i,j]."""
    def rule(c: IndexContext, e: Expr, idx: Indices) -> Terms:
        g, f = e.args
        whole = tuple(c.fresh(d) for d in g.ty.dims)
        inner = tuple(c.fresh(d) for d in f.ty.dims)
        pairs = c.delta(idx[0], idx[0])  # the product's neutral term (δ(i,i) = 1)
        for w, i, k, di, dk in zip(whole, idx, inner, e.ty.dims, f.ty.dims):
            pairs = c.times(pairs, c.composite(w, i, k, di, dk) if first else c.composite(w, k, i, dk, di))
        return c.summed(c.times(pairs, c.times(c.of(g, whole), c.of(f, inner))), whole + inner)
    return rule


def _matrix_kron(c: MatrixContext, e: Expr) -> MatrixSteps:
    """Of two columns, one linear in v: u ⊗ w = (I ⊗ w) u = (u ⊗ I) w, the constant vector as
    the (m, 1) matrix it stands for."""
    a, b = e.args
    if not (a.ty.is_col and b.ty.is_col) or c.live(a) == c.live(b):
        raise NoMatrixForm
    (m,), (p,) = a.ty.dims, b.ty.dims
    if c.live(a):
        return matmul(make("kron", eye(m), make("unvec", b, params=(p,))), (yield a))
    return matmul(make("kron", make("unvec", a, params=(m,)), eye(p)), (yield b))


def _matrix_contraction(first: bool) -> MatrixRule:
    """Of columns: kron_a(g, w) = unvec(g, p)ᵀ w = (I ⊗ wᵀ) g and kron_b(g, u) = unvec(g, p) u =
    (uᵀ ⊗ I) g, where p is the length of kron_a's w (g's length over kron_b's u)."""
    def rule(c: MatrixContext, e: Expr) -> MatrixSteps:
        g, f = e.args
        if not (g.ty.is_col and f.ty.is_col) or c.live(g) == c.live(f):
            raise NoMatrixForm
        (k,), (out,) = f.ty.dims, e.ty.dims
        p = k if first else out  # the length of the second factor of the product g stands for
        if c.live(f):
            pieces = make("unvec", g, params=(p,))  # (p, m): column i is g's i-th piece
            return matmul(T(pieces) if first else pieces, (yield f))
        row = T(make("unvec", f, params=(k,)))  # f as the (1, k) matrix it stands for
        return matmul(make("kron", eye(out), row) if first else make("kron", row, eye(out)), (yield g))
    return rule


def _pairs(c: IndexContext, idx: Indices, da: tuple[Dim, ...], db: tuple[Dim, ...]) -> tuple[Indices, Indices, Terms]:
    ia = tuple(c.fresh(d) for d in da)
    ib = tuple(c.fresh(d) for d in db)
    terms = c.delta(idx[0], idx[0])  # the product's neutral term (δ(i,i) = 1)
    for w, i, k, di, dk in zip(idx, ia, ib, da, db):
        terms = c.times(terms, c.composite(w, i, k, di, dk))
    return ia, ib, terms


def _contraction_shape(name: str) -> ShapeRule:
    """kron_a(G, B) is G's rows and columns divided by B's; kron_b(G, A) by A's."""
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        g, f = tys
        show = getattr(ctx, "show", fmt)
        _two_matrices(name, g, f, show)
        sizes = [divide(ctx, d, e) for d, e in zip(g.dims, f.dims)]
        if any(d is None for d in sizes):
            raise _shape_err(name, f"needs a {g.kind()} whose sizes are multiples of {show(f)}'s, got {show(g)}")
        return Ty(tuple(d for d in sizes if d is not None), g.row)
    return rule


def _simplify_contraction(name: str) -> Simplify:
    """A constant G contracts to a constant: kron_a(c𝟙, B) = c·sum(B)𝟙 (∂ sum(A ⊗ B)/∂A)."""
    def hook(args: tuple[Expr, ...], params: Params) -> Expr | None:
        g, f = args
        if g.op != "fill":
            return None
        return fill(mul(g.args[0], summ(f)), _contraction_shape(name)(STRICT, (g.ty, f.ty), ()))
    return hook


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


def _kronecker_kron(c: KroneckerContext, e: Expr) -> Expr:
    """vec(A ⊗ B) = (I_n ⊗ K_{q,m} ⊗ I_p)(vec A ⊗ vec B) for A (m, n), B (p, q), so
    d vec(A ⊗ B) = (I_n ⊗ K_{q,m} ⊗ I_p)((I ⊗ vec B) d vec(A) + (vec A ⊗ I) d vec(B))."""
    a, b = e.args
    (m, n), (p, q) = a.ty.dims, b.ty.dims
    parts = []
    if c.live(a):
        parts.append(c.times(c.kron(eye(product(m, n)), c.column(b)), c.of(a)))
    if c.live(b):
        parts.append(c.times(c.kron(c.column(a), eye(product(p, q))), c.of(b)))
    shuffle = c.kron(c.kron(eye(n), c.commutation(q, m)), eye(p))
    return c.times(shuffle, c.total(parts))


register(Op("kron", _kron_shape, Helper(K._kron),
            vjp=(lambda node, G: make("kron_a", G, node.args[1]), lambda node, G: make("kron_b", G, node.args[0])),
            notation={"custom": _kron_notation},
            rule="d(A ⊗ B) = dA ⊗ B + A ⊗ dB and ⟨G, dA ⊗ B⟩ = ⟨kron_a(G, B), dA⟩, ⟨G, A ⊗ dB⟩ = ⟨kron_b(G, A), dB⟩",
            names=("kron",), arity=(2,), index=_index_kron, matrix=_matrix_kron, kronecker=_kronecker_kron))
register(Op("kron_a", _contraction_shape("kron_a"), Helper(K._kron_a),
            vjp=(lambda node, H: make("kron", H, node.args[1]), lambda node, H: make("kron_b", node.args[0], H)),
            notation=_call_notation("kron_a"), simplify=_simplify_contraction("kron_a"),
            rule="kron_a(G, B)ᵢⱼ = Σₖₗ G₍ᵢₖ₎₍ⱼₗ₎ Bₖₗ (linear in G and in B)",
            names=("kron_a",), arity=(2,), listed=False, index=_index_contraction(True), matrix=_matrix_contraction(True)))
register(Op("kron_b", _contraction_shape("kron_b"), Helper(K._kron_b),
            vjp=(lambda node, H: make("kron", node.args[1], H), lambda node, H: make("kron_a", node.args[0], H)),
            notation=_call_notation("kron_b"), simplify=_simplify_contraction("kron_b"),
            rule="kron_b(G, A)ₖₗ = Σᵢⱼ G₍ᵢₖ₎₍ⱼₗ₎ Aᵢⱼ (linear in G and in A)",
            names=("kron_b",), arity=(2,), listed=False, index=_index_contraction(False),
            matrix=_matrix_contraction(False)))
