"""The algebra that keeps formulas readable: smart constructors and their simplification hooks.

Every node is built through `make`, which first offers it to its operator's `simplify` hook: a
rewrite that returns an equal, simpler expression (constants folded, scalar factors pulled to the
front, transposes pushed onto the leaves, like terms collected, `AX + BX` factored).  The
derivative rules in `operators/` build their results with the constructors here (`add`, `mul`,
`matmul`, `T`, ...), so what they produce is simplified as it is built.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Generator
from typing import Callable, Optional

from .expr import OPS, Expr, NonFiniteConstant, make, make_raw
from .shaperules import broadcast_shape, matmul_shape, sum_shape
from .shapes import STRICT, Ty, fmt


# ----------------------------------------------------------------- smart constructors
def const(value: float) -> Expr:
    """A numeric literal.  Folding never yields inf or nan (NonFiniteConstant: the rewrite that
    tried is dropped, see `make`), so every printed constant re-parses."""
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteConstant(f"constant {value} is not finite")
    if value == 0.0:
        value = 0.0  # no -0.0
    return make_raw("const", (), (value,))


def sym(name: str, ty: Ty, structure: str = "") -> Expr:
    """A symbol; `structure` (symmetric, spd, diagonal) as declared (structures.py)."""
    return make_raw("sym", (), (name, ty, structure) if structure else (name, ty))


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
    """aᵀ, with the transpose pushed onto the leaves ((AB)ᵀ = BᵀAᵀ, (P + Q)ᵀ = Pᵀ + Qᵀ).  The
    push goes as deep as a, so the parts it reaches are transposed first, deepest first, and
    every answer is remembered: the Hessian of a formula nested 1,000 deep is neither recursive
    nor quadratic."""
    found = _transpose_known(a)
    if found is not None:
        return found
    made = [_transpose_remember(part, make("T", part)) for part in _transposed_parts(a)]
    out = _transpose_remember(a, make("T", a))
    del made  # the parts' transposes were kept alive (and so remembered) until a's was made
    return out


_transposes_made: "weakref.WeakKeyDictionary[Expr, dict]" = weakref.WeakKeyDictionary()


def _mode() -> tuple:
    """What a simplification may depend on besides its arguments."""
    return (_InDerivative.on, _Distributing.on)


def _transpose_known(a: Expr) -> Optional[Expr]:
    ref = _transposes_made.get(a, {}).get(_mode())
    return ref() if ref is not None else None


def _transpose_remember(a: Expr, out: Expr) -> Expr:
    _transposes_made.setdefault(a, {})[_mode()] = weakref.ref(out)  # weak: never keeps a alive
    return out


def _transposed_parts(a: Expr) -> list:
    """The proper parts of a that `_simplify_T` pushes a transpose into and whose transposes are
    not known yet, deepest first."""
    order: list = []
    seen: set = set()
    stack = [(a, False)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            if n is not a:
                order.append(n)
            continue
        stack.append((n, True))
        for part in _transpose_targets(n):
            if id(part) not in seen and _transpose_known(part) is None:
                seen.add(id(part))
                stack.append((part, False))
    return order


def _transpose_targets(a: Expr) -> tuple:
    """The arguments `_simplify_T` transposes when it transposes a (none where it stops)."""
    if a.ty.is_scalar or a.op == "T" or is_symmetric(a):
        return ()
    if a.op == "matmul" or (a.op == "add" and a.args[0].ty == a.args[1].ty):
        return a.args
    if a.op == "mul" and a.args[0].ty.is_scalar:
        return a.args[1:]
    if a.op == "div" and a.args[1].ty.is_scalar:
        return a.args[:1]
    return ()


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


# ----------------------------------------------------------------- simplification hooks
def _fold(pyfun: Callable[..., float]) -> Callable[..., Expr | None]:
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
    if xa is xb or _commuted(xa, xb):
        c = ca + cb
        return zeros(xa.ty) if c == 0 else scale(c, xa)
    if (_InDerivative.on and xa.op == xb.op == "div" and xa.args[1] is xb.args[1] and ca == cb
            and xa.args[1].ty.is_scalar and xa.args[0].ty == xb.args[0].ty):  # p/s + q/s = (p + q)/s
        return scale(ca, div(add(*_ordered(xa.args[0], xb.args[0])), xa.args[1]))
    if (xa.op == xb.op == "mul" and xa.args[0] is xb.args[0] and xa.args[0].ty.is_scalar
            and not xa.args[0].is_const and xa.args[1].ty == xb.args[1].ty):  # sX + sY, s an expression
        inner = _combine(scale(ca, xa.args[1]), scale(cb, xb.args[1]))
        if inner is not None:
            return mul(xa.args[0], inner)
    if _InDerivative.on and xa.op == "matmul" and xb.op == "matmul":
        fa, fb = matmul_factors(xa, []), matmul_factors(xb, [])
        if fa is None or fb is None:
            return None
        if fa[-1] is fb[-1]:  # a common last factor, however the chains are grouped: s(sᵀW) = (ssᵀ)W
            p, r = _product(fa[:-1]), _product(fb[:-1])
            if p is not None and r is not None and p.ty == r.ty:
                return _factored(ca, p, cb, r, lambda inner: matmul(inner, fa[-1]))
        if fa[0] is fb[0]:
            q, t = _product(fa[1:]), _product(fb[1:])
            if q is not None and t is not None and q.ty == t.ty:
                return _factored(ca, q, cb, t, lambda inner: matmul(fa[0], inner))
    return None


def _factored(ca: float, p: Expr, cb: float, r: Expr, around) -> Expr:
    """ca·(…p…) + cb·(…r…) with the common factor written once: c(…(p + r)…) when the
    coefficients agree, (…(ca·p + cb·r)…) when they do not (AX − BX = (A − B)X)."""
    if ca == cb:
        return scale(ca, around(add(*_ordered(p, r))))
    return around(add(scale(ca, p), scale(cb, r)))


def _product(factors: list) -> Optional[Expr]:
    """F₁F₂…F_k grouped from the left; None where a partial product would be a scalar (xᵀx
    inside a chain cannot be matrix-multiplied on)."""
    out = factors[0]
    for f in factors[1:]:
        if out.ty.is_scalar or f.ty.is_scalar:
            return None
        out = matmul(out, f)
    return None if out.ty.is_scalar else out


def _commuted(p: Expr, q: Expr) -> bool:
    """p ⊙ q and q ⊙ p: the same element-wise product (same-shaped factors, no broadcast)."""
    return (p.op == q.op == "mul" and p.args[0] is q.args[1] and p.args[1] is q.args[0]
            and p.args[0].ty == p.args[1].ty)


class _InDerivative:
    """Factoring AX + BX into (A + B)X and cancelling p ⊘ p are for derivatives, not for the user's formula,
    which is echoed as typed: `differentiate` switches it on while it builds adjoints."""

    on = False

    def __enter__(self):
        self.saved, _InDerivative.on = _InDerivative.on, True

    def __exit__(self, *exc):
        _InDerivative.on = self.saved


IN_DERIVATIVE = _InDerivative()


class AsWritten:
    """Simplification as for a user's formula (no derivative-only rewrites), whatever the caller
    is in the middle of: shape inference builds a formula's graph when it is first asked for,
    which may be inside a derivative."""

    def __enter__(self) -> None:
        self.saved = (_InDerivative.on, _Distributing.on)
        _InDerivative.on = _Distributing.on = False

    def __exit__(self, *exc: object) -> None:
        _InDerivative.on, _Distributing.on = self.saved

MAX_FLAT_TERMS = 12  # longer sums are left as written (keeps 100,000-term sums linear)
_long_sums: "weakref.WeakSet[Expr]" = weakref.WeakSet()  # sums known to have more terms


def _terms(e: Expr, ty, out: list) -> bool:
    """Flatten a sum of same-shaped terms into out; False (after at most MAX_FLAT_TERMS + 1 nodes
    looked at) when it has more terms than that — so building a long sum stays linear.  A sum
    found long is remembered: a sum containing it is long too, found in a step or two, so
    adding term after term to a 100,000-term sum costs the same each time."""
    empty = not out
    stack = [e]
    while stack:
        n = stack.pop()
        if n in _long_sums:
            if empty and n is not e and e.op == "add" and e.ty == ty:
                _long_sums.add(e)  # so the next, longer sum stops here at once
            return False
        if n.op == "add" and n.args[0].ty == ty and n.args[1].ty == ty:
            stack.append(n.args[1])
            stack.append(n.args[0])
        else:
            out.append(n)
        if len(out) + len(stack) > MAX_FLAT_TERMS:
            if empty and e.op == "add" and e.ty == ty:
                _long_sums.add(e)
            return False
    return True


_sums_made: dict = {}  # (a, b, mode) -> what a + b simplified to (None: a + b as written)
_SUMS_MADE_LIMIT = 4096  # recent ones only: enough for the prefixes of a sum being rebuilt


def _simplify_add(args, params) -> Optional[Expr]:
    """a + b simplified, remembered for the recent pairs: merging like terms rebuilds the sum
    around the merged term, one prefix at a time, and each prefix is a sum simplified before
    (without this, every term added to a short sum re-simplified all its prefixes: a
    100,000-term sum of ten distinct terms cost 20,000 like-term comparisons a term)."""
    key = (args[0], args[1], _mode())
    if key in _sums_made:
        return _sums_made[key]
    out = _simplify_add_once(args)
    if len(_sums_made) >= _SUMS_MADE_LIMIT:
        _sums_made.clear()
    _sums_made[key] = out
    return out


def _simplify_add_once(args) -> Optional[Expr]:
    a, b = args
    if _onto_long_sum(a, b):
        return None
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
    if _InDerivative.on and a.ty == b.ty and not a.ty.is_scalar and any(
            split_coef(x)[1].op == "mul" and "add" in (y.op for y in split_coef(x)[1].args) for x in args):
        distributed = _distributed(make_raw("add", (a, b)))
        if distributed is not None:
            return distributed
    if (a.op == "add" or b.op == "add") and a.ty == b.ty:  # like terms anywhere in a longer sum
        terms: list = []
        if _terms(a, a.ty, terms):
            # pairs within a sum simplified before hold no like terms: only pairs reaching past
            # it are compared (the same first pair is found, with fewer comparisons)
            known = len(terms) if _settled(a) else 1
            if _terms(b, a.ty, terms):
                for i in range(len(terms)):
                    for j in range(max(i + 1, known), len(terms)):
                        merged = _combine(terms[i], terms[j])
                        if merged is not None:
                            rest = terms[:i] + [merged] + terms[i + 1:j] + terms[j + 1:]
                            out = rest[0]
                            for t in rest[1:]:
                                out = add(out, t)
                            return out
    return None


_UNKNOWN = object()


def _onto_long_sum(a: Expr, b: Expr) -> bool:
    """Whether a + b is written as it is because a is a long sum (its first operand known long)
    and b a term that nothing below applies to: not zero, not a multiple of a itself, and not
    in a derivative (where terms distribute).  Every rule below then gives None, and a is a long
    sum found in one step: a term added to a 100,000-term sum costs a few tests."""
    if a.op != "add" or _InDerivative.on or b.op == "add" or b.is_const or b.op == "fill":
        return False
    first, second = a.args
    if not (first.ty == a.ty and second.ty == a.ty and first in _long_sums):
        return False
    if split_coef(b)[1] is a:
        return False
    _long_sums.add(a)
    return True


def _settled(e: Expr) -> bool:
    """Whether e is a sum whose terms were compared pairwise for like terms, in this mode, and
    none combined: it was built as written by a recent `_simplify_add`."""
    return e.op == "add" and _sums_made.get((e.args[0], e.args[1], _mode()), _UNKNOWN) is None


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


_transpose_counts: "weakref.WeakKeyDictionary[Expr, int]" = weakref.WeakKeyDictionary()


def _transposes(e: Expr) -> int:
    """How many transposes e prints with (a shared subexpression counts at each use), counted
    once per node and remembered: a derivative's DAG is never walked as the tree it prints as."""
    known = _transpose_counts.get(e)
    if known is not None:
        return known
    for n in _unknown_first(e, _transpose_counts):
        _transpose_counts[n] = (n.op == "T") + sum(_transpose_counts[a] for a in n.args)
    return _transpose_counts[e]


def _unknown_first(root: Expr, memo) -> list:
    """The nodes of root not in memo, arguments before users, each once (iterative)."""
    order: list = []
    seen: set = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen and node not in memo:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((a, False) for a in node.args)
    return order


def _ordered(p: Expr, q: Expr) -> tuple[Expr, Expr]:
    """Terms in textbook order: fewer transposes first, then smaller."""
    def key(e: Expr):
        return (_transposes(e), e.size)
    return (p, q) if key(p) <= key(q) else (q, p)


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
    if _InDerivative.on and (a.op == "add" or b.op == "add") and a.ty == b.ty:
        distributed = _distributed(make_raw("mul", (a, b)))
        if distributed is not None:
            return distributed
    if a.op in ("mul", "div", "pow") or b.op in ("mul", "div", "pow") or a is b:
        return _cancel(make_raw("mul", (a, b)))
    return None


MAX_EXPANDED_TERMS = 8


class _Distributing:
    on = False


def _distributed(e: Expr) -> Optional[Expr]:
    """(p + q) ⊙ r as p ⊙ r + q ⊙ r, expanded all the way and like terms collected — kept only
    when that comes out smaller.  It is what makes terms cancel: the chain rule through σ turns
    the cross-entropy −Σ y log σ(z) + (1 − y) log(1 − σ(z)) into ((y − 1) ⊘ (1 − σ) + y ⊘ σ) ⊙
    σ(1 − σ), which distributes and collects to y − σ — the logistic regression gradient
    Xᵀ(σ(Xw) − y) as the textbooks print it.  Derivatives only, and never nested."""
    if _Distributing.on:
        return None
    _Distributing.on = True
    try:
        terms = _expand(e, [32])
        if terms is None or len(terms) < 2 and e.op == "add":
            return None
        out = terms[0]
        for t in terms[1:]:
            out = add(out, t)
        return out if out.size < e.size else None
    finally:
        _Distributing.on = False


def _expand(e: Expr, budget: list) -> Optional[list]:
    """The terms of e with element-wise products distributed over sums (None past the budget)."""
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if e.op == "add" and all(x.ty == e.ty or x.ty.is_scalar for x in e.args):
        left, right = _expand(e.args[0], budget), _expand(e.args[1], budget)
        if left is None or right is None or len(left) + len(right) > MAX_EXPANDED_TERMS:
            return None
        return left + right
    if e.op == "mul" and all(x.ty == e.ty or x.ty.is_scalar for x in e.args) and (
            e.args[0].op == "add" or e.args[1].op == "add"):
        # the terms of one side times the other side whole, so that each product can cancel
        # against it before anything else is distributed
        x, y = e.args
        summed, whole = (x, y) if x.op == "add" else (y, x)
        terms = _expand(summed, budget)
        if terms is None:
            return None
        out: list = []
        for t in terms:
            product = mul(t, whole)  # (y ⊘ σ) ⊙ (σ ⊙ (1 − σ)) = y ⊙ (1 − σ)
            more = _expand(product, budget) if product.op in ("add", "mul") else [product]
            if more is None:
                return None
            out.extend(more)
            if len(out) > MAX_EXPANDED_TERMS:
                return None
        return out
    return [e]


MAX_FACTORS = 16  # longer products are left as written (keeps 1,000-deep chain rules linear)


def _monomial(e: Expr, sign: float, coef: list, powers: dict, order: list) -> bool:
    """Flatten a product/quotient into coef · Π baseᵏ; False if it broadcasts (then it stays),
    or if it has more than MAX_FACTORS factors: the chain rule through a 1,000-deep formula
    multiplies factor onto factor, and flattening the whole product at every step would make
    it quadratic."""
    stack = [(e, sign)]
    looked = 0
    while stack:
        e, sign = stack.pop()
        looked += 1
        if looked > 2 * MAX_FACTORS:
            return False
        if e.op in ("mul", "div"):
            a, b = e.args
            if not (a.ty.is_scalar or b.ty.is_scalar or a.ty == b.ty):
                return False
            stack.append((b, sign if e.op == "mul" else -sign))
            stack.append((a, sign))
            continue
        if e.is_const:
            if e.value == 0.0 and sign < 0:
                return False
            coef[0] *= e.value ** sign
            continue
        base, k = e, 1.0
        if e.op == "pow" and e.args[1].is_const and float(e.args[1].value).is_integer():
            base, k = e.args[0], e.args[1].value
            if base.op in ("mul", "div") and base.ty.is_scalar:  # (ab)ᵏ = aᵏbᵏ, for scalars
                stack.append((base, sign * k))
                continue
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
    count, stack = 0, [e]
    while stack:
        n = stack.pop()
        if n.op in ("mul", "div"):
            stack.extend(n.args)
        elif not n.is_const:
            count += 1
    return count


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
    if _InDerivative.on and xa is b and a.ty == b.ty:  # x/x = 1 (not where x = 0: derivatives only)
        return scale(ca, fill(const(1.0), a.ty) if not a.ty.is_scalar else const(1.0))
    if xa.op == "exp" and b.op == "add" and is_one(b.args[0]) and b.args[1] is xa:
        return scale(ca, fn("sigmoid", xa.args[0]))  # eᶻ/(1 + eᶻ) = σ(z)
    if b.ty.is_scalar and _InDerivative.on:  # cancellations change where f is defined
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


_symmetric_memo: "weakref.WeakKeyDictionary[Expr, bool]" = weakref.WeakKeyDictionary()


def is_symmetric(e: Expr) -> bool:
    """Sᵀ = S, known from the structure alone: the identity, diagonals, Gram products PᵀP and
    PPᵀ, congruences PᵀSP, sums that pair each term with its transpose (A + Aᵀ), scalar
    multiples, inverses and element-wise functions of symmetric matrices.  (XᵀX)⁻ᵀ then prints
    as (XᵀX)⁻¹ and collects with its twin: ∂ log det(XᵀX)/∂X = 2X(XᵀX)⁻¹.

    Each node's answer is remembered; the rules are generators that yield the subexpressions
    they need, run on an explicit stack, so a formula nested thousands deep is answered
    exactly, without recursion."""
    if not _square(e):
        return False
    known = _symmetric_memo.get(e)
    if known is not None:
        return known
    stack = [(e, _symmetric(e))]
    active = {id(e)}  # a node whose answer rests on its own (a broadcast sum is its one term): no
    answer = None
    while stack:
        node, rule = stack[-1]
        try:
            need = rule.send(answer)
        except StopIteration as done:
            answer = _symmetric_memo[node] = bool(done.value)
            active.discard(id(node))
            stack.pop()
            continue
        answer = _symmetric_memo.get(need) if _square(need) and id(need) not in active else False
        if answer is None:
            stack.append((need, _symmetric(need)))
            active.add(id(need))
    return _symmetric_memo[e]


def _square(e: Expr) -> bool:
    return e.ty.is_matrix and e.ty.dims[0] == e.ty.dims[1]


def is_transpose_pair(a: Expr, b: Expr) -> bool:
    """a = bᵀ, read off the structure without building anything."""
    return (a.op == "T" and a.args[0] is b) or (b.op == "T" and b.args[0] is a) or (
        a is b and is_symmetric(a))


MAX_CHAIN = 32  # longer products are not searched for common factors or symmetry


def matmul_factors(e: Expr, out: list, limit: int | None = MAX_CHAIN) -> list | None:
    """The factors F₁…F_k of a product however it is grouped, appended to out; None when there
    are more than `limit` (A(A(A…x)) 1,000 deep is not flattened at every simplifying step)."""
    stack = list(reversed(e.args))
    while stack:
        a = stack.pop()
        if a.op == "matmul":
            stack.extend(reversed(a.args))
        else:
            out.append(a)
            if limit is not None and len(out) > limit:
                return None
    return out


def _symmetric(e: Expr) -> Generator[Expr, bool, bool]:
    """The symmetry rule of e's operator, as a generator: it yields each subexpression whose
    symmetry it needs (is_symmetric sends the answer back) and returns its own.  An operator
    without a rule of its own is symmetric when it acts entry by entry on symmetric operands
    (scalars broadcast); otherwise not known to be."""
    op = OPS[e.op]
    if op.symmetric is not None:
        return (yield from op.symmetric(e))
    if not op.entrywise:
        return False
    for a in e.args:
        if not a.ty.is_scalar and not (yield a):
            return False
    return True


def always_symmetric(e: Expr) -> Generator[Expr, bool, bool]:
    """The symmetry rule of a node symmetric whenever square (I, diag(v), c𝟙)."""
    return True
    yield e  # a generator, like every rule


def symmetric_as_argument(e: Expr) -> Generator[Expr, bool, bool]:
    """The symmetry rule of an operator that keeps its argument's symmetry (Aᵀ, A⁻¹)."""
    return (yield e.args[0])


def symmetric_product(e: Expr) -> Generator[Expr, bool, bool]:
    """F₁F₂…F_k with F_i = F_{k+1−i}ᵀ (and a symmetric middle factor): PᵀP, PᵀSP."""
    fs = matmul_factors(e, [])
    if fs is None:
        return False
    k = len(fs)
    for i in range(k // 2):
        if not (yield from _transpose_pair(fs[i], fs[k - 1 - i])):
            return False
    return k % 2 == 0 or (yield fs[k // 2])


def symmetric_sum(e: Expr) -> Generator[Expr, bool, bool]:
    """Every term is symmetric or meets its own transpose once: A + Aᵀ."""
    if e.args[0].ty == e.args[1].ty == e.ty and (yield e.args[0]) and (yield e.args[1]):
        return True
    terms: list[Expr] = []
    if not _terms(e, e.ty, terms) or terms == [e]:  # a long sum, or a broadcast one
        return False
    unmatched = []
    for t in terms:
        if not (yield t):
            unmatched.append(t)
    while unmatched:
        t = unmatched.pop()
        partner = None
        for i, u in enumerate(unmatched):
            if (yield from _transpose_pair(t, u)):
                partner = i
                break
        if partner is None:
            return False
        unmatched.pop(partner)
    return True


def _transpose_pair(a: Expr, b: Expr) -> Generator[Expr, bool, bool]:
    """is_transpose_pair, as a step of `_symmetric`."""
    if (a.op == "T" and a.args[0] is b) or (b.op == "T" and b.args[0] is a):
        return True
    return a is b and (yield a)


def _simplify_T(args, params) -> Optional[Expr]:
    (a,) = args
    if a.ty.is_scalar:
        return a
    if a.op == "T":
        return a.args[0]
    if is_symmetric(a):
        return a
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


def _simplify_sqrt(args, params) -> Optional[Expr]:
    (a,) = args
    if a.op == "sqnorm":  # √(‖v‖²) = ‖v‖
        return make("norm2", a.args[0])
    return _fold(math.sqrt)(args, params)


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
    if a.op == "pow" and a.args[0].ty.is_scalar and a.args[0].op == "exp":  # log (eᵃ)ᵖ = p·a
        return mul(a.args[1], fn("log", a.args[0]))
    if a.op == "pow" and a.args[0].op == "det" and a.args[1].is_const and not (
            float(a.args[1].value).is_integer() and a.args[1].value % 2 == 0):
        return mul(a.args[1], fn("log", a.args[0]))  # log det(X)ᵖ = p·log det(X), not for even p
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
    if a.op == "div" and a.args[1].ty.is_scalar and not a.args[0].ty.is_scalar:
        return div(summ(a.args[0], axis, keep), a.args[1])  # Σ(A/s) = (ΣA)/s
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
