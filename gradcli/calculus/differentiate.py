"""Reverse-mode symbolic differentiation over the expression DAG.

For a scalar f, the adjoint of f is 1; walking the graph from f back to the symbols, each node
hands its adjoint to its arguments through its operator's `vjp` rules (gradcli/language/operators/), and adjoints
arriving at one node by several paths are added.  Because the graph is hash-consed, the result
shares subexpressions with f and with itself: its size is linear in the size of f.
"""

from __future__ import annotations

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from ..language.expr import OPS, Expr, topological
from ..language.rewrite import rewrite


def depends_on(root: Expr, names: set[str], order: list[Expr] | None = None) -> set[Expr]:
    """The nodes of root that depend on any of the named symbols (`order`: root's
    `topological` order, when the caller has it)."""
    dep: set[Expr] = set()
    for n in topological([root]) if order is None else order:
        if n.op == "sym":
            if n.params[0] in names:
                dep.add(n)
            continue
        for a in n.args:  # a loop, not any(): a generator per node cost more than the test
            if a in dep:
                dep.add(n)
                break
    return dep


def adjoints(f: Expr, names: set[str], seed: Expr) -> dict[Expr, Expr]:
    """The adjoint ∂L/∂N of every node N of f that depends on the named symbols (L = ⟨seed, f⟩)."""
    order = topological([f])  # one walk for both passes
    dep = depends_on(f, names, order)
    adjoint: dict[Expr, Expr] = {f: seed}
    # the derivative-only rewrites (factoring, cancelling, distributing) on the adjoints' new
    # nodes: f's own nodes, which the adjoints share, stay as the user wrote them
    tidy = S.DerivativeForm(order)
    _propagate(order, dep, adjoint, tidy)
    leaves = [n for n in adjoint if not n.args]
    for n, G in zip(leaves, tidy([adjoint[n] for n in leaves])):
        adjoint[n] = G
    return adjoint


def _propagate(order: list[Expr], dep: set[Expr], adjoint: dict[Expr, Expr],
               tidy: S.DerivativeForm) -> None:
    """Each node's adjoint, once complete, put in derivative form before the node's rules read
    it (so σ − y, not its chain-rule spelling, flows on into Xᵀ(σ − y))."""
    for node in reversed(order):
        G = adjoint.get(node)
        if G is None or not node.args:
            continue
        (G,) = tidy([G])
        adjoint[node] = G
        rules = OPS[node.op].vjp
        for i, arg in enumerate(node.args):
            if arg not in dep:
                continue
            contribution = rules[i](node, G)
            if arg in adjoint:
                adjoint[arg] = S.add(adjoint[arg], contribution)
            else:
                adjoint[arg] = contribution


def gradients(f: Expr, wrt: list[Expr], seed: Expr | None = None) -> list[Expr]:
    """∂f/∂x for each symbol x in wrt (each with x's shape); f must be scalar unless seed is
    given (then the result is the vector-Jacobian product with seed, of f's shape)."""
    if seed is None:
        if not f.ty.is_scalar:
            raise ValueError("gradients needs a scalar f or a seed")
        seed = S.const(1.0)
    adjoint = adjoints(f, {x.params[0] for x in wrt}, seed)
    return [adjoint.get(x, S.zeros(x.ty)) for x in wrt]


def elementwise_derivative(name: str, order: int, x: Expr) -> Expr:
    """f⁽ᵏ⁾(x) for an element-wise builtin f, derived from f's own vjp rule."""
    z = S.sym("\0z", x.ty)
    g = S.fn(name, z)
    for _ in range(order):
        (g,) = gradients(S.summ(g) if not g.ty.is_scalar else g, [z])
    return substitute(g, {"\0z": x})


def substitute(root: Expr, values: dict[str, Expr]) -> Expr:
    """Replace symbols by expressions (rebuilding through the simplifying constructors)."""
    return rewrite([root], lambda node, args: values.get(node.params[0], node) if node.op == "sym" else None)[0]


SEED = "\0v"  # the name of the symbolic seed of a vector-Jacobian product


def seed_for(f: Expr) -> Expr:
    return S.sym(SEED, f.ty)


def expand_derivatives(root: Expr) -> Expr:
    """root with every `h'(x)` of a builtin h (an `elemderiv` node, as shape inference leaves
    it) written out as h's derivative, derived from h's own derivative rule."""
    def expand(node: Expr, args: tuple[Expr, ...]) -> Expr | None:
        if node.op != "elemderiv":
            return None
        name, order = node.params
        return elementwise_derivative(name, order, args[0])

    order = topological([root])
    if not any(node.op == "elemderiv" for node in order):  # nothing to write out: root as it is
        return root
    return rewrite([root], expand, order)[0]
