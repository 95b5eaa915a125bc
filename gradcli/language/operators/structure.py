"""Structure: the leaves (constants, symbols, sizes), transposition, the broadcasts `fill` and
`expand` (the adjoints of the reductions), diagonal matrices and the identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import shape_error
from ..expr import NoMatrixForm, Op, Row, make, make_raw, register
from ..shaperules import _shape_err, square_to, to_scalar, vector_only
from ..shapes import Ty, col, divide, fmt, mat, product
from ..simplify import (_simplify_fill, _simplify_T, T, always_symmetric, const, div, eye, fill, is_one, is_zero, like,
                        matmul, summ, symmetric_as_argument)
from ..structures import declared_symmetric
from ..syntax import Num, Sym
from . import kernels as K
from .kernels import Attr, Choose, Helper, Kernel, Same, Shape, Size
from .base import ATOM, JUXT, MUL, NEG, POST, func

if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any, TypeAlias

    from ..expr import (Array, CallContext, Expr, IndexContext, Indices, KroneckerContext, MatrixContext, Namespace, Params,
                        ShapeContext)
    from ..render import Renderer
    from .kernels import Deferred
    from ..syntax import Call

    MatrixSteps: TypeAlias = Generator["Expr | Row", Expr, Expr]
    Terms: TypeAlias = list[Any]
















# ----------------------------------------------------------------- the table
def _sym_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    ty: Ty = params[1]  # a symbol's (name, shape)
    return ty


def _const_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    v = node.value
    text = f"{v:g}" if not float(v).is_integer() or abs(v) >= 1e16 else str(int(v))
    if r.style == "ascii" and float(text) != v:
        text = repr(v)  # the shortest text that reads back as exactly this number
    if r.style == "latex" and "e" in text:
        m, e = text.split("e")
        text = rf"{m}\cdot 10^{{{int(e)}}}"
    if r.style == "unicode":
        text = text.replace("-", "−")
    return text, (NEG if v < 0 else ATOM)


# ----------------------------------------------------------------- how a formula calls them
def _call_fill(b: CallContext, call: Call) -> Expr:
    """numpy's ones(m) / ones(m, n) and zeros: the shape as arguments."""
    dims = tuple(b.dim(call.name, a) for a in call.args)
    value = b.raw("const", (), (1.0 if call.name == "ones" else 0.0,), call.col)
    return b.raw("fill", (value,), (Ty(dims),), call.col)


def _call_eye(b: CallContext, call: Call) -> Expr:
    (arg,) = call.args
    if not (isinstance(arg, Sym) or isinstance(arg, Num) and arg.value.is_integer() and arg.value > 0):
        raise shape_error("eye takes a dimension: eye(3) or eye(n)", call.col)
    return b.raw("eye", (), (b.dim("eye", arg),), call.col)


def _call_diag(b: CallContext, call: Call) -> Expr:
    """numpy's diag: the diagonal matrix of a vector, the diagonal of a matrix."""
    a = b.build(call.args[0])
    return b.raw("diagm" if a.ty.is_vector else "diagv", (a,), (), call.col)


# ----------------------------------------------------------------- matrix and index forms
def _matrix_T(c: MatrixContext, e: Expr) -> MatrixSteps:
    if e.ty.is_col and e.args[0].ty.is_row:
        return (yield Row(e.args[0]))
    raise NoMatrixForm


def _row_T(c: MatrixContext, e: Expr) -> MatrixSteps:
    return (yield e.args[0])  # (uᵀ)ᵀ = u


def _matrix_fill(c: MatrixContext, e: Expr) -> MatrixSteps:
    if not e.args[0].ty.is_scalar:
        raise NoMatrixForm
    return matmul(fill(const(1.0), e.ty), (yield e.args[0]))


def _matrix_diagv(c: MatrixContext, e: Expr) -> MatrixSteps:
    x = e.args[0]
    if x.op == "diagm":  # diag(diag(u)) = u
        return (yield x.args[0])
    outer = _outer_factors(x)
    if outer is None:
        raise NoMatrixForm
    a, r = outer  # diag(a rᵀ) = a ⊙ r: the diagonal of diag(v)@y's adjoint v yᵀ is y ⊙ v, so
    # ∂(diag(x)y)/∂x = diag(y) as textbooks write it
    return (yield from c.regroup(e, make_raw("mul", (a, T(r)))))


def _outer_factors(x: Expr) -> tuple[Expr, Expr] | None:
    """(a, r) with x = a r, a column times a row, where x is such a product written with more
    factors: (a bᵀ)M = a(bᵀM), M(a bᵀ) = (Ma)bᵀ.  None for any other matrix."""
    if x.op != "matmul":
        return None
    p, q = x.args
    if p.ty.is_col and q.ty.is_row:
        return p, q
    left = _outer_factors(p)
    if left is not None:
        return left[0], make("matmul", left[1], q)
    right = _outer_factors(q)
    if right is not None:
        return make("matmul", p, right[0]), right[1]
    return None


# ----------------------------------------------------------------- Kronecker forms (--layout vec)
def _kronecker_T(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(Aᵀ) = K_{m,n} d vec(A) for A (m, n); a vector's transpose has its entries in the
    same order."""
    (a,) = e.args
    if a.ty.is_matrix:
        m, n = a.ty.dims
        return c.times(c.commutation(m, n), c.of(a))
    return c.of(a)


def _kronecker_reshape(c: KroneckerContext, e: Expr) -> Expr:
    """vec and unvec move no entry in column-major order: d vec(vec(A)) = d vec(A)."""
    return c.of(e.args[0])


def _kronecker_fill(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(c𝟙) = 𝟙 dc: the scalar spread over every entry."""
    return c.spread(e.args[0], e.ty)


def _index_expand(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    axis, keep, _ = e.params
    return c.of(e.args[0], tuple(ix for n, ix in enumerate(idx) if n != axis) if not keep else idx)


register(Op("const", to_scalar, None,  # (a literal: the evaluator and --emit read its value)
            notation={"custom": _const_notation}))
register(Op("sym", _sym_shape, None,  # (an input)
            symmetric=declared_symmetric,  # a declared symmetric/spd/diagonal S: Sᵀ = S
            notation={"custom": lambda r, node: (r.name(node.params[0]), ATOM)}))
register(Op("numel", to_scalar, Helper(K._entries, settings=lambda n: (Shape(n.params[0].dims),)),
            notation={"custom": lambda r, node: r.dims_product(node.params[0].dims)}))


def _transpose_kernel(node: Expr, deferred: Deferred) -> tuple[Kernel, tuple[Expr, ...]]:
    """Aᵀ of a matrix is numpy's view `.T`; a vector's transpose is the same array."""
    return (Attr("T") if node.ty.is_matrix else Same()), node.args


def _T_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    (a,) = node.args
    if a.op == "inv":
        inner = r.child(a.args[0], POST + 0.5)
        return inner + {"unicode": "⁻ᵀ", "ascii": "'", "latex": "^{-\\top}"}[r.style] if r.style != "ascii" \
            else "inv(" + r.child(a.args[0], 0) + ")'", POST
    mark = {"unicode": "ᵀ", "ascii": "'", "latex": "^\\top"}[r.style]
    return r.child(a, POST + 0.5) + mark, POST


register(Op("T", lambda ctx, tys, p: tys[0].transposed(), Choose(_transpose_kernel),
            vjp=(lambda node, G: T(G),), notation={"custom": _T_notation},
            simplify=_simplify_T,
            rule='d(Aᵀ) = (dA)ᵀ and ⟨G, dAᵀ⟩ = ⟨Gᵀ, dA⟩',
            symmetric=symmetric_as_argument, matrix=_matrix_T, row=_row_T, kronecker=_kronecker_T,
            index=lambda c, e, idx: c.of(e.args[0], (idx[1], idx[0]) if len(idx) == 2 else idx),
            trivial=lambda n: not n.args[0].args,  # a transposed leaf needs no name
            untransposed=lambda node, U: node.args[0]))


def _expand_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    ty: Ty = params[2]  # (axis, keepdims, the shape expanded to)
    return ty




def _expand_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    axis, keep, ty = node.params
    g = node.args[0]
    if r.style == "ascii":  # copies of g along the axis: a product with ones, as numpy broadcasts
        dims = ty.dims
        if len(dims) == 2 and axis % 2 == 1 and not keep:  # g as a column: g𝟙ᵀ
            column = r.child(g, MUL) if not g.ty.row else r.child(g, POST + 0.5) + "'"
            return f"{column} @ {r.ones((dims[1],))}'", MUL
        if len(dims) == 2 and axis % 2 == 0 and not keep:  # g as a row: 𝟙gᵀ
            row = r.child(g, MUL + 0.5) if g.ty.row else r.child(g, POST + 0.5) + "'"
            return f"{r.ones((dims[0],))} @ {row}", MUL
        if len(dims) == 2 and axis % 2 == 1:  # g is (m, 1)
            return f"{r.child(g, MUL)} @ {r.ones((1, dims[1]))}", MUL
        if len(dims) == 2:  # g is (1, n)
            return f"{r.ones((dims[0], 1))} @ {r.child(g, MUL + 0.5)}", MUL
        return f"{r.child(g, MUL)}*{r.ones(dims)}", MUL  # a vector from a scalar (or (1,))
    ones = "𝟙" if r.style == "unicode" else r"\mathbf{1}"
    if axis == 0 and not keep:  # each row is Gᵀ: 𝟙Gᵀ
        return ones + r.child(T(g), JUXT), JUXT
    return r.child(g, JUXT) + ones + ("ᵀ" if r.style == "unicode" else r"^\top"), JUXT


register(Op("expand", _expand_shape, Helper(K._expand, settings=lambda n: (n.params[0], n.params[1], Shape(n.params[2].dims)), view=True),
            vjp=(lambda node, G: summ(G, node.params[0], node.params[1]),),
            notation={"custom": _expand_notation},
            rule='d expand(g) = expand(dg)',
            index=_index_expand))


def _fill_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    v = node.args[0]
    if r.style == "ascii":  # ones(m, n) and zeros(m, n) carry the shape; a row is ones(n)'
        ty = node.ty
        word = "zeros" if is_zero(v) else "ones"
        text = r.ones(ty.dims, word) + ("'" if ty.row else "")
        if is_zero(v) or is_one(v):
            return text, (POST if ty.row else ATOM)
        return r.child(v, MUL) + "*" + text, MUL
    ones = {"unicode": "𝟙", "latex": r"\mathbf{1}"}[r.style]
    if node.ty.row:  # a row of ones is 𝟙ᵀ
        ones += "ᵀ" if r.style == "unicode" else r"^\top"
    if is_zero(v):
        return "0", ATOM
    if is_one(v):
        return ones, ATOM
    if v.is_const and v.value == -1.0:  # −𝟙, not −1·𝟙
        return ("−" if r.style == "unicode" else "-") + ones, MUL
    return r.child(v, MUL) + ("·" if r.style == "unicode" else r" \cdot ") + ones, MUL


register(Op("fill", lambda ctx, tys, p: p[0], Helper(K._full, settings=lambda n: (Shape(n.ty.dims),)),
            vjp=(lambda node, G: summ(G),), notation={"custom": _fill_notation},
            simplify=_simplify_fill,
            rule='d(c𝟙) = dc·𝟙',
            names=("ones", "zeros"), arity=(1, 2), operands=0, call=_call_fill, trivial=True,
            symmetric=always_symmetric, matrix=_matrix_fill, index=lambda c, e, idx: c.of(e.args[0], ()),
            kronecker=_kronecker_fill,
            untransposed=lambda node, U: make_raw("fill", node.args, (node.ty.transposed(),))))


register(Op("diagm", vector_only("diag", lambda ty: mat(ty.dims[0], ty.dims[0])), Helper(K._diag_matrix),
            vjp=(lambda node, G: like(make("diagv", G), node.args[0].ty),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            rule='d diag(v) = diag(dv) and ⟨G, diag(dv)⟩ = ⟨diag(G), dv⟩',
            names=("diag",), call=_call_diag, symmetric=always_symmetric,
            index=lambda c, e, idx: c.times(c.delta(idx[0], idx[1]), c.of(e.args[0], (idx[0],))),
            untransposed=lambda node, U: node))
register(Op("diagv", square_to("diag", lambda ty: col(ty.dims[0])), Helper(K._diagonal),
            vjp=(lambda node, G: make("diagm", G),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            rule='d diag(A) = diag(dA)',
            matrix=_matrix_diagv, index=lambda c, e, idx: c.of(e.args[0], (idx[0], idx[0]))))

register(Op("eye", lambda ctx, tys, p: mat(p[0], p[0]), K.Call("eye", settings=lambda n: (Size(n.params[0]),), creates=True),
            notation={"custom": lambda r, node: (f"eye({node.params[0]})" if r.style == "ascii" else "I", ATOM)},
            names=("eye",), operands=0, call=_call_eye, trivial=True, symmetric=always_symmetric,
            untransposed=lambda node, U: node))


# ----------------------------------------------------------------- vec and its inverse
# vec(X) stacks the columns of an (m, n) matrix into one (m·n,) vector, as textbooks do
# (vec(AXB) = (Bᵀ ⊗ A) vec(X)); its adjoint puts a vector back into m rows: unvec(g, m).
def _vec_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    (a,) = tys
    if not a.is_matrix:
        raise _shape_err("vec", f"needs a matrix, got {a.kind()} {getattr(ctx, 'show', fmt)(a)}")
    return col(product(a.dims[0], a.dims[1]))


def _unvec_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    (g,), rows = tys, params[0]
    show = getattr(ctx, "show", fmt)
    cols = divide(ctx, g.dims[0], rows) if g.is_col else None
    if cols is None:
        raise _shape_err("unvec", f"needs a column vector whose length is a multiple of {rows}, got "
                                  f"{g.kind()} {show(g)}")
    return mat(rows, cols)






def _index_vec(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    """vec(X)[i] = X[i mod m, i div m]: i is the pair (column, row), column-major."""
    (x,) = e.args
    m, n = x.ty.dims
    row, column = c.fresh(m), c.fresh(n)
    return c.summed(c.times(c.composite(idx[0], column, row, n, m), c.of(x, (row, column))), (row, column))


def _index_unvec(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    """unvec(g, m)[r, s] = g[m s + r]: Σ_t δ(t, (s, r)) g[t]."""
    m, n = e.ty.dims
    t = c.fresh(product(m, n))
    return c.summed(c.times(c.composite(t, idx[1], idx[0], n, m), c.of(e.args[0], (t,))), (t,))


def _matrix_vec(c: MatrixContext, e: Expr) -> MatrixSteps:
    """vec of a matrix linear in v, by the identities that move v out of the matrix:
    vec(unvec(u, m)) = u, vec(PQ) = (I ⊗ P) vec(Q) = (Qᵀ ⊗ I) vec(P), vec(u wᵀ) = (w ⊗ I) u =
    (I ⊗ u) w, vec(P + Q) = vec(P) + vec(Q), vec(W ⊙ Q) = vec(W) ⊙ vec(Q), vec(cQ) = c vec(Q)."""
    (x,) = e.args
    if x.op == "unvec":
        return (yield x.args[0])
    regrouped = _vec_regrouped(c, x)
    if regrouped is None:
        raise NoMatrixForm  # vec(Xᵀ) (a commutation matrix), vec(diag(u)), ...
    return (yield from c.regroup(e, regrouped))


def _vec_regrouped(c: MatrixContext, x: Expr) -> Expr | None:
    m, n = x.ty.dims
    if x.op == "add" and x.args[0].ty == x.args[1].ty == x.ty:
        return make_raw("add", (make("vec", x.args[0]), make("vec", x.args[1])))
    if x.op in ("mul", "div") and sum(c.live(a) for a in x.args) == 1:
        live, other = x.args if c.live(x.args[0]) else x.args[::-1]
        if x.op == "div" and live is not x.args[0]:
            return None  # not linear
        factor = other if x.op == "mul" else div(const(1.0), other)
        if factor.ty.is_scalar:
            return make_raw("mul", (factor, make("vec", live)))
        return make_raw("mul", (make("vec", factor), make("vec", live))) if factor.ty == live.ty else None
    if x.op != "matmul" or all(c.live(a) for a in x.args):
        return None
    p, q = x.args
    if p.ty.is_col and q.ty.is_row:  # an outer product u wᵀ
        u, w = p, T(q)
        if c.live(u):  # (w ⊗ I) u, w as the (n, 1) matrix it stands for
            return matmul(make("kron", make("unvec", w, params=(n,)), eye(m)), u)
        return matmul(make("kron", eye(n), make("unvec", u, params=(m,))), w)
    if not (p.ty.is_matrix and q.ty.is_matrix):
        return None
    if c.live(q):
        return matmul(make("kron", eye(n), p), make("vec", q))
    return matmul(make("kron", T(q), eye(m)), make("vec", p))


def _call_unvec(b: CallContext, call: Call) -> Expr:
    """unvec(g, m): the (m, n) matrix whose columns are g's consecutive pieces of length m."""
    g = b.build(call.args[0])
    rows = call.args[1]
    if not (isinstance(rows, Sym) or isinstance(rows, Num) and rows.value.is_integer() and rows.value > 0):
        raise shape_error("unvec: the number of rows is a positive integer or a size name: unvec(v, 3) or "
                          "unvec(v, m)", getattr(rows, "col", call.col))
    return b.raw("unvec", (g,), (b.dim("unvec", rows),), call.col)


def _unvec_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    rows = str(node.params[0])
    if r.style == "latex":
        return rf"\operatorname{{unvec}}\left({r.child(node.args[0], 0)}, {rows}\right)", ATOM
    return f"unvec({r.child(node.args[0], 0)}, {rows})", ATOM


register(Op("vec", _vec_shape, Helper(K._vec, view=True),  # (a reshape: may share the argument's memory)
            vjp=(lambda node, G: make("unvec", G, params=(node.args[0].ty.dims[0],)),),
            notation=func("vec", latex=r"\operatorname{vec}"),
            rule="d vec(A) = vec(dA) and ⟨g, vec(dA)⟩ = ⟨unvec(g, m), dA⟩",
            names=("vec",), index=_index_vec, matrix=_matrix_vec, kronecker=_kronecker_reshape))
register(Op("unvec", _unvec_shape, Helper(K._unvec, settings=lambda n: (Size(n.ty.dims[1]),), view=True),
            vjp=(lambda node, H: make("vec", H),),
            notation={"custom": _unvec_notation},
            rule="d unvec(g, m) = unvec(dg, m)",
            names=("unvec",), arity=(2,), operands=1, call=_call_unvec, index=_index_unvec,
            kronecker=_kronecker_reshape))
