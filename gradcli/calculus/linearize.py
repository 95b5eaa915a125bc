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

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from .differentiate import depends_on, gradients, seed_for
from ..language.expr import OPS, Expr, NoMatrixForm, Row, make, topological
from ..language.rewrite import rewrite
from ..language.shapes import Ty

if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import TypeAlias

    # a rule yields what it needs (an expression's matrix, or the column a row reads as), is sent
    # the answer, and returns the matrix of its node
    Rule: TypeAlias = Generator["Expr | Row", Expr, Expr]


def matrix_of(e: Expr, v: Expr) -> Expr | None:
    """M with e = M v, for e a column vector or scalar and v a column-vector symbol."""
    if not v.ty.is_col or not (e.ty.is_col or e.ty.is_scalar):
        return None
    order = topological([e])
    try:
        M = _matrix(e, _Linear(v, depends_on(e, {v.params[0]}, order)))
    except NoMatrixForm:
        return None
    # a derivative: its terms may be factored and cancelled (e's own nodes stay as they are)
    return S.derivative_form([M], set(order))[0]


class _Linear:
    """One `matrix_of` (the `MatrixContext` the operators' rules are given): the seed, the nodes
    that depend on it (by id), each node's matrix (by id), the products being regrouped (so a
    regrouping the simplifier undoes is not tried again), and the regrouped nodes, kept alive
    so that their ids stay unique."""

    __slots__ = ("v", "dep", "matrices", "regrouping", "alive")

    def __init__(self, v: Expr, dep: set[Expr]) -> None:
        self.v = v
        self.dep = dep
        self.matrices: dict[Expr, Expr] = {}
        self.regrouping: set[Expr] = set()
        self.alive: list[Expr] = []

    def live(self, e: Expr) -> bool:
        return e in self.dep

    def regroup(self, e: Expr, regrouped: Expr) -> Rule:
        """The matrix of e read from an equal regrouped expression (the simplifier may group it
        back: a second regrouping of the same product gives up)."""
        if e in self.regrouping:
            raise NoMatrixForm
        self.dep.update(depends_on(regrouped, {self.v.params[0]}))  # the new nodes' dependence on v
        self.alive.append(regrouped)  # ids in dep and memo stay unique
        self.regrouping.add(e)
        try:
            return (yield regrouped)
        finally:
            self.regrouping.discard(e)


def _matrix(e: Expr, c: _Linear) -> Expr:
    """The matrix of e, each node's remembered.  The rules are generators that yield what they
    need — an expression (its matrix) or `Row(r)` (a row read as a column) — and are run here
    on an explicit stack, so a Hessian through a formula nested 1,000 deep needs no recursion."""
    matrices = c.matrices
    if e in matrices:
        return matrices[e]
    stack: list[tuple[Expr | None, Rule]] = [(e, _matrix_uncached(e, c))]
    answer: Expr | None = None  # None: the rule on top has not started
    while stack:
        node, rule = stack[-1]
        try:
            need = next(rule) if answer is None else rule.send(answer)
        except StopIteration as done:
            answer = done.value
            if node is not None:
                matrices[node] = done.value
            stack.pop()
            continue
        if isinstance(need, Row):
            stack.append((None, _row_to_col(need.row, c)))
            answer = None
        elif need in matrices:
            answer = matrices[need]
        else:
            stack.append((need, _matrix_uncached(need, c)))
            answer = None
    return matrices[e]


def _zero(e: Expr, v: Expr) -> Expr:
    n = v.ty.dims[0]
    return S.zeros(Ty((n,), True) if e.ty.is_scalar else Ty((e.ty.dims[0], n)))


def _matrix_uncached(e: Expr, c: _Linear) -> Rule:
    """The matrix of one node, by its operator's `matrix` rule (a generator: `yield x` asks
    `_matrix` for the matrix of x)."""
    if not c.live(e):
        return _zero(e, c.v)
    if e is c.v:
        return S.eye(c.v.ty.dims[0])
    rule = OPS[e.op].matrix
    if rule is None:
        raise NoMatrixForm
    return (yield from rule(c, e))


def _row_to_col(row: Expr, c: _Linear) -> Rule:
    """The M with rowᵀ = M v, by the operator's `row` rule ((uᵀA)ᵀ = Aᵀu)."""
    rule = OPS[row.op].row
    if rule is None:
        raise NoMatrixForm
    return (yield from rule(c, row))


def jacobian_formula(f: Expr, x: Expr) -> Expr | None:
    """∂f/∂x in numerator layout as one expression, where a matrix formula exists: f scalar (the
    gradient), or f a column vector and x a column vector or scalar.  None otherwise (tensors)."""
    if f.ty.is_scalar:
        return gradients(f, [x])[0]
    if not f.ty.is_col or not (x.ty.is_col or x.ty.is_scalar):
        return None
    v = seed_for(f)
    (g,) = gradients(f, [x], seed=v)  # g = Jᵀv, shaped like x
    M = matrix_of(g, v)
    if M is None:
        return None
    J = _transposed(M)  # g = M v = Jᵀ v, so J = Mᵀ (a row r gives the column rᵀ when x is a scalar)
    return _kron_algebra(J) if any(n.op == "kron" for n in topological([J])) else J


def _transposed(M: Expr) -> Expr:
    """Mᵀ, with each transposed sum in it distributed where that prints no more transposes
    than (…)ᵀ does: the Jacobian of log softmax(Ax) is (I − 𝟙softmax(Ax)ᵀ)A, not
    (I − softmax(Ax)𝟙ᵀ)ᵀA.  (The simplifier weighs (P + Q)ᵀ against P + Q, without its mark.)"""
    def visit(n: Expr, args: tuple[Expr, ...]) -> Expr | None:
        if n.op != "T" or args[0].op != "add":
            return None
        P, Q = args[0].args
        if not P.ty == Q.ty == args[0].ty:  # a broadcast sum: (A + x)ᵀ adds x to rows
            return None
        kept = S.T(args[0])
        distributed = S.add(S.T(P), S.T(Q))
        return distributed if S._transposes(distributed) <= S._transposes(kept) else kept

    return rewrite([S.T(M)], visit)[0]


def _kron_algebra(e: Expr) -> Expr:
    """The Kronecker products the vec and kron rules leave, written as textbooks do:
    (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ and (A ⊗ B)(C ⊗ D) = AC ⊗ BD, so vec(AXB) wrt vec(X) is Bᵀ ⊗ A."""
    def visit(node: Expr, args: tuple[Expr, ...]) -> Expr | None:
        if node.op == "T" and args[0].op == "kron":
            a, b = args[0].args
            return make("kron", S.T(a), S.T(b))
        if node.op == "matmul" and args[0].op == "kron" and args[1].op == "kron":
            (a, b), (c, d) = args[0].args, args[1].args
            if a.ty.is_matrix and b.ty.is_matrix and c.ty.is_matrix and d.ty.is_matrix \
                    and a.ty.dims[1] == c.ty.dims[0] and b.ty.dims[1] == d.ty.dims[0]:
                return make("kron", S.matmul(a, c), S.matmul(b, d))
        return None
    (out,) = rewrite([e], visit)
    return out
