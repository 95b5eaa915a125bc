"""Reverse-mode symbolic differentiation over the expression DAG.

For a scalar f, the adjoint of f is 1; walking the graph from f back to the symbols, each node
hands its adjoint to its arguments through its operator's `vjp` rules (gradcli/operators/), and adjoints
arriving at one node by several paths are added.  Because the graph is hash-consed, the result
shares subexpressions with f and with itself: its size is linear in the size of f.
"""

from __future__ import annotations

from . import operators  # noqa: F401  (fills the operator registry)
from . import simplify as S
from .expr import OPS, Expr, topological


def depends_on(root: Expr, names: set[str], order: list[Expr] | None = None) -> set[int]:
    """ids of the nodes of root that depend on any of the named symbols (`order`: root's
    `topological` order, when the caller has it)."""
    dep: set[int] = set()
    for n in topological([root]) if order is None else order:
        if n.op == "sym":
            if n.params[0] in names:
                dep.add(id(n))
            continue
        for a in n.args:  # a loop, not any(): a generator per node cost more than the test
            if id(a) in dep:
                dep.add(id(n))
                break
    return dep


def adjoints(f: Expr, names: set[str], seed: Expr) -> dict[int, Expr]:
    """The adjoint ∂L/∂N of every node N of f that depends on the named symbols (L = ⟨seed, f⟩)."""
    order = topological([f])  # one walk for both passes
    dep = depends_on(f, names, order)
    adjoint: dict[int, Expr] = {id(f): seed}
    with S.IN_DERIVATIVE:
        _propagate(order, dep, adjoint)
    return adjoint


def _propagate(order: list[Expr], dep: set[int], adjoint: dict[int, Expr]) -> None:
    for node in reversed(order):
        G = adjoint.get(id(node))
        if G is None or not node.args:
            continue
        rules = OPS[node.op].vjp
        for i, arg in enumerate(node.args):
            if id(arg) not in dep:
                continue
            contribution = rules[i](node, G)
            if id(arg) in adjoint:
                adjoint[id(arg)] = S.add(adjoint[id(arg)], contribution)
            else:
                adjoint[id(arg)] = contribution


def gradients(f: Expr, wrt: list[Expr], seed: Expr | None = None) -> list[Expr]:
    """∂f/∂x for each symbol x in wrt (each with x's shape); f must be scalar unless seed is
    given (then the result is the vector-Jacobian product with seed, of f's shape)."""
    if seed is None:
        if not f.ty.is_scalar:
            raise ValueError("gradients needs a scalar f or a seed")
        seed = S.const(1.0)
    adjoint = adjoints(f, {x.params[0] for x in wrt}, seed)
    return [adjoint.get(id(x), S.zeros(x.ty)) for x in wrt]


def elementwise_derivative(name: str, order: int, x: Expr) -> Expr:
    """f⁽ᵏ⁾(x) for an element-wise builtin f, derived from f's own vjp rule."""
    z = S.sym("\0z", x.ty)
    g = S.fn(name, z)
    for _ in range(order):
        (g,) = gradients(S.summ(g) if not g.ty.is_scalar else g, [z])
    return substitute(g, {"\0z": x})


def substitute(root: Expr, values: dict[str, Expr]) -> Expr:
    """Replace symbols by expressions (rebuilding through the simplifying constructors)."""
    from .expr import make

    done: dict[int, Expr] = {}
    for n in topological([root]):
        if n.op == "sym":
            done[id(n)] = values.get(n.params[0], n)
        elif not n.args:
            done[id(n)] = n
        else:
            done[id(n)] = make(n.op, *(done[id(a)] for a in n.args), params=n.params)
    return done[id(root)]


SEED = "\0v"  # the name of the symbolic seed of a vector-Jacobian product


def seed_for(f: Expr) -> Expr:
    return S.sym(SEED, f.ty)


def jacobian_formula(f: Expr, x: Expr) -> Expr | None:
    """∂f/∂x in numerator layout as one expression, where a matrix formula exists: f scalar (the
    gradient), or f a column vector and x a column vector or scalar.  None otherwise (tensors)."""
    from .linearize import matrix_of

    if f.ty.is_scalar:
        return gradients(f, [x])[0]
    if not f.ty.is_col or not (x.ty.is_col or x.ty.is_scalar):
        return None
    v = seed_for(f)
    (g,) = gradients(f, [x], seed=v)  # g = Jᵀv, shaped like x
    M = matrix_of(g, v)
    if M is None:
        return None
    return S.T(M)  # g = M v = Jᵀ v, so J = Mᵀ (a row r gives the column rᵀ when x is a scalar)


def index_notation(f: Expr, x: Expr, style: str = "unicode") -> str | None:
    """∂f/∂x in index notation (numerator layout), for derivatives with no matrix formula."""
    from .indexform import index_formula, too_deep

    if too_deep(f, x):  # deeper than index notation is read: skip building its g
        return None
    v = seed_for(f)
    (g,) = gradients(f, [x], seed=v)
    return index_formula(g, v, f.ty.full_dims if not f.ty.row else f.ty.dims, x.ty.dims, style)
