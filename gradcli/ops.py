"""The operator table: for each operator, its shape rule, derivative rule, numpy
implementation and notation — in one entry, so adding an operator is one `register` call.

Derivatives are vector-Jacobian products in the language of matrix differentials: if the
adjoint of a node N is G (so that dL = ⟨G, dN⟩), `vjp[i](N, G)` is the adjoint of argument i.
The helpers at the top (`add`, `mul`, `matmul`, `T`, ...) are the smart constructors the rules
use; their `simplify` hooks keep results readable (constants folded, scalar factors pulled to
the front, transposes pushed onto leaves, `AB + AᵀB` factored).
"""

from __future__ import annotations

import math
import re
from typing import Optional

from .expr import OPS, Expr, Op, ShapeMsg, make, make_raw, register
from .shapes import SCALAR, STRICT, DimMismatch, Ty, col, fmt, mat

# ----------------------------------------------------------------- precedence of notation
ADD, MUL, JUXT, NEG, POW, POST, ATOM = 1, 2, 3, 2, 4, 5, 6


# ----------------------------------------------------------------- smart constructors
def const(value: float) -> Expr:
    value = float(value)
    if value == 0.0:
        value = 0.0  # no -0.0
    return make_raw("const", (), (value,))


def sym(name: str, ty: Ty) -> Expr:
    return make_raw("sym", (), (name, ty))


def add(a: Expr, b: Expr) -> Expr:
    return make("add", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    return make("mul", a, b)


def neg(a: Expr) -> Expr:
    return mul(const(-1.0), a)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def div(a: Expr, b: Expr) -> Expr:
    return make("div", a, b)


def power(a: Expr, b: Expr) -> Expr:
    return make("pow", a, b)


def matmul(a: Expr, b: Expr) -> Expr:
    return make("matmul", a, b)


def T(a: Expr) -> Expr:
    return make("T", a)


def fn(name: str, a: Expr) -> Expr:
    return make(name, a)


def fill(value: Expr, ty: Ty) -> Expr:
    """value (a scalar) in every entry of an array of shape ty: `c𝟙`."""
    return make("fill", value, params=(ty,))


def zeros(ty: Ty) -> Expr:
    return fill(const(0.0), ty)


def eye(n) -> Expr:
    return make_raw("eye", (), (n,))


def summ(a: Expr, axis=None, keep: bool = False) -> Expr:
    return make("sum", a, params=(axis, keep))


def is_zero(e: Expr) -> bool:
    return (e.is_const and e.value == 0.0) or (e.op == "fill" and is_zero(e.args[0]))


def is_one(e: Expr) -> bool:
    return e.is_const and e.value == 1.0


def split_coef(e: Expr) -> tuple[float, Expr]:
    """c·X → (c, X); anything else → (1, e). Coefficients are always numeric constants."""
    if e.op == "mul" and e.args[0].is_const and not e.args[1].is_const:
        return e.args[0].value, e.args[1]
    return 1.0, e


def scale(c: float, e: Expr) -> Expr:
    return mul(const(c), e) if c != 1.0 else e


def like(e: Expr, ty: Ty) -> Expr:
    """Coerce a vector to the orientation of ty (adjoints must have the argument's shape)."""
    if e.ty.is_vector and ty.is_vector and e.ty.row != ty.row:
        return T(e)
    if e.ty.is_scalar and not ty.is_scalar:
        return fill(e, ty)
    return e


def unbroadcast(G: Expr, ty: Ty) -> Expr:
    """Sum the adjoint of a broadcast result back down to the shape ty of an operand."""
    g = G.ty
    if g.dims == ty.dims and g.row == ty.row:
        return G
    if ty.is_scalar:
        return summ(G)
    if ty.is_vector and g.is_matrix:
        return like(summ(G, 0), ty)
    if ty.is_vector and g.is_vector:  # (1,) against (n,)
        return like(summ(G, 0, True), ty)
    if ty.is_matrix and g.is_matrix:
        out = G
        for axis in (0, 1):
            if ty.dims[axis] == 1 and g.dims[axis] != 1:
                out = summ(out, axis, True)
        return out
    raise AssertionError(f"cannot unbroadcast {fmt(g)} to {fmt(ty)}")


def mm(a: Expr, b: Expr) -> Expr:
    """Matrix product that treats a scalar as 1×1 (used by the matmul derivative)."""
    if a.ty.is_scalar or b.ty.is_scalar:
        return mul(a, b)
    return matmul(a, b)


# ----------------------------------------------------------------- shape rules
def _shape_err(op: str, why: str) -> ShapeMsg:
    return ShapeMsg(f"{op}: {why}")


def broadcast_shape(symbol: str):
    """numpy broadcasting for element-wise binary operators."""

    def rule(ctx, tys, params):
        a, b = tys
        if a.is_scalar:
            return b
        if b.is_scalar:
            return a
        show = getattr(ctx, "show", fmt)
        if a.is_vector and b.is_vector and a.row != b.row:
            raise _shape_err(symbol, f"cannot combine {show(a)} and {show(b)}: a column and a row "
                                     "vector (use outer(a, b) or a@b' for an outer product)")
        out = []
        da, db = list(a.dims), list(b.dims)
        if a.rank != b.rank:  # a vector against a matrix: align with the last axis, as numpy
            short, long_ = (da, db) if a.rank < b.rank else (db, da)
            short[:0] = [None] * (len(long_) - len(short))
        for x, y in zip(da, db):
            if x is None:
                out.append(y)
            elif y is None:
                out.append(x)
            elif x == 1 and y != 1:
                out.append(y)
            elif y == 1 and x != 1:
                out.append(x)
            else:
                try:
                    ctx.same(x, y)
                except DimMismatch as m:
                    raise _shape_err(symbol, f"cannot broadcast {show(a)} with {show(b)}: "
                                             f"dimensions {m}") from None
                out.append(x)
        row = a.row if a.rank >= b.rank else b.row
        return Ty(tuple(out), row and len(out) == 1)

    return rule


def matmul_shape(ctx, tys, params):
    a, b = tys
    show = getattr(ctx, "show", fmt)
    if a.is_scalar or b.is_scalar:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: @ needs vectors or "
                              "matrices (use * to scale by a scalar)")
    if a.is_matrix and b.is_row or a.is_row and b.is_row:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: inner dimensions "
                              f"{_d(ctx, a.dims[-1])} and 1 differ")
    if a.is_col and b.is_row:
        return mat(a.dims[0], b.dims[0])
    inner_a = a.dims[-1] if (a.is_matrix or a.is_row) else a.dims[0]
    inner_b = b.dims[0]
    try:
        ctx.same(inner_a, inner_b)
    except DimMismatch:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: inner dimensions "
                              f"{_d(ctx, inner_a)} and {_d(ctx, inner_b)} differ") from None
    if a.is_matrix and b.is_matrix:
        return mat(a.dims[0], b.dims[1])
    if a.is_matrix:  # matrix @ column
        return col(a.dims[0])
    if b.is_matrix:  # row @ matrix is a row; column @ matrix (numpy 1-D) is the column Bᵀa
        return Ty((b.dims[1],), a.row)
    return SCALAR  # row @ column, or column @ column (numpy's inner product)


def _d(ctx, d):
    show_dim = getattr(ctx, "show_dim", None)
    return show_dim(d) if show_dim else str(d)


def same_shape(ctx, tys, params):
    return tys[0]


def to_scalar(ctx, tys, params):
    return SCALAR


def square(name: str):
    def check(ctx, ty: Ty) -> None:
        show = getattr(ctx, "show", fmt)
        if not ty.is_matrix:
            raise _shape_err(name, f"needs a square matrix, got {ty.kind()} {show(ty)}")
        try:
            ctx.same(ty.dims[0], ty.dims[1])
        except DimMismatch:
            raise _shape_err(name, f"needs a square matrix, got {show(ty)}") from None
    return check


def square_to(name: str, result):
    check = square(name)

    def rule(ctx, tys, params):
        check(ctx, tys[0])
        return result(tys[0])
    return rule


def vector_only(name: str, result):
    def rule(ctx, tys, params):
        ty = tys[0]
        if not ty.is_vector:
            raise _shape_err(name, f"needs a vector, got {ty.kind()} {getattr(ctx, 'show', fmt)(ty)}")
        return result(ty)
    return rule


def sum_shape(ctx, tys, params):
    axis, keep = params
    ty = tys[0]
    if axis is None:
        return SCALAR
    if ty.rank == 0 or axis >= ty.rank or axis < -ty.rank:
        raise _shape_err("sum", f"axis {axis} is out of range for {ty.kind()} {getattr(ctx, 'show', fmt)(ty)}")
    axis %= ty.rank
    if keep:
        dims = list(ty.dims)
        dims[axis] = 1
        return Ty(tuple(dims), ty.row)
    rest = tuple(d for i, d in enumerate(ty.dims) if i != axis)
    return Ty(rest)


def pow_shape(ctx, tys, params):
    if not tys[1].is_scalar:
        raise _shape_err("^", f"the exponent must be a scalar, got {getattr(ctx, 'show', fmt)(tys[1])}")
    return tys[0]


# ----------------------------------------------------------------- notation helpers
def func(uni: str, asc: str | None = None, latex: str | None = None) -> dict:
    asc = asc or uni
    latex = (latex or rf"\operatorname{{{asc}}}").replace("{", "{{").replace("}", "}}")
    return {"unicode": (uni + "({0})", ATOM), "ascii": (asc + "({0})", ATOM),
            "latex": (latex + r"\left({0}\right)", ATOM)}


# ----------------------------------------------------------------- simplification hooks
def _fold(pyfun):
    def simp(args, params):
        if all(a.is_const for a in args):
            try:
                v = pyfun(*(a.value for a in args))
            except (ArithmeticError, ValueError):
                return None
            if isinstance(v, float) and math.isfinite(v):
                return const(v)
        return None
    return simp


def _combine(a: Expr, b: Expr) -> Optional[Expr]:
    """a + b as one term, where that is possible: like terms (cX + dX = (c + d)X) and common
    factors of matrix products (AX + BX = (A + B)X, XA + XB = X(A + B))."""
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if xa is xb:
        c = ca + cb
        return zeros(xa.ty) if c == 0 else scale(c, xa)
    if _InDerivative.on and xa.op == "matmul" and xb.op == "matmul" and ca == cb:
        (p, q), (r, s) = xa.args, xb.args
        if q is s and p.ty == r.ty:
            return scale(ca, matmul(add(*_ordered(p, r)), q))
        if p is r and q.ty == s.ty:
            return scale(ca, matmul(p, add(*_ordered(q, s))))
    return None


class _InDerivative:
    """Factoring AX + BX into (A + B)X and cancelling p ⊘ p are for derivatives, not for the user's formula,
    which is echoed as typed: `differentiate` switches it on while it builds adjoints."""

    on = False

    def __enter__(self):
        self.saved, _InDerivative.on = _InDerivative.on, True

    def __exit__(self, *exc):
        _InDerivative.on = self.saved


IN_DERIVATIVE = _InDerivative()

MAX_FLAT_TERMS = 12  # longer sums are left as written (keeps 10,000-term sums linear)


def _terms(e: Expr, ty, out: list) -> bool:
    """Flatten a sum of same-shaped terms; False when it has too many terms."""
    if e.op == "add" and e.args[0].ty == ty and e.args[1].ty == ty:
        return _terms(e.args[0], ty, out) and _terms(e.args[1], ty, out)
    out.append(e)
    return len(out) <= MAX_FLAT_TERMS


def _simplify_add(args, params) -> Optional[Expr]:
    a, b = args
    if is_zero(a):
        return like_broadcast(b, a, b)
    if is_zero(b):
        return like_broadcast(a, a, b)
    if a.is_const and b.is_const:
        return const(a.value + b.value)
    combined = _combine(a, b)
    if combined is not None:
        return combined
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca == cb and ca < 0 and not xa.is_const and not xb.is_const:  # -cX - cY = -c(X + Y)
        return scale(ca, add(xa, xb))
    if ca < 0 < cb:  # −p + q reads better as q − p
        return add(b, a)
    if a.op == "T" and a.args[0] is b:  # Aᵀ + A is written A + Aᵀ
        return add(b, a)
    if (a.op == "add" or b.op == "add") and a.ty == b.ty:  # like terms anywhere in a longer sum
        terms: list = []
        if _terms(a, a.ty, terms) and _terms(b, a.ty, terms):
            for i in range(len(terms)):
                for j in range(i + 1, len(terms)):
                    merged = _combine(terms[i], terms[j])
                    if merged is not None:
                        rest = terms[:i] + [merged] + terms[i + 1:j] + terms[j + 1:]
                        out = rest[0]
                        for t in rest[1:]:
                            out = add(out, t)
                        return out
    return None


def like_broadcast(keep: Expr, a: Expr, b: Expr) -> Expr:
    """x + 0 is x, but with the broadcast shape of the sum."""
    ty = broadcast_ty(a, b)
    if keep.ty == ty:
        return keep
    if keep.ty.is_scalar:
        return fill(keep, ty)
    return make_raw("add", (keep, zeros(ty)))


def broadcast_ty(a: Expr, b: Expr) -> Ty:
    return broadcast_shape("+")(STRICT, (a.ty, b.ty), ())


def _transposes(e: Expr) -> int:
    return sum(1 for n in _walk(e) if n.op == "T")


def _ordered(p: Expr, q: Expr) -> tuple[Expr, Expr]:
    """Terms in textbook order: fewer transposes first, then smaller."""
    def key(e: Expr):
        return (_transposes(e), e.size)
    return (p, q) if key(p) <= key(q) else (q, p)


def _walk(e: Expr):
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.args)


def _simplify_mul(args, params) -> Optional[Expr]:
    a, b = args
    if a.is_const and b.is_const:
        return const(a.value * b.value)
    if b.ty.is_scalar and not a.ty.is_scalar or (b.is_const and not a.is_const):
        return mul(b, a)  # scalar factors, and constants, to the front
    if is_zero(a) or is_zero(b):
        return zeros(broadcast_ty(a, b))
    if a.is_const:
        if a.value == 1.0:
            return b
        cb, xb = split_coef(b)
        if cb != 1.0:
            return scale(a.value * cb, xb)
        if xb.op == "fill":
            return fill(mul(a, xb.args[0]), xb.ty)
        if b.op == "div" and b.args[0].is_const and b.ty.is_scalar:  # c·(d/s) = (cd)/s
            return div(const(a.value * b.args[0].value), b.args[1])
        if a.value == -1.0 and b.op == "add":  # −(p − q) = q − p
            p, q = b.args
            if split_coef(q)[0] < 0:
                return add(neg(q), neg(p))
        return None  # canonical: the numeric coefficient is the outermost factor
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca != 1.0 or cb != 1.0:
        return scale(ca * cb, mul(xa, xb))
    if a is b and a.ty.is_scalar:  # s·s = s²
        return power(a, const(2.0))
    if a.ty.is_scalar and b.ty.is_scalar and b.op == "pow" and b.args[0] is a and b.args[1].is_const:
        return power(a, const(b.args[1].value + 1.0))
    for x, y in ((a, b), (b, a)):  # c𝟙 ⊙ Y = c·Y
        if x.op == "fill" and broadcast_ty(a, b) == y.ty:
            return mul(x.args[0], y)
    if a.ty.is_scalar and b.op == "mul" and b.args[0].ty.is_scalar and not b.ty.is_scalar:
        return mul(mul(a, b.args[0]), b.args[1])  # a·(b·X) = (ab)·X
    if b.op == "mul" and b.args[0].ty.is_scalar and not b.args[1].ty.is_scalar and not a.ty.is_scalar:
        return mul(b.args[0], mul(a, b.args[1]))  # X ⊙ (s·Y) = s·(X ⊙ Y)
    if a.op == "mul" and a.args[0].ty.is_scalar and not a.ty.is_scalar and not b.ty.is_scalar:
        return mul(a.args[0], mul(a.args[1], b))  # (s·X) ⊙ Y = s·(X ⊙ Y)
    if a.op == "div" and (not b.ty.is_scalar or a.ty.is_scalar):  # (p/q)·r = (p·r)/q
        return div(mul(a.args[0], b), a.args[1])
    if b.op == "div" and not a.ty.is_scalar:
        return div(mul(a, b.args[0]), b.args[1])
    if a.op in ("mul", "div", "pow") or b.op in ("mul", "div", "pow") or a is b:
        return _cancel(make_raw("mul", (a, b)))
    return None


def _monomial(e: Expr, sign: float, coef: list, powers: dict, order: list) -> bool:
    """Flatten a product/quotient into coef · Π baseᵏ; False if it broadcasts (then it stays)."""
    if e.op in ("mul", "div"):
        a, b = e.args
        if not (a.ty.is_scalar or b.ty.is_scalar or a.ty == b.ty):
            return False
        return (_monomial(a, sign, coef, powers, order) and
                _monomial(b, sign if e.op == "mul" else -sign, coef, powers, order))
    if e.is_const:
        if e.value == 0.0 and sign < 0:
            return False
        coef[0] *= e.value ** sign
        return True
    base, k = e, 1.0
    if e.op == "pow" and e.args[1].is_const and float(e.args[1].value).is_integer():
        base, k = e.args[0], e.args[1].value
    if id(base) not in powers:
        order.append(base)
        powers[id(base)] = 0.0
    powers[id(base)] += sign * k
    return True


def _cancel(e: Expr) -> Optional[Expr]:
    """Products and quotients with a repeated factor, collected: p ⊙ q ⊘ p = q, s·s = s²,
    σ ⊙ (1 − σ) ⊘ σ = 1 − σ.  Only when a base repeats, so the result is strictly smaller."""
    coef, powers, order = [1.0], {}, []
    if not _InDerivative.on or not _monomial(e, 1.0, coef, powers, order):
        return None
    occurrences = _count_factors(e)
    if len(order) >= occurrences:
        return None
    num = [(b, k) for b in order if (k := powers[id(b)]) > 0]
    den = [(b, -k) for b in order if (k := powers[id(b)]) < 0]

    def product(items):
        out = None
        for b, k in sorted(items, key=lambda bk: (not bk[0].ty.is_scalar, bk[0].size)):
            term = b if k == 1 else make_raw("pow", (b, const(k)))
            out = term if out is None else make_raw("mul", (out, term))
        return out

    top, bottom = product(num), product(den)
    ty = e.ty
    if top is None:
        top = const(1.0) if ty.is_scalar or bottom is not None and bottom.ty == ty else fill(const(1.0), ty)
    out = top if bottom is None else make_raw("div", (top, bottom))
    if out.ty != ty:
        out = make_raw("mul", (out, fill(const(1.0), ty))) if out.ty.is_scalar else out
        if out.ty != ty:
            return None
    return scale(coef[0], out) if coef[0] != 1.0 else out


def _count_factors(e: Expr) -> int:
    if e.op in ("mul", "div"):
        return _count_factors(e.args[0]) + _count_factors(e.args[1])
    return 0 if e.is_const else 1


def _simplify_div(args, params) -> Optional[Expr]:
    a, b = args
    if a.is_const and b.is_const and b.value != 0:
        return const(a.value / b.value)
    if is_one(b):
        return a
    if b.is_const and b.value != 0:
        return mul(const(1.0 / b.value), a)
    if is_zero(a):
        return zeros(broadcast_ty(a, b))
    ca, xa = split_coef(a)
    if ca != 1.0 and not xa.is_const:
        return scale(ca, div(xa, b))
    if xa is b and a.ty == b.ty:
        return fill(const(1.0), a.ty) if not a.ty.is_scalar else const(1.0)
    if xa.op == "exp" and b.op == "add" and is_one(b.args[0]) and b.args[1] is xa:
        return scale(ca, fn("sigmoid", xa.args[0]))  # eᶻ/(1 + eᶻ) = σ(z)
    if b.ty.is_scalar:
        if xa.op == "div" and xa.args[1] is b:  # (p/s)/s = p/s²
            return scale(ca, div(xa.args[0], power(b, const(2.0))))
        if xa.op == "div" and xa.args[1].op == "pow" and xa.args[1].args[0] is b and xa.args[1].args[1].is_const:
            return scale(ca, div(xa.args[0], power(b, const(xa.args[1].args[1].value + 1.0))))
        s_, rest = (xa.args[0], xa.args[1]) if xa.op == "mul" and xa.args[0].ty.is_scalar else (xa, None)
        cs, s_ = split_coef(s_)
        ca *= cs
        if s_.op == "sqnorm" and b.op == "norm2" and s_.args[0] is b.args[0]:  # ‖v‖²X/‖v‖ = ‖v‖X
            return scale(ca, mul(b, rest) if rest is not None else b)
        if s_ is b:  # (s·X)/s = X
            return scale(ca, rest if rest is not None else const(1.0))
        if s_.op == "pow" and s_.args[0] is b and s_.args[1].is_const:  # sᵏX/s = sᵏ⁻¹X
            lower = power(b, const(s_.args[1].value - 1.0))
            return scale(ca, mul(lower, rest) if rest is not None else lower)
    if exp_sum := _softmax_of(xa, b):
        return scale(ca, exp_sum)
    return _cancel(make_raw("div", (a, b)))


def _softmax_of(num: Expr, den: Expr) -> Optional[Expr]:
    """exp(x) / sum(exp(x)) = softmax(x) for a vector x."""
    if num.op == "exp" and num.ty.is_col and den.op == "sum" and den.params == (None, False) \
            and den.args[0] is num:
        return fn("softmax", num.args[0])
    return None


def _simplify_pow(args, params) -> Optional[Expr]:
    a, b = args
    if b.is_const:
        if b.value == 1.0:
            return a
        if b.value == 0.0:
            return fill(const(1.0), a.ty) if not a.ty.is_scalar else const(1.0)
        if b.value == 2.0 and a.op == "norm2":
            return make("sqnorm", a.args[0])
        if a.is_const:
            return _fold(lambda x, y: x ** y)(args, params)
    return None


def _simplify_matmul(args, params) -> Optional[Expr]:
    a, b = args
    if a.ty.is_col and b.ty.is_matrix:  # numpy's 1-D x @ A is the column Aᵀx
        return matmul(T(b), a)
    if a.ty.is_col and b.ty.is_col:  # numpy's x @ y is the inner product xᵀy
        return matmul(T(a), b)
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca != 1.0 or cb != 1.0:
        return scale(ca * cb, matmul(xa, xb))
    if is_zero(a) or is_zero(b):
        return zeros(matmul_shape(STRICT, (a.ty, b.ty), ()))
    if a.op == "eye":
        return b
    if b.op == "eye":
        return a
    for x, y, pos in ((a, b, 0), (b, a, 1)):  # (sX)Y = s(XY) for a scalar expression s
        if x.op == "mul" and x.args[0].ty.is_scalar and not x.args[1].ty.is_scalar:
            rest = (x.args[1], y) if pos == 0 else (y, x.args[1])
            return mul(x.args[0], matmul(*rest))
        if x.op == "div" and x.args[1].ty.is_scalar and not x.args[0].ty.is_scalar:  # (X/s)Y = XY/s
            rest = (x.args[0], y) if pos == 0 else (y, x.args[0])
            return div(matmul(*rest), x.args[1])
    if a.op == "diagm" and b.op == "diagm":  # diag(u)diag(v) = diag(u ⊙ v)
        return make("diagm", mul(a.args[0], b.args[0]))
    if a.op == "diagm" and b.op == "matmul" and b.args[0].op == "diagm":
        return matmul(matmul(a, b.args[0]), b.args[1])
    if b.op == "diagm" and a.op == "matmul" and a.args[1].op == "diagm":
        return matmul(a.args[0], matmul(a.args[1], b))
    ty = matmul_shape(STRICT, (a.ty, b.ty), ())
    if a.ty.is_col and b.ty.is_row:  # an outer product: 𝟙xᵀ stays as it is
        return None
    if a.op == "fill" and b.ty.is_vector:  # (c𝟙)v = c·sum(v)𝟙
        return fill(mul(a.args[0], summ(b)), ty)
    if b.op == "fill" and a.ty.is_vector:
        return fill(mul(b.args[0], summ(a)), ty) if not ty.is_scalar else mul(b.args[0], summ(a))
    return None


def _simplify_T(args, params) -> Optional[Expr]:
    (a,) = args
    if a.ty.is_scalar:
        return a
    if a.op == "T":
        return a.args[0]
    if a.op in ("eye", "const"):
        return a
    if a.op == "fill":
        return fill(a.args[0], a.ty.transposed())
    if a.op == "mul" and a.args[0].ty.is_scalar:  # (cX)ᵀ = cXᵀ
        return mul(a.args[0], T(a.args[1]))
    if a.op == "add" and a.args[0].ty == a.args[1].ty:  # (P + Q)ᵀ = Pᵀ + Qᵀ when that leaves
        # fewer transposes: (A + Aᵀ)ᵀ = A + Aᵀ.  Not for a broadcast sum: (A + x)ᵀ adds x to rows.
        distributed = add(T(a.args[0]), T(a.args[1]))
        if _transposes(distributed) <= _transposes(a):
            return distributed
    if a.op == "div" and a.args[1].ty.is_scalar:  # (X/s)ᵀ = Xᵀ/s
        return div(T(a.args[0]), a.args[1])
    if a.op == "matmul":  # (AB)ᵀ = BᵀAᵀ, pushing transposes onto the leaves
        return matmul(T(a.args[1]), T(a.args[0]))
    if a.op in ("diagm",):
        return a
    return None


def _simplify_log(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "exp":
        return a.args[0]
    if a.op == "det":
        return make("logdet", a.args[0])
    if a.op == "sum" and a.params == (None, False) and a.args[0].op == "exp":  # log Σ eˣ
        return make("logsumexp", a.args[0].args[0])
    if a.op == "softmax":  # log softmax(v) = v − logsumexp(v)
        v = a.args[0]
        return sub(v, make("logsumexp", v))
    if a.op == "pow" and a.args[0].ty.is_scalar and a.args[0].op in ("det", "exp"):
        return mul(a.args[1], fn("log", a.args[0]))
    return _fold(math.log)(args, params)


def _simplify_det(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":  # det(X⁻¹) = 1/det(X)
        return power(make("det", a.args[0]), const(-1.0))
    if a.op == "T":
        return make("det", a.args[0])
    return None


def _simplify_logdet(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":
        return neg(make("logdet", a.args[0]))
    if a.op == "T":
        return make("logdet", a.args[0])
    return None


def _simplify_inv(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    return None


def _simplify_sum(args, params) -> Optional[Expr]:
    (a,) = args
    axis, keep = params
    if axis is None:
        if a.ty.is_scalar:
            return a
        if a.op == "pow" and a.args[1].is_const and a.args[1].value == 2.0:
            return make("sqnorm", a.args[0])  # Σ x² = ‖x‖²
        if a.op == "fill":
            return mul(a.args[0], make_raw("numel", (), (a.ty,)))
        if a.op == "softmax":
            return const(1.0)
    if a.op == "expand" and a.params[:2] == (axis, keep) and axis is not None:  # Σ of n copies
        n = make_raw("numel", (), (Ty((a.ty.dims[axis],)),))
        return mul(n, a.args[0])
    if a.op == "diagm" and not keep:  # the row and column sums of diag(w) are w
        return summ(a.args[0]) if axis is None else a.args[0]
    if a.op == "mul" and a.args[0].ty.is_scalar and not a.args[1].ty.is_scalar:
        return mul(a.args[0], summ(a.args[1], axis, keep))  # sum is linear
    if a.op == "fill" and axis is not None:
        n = make_raw("numel", (), (Ty((a.ty.dims[axis % a.ty.rank],)),))
        return fill(mul(a.args[0], n), sum_shape(STRICT, (a.ty,), params))
    return None


def _simplify_fill(args, params) -> Optional[Expr]:
    (v,) = args
    (ty,) = params
    if ty.is_scalar:
        return v
    if v.op == "fill":
        return fill(v.args[0], ty)
    return None


def _simplify_tr(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "T":
        return make("tr", a.args[0])
    return None


# ----------------------------------------------------------------- numeric helpers
class Deferred:
    """A value the evaluator keeps in a cheaper form for the only operators that consume it."""

    __slots__ = ()


class Diag(Deferred):
    """diag(d) kept as its vector d: the evaluator hands this to matmul instead of an n×n matrix
    when every user of a diag(·) node is a matrix product (a 2000×2000 Jacobian of tanh(Wx + b)
    is then d[:, None] * W, never diag(d) @ W)."""

    __slots__ = ("d",)

    def __init__(self, d):
        self.d = d


class Scaled(Deferred):
    """c·z kept unmultiplied when only sums use it: a + (−1)·z is computed as a − z, one pass
    over the data instead of two (M − UVᵀ on a 3000×3000 M)."""

    __slots__ = ("c", "z")

    def __init__(self, c, z):
        self.c, self.z = c, z


def _np_add(xp, node, a, b):
    if isinstance(a, Scaled):
        a, b = b, a
    if isinstance(b, Scaled):
        if isinstance(a, Scaled):
            a = a.c * a.z
        return a - b.z if b.c == -1.0 else a + b.c * b.z
    return a + b


def _np_matmul(xp, node, a, b):
    x, y = node.args
    if isinstance(a, Diag):
        if isinstance(b, Diag):
            return xp.diag(a.d * b.d)
        return a.d[:, None] * b if b.ndim == 2 else a.d * b
    if isinstance(b, Diag):
        return a * b.d  # broadcasting along the last axis scales the columns (or a row)
    if x.ty.is_col and y.ty.is_row:
        return xp.multiply.outer(a, b) if hasattr(xp, "multiply") else xp.outer(a, b)
    return a @ b


def _np_T(xp, node, a):
    return a.T if a.ndim == 2 else a


def _np_sum(xp, node, a):
    axis, keep = node.params
    return xp.sum(a, axis=axis, keepdims=keep)


def _np_logdet(xp, node, a):
    sign, value = xp.linalg.slogdet(a)
    if sign <= 0:
        return float("nan")
    return value


def _np_softmax(xp, node, a):
    e = xp.exp(a - xp.max(a))
    return e / xp.sum(e)


def _np_logsumexp(xp, node, a):
    m = xp.max(a)
    return m + xp.log(xp.sum(xp.exp(a - m)))


def _np_sigmoid(xp, node, a):
    return 0.5 * (xp.tanh(0.5 * a) + 1.0)


def _np_softplus(xp, node, a):
    return xp.logaddexp(0.0, a)


def _np_fill(xp, node, v):
    return xp.full(node.ty.dims, v, dtype=float)


def _np_eye(xp, node):
    return xp.eye(node.ty.dims[0])


def _np_dim(xp, node):
    return float(node.params[0])


def _np_numel(xp, node):
    n = 1
    for d in node.params[0].dims:
        n *= d
    return float(n)


def _np_diagm(xp, node, v):
    return xp.diag(v)


def _np_diagv(xp, node, a):
    return xp.diagonal(a).copy()


# ----------------------------------------------------------------- the table
def _sym_shape(ctx, tys, params):
    return params[1]


def _const_notation(r, node):
    v = node.value
    text = f"{v:g}" if not float(v).is_integer() or abs(v) >= 1e16 else str(int(v))
    if r.style == "latex" and "e" in text:
        m, e = text.split("e")
        text = rf"{m}\cdot 10^{{{int(e)}}}"
    if r.style == "unicode":
        text = text.replace("-", "−")
    return text, (NEG if v < 0 else ATOM)


register(Op("const", to_scalar, lambda xp, node: node.value,
            notation={"custom": _const_notation},
            emit=lambda c, n, a: repr(n.value)))
register(Op("sym", _sym_shape, lambda xp, node: None,
            notation={"custom": lambda r, node: (r.name(node.params[0]), ATOM)},
            emit=lambda c, n, a: n.params[0]))
register(Op("numel", to_scalar, _np_numel,
            notation={"custom": lambda r, node: r.dims_product(node.params[0].dims)},
            emit=lambda c, n, a: "float(" + " * ".join(c.dim(d) for d in n.params[0].dims) + ")"))


def _vjp_add_a(node, G):
    return unbroadcast(G, node.args[0].ty)


def _vjp_add_b(node, G):
    return unbroadcast(G, node.args[1].ty)


def _add_notation(r, node):
    a, b = node.args
    left = r.child(a, ADD)
    c, x = split_coef(b)
    if b.is_const and b.value < 0:
        c, x = b.value, const(1.0)
    if c < 0:
        minus = " − " if r.style == "unicode" else " - "
        return left + minus + r.child(scale(-c, x), ADD + 0.5), ADD
    return left + " + " + r.child(b, ADD), ADD  # a + (b + c) = a + b + c


register(Op("add", broadcast_shape("+"), _np_add,
            vjp=(_vjp_add_a, _vjp_add_b), notation={"custom": _add_notation},
            simplify=_simplify_add,
            emit=lambda c, n, a: c.add(n, a),
            rule='d(A + B) = dA + dB (a broadcast operand gets the adjoint summed over the broadcast axes)'))


def _mul_notation(r, node):
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


def _vjp_mul_a(node, G):
    return unbroadcast(mul(G, node.args[1]), node.args[0].ty)


def _vjp_mul_b(node, G):
    return unbroadcast(mul(G, node.args[0]), node.args[1].ty)


register(Op("mul", broadcast_shape("*"), lambda xp, node, a, b: a * b,
            vjp=(_vjp_mul_a, _vjp_mul_b), notation={"custom": _mul_notation},
            simplify=_simplify_mul,
            emit="{0} * {1}",
            rule='d(A ⊙ B) = dA ⊙ B + A ⊙ dB'))


def _div_notation(r, node):
    a, b = node.args
    if r.style == "latex":
        return rf"\frac{{{r.child(a, 0)}}}{{{r.child(b, 0)}}}", ATOM
    sep = " / " if (b.ty.is_scalar or r.style == "ascii") else " ⊘ "
    # a juxtaposed product in a denominator is parenthesised: x / (xᵀAx), not x / xᵀAx
    return r.child(a, MUL) + sep + r.child(b, POW if r.style == "unicode" else MUL + 0.5), MUL


register(Op("div", broadcast_shape("/"), lambda xp, node, a, b: a / b,
            vjp=(lambda node, G: unbroadcast(div(G, node.args[1]), node.args[0].ty),
                 lambda node, G: unbroadcast(neg(div(mul(G, node), node.args[1])), node.args[1].ty)),
            notation={"custom": _div_notation}, simplify=_simplify_div,
            fails="division by zero",
            emit="{0} / {1}",
            rule='d(A ⊘ B) = dA ⊘ B − A ⊙ dB ⊘ B²'))


def _pow_notation(r, node):
    a, b = node.args
    base = r.child(a, POW + 0.5)
    if r.style == "unicode" and b.is_const and float(b.value).is_integer() and -9 <= b.value <= 9:
        sup = str(int(b.value)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return base + sup, POW
    if r.style == "latex":
        return base + "^{" + r.child(b, 0) + "}", POW
    return base + "^" + r.child(b, POW), POW


def _vjp_pow_base(node, G):
    a, b = node.args
    if b.is_const:
        return mul(G, mul(b, power(a, const(b.value - 1.0))))
    return mul(G, mul(b, power(a, sub(b, const(1.0)))))


def _vjp_pow_exp(node, G):
    a, _ = node.args
    return unbroadcast(mul(G, mul(node, fn("log", a))), SCALAR)


register(Op("pow", pow_shape, lambda xp, node, a, b: a ** b,
            vjp=(_vjp_pow_base, _vjp_pow_exp), notation={"custom": _pow_notation},
            simplify=_simplify_pow, fails="power of a negative number or of zero",
            emit="{0} ** {1}",
            rule='d(Aᵖ) = p·Aᵖ⁻¹ ⊙ dA (element-wise chain rule)'))


def _vjp_matmul_a(node, G):
    a, b = node.args
    return like(mm(G, T(b)), a.ty)


def _vjp_matmul_b(node, G):
    a, b = node.args
    return like(mm(T(a), G), b.ty)


_FUNC_WORD = re.compile(r"[A-Za-z]{2,}\(")


def _rightmost(e: Expr) -> Expr:
    while e.op == "matmul":
        e = e.args[1]
    return e


def _matmul_notation(r, node):
    a, b = node.args
    if r.style == "ascii":
        right = r.child(b, MUL if b.op == "matmul" else MUL + 0.5)  # @ is associative
        return r.child(a, MUL) + " @ " + right, MUL
    left, right = r.child(a, JUXT), r.child(b, JUXT)
    sep = "" if r.style == "unicode" else " "
    if r.style == "unicode" and (left[-1:].isalnum() or left[-1:] in "ᵀ¹)") and right[:1].isalnum() and (
            len(r.name(r.leaf_name(a)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or
            len(r.name(r.leaf_name(b)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or _FUNC_WORD.match(right)
            or (left.endswith(")") and _rightmost(a).op not in ("add", "mul", "div", "sym", "T"))):
        sep = " "  # Xᵀ diag(…), W x_in: separate words, keep single letters together (XΘ)
    return left + sep + right, JUXT


register(Op("matmul", matmul_shape, _np_matmul, vjp=(_vjp_matmul_a, _vjp_matmul_b),
            notation={"custom": _matmul_notation}, simplify=_simplify_matmul,
            emit=lambda c, n, a: c.matmul(n, a),
            rule='d(AB) = dA·B + A·dB and ⟨G, dA·B⟩ = ⟨GBᵀ, dA⟩, ⟨G, A·dB⟩ = ⟨AᵀG, dB⟩'))


def _T_notation(r, node):
    (a,) = node.args
    if a.op == "inv":
        inner = r.child(a.args[0], POST + 0.5)
        return inner + {"unicode": "⁻ᵀ", "ascii": "'", "latex": "^{-\\top}"}[r.style] if r.style != "ascii" \
            else "inv(" + r.child(a.args[0], 0) + ")'", POST
    mark = {"unicode": "ᵀ", "ascii": "'", "latex": "^\\top"}[r.style]
    return r.child(a, POST + 0.5) + mark, POST


register(Op("T", lambda ctx, tys, p: tys[0].transposed(), _np_T,
            vjp=(lambda node, G: T(G),), notation={"custom": _T_notation},
            simplify=_simplify_T,
            emit=lambda c, n, a: f"{a[0]}.T" if n.ty.is_matrix else a[0],
            rule='d(Aᵀ) = (dA)ᵀ and ⟨G, dAᵀ⟩ = ⟨Gᵀ, dA⟩'))


# element-wise functions: name, numpy, derivative f'(x) (as an expression in x and f(x)), notation
def _elementwise(name, impl, deriv, notation=None, simplify=None, fails="", emit=None):
    def vjp(node, G):
        return mul(G, deriv(node.args[0], node))
    register(Op(name, same_shape, impl, vjp=(vjp,), notation=notation or func(name),
                simplify=simplify, fails=fails, emit=emit or f"np.{name}({{0}})",
                rule=f"d {name}(A) = {name}'(A) ⊙ dA (element-wise chain rule)"))


one = lambda: const(1.0)  # noqa: E731
_elementwise("exp", lambda xp, n, a: xp.exp(a), lambda x, y: y, simplify=_fold(math.exp),
             fails="overflow in exp")
_elementwise("log", lambda xp, n, a: xp.log(a), lambda x, y: div(one(), x),
             simplify=_simplify_log, fails="log of a value that is not positive")
_elementwise("sqrt", lambda xp, n, a: xp.sqrt(a), lambda x, y: div(const(0.5), y),
             notation={"unicode": ("√({0})", ATOM), "ascii": ("sqrt({0})", ATOM),
                       "latex": (r"\sqrt{{{0}}}", ATOM)},
             fails="sqrt of a negative value")
_elementwise("sin", lambda xp, n, a: xp.sin(a), lambda x, y: fn("cos", x), func("sin", latex=r"\sin"))
_elementwise("cos", lambda xp, n, a: xp.cos(a), lambda x, y: neg(fn("sin", x)), func("cos", latex=r"\cos"))
_elementwise("tan", lambda xp, n, a: xp.tan(a), lambda x, y: add(one(), power(y, const(2.0))),
             func("tan", latex=r"\tan"))
_elementwise("tanh", lambda xp, n, a: xp.tanh(a), lambda x, y: sub(one(), power(y, const(2.0))),
             func("tanh", latex=r"\tanh"))
_elementwise("sigmoid", _np_sigmoid, lambda x, y: mul(y, sub(one(), y)),
             func("σ", "sigmoid", r"\sigma"), emit="_sigmoid({0})")
_elementwise("relu", lambda xp, n, a: xp.maximum(a, 0.0), lambda x, y: fn("step", x), emit="np.maximum({0}, 0.0)")
_elementwise("softplus", _np_softplus, lambda x, y: fn("sigmoid", x), emit="np.logaddexp(0.0, {0})")
_elementwise("abs", lambda xp, n, a: xp.abs(a), lambda x, y: fn("sign", x),
             {"unicode": ("|{0}|", ATOM), "ascii": ("abs({0})", ATOM),
              "latex": (r"\left|{0}\right|", ATOM)})
_elementwise("sign", lambda xp, n, a: xp.sign(a), lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0))
_elementwise("step", lambda xp, n, a: (a > 0) * 1.0, lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0),
             {"unicode": ("𝟙({0} > 0)", ATOM), "ascii": ("step({0})", ATOM),
              "latex": (r"\mathbb{{1}}\left[{0} > 0\right]", ATOM)}, emit="({0} > 0) * 1.0")


def _apply_notation(r, node):
    name, order = node.params
    prime = "'" * order
    return r.name(name) + prime + "(" + r.child(node.args[0], 0) + ")", ATOM


register(Op("apply", same_shape, lambda xp, node, a: None,
            vjp=(lambda node, G: mul(G, make("apply", node.args[0],
                                             params=(node.params[0], node.params[1] + 1))),),
            notation={"custom": _apply_notation},
            rule="d h(A) = h'(A) ⊙ dA (element-wise chain rule)"))


def _vjp_sum(node, G):
    a = node.args[0]
    axis, keep = node.params
    if axis is None:
        return fill(G, a.ty)
    return make("expand", G, params=(axis % a.ty.rank, keep, a.ty))


def _sum_notation(r, node):
    axis, keep = node.params
    inner = r.child(node.args[0], 0)
    if r.style == "latex":
        return (r"\sum " if axis is None else rf"\sum_{{\mathrm{{axis}}={axis}}} ") + r.child(node.args[0], MUL + 0.5), MUL
    if axis is None:
        return f"sum({inner})", ATOM
    return f"sum({inner}, {axis})" if not keep else f"sum({inner}, {axis}, keepdims)", ATOM


register(Op("sum", sum_shape, _np_sum, vjp=(_vjp_sum,), notation={"custom": _sum_notation},
            simplify=_simplify_sum,
            emit=lambda c, n, a: f"np.sum({a[0]}, axis={n.params[0]}, keepdims={n.params[1]})" if n.params[0] is not None else f"np.sum({a[0]})",
            rule='d sum(A) = ⟨𝟙, dA⟩'))


def _expand_shape(ctx, tys, params):
    return params[2]


def _np_expand_full(xp, node, g):
    axis, keep, ty = node.params
    if not keep and g.ndim < len(ty.dims):
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, ty.dims)


def _expand_notation(r, node):
    axis, keep, ty = node.params
    g = node.args[0]
    if r.style == "ascii":
        return f"expand({r.child(g, 0)}, {axis})", ATOM
    ones = "𝟙" if r.style == "unicode" else r"\mathbf{1}"
    if axis == 0 and not keep:  # each row is Gᵀ: 𝟙Gᵀ
        return ones + r.child(T(g), JUXT), JUXT
    return r.child(g, JUXT) + ones + ("ᵀ" if r.style == "unicode" else r"^\top"), JUXT


register(Op("expand", _expand_shape, _np_expand_full,
            vjp=(lambda node, G: summ(G, node.params[0], node.params[1]),),
            notation={"custom": _expand_notation},
            emit=lambda c, n, a: c.expand(n, a),
            rule='d expand(g) = expand(dg)'))


def _fill_notation(r, node):
    v = node.args[0]
    ones = {"unicode": "𝟙", "ascii": "1", "latex": r"\mathbf{1}"}[r.style]
    if is_zero(v):
        return "0", ATOM
    if is_one(v):
        return ones, ATOM
    if r.style == "ascii":
        return r.child(v, ATOM), ATOM
    return r.child(v, MUL) + ("·" if r.style == "unicode" else r" \cdot ") + ones, MUL


register(Op("fill", lambda ctx, tys, p: p[0], _np_fill,
            vjp=(lambda node, G: summ(G),), notation={"custom": _fill_notation},
            simplify=_simplify_fill,
            emit=lambda c, n, a: f"np.full({c.shape(n.ty)}, {a[0]})",
            rule='d(c𝟙) = dc·𝟙'))

register(Op("mean", to_scalar, lambda xp, node, a: xp.mean(a),
            vjp=(lambda node, G: fill(div(G, make_raw("numel", (), (node.args[0].ty,))), node.args[0].ty),),
            notation=func("mean"),
            emit="np.mean({0})",
            rule='d mean(A) = ⟨𝟙/N, dA⟩'))
register(Op("logsumexp", to_scalar, _np_logsumexp,
            vjp=(lambda node, G: mul(G, fn("exp", sub(node.args[0], node)))
                 if not node.args[0].ty.is_vector else mul(G, fn("softmax", node.args[0])),),
            notation=func("logsumexp"),
            emit="_logsumexp({0})",
            rule='d logsumexp(a) = ⟨softmax(a), da⟩'))


def _vjp_softmax(node, G):
    s = node  # d softmax: s ⊙ (G − sᵀG)
    return sub(mul(s, G), mul(matmul(T(like(s, col(s.ty.dims[0]))), like(G, col(s.ty.dims[0]))), s))


register(Op("softmax", vector_only("softmax", lambda ty: ty), _np_softmax,
            vjp=(_vjp_softmax,), notation=func("softmax"),
            emit="_softmax({0})",
            rule='d softmax(v) = (diag(s) − ssᵀ) dv with s = softmax(v)'))


def _norm_notation(sub_u, sub_l, sq=False):
    def render(r, node):
        inner = r.child(node.args[0], 0)
        if r.style == "unicode":
            return "‖" + inner + "‖" + sub_u + ("²" if sq else ""), ATOM if not sq else POW
        if r.style == "latex":
            return r"\left\|" + inner + r"\right\|" + sub_l + ("^2" if sq else ""), ATOM if not sq else POW
        return "||" + inner + "||" + ("_1" if sub_u == "₁" else "") + ("^2" if sq else ""), ATOM if not sq else POW
    return {"custom": render}


register(Op("norm2", to_scalar, lambda xp, node, a: xp.sqrt(xp.sum(a * a)),
            vjp=(lambda node, G: mul(div(G, node), node.args[0]),),
            notation=_norm_notation("", ""),
            emit="np.sqrt(np.vdot({0}, {0}))",
            rule='d‖A‖ = ⟨A/‖A‖, dA⟩'))
register(Op("sqnorm", to_scalar, lambda xp, node, a: xp.sum(a * a),
            vjp=(lambda node, G: mul(mul(const(2.0), G), node.args[0]),),
            notation=_norm_notation("", "", sq=True),
            emit="np.vdot({0}, {0})",
            rule='d‖A‖² = ⟨2A, dA⟩'))
register(Op("norm1", to_scalar, lambda xp, node, a: xp.sum(xp.abs(a)),
            vjp=(lambda node, G: mul(G, fn("sign", node.args[0])),),
            notation=_norm_notation("₁", "_1"),
            emit="np.sum(np.abs({0}))",
            rule='d‖A‖₁ = ⟨sign(A), dA⟩'))


def _inv_T(a: Expr) -> Expr:
    return T(make("inv", a))


register(Op("tr", square_to("tr", lambda ty: SCALAR), lambda xp, node, a: xp.trace(a),
            vjp=(lambda node, G: mul(G, eye(node.args[0].ty.dims[0])),),
            notation=func("tr", latex=r"\operatorname{tr}"), simplify=_simplify_tr,
            emit="np.trace({0})",
            rule='d tr(A) = ⟨I, dA⟩'))
register(Op("det", square_to("det", lambda ty: SCALAR), lambda xp, node, a: xp.linalg.det(a),
            vjp=(lambda node, G: mul(mul(G, node), _inv_T(node.args[0])),),
            notation=func("det", latex=r"\det"), simplify=_simplify_det,
            emit="np.linalg.det({0})",
            rule='d det(A) = det(A)·⟨A⁻ᵀ, dA⟩'))
register(Op("logdet", square_to("logdet", lambda ty: SCALAR), _np_logdet,
            vjp=(lambda node, G: mul(G, _inv_T(node.args[0])),),
            notation=func("logdet", latex=r"\log\det"), simplify=_simplify_logdet,
            fails="logdet of a matrix whose determinant is not positive",
            emit="_logdet({0})",
            rule='d log det(A) = ⟨A⁻ᵀ, dA⟩'))


def _inv_notation(r, node):
    if r.style == "ascii":
        return "inv(" + r.child(node.args[0], 0) + ")", ATOM
    return r.child(node.args[0], POST + 0.5) + ("⁻¹" if r.style == "unicode" else "^{-1}"), POST


def _np_inv(xp, node, a):
    return xp.linalg.inv(a)


register(Op("inv", square_to("inv", lambda ty: ty), _np_inv,
            vjp=(lambda node, G: neg(matmul(matmul(T(node), G), T(node))),),
            notation={"custom": _inv_notation}, simplify=_simplify_inv,
            fails="inverse of a singular matrix",
            emit="np.linalg.inv({0})",
            rule='d(A⁻¹) = −A⁻¹ dA A⁻¹ and ⟨G, −A⁻¹dA A⁻¹⟩ = ⟨−A⁻ᵀGA⁻ᵀ, dA⟩'))
register(Op("diagm", vector_only("diag", lambda ty: mat(ty.dims[0], ty.dims[0])), _np_diagm,
            vjp=(lambda node, G: like(make("diagv", G), node.args[0].ty),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            emit="np.diag({0})",
            rule='d diag(v) = diag(dv) and ⟨G, diag(dv)⟩ = ⟨diag(G), dv⟩'))
register(Op("diagv", square_to("diag", lambda ty: col(ty.dims[0])), _np_diagv,
            vjp=(lambda node, G: make("diagm", G),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            emit="np.diagonal({0}).copy()",
            rule='d diag(A) = diag(dA)'))
register(Op("eye", lambda ctx, tys, p: mat(p[0], p[0]), _np_eye,
            notation={"custom": lambda r, node: ("I", ATOM)},
            emit=lambda c, n, a: f"np.eye({c.dim(n.params[0])})"))


def derivative_of_elementwise(name: str, x: Expr) -> Expr:
    """f'(x) for an element-wise builtin f, from its own derivative rule (used to evaluate h')."""
    node = fn(name, x)
    ones = fill(const(1.0), x.ty) if not x.ty.is_scalar else const(1.0)
    return OPS[name].vjp[0](node, ones)

ELEMENTWISE = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "softplus",
               "abs", "sign")


def _simplify_elemderiv(args, params):
    from .differentiate import elementwise_derivative

    name, order = params
    return elementwise_derivative(name, order, args[0])


register(Op("elemderiv", same_shape, lambda xp, node, a: None,
            notation=func("elemderiv"), simplify=_simplify_elemderiv))
