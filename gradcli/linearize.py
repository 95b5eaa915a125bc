"""The matrix of a linear map: given an expression e linear in a vector symbol v, find M with
e = M v (a row r with e = r v when e is a scalar).

This is how Jacobians and Hessians get their matrix formulas.  Reverse mode gives the
vector-Jacobian product g(v) = Jᵀv of f for a symbolic seed v; reading off the matrix of g turns
`Aᵀv` into J = A, `v ⊙ (1 − tanh²z)` into diag(1 − tanh²z), `s ⊙ v − s(sᵀv)` into diag(s) − ssᵀ.
Where a step has no matrix form (matrix-valued intermediates, tensors), it returns None and the
caller falls back to numbers only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import operators  # noqa: F401  (fills the operator registry)
from . import simplify as S
from .differentiate import depends_on
from .expr import Expr, make, make_raw
from .shapes import Ty

if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import TypeAlias

    # a rule yields what it needs (an expression's matrix, or the column a row reads as), is sent
    # the answer, and returns the matrix of its node
    Rule: TypeAlias = Generator["Expr | _Row", Expr, Expr]


class NoMatrixForm(Exception):
    pass


def matrix_of(e: Expr, v: Expr) -> Expr | None:
    """M with e = M v, for e a column vector or scalar and v a column-vector symbol."""
    if not v.ty.is_col or not (e.ty.is_col or e.ty.is_scalar):
        return None
    dep = depends_on(e, {v.params[0]})
    try:
        with S.IN_DERIVATIVE:  # a derivative: its terms may be factored and cancelled
            return _matrix(e, v, dep, _Memo())
    except NoMatrixForm:
        return None


class _Memo:
    """What one `matrix_of` remembers: each node's matrix (by id), the products being regrouped
    (so a regrouping the simplifier undoes is not tried again), and the regrouped nodes, kept
    alive so that their ids stay unique."""

    __slots__ = ("matrices", "regrouping", "alive")

    def __init__(self) -> None:
        self.matrices: dict[int, Expr] = {}
        self.regrouping: set[int] = set()
        self.alive: list[Expr] = []


def _matrix(e: Expr, v: Expr, dep: set[int], memo: _Memo) -> Expr:
    """The matrix of e, each node's remembered.  The rules are generators that yield what they
    need — an expression (its matrix) or `_Row(r)` (a row read as a column) — and are run here
    on an explicit stack, so a Hessian through a formula nested 1,000 deep needs no recursion."""
    matrices = memo.matrices
    if id(e) in matrices:
        return matrices[id(e)]
    stack: list[tuple[Expr | None, Rule]] = [(e, _matrix_uncached(e, v, dep, memo))]
    answer: Expr | None = None  # None: the rule on top has not started
    while stack:
        node, rule = stack[-1]
        try:
            need = next(rule) if answer is None else rule.send(answer)
        except StopIteration as done:
            answer = done.value
            if node is not None:
                matrices[id(node)] = done.value
            stack.pop()
            continue
        if isinstance(need, _Row):
            stack.append((None, _row_to_col(need.row, v, dep, memo)))
            answer = None
        elif id(need) in matrices:
            answer = matrices[id(need)]
        else:
            stack.append((need, _matrix_uncached(need, v, dep, memo)))
            answer = None
    return matrices[id(e)]


class _Row:
    """A request of a rule: the column that a row linear in v reads as."""

    __slots__ = ("row",)

    def __init__(self, row: Expr):
        self.row = row


def _zero(e: Expr, v: Expr) -> Expr:
    n = v.ty.dims[0]
    return S.zeros(Ty((n,), True) if e.ty.is_scalar else Ty((e.ty.dims[0], n)))


def _matrix_uncached(e: Expr, v: Expr, dep: set[int], memo: _Memo) -> Rule:
    """The rules for one node (a generator: `yield x` asks `_matrix` for the matrix of x)."""
    if id(e) not in dep:
        return _zero(e, v)
    if e is v:
        return S.eye(v.ty.dims[0])
    if e.op == "add":
        a, b = e.args
        if a.ty != b.ty:  # a broadcast sum: a scalar linear in v spread over a vector
            if a.ty.is_scalar and id(a) in dep:
                return S.add(S.matmul(S.fill(S.const(1.0), e.ty), (yield a)), (yield b)) if id(b) in dep \
                    else S.matmul(S.fill(S.const(1.0), e.ty), (yield a))
            if b.ty.is_scalar and id(b) in dep:
                return S.add((yield a), S.matmul(S.fill(S.const(1.0), e.ty), (yield b))) if id(a) in dep \
                    else S.matmul(S.fill(S.const(1.0), e.ty), (yield b))
            raise NoMatrixForm
        return S.add((yield a), (yield b))
    if e.op in ("mul", "div"):
        a, b = e.args
        live, other = (a, b) if id(a) in dep else (b, a)
        if id(other) in dep:
            raise NoMatrixForm  # not linear
        if e.op == "div" and live is b:
            raise NoMatrixForm
        factor = other if e.op == "mul" else S.div(S.const(1.0), b)
        if factor.ty.is_scalar:
            if live.ty.is_scalar and not e.ty.is_scalar:  # vector · (r v) = (vector r) v
                return S.matmul(factor, (yield live))
            return S.mul(factor, (yield live))
        if live.ty.is_scalar:  # w · (r v): outer product w r
            return S.matmul(factor, (yield live))
        if factor.ty == live.ty and live.ty.is_col:  # w ⊙ u = diag(w) u
            return S.matmul(make("diagm", factor), (yield live))
        raise NoMatrixForm
    if e.op == "matmul":
        a, b = e.args
        if id(a) not in dep:
            if a.ty.is_matrix or a.ty.is_row:  # A u, or wᵀu
                return S.matmul(a, (yield b))
            raise NoMatrixForm
        if id(b) not in dep and a.ty.is_row and b.ty.is_col:  # uᵀw = wᵀu
            return S.matmul(S.T(b), (yield _Row(a)))
        regrouped = _regrouped(a, b) if id(b) not in dep else None
        active = memo.regrouping
        if regrouped is not None and id(e) not in active:  # the simplifier may group it back
            dep.update(depends_on(regrouped, {v.params[0]}))  # the new nodes' dependence on v
            memo.alive.append(regrouped)  # ids in dep and memo stay unique
            active.add(id(e))
            try:
                return (yield regrouped)
            finally:
                active.discard(id(e))
        raise NoMatrixForm
    a = e.args[0] if e.args else v  # the one argument of the operators below (v: never read)
    if e.op == "T" and e.ty.is_col and a.ty.is_row:
        return (yield _Row(a))
    if e.op == "sum" and e.params == (None, False) and a.ty.is_col:
        return S.T(S.summ((yield a), 0))
    if e.op == "fill" and a.ty.is_scalar:
        return S.matmul(S.fill(S.const(1.0), e.ty), (yield a))
    if e.op == "diagv" and a.op == "diagm":
        return (yield a.args[0])
    raise NoMatrixForm


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
    return None


def _row_to_col(row: Expr, v: Expr, dep: set[int], memo: _Memo) -> Rule:
    """(uᵀA)ᵀ = Aᵀu: a row linear in v, read as a column (a generator, as `_matrix_uncached`)."""
    if row.op == "T":
        return (yield row.args[0])
    if row.op == "matmul" and id(row.args[1]) not in dep and row.args[0].ty.is_row:
        return S.matmul(S.T(row.args[1]), (yield _Row(row.args[0])))
    raise NoMatrixForm
