"""Arithmetic: +, element-wise * / ^ (numpy's broadcasting) and the matrix product @.

Derivatives are vector-Jacobian products in the language of matrix differentials: if the
adjoint of a node N is G (so that dL = ⟨G, dN⟩), `vjp[i](N, G)` is the adjoint of argument i.
The rules build their results with the smart constructors of `simplify.py`, whose hooks keep
results readable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import simplify as S
from ...errors import shape_error
from ..expr import OPS, NoIndexForm, NoKroneckerForm, NoMatrixForm, Op, Row, ShapeMsg, make, make_raw, register
from ..shaperules import broadcast_shape, matmul_shape, pow_shape
from ..shapes import SCALAR, STRICT, DimMismatch
from ..simplify import (matmul_factors, _simplify_add, _simplify_div, _simplify_matmul, _simplify_mul, _simplify_pow, T,
                        const, div, fn, like, mm, mul, neg, power, scale, split_coef, sub, symmetric_product,
                        symmetric_sum, unbroadcast)
from . import kernels as K
from .kernels import Choose, Helper, Infix, Kernel
from .base import ADD, ATOM, JUXT, MUL, NEG, POW

if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any, TypeAlias

    from ..expr import CallContext, Expr, IndexContext, Indices, KroneckerContext, MatrixContext
    from ..syntax import Call

    MatrixSteps: TypeAlias = Generator["Expr | Row", Expr, Expr]
    Terms: TypeAlias = list[Any]
    from ..render import Renderer
    from .kernels import Deferred


# The kernels of + and @ depend on which arguments the evaluator keeps deferred (evaluate.py):
# a + (−1)·z is a − z (one pass over the data, not two), and a diag(v) factor is applied as a
# broadcast of v (a 2000×2000 Jacobian of tanh(Wx + b) is then v[:, None] * W, never diag(v) @ W).
ADDITION, SUBTRACTION = Infix("+", "add"), Infix("-", "subtract")
PRODUCT, MATRIX_PRODUCT = Infix("*", "multiply"), Infix("@")


def _add_kernel(node: Expr, deferred: Deferred) -> tuple[Kernel, tuple[Expr, ...]]:
    a, b = node.args
    if a in deferred:
        a, b = b, a
    if b in deferred:
        return SUBTRACTION, (a, b.args[1])
    return ADDITION, node.args


def _matmul_kernel(node: Expr, deferred: Deferred) -> tuple[Kernel, tuple[Expr, ...]]:
    x, y = node.args
    if x in deferred and y in deferred:
        return Helper(K._diag_product), (x.args[0], y.args[0])
    if x in deferred:
        return (Helper(K._scale_rows) if y.ty.is_matrix else PRODUCT), (x.args[0], y)
    if y in deferred:
        return PRODUCT, (x, y.args[0])  # broadcasting along the last axis scales the columns
    if x.ty.is_col and y.ty.is_row:
        return Helper(K._outer), node.args
    return MATRIX_PRODUCT, node.args


def _vjp_add_a(node: Expr, G: Expr) -> Expr:
    return unbroadcast(G, node.args[0].ty)


def _vjp_add_b(node: Expr, G: Expr) -> Expr:
    return unbroadcast(G, node.args[1].ty)


def _add_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    """A chain a + b − c + … is written in one pass down its left spine (joined once)."""
    terms = []
    n = node
    while n.op == "add" and (n is node or r.bound_name(n) is None):
        terms.append(n.args[1])
        n = n.args[0]
    operands = [n, *reversed(terms)]
    if r.style == "ascii":  # log(x) + 1, not log(x) + ones(m): numpy broadcasts the scalar
        operands = _scalars_broadcast(operands, node)
    parts = [r.child(operands[0], ADD)]
    minus = " − " if r.style == "unicode" else " - "
    for b in operands[1:]:
        c, x = split_coef(b)
        if b.is_const and b.value < 0:
            c, x = b.value, const(1.0)
        elif b.op == "fill" and b.args[0].is_const and b.args[0].value < 0:  # a − c·𝟙, not a + −c·𝟙
            c, x = b.args[0].value, S.fill(const(1.0), b.ty)
        if c < 0:
            parts.append(minus + r.child(scale(-c, x), ADD + 0.5))
        else:
            parts.append(" + " + r.child(b, ADD))  # a + (b + c) = a + b + c
    return "".join(parts), ADD


def _scalars_broadcast(operands: list[Expr], node: Expr) -> list[Expr]:
    """The operands of a sum with each constant array (c·𝟙, `c*ones(m)`) written as the scalar c
    where another operand already has the sum's shape, so that broadcasting, as in numpy and in
    gradcli's input, gives back the same sum; `ones(m)` stays where it alone carries the shape."""
    if not any(t.ty == node.ty and t.op != "fill" for t in operands):
        return operands
    return [t.args[0] if t.op == "fill" and t.args[0].ty.is_scalar else t for t in operands]


# ----------------------------------------------------------------- matrix forms (linearize.py)
# Each rule reads the matrix M of a node linear in the seed v (node = M v), as a generator that
# yields the operands whose matrices it needs; `ctx.live(x)`: x depends on v.
def _matrix_add(c: MatrixContext, e: Expr) -> MatrixSteps:
    a, b = e.args
    if a.ty == b.ty:
        return S.add((yield a), (yield b))
    ones = S.fill(const(1.0), e.ty)  # a broadcast sum: a scalar linear in v spread over a vector
    if a.ty.is_scalar and c.live(a):
        return S.add(S.matmul(ones, (yield a)), (yield b)) if c.live(b) else S.matmul(ones, (yield a))
    if b.ty.is_scalar and c.live(b):
        return S.add((yield a), S.matmul(ones, (yield b))) if c.live(a) else S.matmul(ones, (yield b))
    raise NoMatrixForm


def _matrix_scaled(c: MatrixContext, e: Expr) -> MatrixSteps:
    """w ⊙ u = diag(w) u, c·u, u / c: a product or quotient with one factor free of v."""
    a, b = e.args
    live, other = (a, b) if c.live(a) else (b, a)
    if c.live(other) or (e.op == "div" and live is b):
        raise NoMatrixForm  # not linear
    factor = other if e.op == "mul" else S.div(const(1.0), b)
    if factor.ty.is_scalar:
        if live.ty.is_scalar and not e.ty.is_scalar:  # vector · (r v) = (vector r) v
            return S.matmul(factor, (yield live))
        return S.mul(factor, (yield live))
    if live.ty.is_scalar:  # w · (r v): outer product w r
        return S.matmul(factor, (yield live))
    if factor.ty == live.ty and live.ty.is_col:
        return S.matmul(make("diagm", factor), (yield live))
    raise NoMatrixForm


def _matrix_matmul(c: MatrixContext, e: Expr) -> MatrixSteps:
    a, b = e.args
    if not c.live(a):
        if a.ty.is_matrix or a.ty.is_row:  # A u, or wᵀu
            return S.matmul(a, (yield b))
        raise NoMatrixForm
    if not c.live(b) and a.ty.is_row and b.ty.is_col:  # uᵀw = wᵀu
        return S.matmul(T(b), (yield Row(a)))
    regrouped = _regrouped(a, b) if not c.live(b) else None
    if regrouped is None:
        raise NoMatrixForm
    return (yield from c.regroup(e, regrouped))


def _row_matmul(c: MatrixContext, e: Expr) -> MatrixSteps:
    """(uᵀA)ᵀ = Aᵀu: a row linear in v times a matrix free of it."""
    a, b = e.args
    if c.live(b) or not a.ty.is_row:
        raise NoMatrixForm
    return S.matmul(T(b), (yield Row(a)))


def _regrouped(a: Expr, b: Expr) -> Expr | None:
    """A b, with A depending on v and b not, regrouped so that v ends up on the right:
    (PQ)b = P(Qb) — so x(dxᵀb) = x(bᵀdx) = (xbᵀ)dx —, (P + Q)b = Pb + Qb, (cP)b = c(Pb)."""
    if a.op == "matmul":
        p, q = a.args
        inner = S.matmul(q, b)
        return S.mul(inner, p) if inner.ty.is_scalar else S.matmul(p, inner)
    if a.op == "add" and a.args[0].ty == a.args[1].ty == a.ty:  # as written: not factored back
        return make_raw("add", (S.matmul(a.args[0], b), S.matmul(a.args[1], b)))
    if a.op == "mul" and a.args[0].ty.is_scalar:
        return S.mul(a.args[0], S.matmul(a.args[1], b))
    flipped = a.op == "T" and a.args[0].op == "unvec"
    if (a.op == "unvec" or flipped) and b.ty.is_col:  # unvec(g, m) b = (bᵀ ⊗ I) g, unvec(g, m)ᵀ b = (I ⊗ bᵀ) g
        g = a.args[0].args[0] if flipped else a.args[0]
        m, n = (a.ty.dims[1], a.ty.dims[0]) if flipped else a.ty.dims
        row = S.T(make("unvec", b, params=(b.ty.dims[0],)))  # b as the (1, k) matrix it stands for
        return S.matmul(make("kron", S.eye(n), row) if flipped else make("kron", row, S.eye(m)), g)
    return None


# ----------------------------------------------------------------- index notation (indexform.py)
def _index_add(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    return c.bounded([t for x in e.args if c.live(x) for t in c.of(x, c.align(x, idx))])


def _index_scaled(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    a, b = e.args
    live, other = (a, b) if c.live(a) else (b, a)
    if c.live(other) or (e.op == "div" and live is b):
        raise NoIndexForm
    other = other if e.op == "mul" else S.div(const(1.0), other)
    return c.times(c.opaque(other, c.align(other, idx)), c.of(live, c.align(live, idx)))


def _index_matmul(c: IndexContext, e: Expr, idx: Indices) -> Terms:
    a, b = e.args
    ta, tb = a.ty, b.ty
    s = c.fresh(tb.dims[0])  # (drawn for an outer product too: the names of the indices that follow)
    if ta.is_col and tb.is_row:  # an outer product, nothing summed
        return c.times(c.of(a, (idx[0],)), c.of(b, (idx[1],)))
    ia: Indices
    ib: Indices
    if ta.is_matrix and tb.is_matrix:
        ia, ib = (idx[0], s), (s, idx[1])
    elif ta.is_matrix:  # matrix @ column
        ia, ib = (idx[0], s), (s,)
    elif tb.is_matrix:  # row @ matrix
        ia, ib = (s,), (s, idx[0])
    else:  # row @ column
        ia, ib = (s,), (s,)
    return c.summed(c.times(c.of(a, ia), c.of(b, ib)), (s,))


def _call_product(b: CallContext, call: Call) -> Expr:
    """dot(u, v) = uᵀv and outer(u, v) = uvᵀ, of two vectors however they are oriented."""
    args = [b.build(a) for a in call.args]
    for a in args:
        if not a.ty.is_vector:
            raise shape_error(f"{call.name}: needs two vectors, got {a.ty.kind()} {b.show(a.ty)}", call.col)
    cols = [b.raw("T", (a,), (), call.col) if a.ty.row else a for a in args]
    if call.name == "dot":
        return b.raw("matmul", (b.raw("T", (cols[0],), (), call.col), cols[1]), (), call.col)
    return b.raw("matmul", (cols[0], b.raw("T", (cols[1],), (), call.col)), (), call.col)


# ----------------------------------------------------------------- Kronecker forms (--layout vec)
def _kronecker_add(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(A + B) = d vec(A) + d vec(B), a scalar term spread over every entry."""
    return c.total([c.spread(t, e.ty) for t in e.args if c.live(t)])


def _kronecker_mul(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(s M) = s d vec(M) + vec(M) ds for a scalar s; d vec(A ⊙ B) = diag(vec B) d vec(A)
    + diag(vec A) d vec(B) for two arrays of one shape (a broadcast has no form here)."""
    a, b = e.args
    if b.ty.is_scalar and not a.ty.is_scalar:
        a, b = b, a
    if a.ty.is_scalar:
        parts = []
        if c.live(b):
            parts.append(S.mul(a, c.of(b)))
        if c.live(a):
            parts.append(S.matmul(c.vec(b), c.of(a)))
        return c.total(parts)
    if a.ty.full_dims != b.ty.full_dims:
        raise NoKroneckerForm("broadcast")
    return c.total([c.times(make("diagm", c.vec(other)), c.of(t)) for t, other in ((a, b), (b, a)) if c.live(t)])


def _kronecker_div(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(M / s) = d vec(M) / s − vec(M / s²) ds for a scalar s; else entry by entry."""
    a, b = e.args
    if not b.ty.is_scalar or a.ty.is_scalar:
        return c.entrywise(e)
    parts = []
    if c.live(a):
        parts.append(S.div(c.of(a), b))
    if c.live(b):
        parts.append(S.neg(S.matmul(c.vec(S.div(a, S.mul(b, b))), c.of(b))))
    return c.total(parts)


def _kronecker_matmul(c: KroneckerContext, e: Expr) -> Expr:
    """d vec(A B) = (Bᵀ ⊗ I_m) d vec(A) + (I_n ⊗ A) d vec(B), vectors taken as m×1 or 1×n."""
    a, b = e.args
    outer = b.ty.is_row  # a column times a row; else a vector on the left is a row
    am = c.as_matrix(a, row=not outer and a.ty.is_vector)
    bm = c.as_matrix(b, row=outer)
    m, n = am.ty.dims[0], bm.ty.dims[1]
    parts = []
    if c.live(a):
        parts.append(c.times(c.kron(S.T(bm), S.eye(m)), c.of(a)))
    if c.live(b):
        parts.append(c.times(c.kron(S.eye(n), am), c.of(b)))
    return c.total(parts)


register(Op("add", broadcast_shape("+"), Choose(_add_kernel),
            vjp=(_vjp_add_a, _vjp_add_b), notation={"custom": _add_notation},
            simplify=_simplify_add,
            rule='d(A + B) = dA + dB (a broadcast operand gets the adjoint summed over the broadcast axes)',
            entrywise=True, symmetric=symmetric_sum, matrix=_matrix_add, index=_index_add,
            kronecker=_kronecker_add,  # (P + Q)ᵀ = Pᵀ + Qᵀ, not for a broadcast sum
            untransposed=lambda node, U: make_raw("add", (U(node.args[0]), U(node.args[1])))
            if node.args[0].ty == node.args[1].ty else None))


def _mul_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if a.ty.is_scalar or b.ty.is_scalar:  # scaling: 2x, a·x, −x
        if a.is_const and a.value == -1.0:  # -(AB) = (-A)B: no parentheses needed for products
            minus = "−" if r.style == "unicode" else "-"
            return minus + r.child(b, NEG), NEG
        sep = {"unicode": "·", "ascii": "*", "latex": r" \cdot "}[r.style]
        if a.is_const and r.style != "ascii":
            left = r.child(a, MUL)
            right = r.child(b, MUL)  # c(XY) = (cX)Y: scaling needs no parentheses
            sep = "" if (right[:1].isalpha() or right[:1] in "(‖\\") and not a.value < 0 or (
                a.value < 0 and (right[:1].isalpha() or right[:1] in "(‖\\")) else sep
            if r.style == "latex" and sep == "":
                sep = " "
            return left + sep + right, MUL
        right = r.child(b, MUL if a.is_const else MUL + 0.5)  # c*(A@B) = (c*A)@B
        return r.child(a, MUL) + sep + right, MUL
    sep = {"unicode": " ⊙ ", "ascii": " * ", "latex": r" \odot "}[r.style]
    return r.child(a, MUL) + sep + r.child(b, MUL + 0.5), MUL


def _vjp_mul_a(node: Expr, G: Expr) -> Expr:
    return unbroadcast(mul(G, node.args[1]), node.args[0].ty)


def _vjp_mul_b(node: Expr, G: Expr) -> Expr:
    return unbroadcast(mul(G, node.args[0]), node.args[1].ty)


register(Op("mul", broadcast_shape("*"), PRODUCT,
            vjp=(_vjp_mul_a, _vjp_mul_b), notation={"custom": _mul_notation},
            simplify=_simplify_mul,
            rule='d(A ⊙ B) = dA ⊙ B + A ⊙ dB',
            entrywise=True, matrix=_matrix_scaled, index=_index_scaled, kronecker=_kronecker_mul,
            trivial=lambda n: n.args[0].is_const,  # −x and 2x need no name of their own
            untransposed=lambda node, U: make_raw("mul", (node.args[0], U(node.args[1])))
            if node.args[0].ty.is_scalar else None))  # (cX)ᵀ = cXᵀ


def _div_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if r.style == "latex" and b.ty.is_scalar:
        return rf"\frac{{{r.child(a, 0)}}}{{{r.child(b, 0)}}}", ATOM
    # by an array: element-wise, A ⊘ B as in unicode (a fraction bar under a matrix reads as A B⁻¹)
    sep = " / " if (b.ty.is_scalar or r.style == "ascii") else r" \oslash " if r.style == "latex" else " ⊘ "
    # a juxtaposed product in a denominator is parenthesised: x / (xᵀAx), not x / xᵀAx
    return r.child(a, MUL) + sep + r.child(b, MUL + 0.5 if r.style == "ascii" else POW), MUL


register(Op("div", broadcast_shape("/"), Infix("/", "divide"),
            vjp=(lambda node, G: unbroadcast(div(G, node.args[1]), node.args[0].ty),
                 lambda node, G: unbroadcast(neg(div(mul(G, node), node.args[1])), node.args[1].ty)),
            notation={"custom": _div_notation}, simplify=_simplify_div,
            fails="division by zero",
            rule='d(A ⊘ B) = dA ⊘ B − A ⊙ dB ⊘ B²',
            entrywise=True, matrix=_matrix_scaled, index=_index_scaled, kronecker=_kronecker_div,
            untransposed=lambda node, U: make_raw("div", (U(node.args[0]), node.args[1]))
            if node.args[1].ty.is_scalar else None))  # (X/s)ᵀ = Xᵀ/s


def _pow_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    base = r.child(a, POW + 0.5)
    # A matrix's power is element-wise (numpy); plain X² / X⁻¹ would read as X·X / inv(X), so
    # unicode and LaTeX write the Hadamard power X∘² / X^{\circ 2}.  ASCII is the language (X^2).
    hadamard = a.ty.is_matrix
    if r.style == "unicode" and b.is_const and float(b.value).is_integer() and -9 <= b.value <= 9:
        sup = str(int(b.value)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return base + ("∘" if hadamard else "") + sup, POW
    if r.style == "latex":
        return base + "^{" + (r"\circ " if hadamard else "") + r.child(b, 0) + "}", POW
    if r.style == "unicode" and hadamard:
        return base + "^∘" + r.child(b, POW), POW
    return base + "^" + r.child(b, POW), POW


def _vjp_pow_base(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    if b.is_const:
        return mul(G, mul(b, power(a, const(b.value - 1.0))))
    return mul(G, mul(b, power(a, sub(b, const(1.0)))))


def _vjp_pow_exp(node: Expr, G: Expr) -> Expr:
    a, _ = node.args
    return unbroadcast(mul(G, mul(node, fn("log", a))), SCALAR)


register(Op("pow", pow_shape, Infix("**", "power"),
            vjp=(_vjp_pow_base, _vjp_pow_exp), notation={"custom": _pow_notation},
            simplify=_simplify_pow, fails="power of a negative number or of zero",
            rule='d(Aᵖ) = p·Aᵖ⁻¹ ⊙ dA (element-wise chain rule)',
            entrywise=True))


def _vjp_matmul_a(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    return like(mm(G, T(b)), a.ty)


def _vjp_matmul_b(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    return like(mm(T(a), G), b.ty)


_FUNC_WORD = re.compile(r"[A-Za-z]{2,}\(")


def _rightmost(e: Expr) -> Expr:
    while e.op == "matmul":
        e = e.args[1]
    return e


def _ascii_chain(node: Expr) -> list[Expr] | None:
    """The factors of a product chain F₁ @ F₂ @ … @ F_k, when writing it ungrouped means the same:
    the language groups from the left, so no partial product F₁…F_j (j < k) may be a scalar
    (xᵀy inside a chain is a scalar factor, which @ does not take)."""
    factors = matmul_factors(node, [], limit=None)
    assert factors is not None  # no limit: never None
    ty = factors[0].ty
    for f in factors[1:-1]:
        try:
            ty = OPS["matmul"].shape(STRICT, (ty, f.ty), ())
        except (ShapeMsg, DimMismatch):
            return None
        if ty.is_scalar:
            return None
    return factors


def _matmul_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if r.style == "ascii":  # as the grammar reads it: *, / and @ are one left-associative level
        factors = _ascii_chain(node) if b.op == "matmul" else None
        if factors is None:
            return r.child(a, MUL) + " @ " + r.child(b, MUL + 0.5), MUL
        return " @ ".join([r.child(factors[0], MUL)] + [r.child(f, MUL + 0.5) for f in factors[1:]]), MUL
    left, right = r.child(a, JUXT), r.child(b, JUXT)
    sep = "" if r.style == "unicode" else " "
    if r.style == "unicode" and (left[-1:].isalnum() or left[-1:] in "ᵀ¹)") and right[:1].isalnum() and (
            len(r.name(r.leaf_name(a)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or
            len(r.name(r.leaf_name(b)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or _FUNC_WORD.match(right)
            or (left.endswith(")") and _rightmost(a).op not in ("add", "mul", "div", "sym", "T"))):
        sep = " "  # Xᵀ diag(…), W x_in: separate words, keep single letters together (XΘ)
    return left + sep + right, JUXT


register(Op("matmul", matmul_shape, Choose(_matmul_kernel), vjp=(_vjp_matmul_a, _vjp_matmul_b),
            notation={"custom": _matmul_notation}, simplify=_simplify_matmul,
            rule='d(AB) = dA·B + A·dB and ⟨G, dA·B⟩ = ⟨GBᵀ, dA⟩, ⟨G, A·dB⟩ = ⟨AᵀG, dB⟩',
            names=("dot", "outer"), arity=(2,), call=_call_product,
            symmetric=symmetric_product, matrix=_matrix_matmul, row=_row_matmul, index=_index_matmul,
            kronecker=_kronecker_matmul,  # (AB)ᵀ = BᵀAᵀ
            untransposed=lambda node, U: make_raw("matmul", (U(node.args[1]), U(node.args[0])))))
