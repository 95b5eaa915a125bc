"""The algebra that keeps formulas readable: smart constructors and their simplification hooks.

Every node is built through `make`, which first offers it to its operator's `simplify` hook: a
rewrite that returns an equal, simpler expression (constants folded, scalar factors pulled to the
front, transposes pushed onto the leaves, like terms collected).  The derivative rules in
`operators/` build their results with the constructors here (`add`, `mul`, `matmul`, `T`, ...),
so what they produce is simplified as it is built.

Some rewrites are for derivatives only: factoring AX + BX into (A + B)X and s·X + s·Y into
s·(X + Y), cancelling p ⊘ p and x/x and merging powers of one base (x/‖x‖²/‖x‖ = x/‖x‖³: these
change where a formula is defined), distributing (p + q) ⊙ r to collect terms, writing two terms
over a common denominator where that prints shorter.  A
user's formula is echoed as typed, so these are a separate step the differentiator asks for:
`DerivativeForm` rebuilds a derivative's new nodes under `Rules.DERIVATIVE` (each adjoint once
it is complete, before the chain rule reads it).  The rules are a value passed down the hooks
that read them, never a switch someone else flips.
"""

from __future__ import annotations

import enum
import math
import weakref
from collections.abc import Callable, Collection, Generator, Iterable
from typing import TYPE_CHECKING, Optional, TypeAlias

from .expr import OPS, Expr, IllTyped, NonFiniteConstant, make, make_raw
from .shapes import STRICT, Dim, Ty, fmt

if TYPE_CHECKING:
    from .expr import Params, Simplify


class Rules(enum.Enum):
    """Which rewrites a simplification may use besides those that hold wherever the formula is
    defined."""

    AS_WRITTEN = "as written"  # a user's formula (and every plain constructor call)
    DERIVATIVE = "derivative"  # also factoring, cancelling and distributing
    DISTRIBUTING = "distributing"  # derivative rules inside a distribution (never nested)

    # hashed as the singleton each member is (Enum's own hash hashes the name in Python code:
    # a key of the table of recent sums, it cost as much as the rest of building a term)
    __hash__ = object.__hash__


AS_WRITTEN, DERIVATIVE, DISTRIBUTING = Rules.AS_WRITTEN, Rules.DERIVATIVE, Rules.DISTRIBUTING

# a hook of this module: (arguments, settings, the rules in force) -> the rewrite, or None
RuledHook: TypeAlias = Callable[[tuple[Expr, ...], "Params", Rules], Optional[Expr]]


def _make(rules: Rules, op_name: str, args: tuple[Expr, ...], params: Params = ()) -> Expr:
    """`make` under the given rules: as written, `make` itself; otherwise the operator's hook is
    given the rules (hooks of other modules have no derivative-only rewrites and run as usual)."""
    ruled = _RULED.get(OPS[op_name].simplify) if rules is not AS_WRITTEN else None
    if ruled is None:
        return make(op_name, *args, params=params)
    try:
        rewritten = ruled(args, params, rules)
    except (NonFiniteConstant, IllTyped):
        rewritten = None
    return rewritten if rewritten is not None else make_raw(op_name, args, params)


class DerivativeForm:
    """The derivative-only rewrites (factoring, cancelling, distributing), applied to a
    derivative as it grows: each call rebuilds, bottom-up under `Rules.DERIVATIVE`, the nodes of
    its roots not seen before, so over a whole differentiation every node is rebuilt once and
    the cost stays linear.  The nodes `given` (the formula being differentiated, which the
    derivative shares) stay as the user wrote them, and so does a node kept as written (log(2)
    in d log₂x) whose arguments stay and whose operator has no derivative-only rewrite."""

    __slots__ = ("_done",)

    def __init__(self, given: Iterable[Expr]) -> None:
        self._done: dict[Expr, Expr] = {n: n for n in given}  # each node -> its derivative form

    def __call__(self, roots: list[Expr]) -> list[Expr]:
        """One walk: a node is rebuilt once its arguments are (depth first, iterative), and
        the walk never enters a node met before, in this call or an earlier one."""
        done = self._done
        for root in roots:
            if root in done:  # seen before (an adjoint passed on unchanged)
                continue
            stack: list[tuple[Expr, bool]] = [(root, False)]
            while stack:
                node, ready = stack.pop()
                if node in done:  # reached twice below one root
                    continue
                if not ready:
                    stack.append((node, True))
                    stack.extend([(a, False) for a in node.args if a not in done])
                    continue
                args = tuple([done[a] for a in node.args])
                if args == node.args and not _may_rewrite_for_derivatives(node):
                    out = node
                else:
                    out = _make(DERIVATIVE, node.op, args, node.params)
                done.setdefault(out, out)  # a form is its own form: a later root reaching it stops
                done[node] = out
        return [done[r] for r in roots]


def derivative_form(roots: list[Expr], given: Iterable[Expr]) -> list[Expr]:
    """The roots of a derivative with the derivative-only rewrites applied (`DerivativeForm`),
    in one call."""
    return DerivativeForm(given)(roots)


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


def add(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return make("add", a, b) if rules is AS_WRITTEN else _make(rules, "add", (a, b))


def mul(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return make("mul", a, b) if rules is AS_WRITTEN else _make(rules, "mul", (a, b))


def neg(a: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return mul(const(-1.0), a, rules)


def sub(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return add(a, neg(b, rules), rules)


def div(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return make("div", a, b) if rules is AS_WRITTEN else _make(rules, "div", (a, b))


def power(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return make("pow", a, b) if rules is AS_WRITTEN else _make(rules, "pow", (a, b))


def matmul(a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return make("matmul", a, b) if rules is AS_WRITTEN else _make(rules, "matmul", (a, b))


def T(a: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    """aᵀ, with the transpose pushed onto the leaves ((AB)ᵀ = BᵀAᵀ, (P + Q)ᵀ = Pᵀ + Qᵀ).  The
    push goes as deep as a, so the parts it reaches are transposed first, deepest first, and
    every answer is remembered: the Hessian of a formula nested 1,000 deep is neither recursive
    nor quadratic."""
    found = _transpose_known(a, rules)
    if found is not None:
        return found
    made = [_transpose_remember(part, _make(rules, "T", (part,)), rules)
            for part in _transposed_parts(a, rules)]
    out = _transpose_remember(a, _make(rules, "T", (a,)), rules)
    del made  # the parts' transposes were kept alive (and so remembered) until a's was made
    return out


# a node -> its transpose under each rules, weakly both ways (never keeps a node alive)
_transposes_made: weakref.WeakKeyDictionary[Expr, dict[Rules, weakref.ref[Expr]]] = weakref.WeakKeyDictionary()


def _transpose_known(a: Expr, rules: Rules) -> Optional[Expr]:
    ref = _transposes_made.get(a, {}).get(rules)
    return ref() if ref is not None else None


def _transpose_remember(a: Expr, out: Expr, rules: Rules) -> Expr:
    _transposes_made.setdefault(a, {})[rules] = weakref.ref(out)
    return out


def _transposed_parts(a: Expr, rules: Rules) -> list[Expr]:
    """The proper parts of a that `_simplify_T` pushes a transpose into and whose transposes are
    not known yet, deepest first."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack = [(a, False)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            if n is not a:
                order.append(n)
            continue
        stack.append((n, True))
        for part in _transpose_targets(n):
            if part not in seen and _transpose_known(part, rules) is None:
                seen.add(part)
                stack.append((part, False))
    return order


def _transpose_targets(a: Expr) -> tuple[Expr, ...]:
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


def fn(name: str, a: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return _make(rules, name, (a,))


def fill(value: Expr, ty: Ty, rules: Rules = AS_WRITTEN) -> Expr:
    """value (a scalar) in every entry of an array of shape ty: `c𝟙`."""
    return _make(rules, "fill", (value,), (ty,))


def zeros(ty: Ty, rules: Rules = AS_WRITTEN) -> Expr:
    return fill(const(0.0), ty, rules)


def eye(n: Dim) -> Expr:
    return make_raw("eye", (), (n,))


def summ(a: Expr, axis: int | None = None, keep: bool = False, rules: Rules = AS_WRITTEN) -> Expr:
    return _make(rules, "sum", (a,), (axis, keep))


def is_zero(e: Expr) -> bool:
    return (e.is_const and e.value == 0.0) or (e.op == "fill" and is_zero(e.args[0]))


def is_one(e: Expr) -> bool:
    return e.is_const and e.value == 1.0


def split_coef(e: Expr) -> tuple[float, Expr]:
    """c·X → (c, X); anything else → (1, e). Coefficients are always numeric constants."""
    if e.op == "mul" and e.args[0].is_const and not e.args[1].is_const:
        return e.args[0].value, e.args[1]
    return 1.0, e


def scale(c: float, e: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    return mul(const(c), e, rules) if c != 1.0 else e


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
def _fold(pyfun: Callable[..., float]) -> Simplify:
    def simp(args: tuple[Expr, ...], params: Params) -> Expr | None:
        if all(a.is_const for a in args):
            try:
                v = pyfun(*(a.value for a in args))
            except (ArithmeticError, ValueError):
                return None
            if isinstance(v, float) and math.isfinite(v):
                return const(v)
        return None
    return simp


def _combine(a: Expr, b: Expr, rules: Rules) -> Optional[Expr]:
    """a + b as one term, where that is possible: like terms (cX + dX = (c + d)X) and, in a
    derivative, common factors (p/s + q/s = (p + q)/s, AX + BX = (A + B)X, XA + XB = X(A + B))."""
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if xa is xb or _commuted(xa, xb):
        c = ca + cb
        return zeros(xa.ty, rules) if c == 0 else scale(c, xa, rules)
    if (rules is not AS_WRITTEN and xa.op == xb.op == "fill" and xa.ty == xb.ty and xa.args[0].is_const
            and xb.args[0].is_const):
        return fill(const(ca * xa.args[0].value + cb * xb.args[0].value), xa.ty, rules)  # c𝟙 + d𝟙 = (c + d)𝟙
    derivative = rules is not AS_WRITTEN
    if (derivative and xa.op == xb.op == "div" and xa.args[1] is xb.args[1] and ca == cb
            and xa.args[1].ty.is_scalar and xa.args[0].ty == xb.args[0].ty):  # p/s + q/s = (p + q)/s
        return scale(ca, div(add(*_ordered(xa.args[0], xb.args[0]), rules), xa.args[1], rules), rules)
    if (xa.op == xb.op == "mul" and xa.args[0] is xb.args[0] and xa.args[0].ty.is_scalar
            and not xa.args[0].is_const and xa.args[1].ty == xb.args[1].ty):  # sX + sY, s an expression
        inner = _combine(scale(ca, xa.args[1], rules), scale(cb, xb.args[1], rules), rules)
        if inner is not None:
            return mul(xa.args[0], inner, rules)
        if rules is DERIVATIVE:  # s·X + s·Y = s·(X + Y): s printed once (the RBF kernel's Hessian)
            return mul(xa.args[0], add(scale(ca, xa.args[1], rules), scale(cb, xb.args[1], rules), rules), rules)
    if derivative and (va := _diagonal_of(xa, rules)) is not None and (
            vb := _diagonal_of(xb, rules)) is not None:
        # ca·diag(u) + cb·diag(v) = diag(ca·u + cb·v): one diag, whose entries simplify together
        # (the pseudo-Huber Hessian's diag(1/√(1 + r²)) − diag(r²/√(1 + r²)³))
        return _make(rules, "diagm", (add(_entries_scaled(ca, va, rules), _entries_scaled(cb, like(vb, va.ty), rules),
                                          rules),))
    if derivative and xa.op == "matmul" and xb.op == "matmul":
        fa, fb = matmul_factors(xa, []), matmul_factors(xb, [])
        if fa is None or fb is None:
            return None
        if fa[-1] is fb[-1]:  # a common last factor, however the chains are grouped: s(sᵀW) = (ssᵀ)W
            p, r = _product(fa[:-1], rules), _product(fb[:-1], rules)
            if p is not None and r is not None and p.ty == r.ty:
                last = fa[-1]
                return _factored(ca, p, cb, r, lambda inner: matmul(inner, last, rules), rules)
        if fa[0] is fb[0]:
            q, t = _product(fa[1:], rules), _product(fb[1:], rules)
            if q is not None and t is not None and q.ty == t.ty:
                first = fa[0]
                return _factored(ca, q, cb, t, lambda inner: matmul(first, inner, rules), rules)
    return None


def _diagonal_of(e: Expr, rules: Rules) -> Optional[Expr]:
    """The vector v of a diagonal matrix e = diag(v), s·diag(v) or diag(v)/s (s a scalar
    expression, taken into v); None for anything else.  Only where e is one term of a sum of
    diagonals: a lone s·diag(v) keeps its scalar in front, as every product does."""
    if e.op == "diagm":
        return e.args[0]
    if e.op == "mul" and e.args[0].ty.is_scalar and e.args[1].op == "diagm":
        return mul(e.args[0], e.args[1].args[0], rules)
    if e.op == "div" and e.args[1].ty.is_scalar and e.args[0].op == "diagm":
        return div(e.args[0].args[0], e.args[1], rules)
    return None


def _diagonal_entries(e: Expr, rules: Rules) -> Optional[Expr]:
    """The column v with e = diag(v) for a sum of diagonals and identities (I − 2diag(σ) is
    diag(1 − 2σ)); None for anything else.  Derivatives take a product of two such sums as one
    diag; a sum alone stays as it is (diag(1 − 2σ) is no shorter than I − 2diag(σ))."""
    if e.op == "eye":
        return const(1.0)  # (a scalar: 1 − 2σ, broadcast, prints as the textbook writes it)
    if e.op == "add" and e.args[0].ty == e.args[1].ty == e.ty:
        left, right = _diagonal_entries(e.args[0], rules), _diagonal_entries(e.args[1], rules)
        return None if left is None or right is None else add(left, right, rules)
    c, x = split_coef(e)
    if x.op == "diagm":
        v: Optional[Expr] = like(x.args[0], Ty((e.ty.dims[0],)))
    elif x.op == "mul" and x.args[0].ty.is_scalar and not x.args[1].ty.is_scalar:  # s·D
        inner = _diagonal_entries(x.args[1], rules)
        v = None if inner is None else mul(x.args[0], inner, rules)
    elif x.op == "div" and x.args[1].ty.is_scalar and not x.args[0].ty.is_scalar:  # D/s
        inner = _diagonal_entries(x.args[0], rules)
        v = None if inner is None else div(inner, x.args[1], rules)
    else:
        return None
    return None if v is None else _entries_scaled(c, v, rules)


def _entries_scaled(c: float, v: Expr, rules: Rules) -> Expr:
    """c·v for the entries of a diagonal taken in: c·(d ⊘ w) as (cd) ⊘ w (2·diag(1 ⊘ w) becomes
    diag(2 ⊘ w), not diag(2·1 ⊘ w)); otherwise c·v."""
    if v.op == "div" and v.args[0].is_const and c != 1.0:
        numerator = c * v.args[0].value  # its sign kept outside, so a sum prints − 2 ⊘ w, not + −2 ⊘ w
        return scale(-1.0 if numerator < 0 else 1.0, div(const(abs(numerator)), v.args[1], rules), rules)
    return scale(c, v, rules)


def _factored(ca: float, p: Expr, cb: float, r: Expr, around: Callable[[Expr], Expr],
              rules: Rules) -> Expr:
    """ca·(…p…) + cb·(…r…) with the common factor written once: c(…(p + r)…) when the
    coefficients agree, (…(ca·p + cb·r)…) when they do not (AX − BX = (A − B)X)."""
    if ca == cb:
        return scale(ca, around(add(*_ordered(p, r), rules)), rules)
    return around(add(scale(ca, p, rules), scale(cb, r, rules), rules))


def _product(factors: list[Expr], rules: Rules) -> Optional[Expr]:
    """F₁F₂…F_k grouped from the left; None where a partial product would be a scalar (xᵀx
    inside a chain cannot be matrix-multiplied on)."""
    out = factors[0]
    for f in factors[1:]:
        if out.ty.is_scalar or f.ty.is_scalar:
            return None
        out = matmul(out, f, rules)
    return None if out.ty.is_scalar else out


def _commuted(p: Expr, q: Expr) -> bool:
    """p ⊙ q and q ⊙ p: the same element-wise product (same-shaped factors, no broadcast)."""
    return (p.op == q.op == "mul" and p.args[0] is q.args[1] and p.args[1] is q.args[0]
            and p.args[0].ty == p.args[1].ty)


MAX_FLAT_TERMS = 12  # longer sums are left as written (keeps 100,000-term sums linear)
_long_sums: "weakref.WeakSet[Expr]" = weakref.WeakSet()  # sums known to have more terms
# the long sum found last, which the next term of a sum being built extends: one identity test
# a term (a set of weak references costs a reference made and hashed per test and per entry)
_latest_long: "list[weakref.ref[Expr] | None]" = [None]


def _known_long(e: Expr) -> bool:
    latest = _latest_long[0]
    return (latest is not None and latest() is e) or e in _long_sums


def _mark_long(e: Expr) -> None:
    _long_sums.add(e)
    _latest_long[0] = weakref.ref(e)


def _terms(e: Expr, ty: Ty, out: list[Expr]) -> bool:
    """Flatten a sum of same-shaped terms into out; False (after at most MAX_FLAT_TERMS + 1 nodes
    looked at) when it has more terms than that — so building a long sum stays linear.  A sum
    found long is remembered: a sum containing it is long too, found in a step or two, so
    adding term after term to a 100,000-term sum costs the same each time."""
    empty = not out
    stack = [e]
    while stack:
        n = stack.pop()
        if _known_long(n):
            if empty and n is not e and e.op == "add" and e.ty == ty:
                _mark_long(e)  # so the next, longer sum stops here at once
            return False
        if n.op == "add" and n.args[0].ty == ty and n.args[1].ty == ty:
            stack.append(n.args[1])
            stack.append(n.args[0])
        else:
            out.append(n)
        if len(out) + len(stack) > MAX_FLAT_TERMS:
            if empty and e.op == "add" and e.ty == ty:
                _mark_long(e)
            return False
    return True


# (a, b, rules) -> what a + b simplified to (None: a + b as written); a few thousand recent
# pairs, so the nodes it keeps alive are bounded
_sums_made: dict[tuple[Expr, Expr, Rules], Optional[Expr]] = {}
_SUMS_MADE_LIMIT = 4096  # recent ones only: enough for the prefixes of a sum being rebuilt


def _simplify_add(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    """a + b simplified, remembered for the recent pairs: merging like terms rebuilds the sum
    around the merged term, one prefix at a time, and each prefix is a sum simplified before
    (without this, every term added to a short sum re-simplified all its prefixes: a
    100,000-term sum of ten distinct terms cost 20,000 like-term comparisons a term)."""
    a, b = args
    if _onto_long_sum(a, b, rules):  # a term onto a long sum: found at once, nothing to remember
        return None
    key = (a, b, rules)
    if key in _sums_made:
        return _sums_made[key]
    out = _simplify_add_once(a, b, rules)
    if len(_sums_made) >= _SUMS_MADE_LIMIT:
        _sums_made.clear()
    _sums_made[key] = out
    return out


def _simplify_add_once(a: Expr, b: Expr, rules: Rules) -> Optional[Expr]:
    if is_zero(a):
        return like_broadcast(b, a, b, rules)
    if is_zero(b):
        return like_broadcast(a, a, b, rules)
    if a.is_const and b.is_const:
        return const(a.value + b.value)
    combined = _combine(a, b, rules)
    if combined is not None:
        return combined
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca == cb and ca < 0 and not xa.is_const and not xb.is_const:  # -cX - cY = -c(X + Y)
        return scale(ca, add(xa, xb, rules), rules)
    if _negative(a, ca) and not _negative(b, cb):  # −p + q reads better as q − p
        return add(b, a, rules)
    if a.op == "T" and a.args[0] is b:  # Aᵀ + A is written A + Aᵀ
        return add(b, a, rules)
    if rules is DERIVATIVE and a.ty == b.ty and not a.ty.is_scalar and any(
            split_coef(x)[1].op == "mul" and "add" in (y.op for y in split_coef(x)[1].args) for x in (a, b)):
        distributed = _distributed(make_raw("add", (a, b)))
        if distributed is not None:
            return distributed
    if (a.op == "add" or b.op == "add") and a.ty == b.ty:  # like terms anywhere in a longer sum
        terms: list[Expr] = []
        if _terms(a, a.ty, terms):
            # pairs within a sum simplified before hold no like terms: only pairs reaching past
            # it are compared (the same first pair is found, with fewer comparisons)
            known = len(terms) if _settled(a, rules) else 1
            if _terms(b, a.ty, terms):
                for i in range(len(terms)):
                    for j in range(max(i + 1, known), len(terms)):
                        merged = _combine(terms[i], terms[j], rules)
                        if merged is not None:
                            rest = terms[:i] + [merged] + terms[i + 1:j] + terms[j + 1:]
                            out = rest[0]
                            for t in rest[1:]:
                                out = add(out, t, rules)
                            return out
    if rules is DERIVATIVE and a.op != "add" and b.op != "add":
        return _common_factored(a, b, rules)
    return None


def _negative(e: Expr, coef: float) -> bool:
    """Whether a term prints with a minus sign: a negative coefficient, or a negative constant
    array −c·𝟙."""
    return coef < 0 or (e.op == "fill" and e.args[0].is_const and e.args[0].value < 0)


MAX_FACTORED_SIZE = 64  # two terms larger than this together are not searched for a common factor


def _common_factored(a: Expr, b: Expr, rules: Rules) -> Optional[Expr]:
    """a + b with what the two terms share written once, read off their monomials (`_monomial`):
    a common factor pulled out (s·p + s·q = s(p + q), p/s + q/s = (p + q)/s, element-wise
    too), or over a common denominator (p/√s − q/√s³ = (p·s − q)/√s³, which collects
    the pseudo-Huber Hessian's 1/√(1 + r²) − r²/√(1 + r²)³ to (1 + r²)^-1.5).  Each is kept
    only when it prints shorter (`printed_symbols`) than a + b, so only where something cancels
    or a factor is written once instead of twice.  Derivatives only (and not inside a
    distribution, whose terms are still to be collected); it holds wherever a + b is defined,
    except that a cancelled factor may make it defined at more points, as any cancellation
    does.  Two terms at a time: a longer sum is factored as it is built, pair by pair, after
    its like terms are collected."""
    if a.size + b.size > MAX_FACTORED_SIZE or a.ty != b.ty:
        return None
    coef_a, coef_b = [1.0], [1.0]
    pa: dict[Expr, float] = {}
    pb: dict[Expr, float] = {}
    if _monomial(a, 1.0, coef_a, pa) is None or _monomial(b, 1.0, coef_b, pb) is None:
        return None
    shared = [base for base in pa if base in pb]
    if not shared:
        return None
    bases = list(pa) + [base for base in pb if base not in pa]
    candidates: list[tuple[dict[Expr, float], bool]] = []  # (the factor, whose numerators must collect)
    # the greatest common factor of the numerators: each shared base to the power both have
    # (a shared denominator is the common denominator's: none is left inside, no nested fraction)
    # (scalar bases only: an element-wise factor pulled out hides s ⊙ V − s ⊙ (sᵀV) from the
    # reading of a Jacobian's matrix, diag(s) − ssᵀ)
    gcd = {base: min(pa[base], pb[base]) for base in shared
           if pa[base] > 0 and pb[base] > 0 and base.ty.is_scalar}
    if gcd:
        candidates.append((gcd, False))
    # the common denominator: every base to the lower power (numerators left polynomial)
    lcd = {base: min(pa.get(base, 0.0), pb.get(base, 0.0)) for base in bases}
    lcd = {base: k for base, k in lcd.items() if k < 0 or k > 0 and base.ty.is_scalar}
    # (a rational function of one expression: the denominators differ in one base at most,
    # p/(s·t) − q/(s³·t) = (s²·p − q)/(s³·t), not a product of several bases' powers)
    differ = [base for base in bases if min(pa.get(base, 0.0), 0.0) != min(pb.get(base, 0.0), 0.0)]
    if len(differ) <= 1 and any(k < 0 for k in lcd.values()) and lcd != gcd:
        candidates.append((lcd, bool(differ)))  # p/s + q/s = (p + q)/s is kept where shorter
    best, best_cost = None, printed_symbols(make_raw("add", (a, b)))
    for common, must_collect in candidates:
        out = _pulled_out(common, (coef_a[0], pa), (coef_b[0], pb), a.ty, rules, must_collect)
        if out is not None and (cost := printed_symbols(out)) < best_cost:
            best, best_cost = out, cost
    if best is None and (lowest := _lowest_denominator(pa, pb)) is not None:
        out = _pulled_out(lowest, (coef_a[0], pa), (coef_b[0], pb), a.ty, rules)
        if out is not None and printed_symbols(out) <= MAX_CANONICAL_GROWTH * best_cost:
            best = out
    return best


MAX_CANONICAL_GROWTH = 1.5  # a canonical form may print this much longer than the sum, no more


def _lowest_denominator(pa: dict[Expr, float], pb: dict[Expr, float]) -> Optional[dict[Expr, float]]:
    """The scalar denominator two terms share, to its lower power, when it is their only one:
    p/dʲ + q/dᵏ (j < k) is written (p + q/dᵏ⁻ʲ)/dʲ, as the textbooks write the Jacobian of
    x/‖x‖, (I − xxᵀ/‖x‖²)/‖x‖, and the gradient of the Rayleigh quotient.  Only for one
    base d (a scalar) in both denominators, to different powers: equal powers are a common
    denominator (`_common_factored` writes it where shorter), and denominators with other
    bases too (the cosine similarity's ‖x‖‖y‖ and ‖x‖³‖y‖) stay as written."""
    den_a = [base for base, k in pa.items() if k < 0]
    den_b = [base for base, k in pb.items() if k < 0]
    if len(den_a) != 1 or den_a != den_b or not den_a[0].ty.is_scalar:
        return None
    (d,) = den_a
    if pa[d] == pb[d]:
        return None
    return {d: max(pa[d], pb[d])}


def _pulled_out(common: dict[Expr, float], a: tuple[float, dict[Expr, float]],
                b: tuple[float, dict[Expr, float]], ty: Ty, rules: Rules,
                must_collect: bool = False) -> Optional[Expr]:
    """common · (a/common + b/common), each monomial written out again (`_written`); None when
    `must_collect` and the two numerators do not collect into something else than their sum (a
    common denominator is written where the numerator simplifies, as the textbooks do: p/s −
    q/s² stays, 1/√s − r²/√s³ with s = 1 + r² is (1 + r² − r²)/√s³ = s^-1.5)."""
    left, right = (_written(c, {base: powers.get(base, 0.0) - common.get(base, 0.0)
                                for base in {**powers, **common}}, rules)
                   for c, powers in (a, b))
    inner = add(left, right, rules)
    if must_collect and inner.op == "add" and {*inner.args} == {left, right}:
        return None
    out = _written(1.0, common, rules, inner)
    return out if out.ty == ty else None


def _written(coef: float, powers: dict[Expr, float], rules: Rules, times: Optional[Expr] = None) -> Expr:
    """coef · Π baseᵏ (· times), as the textbook writes a monomial: the bases with k > 0 over
    those with k < 0, scalars first, smaller first."""
    def product(items: list[tuple[Expr, float]], first: Optional[Expr]) -> Optional[Expr]:
        out = first
        for base, k in sorted(items, key=lambda bk: (not bk[0].ty.is_scalar, bk[0].size)):
            term = power_of(base, k)
            out = term if out is None else mul(out, term, rules)
        return out

    top = product([(base, k) for base, k in powers.items() if k > 0], None)  # k = 0: gone
    if times is not None and (is_one(times) or times.op == "fill" and is_one(times.args[0])):
        times = None  # (1 + r² − r²)/√(1 + r²)³: a 1 left over
    if times is not None:
        top = times if top is None else mul(top, times, rules)
    den = [(base, -k) for base, k in powers.items() if k < 0]
    if top is None and len(den) == 1 and not den[0][1].is_integer() and den[0][1] != 0.5:
        return scale(coef, power(den[0][0], const(-den[0][1]), rules), rules)  # s^-1.5, not 1/√s³
    bottom = product(den, None)
    out = top if top is not None else const(1.0)
    if bottom is not None:
        out = div(out, bottom, rules)
    return scale(coef, out, rules)


# characters an operator's node prints with besides its arguments' (a function: its name and
# parentheses): an infix operator three (" − ", " / "), a product by juxtaposition none
_OWN_CHARACTERS = {"add": 3, "div": 3, "matmul": 0, "T": 1, "pow": 0, "norm2": 2, "sqnorm": 3,
                   "sqrt": 3, "sym": 0, "const": 0, "eye": 1, "fill": 1}
_GROUPING = frozenset(("mul", "div", "matmul", "pow", "T"))  # operators a sum is parenthesised in


def printed_symbols(e: Expr) -> int:
    """About how many characters e prints with (the cost model of `_common_factored`): a
    symbol its name, a number its digits, an infix operator three, a product by juxtaposition
    none (3x, xxᵀ) and otherwise one (·) or three ( ⊙ ), ‖v‖ and √(s) their brackets, a
    function its name and parentheses, a sum (or a product under / or a power) in parentheses
    two more.  A shared subexpression counts at each use, as printed."""
    cost: dict[Expr, int] = {}
    for n in _unknown_first(e, cost):
        if n.op == "sym":
            own = len(str(n.params[0]))
        elif n.op == "const":
            own = len(f"{abs(n.value):g}")
        elif n.op == "mul":
            first, second = n.args
            if first.is_const:  # 3x, and −x: the minus sign is the sum's
                cost[n] = cost[second] + (0 if first.value == -1.0 else cost[first])
                continue
            own = 1 if first.ty.is_scalar or second.ty.is_scalar else 3
        else:
            own = _OWN_CHARACTERS.get(n.op, len(n.op) + 2)
        if n.op == "pow" and not (n.args[1].is_const and float(n.args[1].value).is_integer()):
            own += 1  # s^1.5, not s²
        if n.op in _GROUPING:
            own += sum(2 for a in n.args if a.op == "add" or a.op in ("mul", "div") and n.op in ("div", "pow"))
        cost[n] = own + sum(cost[a] for a in n.args)
    return cost[e]


_UNKNOWN = object()


def _onto_long_sum(a: Expr, b: Expr, rules: Rules) -> bool:
    """Whether a + b is written as it is because a is a long sum (its first operand known long)
    and b a term that nothing below applies to: not zero, not a multiple of a itself, and not
    in a derivative (where terms distribute).  Every rule below then gives None, and a is a long
    sum found in one step: a term added to a 100,000-term sum costs a few tests."""
    if a.op != "add" or rules is not AS_WRITTEN or b.op in ("add", "const", "fill"):
        return False
    first, second = a.args
    ty = a.ty
    if not (_known_long(first) and (first.ty is ty or first.ty == ty) and (second.ty is ty or second.ty == ty)):
        return False
    if split_coef(b)[1] is a:
        return False
    _latest_long[0] = weakref.ref(a)  # found at once by the next term (no set entry needed)
    return True


def _settled(e: Expr, rules: Rules) -> bool:
    """Whether e is a sum whose terms were compared pairwise for like terms, under these rules,
    and none combined: it was built as written by a recent `_simplify_add`."""
    return e.op == "add" and _sums_made.get((e.args[0], e.args[1], rules), _UNKNOWN) is None


def like_broadcast(keep: Expr, a: Expr, b: Expr, rules: Rules = AS_WRITTEN) -> Expr:
    """x + 0 is x, but with the broadcast shape of the sum."""
    ty = broadcast_ty(a, b)
    if keep.ty == ty:
        return keep
    if keep.ty.is_scalar:
        return fill(keep, ty, rules)
    return make_raw("add", (keep, zeros(ty, rules)))


def broadcast_ty(a: Expr, b: Expr) -> Ty:
    return OPS["add"].shape(STRICT, (a.ty, b.ty), ())  # the shape rule of the sum's operator


_transpose_counts: weakref.WeakKeyDictionary[Expr, int] = weakref.WeakKeyDictionary()


def _transposes(e: Expr) -> int:
    """How many transposes e prints with (a shared subexpression counts at each use), counted
    once per node and remembered: a derivative's DAG is never walked as the tree it prints as."""
    known = _transpose_counts.get(e)
    if known is not None:
        return known
    for n in _unknown_first(e, _transpose_counts):
        _transpose_counts[n] = (n.op == "T") + sum(_transpose_counts[a] for a in n.args)
    return _transpose_counts[e]


def _unknown_first(roots: Expr | list[Expr], memo: Collection[Expr]) -> list[Expr]:
    """The nodes of the roots not in memo, arguments before users, each once (iterative)."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack = [(root, False) for root in reversed(roots if isinstance(roots, list) else [roots])]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen and node not in memo:
            seen.add(node)
            stack.append((node, True))
            stack.extend((a, False) for a in node.args)
    return order


def _ordered(p: Expr, q: Expr) -> tuple[Expr, Expr]:
    """Terms in textbook order: fewer transposes first, then smaller."""
    def key(e: Expr) -> tuple[int, int]:
        return (_transposes(e), e.size)
    return (p, q) if key(p) <= key(q) else (q, p)


def _simplify_mul(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    a, b = args
    if a.is_const and b.is_const:
        return const(a.value * b.value)
    if b.ty.is_scalar and not a.ty.is_scalar or (b.is_const and not a.is_const):
        return mul(b, a, rules)  # scalar factors, and constants, to the front
    if is_zero(a) or is_zero(b):
        return zeros(broadcast_ty(a, b), rules)
    if a.is_const:
        if a.value == 1.0:
            return b
        cb, xb = split_coef(b)
        if cb != 1.0:
            return scale(a.value * cb, xb, rules)
        if xb.op == "fill":
            return fill(mul(a, xb.args[0], rules), xb.ty, rules)
        if b.op == "div" and b.args[0].is_const and b.ty.is_scalar:  # c·(d/s) = (cd)/s
            return div(const(a.value * b.args[0].value), b.args[1], rules)
        if a.value == -1.0 and b.op == "add":  # −(p − q) = q − p
            p, q = b.args
            if split_coef(q)[0] < 0:
                return add(neg(q, rules), neg(p, rules), rules)
        return None  # canonical: the numeric coefficient is the outermost factor
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca != 1.0 or cb != 1.0:
        return scale(ca * cb, mul(xa, xb, rules), rules)
    if a is b and a.ty.is_scalar:  # s·s = s²
        return power(a, const(2.0), rules)
    if a.ty.is_scalar and b.ty.is_scalar and b.op == "pow" and b.args[0] is a and b.args[1].is_const:
        return power(a, const(b.args[1].value + 1.0), rules)
    for x, y in ((a, b), (b, a)):  # c𝟙 ⊙ Y = c·Y
        if x.op == "fill" and broadcast_ty(a, b) == y.ty:
            return mul(x.args[0], y, rules)
    if a.ty.is_scalar and b.op == "mul" and b.args[0].ty.is_scalar and not b.ty.is_scalar:
        return mul(mul(a, b.args[0], rules), b.args[1], rules)  # a·(b·X) = (ab)·X
    if b.op == "mul" and b.args[0].ty.is_scalar and not b.args[1].ty.is_scalar and not a.ty.is_scalar:
        return mul(b.args[0], mul(a, b.args[1], rules), rules)  # X ⊙ (s·Y) = s·(X ⊙ Y)
    if a.op == "mul" and a.args[0].ty.is_scalar and not a.ty.is_scalar and not b.ty.is_scalar:
        return mul(a.args[0], mul(a.args[1], b, rules), rules)  # (s·X) ⊙ Y = s·(X ⊙ Y)
    if a.op == "div" and (not b.ty.is_scalar or a.ty.is_scalar):  # (p/q)·r = (p·r)/q
        return div(mul(a.args[0], b, rules), a.args[1], rules)
    if b.op == "div" and not a.ty.is_scalar:
        return div(mul(a, b.args[0], rules), b.args[1], rules)
    if a.op == b.op == "diagm":  # diag(u) ⊙ diag(v) = diag(u ⊙ v), as diag(u)diag(v) is
        return _make(rules, "diagm", (mul(a.args[0], like(b.args[0], a.args[0].ty), rules),))
    if rules is not AS_WRITTEN and (OPS[a.op].products or OPS[b.op].products) and (
            one := _product_identity(a, b, rules)) is not None:
        return one  # relu(u) ⊙ 𝟙(u > 0) = relu(u), sign(u) ⊙ u = |u| (the operators' records)
    if rules is DERIVATIVE and (a.op == "add" or b.op == "add") and a.ty == b.ty:
        distributed = _distributed(make_raw("mul", (a, b)))
        if distributed is not None:
            return distributed
    if rules is not AS_WRITTEN and (a.op in _POWERS or b.op in _POWERS or a is b):
        return _cancel(make_raw("mul", (a, b)), rules)
    return None


def _product_identity(p: Expr, q: Expr, rules: Rules) -> Optional[Expr]:
    """p ⊙ q as one function of the argument u they share, where an operator's record states
    the identity (`Op.products`: relu(u) ⊙ 𝟙(u > 0) = relu(u), 𝟙(u > 0) ⊙ 𝟙(u > 0) = 𝟙(u > 0),
    sign(u) ⊙ u = |u|, sign(u) ⊙ |u| = u); None otherwise.  Each identity holds at every u, so
    nothing changes where the formula is defined; it is used in derivatives only, where such
    products are built (a user's formula is echoed as written)."""
    for f, g in ((p, q), (q, p)):
        table = OPS[f.op].products
        if not table or g.ty != f.ty:
            continue
        u = f.args[0]
        if g is u:
            h = table.get("")
        elif len(g.args) == 1 and g.args[0] is u and not g.params:
            h = table.get(g.op)
        else:
            continue
        if h is not None:
            return u if h == "" else _make(rules, h, (u,))
    return None


def _merge_products(powers: dict[Expr, float], rules: Rules) -> bool:
    """Apply `_product_identity` to the factors of a monomial (each base to its exponent, in
    place): pᵏ ⊙ qᵐ = hʲ ⊙ pᵏ⁻ʲ ⊙ qᵐ⁻ʲ with j = min(k, m), and pᵏ = p for p ⊙ p = p (a step);
    positive integer exponents only.  Whether anything merged."""
    merged = False
    while any(OPS[b.op].products for b in powers):  # (only such a base has an identity)
        bases = [(b, k) for b, k in powers.items() if k >= 1 and float(k).is_integer()]
        found = None
        for i, (p, k) in enumerate(bases):
            for q, m in bases[i:]:
                if p is q and k < 2:
                    continue
                h = _product_identity(p, q, rules)
                if h is not None and (p is not q or h is p):
                    found = (p, k, q, m, h)
                    break
            if found is not None:
                break
        if found is None:
            break
        p, k, q, m, h = found
        if p is q:
            powers[p] = 1.0
        else:
            j = min(k, m)
            powers[p] -= j
            powers[q] -= j
            powers[h] = powers.get(h, 0.0) + j
        merged = True
    return merged


MAX_EXPANDED_TERMS = 8
EXPAND_BUDGET = 32  # _expand calls one distribution may make
# products whose expansion failed with the whole budget: it fails with any part of it too (the
# calls an expansion makes do not depend on the budget left, which only decides where it stops),
# so a distribution that meets one stops there; the chain rule through a 1,000-deep formula
# puts each failed product inside the next, which would otherwise expand it again
_unexpandable: "weakref.WeakSet[Expr]" = weakref.WeakSet()
# the operators a product may share a base through (see `as_power`): p ⊙ q ⊘ p, s·sᵏ, ‖x‖·‖x‖²
_POWERS = frozenset(("mul", "div", "pow", "sqrt", "sqnorm", "norm2"))


def _distributed(e: Expr) -> Optional[Expr]:
    """(p + q) ⊙ r as p ⊙ r + q ⊙ r, expanded all the way and like terms collected — kept only
    when that comes out smaller.  It is what makes terms cancel: the chain rule through σ turns
    the cross-entropy −Σ y log σ(z) + (1 − y) log(1 − σ(z)) into ((y − 1) ⊘ (1 − σ) + y ⊘ σ) ⊙
    σ(1 − σ), which distributes and collects to y − σ — the logistic regression gradient
    Xᵀ(σ(Xw) − y) as the textbooks print it.  Derivatives only, and never nested: what it
    builds is built under `Rules.DISTRIBUTING`."""
    terms = _expand(e, [EXPAND_BUDGET])
    if terms is None:
        _unexpandable.add(e)
        return None
    if len(terms) < 2 and e.op == "add":
        return None
    out = terms[0]
    for t in terms[1:]:
        out = add(out, t, DISTRIBUTING)
    return out if out.size < e.size else None


def _expand(e: Expr, budget: list[int]) -> Optional[list[Expr]]:
    """The terms of e with element-wise products distributed over sums (None past the budget)."""
    budget[0] -= 1
    if budget[0] < 0 or e in _unexpandable:
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
        out: list[Expr] = []
        for t in terms:
            product = mul(t, whole, DISTRIBUTING)  # (y ⊘ σ) ⊙ (σ ⊙ (1 − σ)) = y ⊙ (1 − σ)
            more = _expand(product, budget) if product.op in ("add", "mul") else [product]
            if more is None:
                return None
            out.extend(more)
            if len(out) > MAX_EXPANDED_TERMS:
                return None
        return out
    return [e]


MAX_FACTORS = 16  # longer products are left as written (keeps 1,000-deep chain rules linear)


def _monomial(e: Expr, sign: float, coef: list[float], powers: dict[Expr, float]) -> Optional[int]:
    """Flatten a product/quotient into coef · Π baseᵏ (powers: each base's exponent, in the
    order met, every factor read as a power of its base by `as_power`, so ‖x‖² and ‖x‖, √s and
    s share a base); the number of factors read, or None if it broadcasts (then it stays), or
    if it has more than MAX_FACTORS factors: the chain rule through a 1,000-deep formula
    multiplies factor onto factor, and flattening the whole product at every step would make
    it quadratic."""
    stack = [(e, sign)]
    looked = reads = 0
    while stack:
        e, sign = stack.pop()
        looked += 1
        if looked > 2 * MAX_FACTORS:
            return None
        if e.op in ("mul", "div"):
            a, b = e.args
            if not (a.ty.is_scalar or b.ty.is_scalar or a.ty == b.ty):
                return None
            stack.append((b, sign if e.op == "mul" else -sign))
            stack.append((a, sign))
            continue
        if e.is_const:
            if e.value == 0.0 and sign < 0 or not float(sign).is_integer():
                return None
            coef[0] *= e.value ** sign
            continue
        base, k = as_power(e)
        if base.op in ("mul", "div") and base.ty.is_scalar and float(k).is_integer():
            stack.append((base, sign * k))  # (ab)ᵏ = aᵏbᵏ, for scalars and whole k
            continue
        reads += 1
        powers[base] = powers.get(base, 0.0) + sign * k
    return reads


def as_power(e: Expr) -> tuple[Expr, float]:
    """e as baseᵏ, through the operators that are powers: ‖v‖² = ‖v‖², √s = s^½, (bᵖ)ᵏ = bᵖᵏ.
    A power of a power is merged only where that holds wherever e is defined: for a whole outer
    exponent, or an inner base known to be ≥ 0 (√s needs s ≥ 0, a norm is ≥ 0, bᵖ for a
    fractional p needs b ≥ 0); (s²)^½ is |s|, not s, and stays the base s² to the power ½."""
    k = 1.0
    while True:
        if e.op == "sqnorm":
            return make_raw("norm2", e.args), 2.0 * k
        if e.op == "sqrt":
            e, k = e.args[0], 0.5 * k
            continue
        if e.op == "pow" and e.args[1].is_const:
            p = float(e.args[1].value)
            if float(k).is_integer() or not p.is_integer():
                e, k = e.args[0], p * k
                continue
        return e, k


def power_of(base: Expr, k: float) -> Expr:
    """baseᵏ as `_cancel` writes it (k > 0): ‖v‖² for a norm squared, √s for s^½, √s³ for a
    half-integer k (as the derivative of √s writes it), bᵏ otherwise.  (Alone under a 1, a
    fractional power is written with its negative exponent: (1 + r²)^-1.5, not 1/√(1 + r²)³;
    but 1/√s.)"""
    if k == 1.0:
        return base
    if k == 2.0 and base.op == "norm2":
        return make_raw("sqnorm", base.args)
    if k == 0.5:
        return make_raw("sqrt", (base,))
    if (2 * k).is_integer() and not k.is_integer():
        return make_raw("pow", (make_raw("sqrt", (base,)), const(2 * k)))
    return make_raw("pow", (base, const(k)))


def _cancel(e: Expr, rules: Rules) -> Optional[Expr]:
    """Products and quotients with a repeated base, collected: p ⊙ q ⊘ p = q, s·s = s²,
    σ ⊙ (1 − σ) ⊘ σ = 1 − σ, x/‖x‖²/‖x‖ = x/‖x‖³, √s³/s = √s.  Only when a base repeats, so
    the result is strictly smaller.  Derivatives only: cancelling changes where a formula is
    defined (it may extend it, as x/x = 1 does: √s·√s = s is defined for s < 0 too; it never
    narrows it, see `as_power`)."""
    coef = [1.0]
    powers: dict[Expr, float] = {}  # insertion-ordered: the bases in the order met
    reads = _monomial(e, 1.0, coef, powers)
    if reads is None:
        return None
    merged = _merge_products(powers, rules)
    num = [(b, k) for b, k in powers.items() if k > 0]
    den = [(b, -k) for b, k in powers.items() if k < 0]
    reciprocal = not num and len(den) == 1 and not den[0][1].is_integer() and den[0][1] != 0.5
    if not merged and len(powers) >= reads and not (reciprocal and e.op == "div"):  # nothing to merge, and
        return None  # not 1/√s³, canonically s^-1.5

    def product(items: list[tuple[Expr, float]]) -> Optional[Expr]:
        out = None
        for b, k in sorted(items, key=lambda bk: (not bk[0].ty.is_scalar, bk[0].size)):
            term = power_of(b, k)
            out = term if out is None else make_raw("mul", (out, term))
        return out

    top, bottom = product(num), product(den)
    ty = e.ty
    if reciprocal and den[0][0].ty == ty:
        top, bottom = make_raw("pow", (den[0][0], const(-den[0][1]))), None  # (1 + r²)^-1.5
    if top is None:
        top = const(1.0) if ty.is_scalar or bottom is not None and bottom.ty == ty else fill(const(1.0), ty, rules)
    out = top if bottom is None else make_raw("div", (top, bottom))
    if out.ty != ty:
        out = make_raw("mul", (out, fill(const(1.0), ty, rules))) if out.ty.is_scalar else out
        if out.ty != ty:
            return None
    return scale(coef[0], out, rules) if coef[0] != 1.0 else out


def _simplify_div(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    a, b = args
    if a.is_const and b.is_const and b.value != 0:
        return const(a.value / b.value)
    if is_one(b):
        return a
    if b.is_const and b.value != 0:
        return mul(const(1.0 / b.value), a, rules)
    if is_zero(a):
        return zeros(broadcast_ty(a, b), rules)
    ca, xa = split_coef(a)
    if ca != 1.0 and not xa.is_const:
        return scale(ca, div(xa, b, rules), rules)
    derivative = rules is not AS_WRITTEN  # cancellations change where f is defined
    cb, xb = split_coef(b)
    if derivative and cb != 1.0 and cb != 0.0 and not xb.is_const:  # p/(c·s) = (1/c)·p/s: the
        return scale(1.0 / cb, div(a, xb, rules), rules)  # constant meets the numerator's, -2p/(2σ²) = -p/σ²
    if derivative and xa is b and a.ty == b.ty:  # x/x = 1 (not where x = 0: derivatives only)
        return scale(ca, fill(const(1.0), a.ty, rules) if not a.ty.is_scalar else const(1.0), rules)
    if xa.op == "exp" and b.op == "add" and is_one(b.args[0]) and b.args[1] is xa:
        return scale(ca, fn("sigmoid", xa.args[0], rules), rules)  # eᶻ/(1 + eᶻ) = σ(z)
    if xa.op == "sinh" and b.op == "cosh" and xa.args[0] is b.args[0]:
        return scale(ca, fn("tanh", b.args[0], rules), rules)  # sinh(z)/cosh(z) = tanh(z)
    if derivative and b.ty.is_scalar:
        cancelled = _cancel_scalar(xa, b, ca, rules)
        if cancelled is not None:
            return cancelled
    if exp_sum := _softmax_of(xa, b, rules):
        return scale(ca, exp_sum, rules)
    return _cancel(make_raw("div", (a, b)), rules) if derivative else None


def _cancel_scalar(xa: Expr, b: Expr, ca: float, rules: Rules) -> Optional[Expr]:
    """ca·xa / b for a scalar b that xa holds as a factor (derivatives only)."""
    if xa.op == "div" and xa.args[1] is b:  # (p/s)/s = p/s²
        return scale(ca, div(xa.args[0], power(b, const(2.0), rules), rules), rules)
    if xa.op == "div" and xa.args[1].op == "pow" and xa.args[1].args[0] is b and xa.args[1].args[1].is_const:
        return scale(ca, div(xa.args[0], power(b, const(xa.args[1].args[1].value + 1.0), rules), rules), rules)
    s_, rest = (xa.args[0], xa.args[1]) if xa.op == "mul" and xa.args[0].ty.is_scalar else (xa, None)
    cs, s_ = split_coef(s_)
    ca *= cs
    if s_.op == "sqnorm" and b.op == "norm2" and s_.args[0] is b.args[0]:  # ‖v‖²X/‖v‖ = ‖v‖X
        return scale(ca, mul(b, rest, rules) if rest is not None else b, rules)
    if s_ is b:  # (s·X)/s = X
        return scale(ca, rest if rest is not None else const(1.0), rules)
    if s_.op == "pow" and s_.args[0] is b and s_.args[1].is_const:  # sᵏX/s = sᵏ⁻¹X
        lower = power(b, const(s_.args[1].value - 1.0), rules)
        return scale(ca, mul(lower, rest, rules) if rest is not None else lower, rules)
    return None


def _softmax_of(num: Expr, den: Expr, rules: Rules) -> Optional[Expr]:
    """exp(x) / sum(exp(x)) = softmax(x) for a vector x."""
    if num.op == "exp" and num.ty.is_col and den.op == "sum" and den.params == (None, False) \
            and den.args[0] is num:
        return fn("softmax", num.args[0], rules)
    return None


def _simplify_pow(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    a, b = args
    if b.is_const:
        if b.value == 1.0:
            return a
        if b.value == 0.0:
            return fill(const(1.0), a.ty, rules) if not a.ty.is_scalar else const(1.0)
        if b.value == 2.0 and a.op == "norm2":
            return _make(rules, "sqnorm", (a.args[0],))
        if a.is_const:
            return _fold(lambda x, y: x ** y)(args, params)
        if rules is not AS_WRITTEN:  # a power of a power, merged (derivatives only, see as_power):
            base, k = as_power(make_raw("pow", args))  # √s² = s, (‖x‖²)² = ‖x‖⁴
            if k == 1.0:
                return base
            if base is not a and k.is_integer():
                return power(base, const(k), rules)
    return None


def _simplify_matmul(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    a, b = args
    if a.ty.is_col and b.ty.is_matrix:  # numpy's 1-D x @ A is the column Aᵀx
        return matmul(T(b, rules), a, rules)
    if a.ty.is_col and b.ty.is_col:  # numpy's x @ y is the inner product xᵀy
        return matmul(T(a, rules), b, rules)
    ca, xa = split_coef(a)
    cb, xb = split_coef(b)
    if ca != 1.0 or cb != 1.0:
        return scale(ca * cb, matmul(xa, xb, rules), rules)
    if is_zero(a) or is_zero(b):
        return zeros(OPS["matmul"].shape(STRICT, (a.ty, b.ty), ()), rules)
    if a.op == "eye":
        return b
    if b.op == "eye":
        return a
    for x, y, pos in ((a, b, 0), (b, a, 1)):  # (sX)Y = s(XY) for a scalar expression s
        if x.op == "mul" and x.args[0].ty.is_scalar and not x.args[1].ty.is_scalar:
            rest = (x.args[1], y) if pos == 0 else (y, x.args[1])
            return mul(x.args[0], matmul(*rest, rules), rules)
        if x.op == "div" and x.args[1].ty.is_scalar and not x.args[0].ty.is_scalar:  # (X/s)Y = XY/s
            rest = (x.args[0], y) if pos == 0 else (y, x.args[0])
            return div(matmul(*rest, rules), x.args[1], rules)
    if rules is not AS_WRITTEN and (cancelled := _cancel_inverse(a, b, rules)) is not None:
        return cancelled
    if a.op == "diagm" and b.op == "diagm":  # diag(u)diag(v) = diag(u ⊙ v)
        return _make(rules, "diagm", (mul(a.args[0], b.args[0], rules),))
    if rules is not AS_WRITTEN and "add" in (a.op, b.op) and _is_diagonal(a) and _is_diagonal(b) and (
            va := _diagonal_entries(a, rules)) is not None and (
            vb := _diagonal_entries(b, rules)) is not None:  # (I − 2diag(σ))diag(σ ⊙ (1 − σ)) = diag(…)
        entries = mul(va, vb, rules)
        if entries.ty.is_col and entries.ty.dims[0] == a.ty.dims[0]:
            return _make(rules, "diagm", (entries,))
    if a.op == "diagm" and b.op == "matmul" and b.args[0].op == "diagm":
        return matmul(matmul(a, b.args[0], rules), b.args[1], rules)
    if b.op == "diagm" and a.op == "matmul" and a.args[1].op == "diagm":
        return matmul(a.args[0], matmul(a.args[1], b, rules), rules)
    ty = OPS["matmul"].shape(STRICT, (a.ty, b.ty), ())
    if a.ty.is_col and b.ty.is_row:  # an outer product: 𝟙xᵀ stays as it is
        return None
    if a.op == "fill" and b.ty.is_vector:  # (c𝟙)v = c·sum(v)𝟙
        return fill(mul(a.args[0], summ(b, rules=rules), rules), ty, rules)
    if b.op == "fill" and a.ty.is_vector:
        s = mul(b.args[0], summ(a, rules=rules), rules)
        return fill(s, ty, rules) if not ty.is_scalar else s
    return None


def _edge_factor(e: Expr, side: int) -> Optional[Expr]:
    """The first (side 0) or last (side 1) factor of a product however it is grouped; None past
    MAX_CHAIN levels (so a product 1,000 deep costs a bounded look)."""
    for _ in range(MAX_CHAIN):
        if e.op != "matmul":
            return e
        e = e.args[side]
    return None


def _inverted(e: Expr) -> tuple[Optional[Expr], bool]:
    """(M, transposed) for e = M⁻¹ or M⁻ᵀ; (None, False) for anything else."""
    if e.op == "inv":
        return e.args[0], False
    if e.op == "T" and e.args[0].op == "inv":
        return e.args[0].args[0], True
    return None, False


def _cancel_inverse(a: Expr, b: Expr, rules: Rules) -> Optional[Expr]:
    """The product ab with a factor F met by the inverse of a product that F ends or begins,
    cancelled where the two meet: F(RF)⁻¹ = R⁻¹, (FR)⁻¹F = R⁻¹, Fᵀ(FR)⁻ᵀ = R⁻ᵀ, (RF)⁻ᵀFᵀ = R⁻ᵀ
    (R empty: F F⁻¹ = I).  Only for a square F (then R is square too, and (FR)⁻¹ = R⁻¹F⁻¹),
    and in derivatives only (R⁻¹ exists where F is singular).  This is how the derivatives of
    det and logdet of products read like the textbook's: ∂ det(AXB)/∂X = det(AXB)·Aᵀ(AXB)⁻ᵀBᵀ
    = det(AXB)·X⁻ᵀ for square A, B, and ∂ logdet(XXX)/∂X = 3X⁻ᵀ."""
    last, first = _edge_factor(a, 1), _edge_factor(b, 0)
    if last is None or first is None:
        return None
    for inverse, other, side in ((first, last, 0), (last, first, 1)):
        M, transposed = _inverted(inverse)
        if M is None:
            continue
        factors = matmul_factors(M, []) if M.op == "matmul" else [M]
        if factors is None:
            continue
        # the factor of M that meets `other`: M⁻¹ on the right of F begins with M's last factor
        # (F(RF)⁻¹), a transposed M⁻ᵀ with M's first, and the mirror images on the left
        at = (-1 if side == 0 else 0) if not transposed else (0 if side == 0 else -1)
        F = factors[at]
        meets = is_transpose_pair(other, F) if transposed else other is F
        if not meets or not _square(F):
            continue
        rest = factors[:-1] if at == -1 else factors[1:]
        if rest:
            R = _product(rest, rules)
            if R is None:
                continue
            # (Rᵀ)⁻¹ is written R⁻ᵀ, so that it collects with the R⁻ᵀ of another term
            R_inverse = T(_make(rules, "inv", (R.args[0],)), rules) if R.op == "T" else _make(rules, "inv", (R,))
            middle = T(R_inverse, rules) if transposed else R_inverse
        else:
            middle = eye(F.ty.dims[0])
        # a = left·F and b = M⁻¹·right, or a = left·M⁻¹ and b = F·right: left·R⁻¹·right
        left, right = _without_edge(a, 1, rules), _without_edge(b, 0, rules)
        out = middle
        if left is not None:
            out = matmul(left, out, rules)
        if right is not None:
            out = matmul(out, right, rules)
        return out
    return None


def _without_edge(e: Expr, side: int, rules: Rules) -> Optional[Expr]:
    """A product without its first (side 0) or last (side 1) factor; None when e is that factor."""
    if e.op != "matmul":
        return None
    inner = _without_edge(e.args[side], side, rules)  # (as deep as `_edge_factor` went)
    if inner is None:
        return e.args[1 - side]
    return matmul(e.args[0], inner, rules) if side == 1 else matmul(inner, e.args[1], rules)


_symmetric_memo: weakref.WeakKeyDictionary[Expr, bool] = weakref.WeakKeyDictionary()


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
    active = {e}  # a node whose answer rests on its own (a broadcast sum is its one term): no
    answer: Optional[bool] = None
    while stack:
        node, rule = stack[-1]
        try:
            need = next(rule) if answer is None else rule.send(answer)  # None: a new rule
        except StopIteration as done:
            answer = _symmetric_memo[node] = bool(done.value)
            active.discard(node)
            stack.pop()
            continue
        answer = _symmetric_memo.get(need) if _square(need) and need not in active else False
        if answer is None:
            stack.append((need, _symmetric(need)))
            active.add(need)
    return _symmetric_memo[e]


def _square(e: Expr) -> bool:
    return e.ty.is_matrix and e.ty.dims[0] == e.ty.dims[1]


def is_transpose_pair(a: Expr, b: Expr) -> bool:
    """a = bᵀ, read off the structure without building anything."""
    return (a.op == "T" and a.args[0] is b) or (b.op == "T" and b.args[0] is a) or (
        a is b and is_symmetric(a))


MAX_CHAIN = 32  # longer products are not searched for common factors or symmetry


def matmul_factors(e: Expr, out: list[Expr], limit: int | None = MAX_CHAIN) -> list[Expr] | None:
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


def _simplify_T(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
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
        return fill(a.args[0], a.ty.transposed(), rules)
    if a.op == "mul" and a.args[0].ty.is_scalar:  # (cX)ᵀ = cXᵀ
        return mul(a.args[0], T(a.args[1], rules), rules)
    if a.op == "add" and a.args[0].ty == a.args[1].ty:  # (P + Q)ᵀ = Pᵀ + Qᵀ when that leaves
        # fewer transposes: (A + Aᵀ)ᵀ = A + Aᵀ.  Not for a broadcast sum: (A + x)ᵀ adds x to rows.
        distributed = add(T(a.args[0], rules), T(a.args[1], rules), rules)
        if _transposes(distributed) <= _transposes(a):
            return distributed
    if a.op == "div" and a.args[1].ty.is_scalar:  # (X/s)ᵀ = Xᵀ/s
        return div(T(a.args[0], rules), a.args[1], rules)
    if a.op == "matmul":  # (AB)ᵀ = BᵀAᵀ, pushing transposes onto the leaves
        return matmul(T(a.args[1], rules), T(a.args[0], rules), rules)
    if a.op in ("diagm",):
        return a
    return None


def _simplify_sqrt(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    if a.op == "sqnorm":  # √(‖v‖²) = ‖v‖
        return _make(rules, "norm2", (a.args[0],))
    return _fold(math.sqrt)(args, params)


def _simplify_log(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    if a.op == "exp":
        return a.args[0]
    if a.op == "det":
        return _make(rules, "logdet", (a.args[0],))
    if a.op == "sum" and a.params == (None, False) and a.args[0].op == "exp":  # log Σ eˣ
        return _make(rules, "logsumexp", (a.args[0].args[0],))
    if a.op == "softmax":  # log softmax(v) = v − logsumexp(v)
        v = a.args[0]
        return sub(v, _make(rules, "logsumexp", (v,)), rules)
    if a.op == "pow" and a.args[0].ty.is_scalar and a.args[0].op == "exp":  # log (eᵃ)ᵖ = p·a
        return mul(a.args[1], fn("log", a.args[0], rules), rules)
    if a.op == "pow" and a.args[0].op == "det" and a.args[1].is_const and not (
            float(a.args[1].value).is_integer() and a.args[1].value % 2 == 0):
        return mul(a.args[1], fn("log", a.args[0], rules), rules)  # log det(X)ᵖ = p·log det(X), not for even p
    return _fold(math.log)(args, params)


def _simplify_det(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":  # det(X⁻¹) = 1/det(X)
        return power(_make(rules, "det", (a.args[0],)), const(-1.0), rules)
    if a.op == "T":
        return _make(rules, "det", (a.args[0],))
    return None


def _simplify_logdet(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":
        return neg(_make(rules, "logdet", (a.args[0],)), rules)
    if a.op == "T":
        return _make(rules, "logdet", (a.args[0],))
    return None


def _simplify_inv(args: tuple[Expr, ...], params: Params) -> Optional[Expr]:
    (a,) = args
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    return None


def _simplify_sum(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    axis, keep = params
    if axis is None:
        if a.ty.is_scalar:
            return a
        if a.op == "pow" and a.args[1].is_const and a.args[1].value == 2.0:
            return _make(rules, "sqnorm", (a.args[0],))  # Σ x² = ‖x‖²
        if a.op == "fill":
            return mul(a.args[0], make_raw("numel", (), (a.ty,)), rules)
        if a.op == "softmax":
            return const(1.0)
    if a.op == "expand" and a.params[:2] == (axis, keep) and axis is not None:  # Σ of n copies
        n = make_raw("numel", (), (Ty((a.ty.dims[axis],)),))
        return mul(n, a.args[0], rules)
    if a.op == "diagm" and not keep:  # the row and column sums of diag(w) are w
        return summ(a.args[0], rules=rules) if axis is None else a.args[0]
    if a.op == "mul" and a.args[0].ty.is_scalar and not a.args[1].ty.is_scalar:
        return mul(a.args[0], summ(a.args[1], axis, keep, rules), rules)  # sum is linear
    if a.op == "div" and a.args[1].ty.is_scalar and not a.args[0].ty.is_scalar:
        return div(summ(a.args[0], axis, keep, rules), a.args[1], rules)  # Σ(A/s) = (ΣA)/s
    if a.op == "fill" and axis is not None:
        n = make_raw("numel", (), (Ty((a.ty.dims[axis % a.ty.rank],)),))
        return fill(mul(a.args[0], n, rules), OPS["sum"].shape(STRICT, (a.ty,), params), rules)
    if a.op == "eye" and axis is not None:  # I's row and column sums are 𝟙 (log-softmax: I − 𝟙sᵀ)
        return fill(const(1.0), OPS["sum"].shape(STRICT, (a.ty,), params), rules)
    return None


def _simplify_fill(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (v,) = args
    (ty,) = params
    if ty.is_scalar:
        return v
    if v.op == "fill":
        return fill(v.args[0], ty, rules)
    return None


def _simplify_tr(args: tuple[Expr, ...], params: Params, rules: Rules = AS_WRITTEN) -> Optional[Expr]:
    (a,) = args
    if a.op == "T":
        return _make(rules, "tr", (a.args[0],))
    return None


# the hooks above that read the rules in force, as `_make` finds them (by the operator's hook)
_RULED: dict[object, RuledHook] = {hook: hook for hook in (
    _simplify_add, _simplify_mul, _simplify_div, _simplify_pow, _simplify_matmul, _simplify_T,
    _simplify_sqrt, _simplify_log, _simplify_det, _simplify_logdet, _simplify_sum, _simplify_fill,
    _simplify_tr)}
def _product_may_rewrite(node: Expr) -> bool:
    """Whether a product has a derivative-only rewrite: an inverse where its two operands meet
    (`_cancel_inverse`), or two diagonals one of which is a sum (`_diagonal_entries`).  Only
    such a product is rebuilt, not every product of a derivative."""
    a, b = node.args
    if "add" in (a.op, b.op) and _is_diagonal(a) and _is_diagonal(b):
        return True
    return any(f is not None and _inverted(f)[0] is not None for f in (_edge_factor(a, 1), _edge_factor(b, 0)))


def _is_diagonal(e: Expr) -> bool:
    """Whether `_diagonal_entries` reads e as a diagonal, without building anything (a sum of
    more than MAX_FLAT_TERMS terms is not looked into)."""
    stack, looked = [e], 0
    while stack:
        n = stack.pop()
        looked += 1
        if looked > 2 * MAX_FLAT_TERMS:
            return False
        if n.op == "add" and n.args[0].ty == n.args[1].ty == n.ty:
            stack.extend(n.args)
            continue
        x = split_coef(n)[1]
        if x.op in ("mul", "div") and x.args[x.op == "div"].ty.is_scalar:
            x = x.args[0] if x.op == "div" else x.args[1]
        if x.op not in ("eye", "diagm"):
            return False
    return True


# the hooks with rewrites of their own for derivatives only, each with whether a node of theirs
# may have one (None: every node may): such a node is rebuilt by `derivative_form` even where
# its arguments stay
_DERIVATIVE_ONLY: dict[object, Optional[Callable[[Expr], bool]]] = {
    _simplify_add: None, _simplify_mul: None, _simplify_div: None, _simplify_pow: None,
    _simplify_matmul: _product_may_rewrite}


def _may_rewrite_for_derivatives(node: Expr) -> bool:
    hook = OPS[node.op].simplify
    if hook not in _DERIVATIVE_ONLY:
        return False
    may = _DERIVATIVE_ONLY[hook]
    return may is None or may(node)
