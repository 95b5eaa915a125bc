"""Directional derivatives, Hessian-vector products and derivatives of order k ≥ 3, as formulas.

Why these are built from reverse mode and an inner product: the directional derivative of a
scalar f along v is ⟨∇f, v⟩, and its gradient is the Hessian-vector product H·v (forward over
reverse, in symbolic form): a formula of x's shape that never holds the n×n Hessian.  The
Jacobian-vector product J·v of a vector or matrix f is the gradient, wrt the seed w of the
vector-Jacobian product Jᵀw, of ⟨Jᵀw, v⟩: a formula of f's shape.  Repeating the step gives the
k-th derivative as a formula linear in k − 1 symbolic directions, T[u₁, …, uₖ₋₁, ·]; written in
indices, each direction's entry becomes Kronecker deltas, and the tensor is printed in index
notation and evaluated by einsum (the walk of indexform, with several seeds instead of one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from ..language.expr import Expr, NoIndexForm
from ..language.render import Renderer
from ..record import record
from .differentiate import depends_on, gradients, seed_for
from .indexform import MAX_DEPTH, Fresh, Term, TooLarge, _as_products, _contract, _counted, _dependent_depth, \
    _Indexing, _render

if TYPE_CHECKING:
    from ..language.shapes import Dim
    from .indexform import Factor, Indices

INDEX_NAMES = ("i", "j", "k", "l", "p", "q", *(f"i{n}" for n in range(1, 40)))


def inner(a: Expr, b: Expr) -> Expr:
    """⟨a, b⟩, the sum of the entrywise product of two arrays of one shape: aᵀb for vectors."""
    if a.ty.is_scalar:
        return S.mul(a, b)
    if len(a.ty.dims) == 1:
        col = a if not a.ty.row else S.T(a)
        return S.matmul(S.T(col), b if not b.ty.row else S.T(b))
    return S.summ(S.mul(a, b))


def directional(f: Expr, xs: Sequence[Expr], vs: Sequence[Expr]) -> Expr:
    """Σₓ ∂f/∂x·vₓ, of f's shape: ⟨∇f, v⟩ for a scalar f, the Jacobian-vector product else."""
    if f.ty.is_scalar:
        grads = gradients(f, list(xs))
        return _total([inner(g, v) for g, v in zip(grads, vs)], f)
    w = seed_for(f)
    vjps = gradients(f, list(xs), seed=w)
    (jvp,) = gradients(_total([inner(g, v) for g, v in zip(vjps, vs)], S.const(0.0)), [w])
    return jvp


def hessian_vector(f: Expr, xs: Sequence[Expr], vs: Sequence[Expr]) -> list[Expr]:
    """(H·v)ₓ = ∇ₓ Σ_y ⟨∇_y f, v_y⟩ for each x, of x's shape (a scalar f): the Hessian of all the
    wrt symbols times the direction stacked from theirs, cut into one piece per symbol."""
    return gradients(directional(f, xs, vs), list(xs))


def _total(terms: list[Expr], zero: Expr) -> Expr:
    out = terms[0] if terms else S.zeros(zero.ty)
    for t in terms[1:]:
        out = S.add(out, t)
    return out


@record
class Multilinear:
    """A tensor T as the formula g = T[seeds…, ·], linear in each seed: T's entry at the seeds'
    indices and g's own is that entry of g with every seed a unit array."""

    g: Expr
    seeds: tuple[Expr, ...]
    lower: Multilinear | None = None  # the tensor this one is the derivative of (shape(lower) + shape(x))

    def groups(self) -> list[tuple[Dim, ...]]:
        """The axes of T, one group per seed, then g's own."""
        return [tuple(s.ty.dims) for s in self.seeds] + [tuple(self.g.ty.dims)]

    def dims(self) -> tuple[Dim, ...]:
        return tuple(d for group in self.groups() for d in group)

    def names(self) -> list[str]:
        """The printed indices, in the order of the value's axes."""
        return list(INDEX_NAMES[:len(self.dims())])

    def text(self, style: str = "unicode") -> str | None:
        """T[names] in index notation (the right-hand side), or None where none is found."""
        terms = self.display_terms(style)
        return None if terms is None else _render(terms, style)

    def display_terms(self, style: str = "unicode") -> list[Term] | None:
        """The terms as printed: sums of two factors written as their product (indexform's
        display), and terms equal up to the order of their factors added into one."""
        found = self._walk(style)
        if found is None:
            return None
        terms, _, _, fresh = found
        r = Renderer(style)
        merged: dict[tuple[object, ...], Term] = {}
        for t in (_as_products(_counted(t, fresh, r), r) for t in terms):
            key = (tuple(sorted(_factor_key(f) for f in t.factors)), tuple(sorted(t.sums)))
            if key in merged:
                merged[key].coef += t.coef
            else:
                merged[key] = t
        return [t for t in merged.values() if t.coef != 0.0]

    def terms(self) -> tuple[list[Term], Indices, Indices] | None:
        """(terms, seed indices, g's indices) ready for evaluation by einsum, or None."""
        found = self._walk("unicode")
        if found is None:
            return None
        terms, seed_idx, own_idx, fresh = found
        for t in terms:  # Σ_s over a term without s is a factor of s's size
            mentioned = {i for f in t.factors if f[0] == "t" for i in f[2]}
            for name in [n for n in t.sums if n not in mentioned]:
                size = fresh.sizes[name]
                if not isinstance(size, int):
                    return None
                t.coef *= size
                t.sums.remove(name)
        return terms, seed_idx, own_idx

    def _walk(self, style: str) -> tuple[list[Term], Indices, Indices, Fresh] | None:
        names = self.names()
        targets: dict[Expr, Indices] = {}
        at = 0
        for s in self.seeds:
            targets[s] = tuple(names[at:at + len(s.ty.dims)])
            at += len(s.ty.dims)
        own = tuple(names[at:])
        dep = depends_on(self.g, {str(s.params[0]) for s in self.seeds})
        fresh = Fresh()
        try:
            if _dependent_depth(self.g, dep) > MAX_DEPTH:
                raise TooLarge
            walk = _SeededIndexing(targets, dep, fresh, Renderer(style))
            terms = [_contract(t) for t in walk.of(self.g, own)]
        except NoIndexForm:
            return None
        return terms, tuple(names[:at]), own, fresh


def _factor_key(f: Factor) -> tuple[str, ...]:
    """A factor as a sortable key: a δ's two indices in order, an entry's text and indices."""
    if f[0] == "d":
        return ("d", *sorted((f[1], f[2])))
    if f[0] == "t":
        return ("t", f[1], *f[2])
    return ("v", *f[1])


class _SeededIndexing(_Indexing):
    """indexform's walk with several seeds: the entry u[a] of a seed whose axes are T's axes
    i is δ(a, i) at once, and an entrywise product may hold a seed on each side (the formula
    is linear in each seed, not in all of them together)."""

    def __init__(self, targets: dict[Expr, Indices], dep: set[Expr], names: Fresh, r: Renderer):
        super().__init__(next(iter(targets)), dep, names, r)
        self.targets = targets

    def of(self, e: Expr, idx: Indices) -> list[Term]:
        target = self.targets.get(e)
        if target is None:
            if e.op == "mul" and all(self.live(a) for a in e.args):  # one seed on each side
                a, b = e.args
                return self.times(self.of(a, self.align(a, idx)), self.of(b, self.align(b, idx)))
            return super().of(e, idx)
        if len(idx) != len(target):
            raise NoIndexForm
        return [Term(1.0, [("d", a, b) for a, b in zip(idx, target)])]


def _seed(n: int, like: Expr) -> Expr:
    return S.sym(f"\0u{n}", like.ty)


def order_tensor(f: Expr, x: Expr, k: int) -> Multilinear:
    """∂ᵏf/∂xᵏ of a scalar f: g₁ = ∇f, gⱼ₊₁ = ∇⟨gⱼ, uⱼ⟩ = T[u₁, …, uⱼ, ·]."""
    (g,) = gradients(f, [x])
    t = Multilinear(g, ())
    for n in range(1, k):
        u = _seed(n, x)
        (g,) = gradients(inner(t.g, u), [x])
        t = Multilinear(g, t.seeds + (u,), t)
    return t


def hessian_tensor(f: Expr, x: Expr, y: Expr) -> Multilinear:
    """∂²f/∂x∂y of a vector or matrix f: T[i…, j…, k…] = ∂²fᵢ/∂xⱼ∂y_k, from the seed w of f's
    vector-Jacobian product and a direction u of x."""
    w = seed_for(f)
    (g,) = gradients(f, [x], seed=w)
    u = _seed(1, x)
    (h,) = gradients(inner(g, u), [y])
    return Multilinear(h, (w, u), Multilinear(g, (w,)))
