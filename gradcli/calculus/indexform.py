"""Index notation for derivatives that have no matrix formula (tensors of order 3 and 4).

Reverse mode gives g(V) = Jᵀ-applied-to-V, linear in a symbolic seed V of f's shape.  Written in
indices, each term of g[k, l] holds exactly one entry V[a, b]; the derivative entry
J[i, j, k, l] = ∂g[k, l]/∂V[i, j] replaces it by δ(a, i) δ(b, j), and summed indices that meet a
δ are contracted away.  So `A@x` wrt A gives δ(i,k) x[l], and K = RᵀR wrt R gives
δ(l,i) R[k,j] + δ(l,j) R[k,i].  Subexpressions free of V stay whole: (1 − tanh(Wx)²)[i].
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING, Literal

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from .differentiate import depends_on, gradients, seed_for
from ..language.expr import OPS, Expr, NoIndexForm, make_raw, topological
from ..record import Factory, record
from ..language.render import Renderer
from ..language.shapes import DimProduct, Ty, fmt_dim, product
from ..language.simplify import is_symmetric

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TypeAlias

    from ..language.expr import Array
    from ..language.shapes import Dim

    Indices: TypeAlias = tuple[str, ...]
    # a factor of a term: an expression's entry ("t", its text, its indices, the expression),
    # a Kronecker delta ("d", index, index), a composite delta ("c", whole, hi, lo) that reads
    # an index over a product of sizes as a pair (whole = hi·size(lo) + lo: kron's rows, vec's
    # entries), or the seed's entry ("v", its indices) until `_seed_to_delta` turns the seed into deltas
    Entry: TypeAlias = tuple[Literal["t"], str, Indices, Expr]
    Composite: TypeAlias = tuple[Literal["c"], str, str, str]
    Factor: TypeAlias = Entry | tuple[Literal["d"], str, str] | Composite | tuple[Literal["v"], Indices]

F_INDEX = ("i", "j")
X_INDEX = ("k", "l")
H_X_INDEX = ("p", "q")  # the second variable's indices when f is a gradient of a matrix (4 indices)


class TooLarge(NoIndexForm):
    """Index notation past a size a reader can use (a deep chain's Hessian expands into
    thousands of terms, each as long as the chain): the values come from vector-Jacobian
    products instead, whose cost stays linear in the formula."""


MAX_DEPTH = 60  # nested operators between g and the seed: also keeps the walk (3 frames a level) far
# from Python's recursion limit
MAX_TERMS = 400
MAX_INDICES = 300  # summation indices in all terms together


@record
class Term:
    coef: float
    factors: list[Factor] = Factory(default_factory=list)
    sums: list[str] = Factory(default_factory=list)  # the summed indices
    # the size of every index, for a term with composite deltas (their parts are reshaped axes)
    sizes: dict[str, Dim] = Factory(default_factory=dict)


def _derive(g: Expr, v: Expr, f_dims: tuple[Dim, ...], x_dims: tuple[Dim, ...],
            style: str) -> tuple[list[Term], Indices, Indices, Fresh] | None:
    dep = depends_on(g, {v.params[0]})
    fresh = Fresh()
    f_idx = F_INDEX[: len(f_dims)]
    x_idx = X_INDEX[: len(x_dims)]
    fresh.sizes.update(zip(x_idx, x_dims))  # (every index of the walk has its size: see `align`)
    try:
        if _dependent_depth(g, dep) > MAX_DEPTH:
            raise TooLarge
        terms = _Indexing(v, dep, fresh, Renderer(style)).of(g, x_idx)
        sizes = {**fresh.sizes, **dict(zip(f_idx, f_dims)), **dict(zip(x_idx, x_dims))}
        out = [_same_pairs(_contract(_seed_to_delta(t, f_idx)), sizes) for t in terms]
        for t in out:
            if any(f[0] == "c" for f in t.factors):
                t.sizes = sizes
                _Axes(t)  # raises NoIndexForm where one index is read as two different pairs
        return out, f_idx, x_idx, fresh
    except NoIndexForm:
        return None


def _dependent_depth(g: Expr, dep: set[Expr]) -> int:
    """The longest chain of operators from g down to the seed (children first, no recursion):
    the depth the index walk would recurse to."""
    depth: dict[Expr, int] = {}
    for n in topological([g]):
        if n in dep:
            depth[n] = 1 + max((depth.get(a, 0) for a in n.args), default=0)
    return depth.get(g, 0)


def too_deep(f: Expr, x: Expr) -> bool:
    """Whether f nests more than MAX_DEPTH operators above x: the vector-Jacobian product g
    nests at least as deep, so index notation is given up before g is built."""
    return _dependent_depth(f, depends_on(f, {x.params[0]})) > MAX_DEPTH


def index_terms(g: Expr, v: Expr, f_dims: tuple[Dim, ...], x_dims: tuple[Dim, ...],
                style: str = "unicode") -> tuple[list[Term], Indices, Indices] | None:
    """(terms, f indices, x indices) of J = ∂f/∂x ready for evaluation, or None."""
    found = _derive(g, v, f_dims, x_dims, style)
    if found is None:
        return None
    terms, f_idx, x_idx, fresh = found
    for t in terms:  # Σ_s over a term without s is a factor of s's size
        mentioned = {i for f in t.factors if f[0] == "t" for i in f[2]} | _in_composites(t)
        for name in [n for n in t.sums if n not in mentioned]:
            size = fresh.sizes[name]
            if not isinstance(size, int):
                return None  # a symbolic size: the VJP loop evaluates it instead
            t.coef *= size
            t.sums.remove(name)
    return terms, f_idx, x_idx


def index_formula(g: Expr, v: Expr, f_dims: tuple[Dim, ...], x_dims: tuple[Dim, ...],
                  style: str = "unicode") -> str | None:
    """J[f indices, x indices] as text, from g = the vector-Jacobian product with seed v."""
    terms = display_terms(g, v, f_dims, x_dims, style)
    return None if terms is None else _render(terms, style)


def display_terms(g: Expr, v: Expr, f_dims: tuple[Dim, ...], x_dims: tuple[Dim, ...],
                  style: str = "unicode") -> list[Term] | None:
    """The terms as printed: sums over an index shared by two matrix or vector factors are written
    as the product they are, Σ_r X[r,k] X[r,i] as (XᵀX)[k,i] (display only; evaluation keeps
    the einsum form)."""
    found = _derive(g, v, f_dims, x_dims, style)
    if found is None:
        return None
    r = Renderer(style)
    return [_as_products(_counted(t, found[3], r), r) for t in found[0]]


def _counted(t: Term, fresh: "Fresh", r: Renderer) -> Term:
    """Σ_r over a term that does not mention r is the term times r's range: printed as that
    count (3 δ(i,k), or n δ(i,k) for a symbolic size), since `Σ_r` alone does not say how many."""
    mentioned = {i for f in t.factors if f[0] == "t" for i in f[2]} | {
        i for f in t.factors if f[0] == "d" for i in f[1:]} | _in_composites(t)
    factors, coef, sums = list(t.factors), t.coef, list[str]()
    for name in t.sums:
        size = fresh.sizes[name]
        if name in mentioned:
            sums.append(name)
        elif isinstance(size, int):
            coef *= size
        else:
            count = make_raw("numel", (), (Ty((size,)),))
            factors.append(("t", r.text(count), (), count))
    return Term(coef, factors, sums, t.sizes)


def _in_composites(t: Term) -> set[str]:
    return {i for f in t.factors if f[0] == "c" for i in f[1:]}


def _as_products(t: Term, r: Renderer) -> Term:
    factors, sums = list(t.factors), list(t.sums)
    while True:
        for s in sums:
            entries = [(n, f) for n, f in enumerate(factors) if f[0] == "t" and s in f[2]]
            if len(entries) != 2 or any(f[0] in "dc" and s in f[1:] for f in factors):
                continue
            holders = [n for n, _ in entries]
            (_, f1), (_, f2) = entries
            if f1[2].count(s) != 1 or f2[2].count(s) != 1 or len(f1[2]) < len(f2[2]):
                f1, f2 = f2, f1  # the factor with more indices first
            if f1[2].count(s) != 1 or f2[2].count(s) != 1:
                continue
            left = _oriented(f1, s, last=True)
            right = _oriented(f2, s, last=False)
            outer = tuple(i for i in f1[2] if i != s) + tuple(i for i in f2[2] if i != s)
            if len(set(outer)) != len(outer):
                continue  # a diagonal or a trace: left in index form
            product = S.matmul(left, right)
            text, _ = r.render(product)
            new: Entry = ("t", text if product.op == "sym" else f"({text})", outer, product)
            factors = [f for n, f in enumerate(factors) if n not in holders] + [new]
            sums = [x for x in sums if x != s]
            break
        else:
            return Term(t.coef, factors, sums, t.sizes)


def _oriented(f: Entry, s: str, last: bool) -> Expr:
    """The factor's expression turned so that the summed index s is its last (or first) one:
    a matrix transposed if needed, a vector as a row on the left and a column on the right."""
    e, idx = f[3], f[2]
    if len(idx) == 2:
        return e if (idx[1] == s) == last else S.T(e)
    col = e if e.ty.is_col else S.T(e)
    return S.T(col) if last else col


@dataclass(frozen=True)
class Contraction:
    """One term of a tensor's index form as numpy computes it: coef · einsum(spec, *factors),
    with singleton axes inserted where the term does not depend on an output index, added onto
    the view einsum(diagonal, J) of J (δ between output indices: a diagonal view, never an
    array).  A composite index (kron's rows, vec's entries) is an axis reshaped into the pair
    it stands for: `shapes` gives a factor's reshaped shape (None: as it is) and `view` J's.
    The evaluator runs it (`evaluate_terms`) and `--emit` writes it out."""

    coef: float
    factors: list[Expr]  # the operands' expressions, in the order of spec
    spec: str  # "ab,b->ab" ("" for a term without factors)
    inserted: tuple[int, ...]  # axes of the output that the term is constant along
    diagonal: str  # "aab->ab", or "" for J itself
    shapes: tuple[tuple[Dim, ...] | None, ...] = ()  # () or one per factor
    view: tuple[Dim, ...] | None = None  # J reshaped before the diagonal is taken


class _Axes:
    """The axes of one term: indices made equal by its deltas (union-find), and the indices a
    composite delta splits into a (hi, lo) pair, so that each index is a list of leaves, the
    axes einsum sees.  Two splits of one index must agree in their sizes (else NoIndexForm:
    vec(X) ⊙ vec(Y) with X (2, 6) and Y (3, 4) has no common reshaping)."""

    def __init__(self, t: Term) -> None:
        self.parent: dict[str, str] = {}
        self.split: dict[str, tuple[str, str]] = {}
        self.sizes = t.sizes
        for f in t.factors:
            if f[0] == "d":
                self.union(f[1], f[2])
        for f in t.factors:
            if f[0] == "c":
                self.divide(f[1], f[2], f[3])

    def find(self, n: str) -> str:
        while self.parent.get(n, n) != n:
            n = self.parent[n]
        return n

    def union(self, a: str, b: str) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        self.parent[b] = a
        if b in self.split:
            self.divide(a, *self.split.pop(b))

    def divide(self, whole: str, hi: str, lo: str) -> None:
        w = self.find(whole)
        if w not in self.split:
            self.split[w] = (hi, lo)
            return
        h, l = self.split[w]
        if self.sizes.get(l) != self.sizes.get(lo):
            raise NoIndexForm
        self.union(h, hi)
        self.union(l, lo)

    def leaves(self, n: str, depth: int = 0) -> list[str]:
        if depth > MAX_INDICES:
            raise NoIndexForm
        r = self.find(n)
        if r not in self.split:
            return [r]
        h, l = self.split[r]
        return self.leaves(h, depth + 1) + self.leaves(l, depth + 1)

    def size(self, n: str) -> Dim:
        return next(self.sizes[m] for m in [n, *self.sizes] if m in self.sizes and self.find(m) == self.find(n))


def contractions(terms: list[Term], f_idx: Indices, x_idx: Indices) -> list[Contraction]:
    out_names = list(f_idx) + list(x_idx)
    found: list[Contraction] = []
    for t in terms:
        axes = _Axes(t)
        letters: dict[str, str] = {}

        def letter(n: str) -> str:
            if n not in letters:
                letters[n] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(letters)]
            return letters[n]

        def reshaped(idx: Indices, dims: tuple[Dim, ...]) -> tuple[str, tuple[Dim, ...] | None]:
            """The letters of these indices' leaves, and the shape their axes take (None: as is)."""
            leaves = [axes.leaves(i) for i in idx]
            subs = "".join(letter(x) for group in leaves for x in group)
            if all(len(group) == 1 for group in leaves):
                return subs, None
            return subs, tuple(d for group, dim in zip(leaves, dims)
                               for d in ([dim] if len(group) == 1 else [axes.size(x) for x in group]))
        factors: list[Expr] = []
        subs: list[str] = []
        shapes: list[tuple[Dim, ...] | None] = []
        for f in t.factors:
            if f[0] == "t":
                factors.append(f[3])
                sub, shape = reshaped(f[2], f[3].ty.dims)
                subs.append(sub)
                shapes.append(shape)
        full, view = reshaped(tuple(out_names), tuple(t.sizes.get(n, 0) for n in out_names))
        reduced = "".join(dict.fromkeys(full))
        present = set("".join(subs))
        kept = "".join(c for c in reduced if c in present)
        found.append(Contraction(t.coef, factors, ",".join(subs) + "->" + kept if factors else "",
                                 tuple(k for k, c in enumerate(reduced) if c not in kept),
                                 full + "->" + reduced if full != reduced else "",
                                 tuple(shapes) if any(s is not None for s in shapes) else (), view))
    return found


def evaluate_terms(terms: list[Term], f_idx: Indices, x_idx: Indices, shape: tuple[int, ...],
                   computed: dict[Expr, Array]) -> Array:
    """The tensor J from its index form, by einsum (see `Contraction`).  `computed` holds the
    value of every factor, keyed by its expression.  Three or more factors are contracted
    pairwise in the order einsum's optimizer picks (a chain of 14 3×3 factors in one loop nest
    took seconds)."""
    import numpy as np

    out = np.zeros(shape)
    for k, c in enumerate(contractions(terms, f_idx, x_idx)):
        operands = [np.asarray(computed[e], dtype=float) for e in c.factors]
        if c.shapes:
            operands = [a if s is None else a.reshape(_ints(s)) for a, s in zip(operands, c.shapes)]
        view = out.reshape(_ints(c.view)) if c.view is not None else out
        view = np.einsum(c.diagonal, view) if c.diagonal else view
        if k == 0 and operands and not c.inserted:  # the first term straight into J: no temporary
            np.einsum(c.spec, *operands, out=view, optimize=len(operands) > 2)
            if c.coef != 1.0:
                view *= c.coef
            continue
        value: Array = c.coef * (np.einsum(c.spec, *operands, optimize=len(operands) > 2) if operands
                                 else np.float64(1.0))
        view += np.expand_dims(value, c.inserted) if c.inserted else value
    return out


def _ints(dims: tuple[Dim, ...]) -> tuple[int, ...]:
    """The sizes of a reshaped axis list: numbers, once a problem is compiled for its data."""
    if not all(isinstance(d, int) for d in dims):
        raise NoIndexForm
    return tuple(d for d in dims if isinstance(d, int))


class Fresh:
    """Names for summation indices, remembering each one's size (a sum whose term does not
    mention its index multiplies the term by that size)."""

    def __init__(self) -> None:
        self.names: Iterator[str] = iter([*"rstuvwabcdegh", *(f"s{i}" for i in range(1, MAX_INDICES))])
        self.sizes: dict[str, Dim] = {}

    def name(self, size: Dim) -> str:
        n = next(self.names, None)
        if n is None:
            raise TooLarge
        self.sizes[n] = size
        return n


def _opaque(e: Expr, idx: Indices, r: Renderer) -> Term:
    if e.op == "T" and len(idx) == 2:  # (Aᵀ)[i,j] = A[j,i]
        return _opaque(e.args[0], (idx[1], idx[0]), r)
    if e.op == "T":
        return _opaque(e.args[0], idx, r)
    if e.is_const:
        return Term(e.value)
    if e.op == "fill" and e.args[0].is_const:  # c𝟙 has the entry c at every index
        return Term(e.args[0].value)
    if e.op == "eye" and len(idx) == 2:  # I[i,j] is Kronecker's δ(i,j), contracted like any other
        return Term(1.0, [("d", idx[0], idx[1])])
    text, prec = r.render(e)
    if not idx:
        return Term(1.0, [("t", text if prec >= 2 else f"({text})", (), e)])
    if e.op != "sym":
        text = f"({text})"
    return Term(1.0, [("t", text, idx, e)])


def _times(a: list[Term], b: list[Term]) -> list[Term]:
    if len(a) * len(b) > MAX_TERMS:
        raise TooLarge
    return [Term(x.coef * y.coef, x.factors + y.factors, x.sums + y.sums) for x in a for y in b]


def _align(arg: Expr, out_idx: Indices) -> Indices:
    """The indices of a broadcast operand: numpy aligns the trailing axes."""
    dims = arg.ty.dims
    if not dims:
        return ()
    if len(dims) == len(out_idx):
        if any(d == 1 for d in dims):
            raise NoIndexForm
        return out_idx
    return out_idx[len(out_idx) - len(dims):]


class _Indexing:
    """One index-notation walk (the `IndexContext` the operators' rules are given): the seed,
    the nodes that depend on it (by id), the summation indices drawn, the renderer of opaque
    factors."""

    __slots__ = ("v", "dep", "names", "r")

    def __init__(self, v: Expr, dep: set[Expr], names: Fresh, r: Renderer):
        self.v, self.dep, self.names, self.r = v, dep, names, r

    def of(self, e: Expr, idx: Indices) -> list[Term]:
        """The terms of e[idx], by the rule of e's operator."""
        if e is self.v:
            return [Term(1.0, [("v", idx)])]
        if e not in self.dep:
            return [_opaque(e, idx, self.r)]
        rule = OPS[e.op].index
        if rule is None:
            raise NoIndexForm
        terms: list[Term] = rule(self, e, idx)
        return terms

    def live(self, e: Expr) -> bool:
        return e in self.dep

    def fresh(self, size: Dim) -> str:
        return self.names.name(size)

    def summed(self, terms: list[Term], indices: Indices) -> list[Term]:
        for t in terms:
            t.sums.extend(indices)
        return terms

    def times(self, a: list[Term], b: list[Term]) -> list[Term]:
        return _times(a, b)

    def opaque(self, e: Expr, idx: Indices) -> list[Term]:
        return [_opaque(e, idx, self.r)]

    def delta(self, i: str, j: str) -> list[Term]:
        return [Term(1.0, [("d", i, j)])]

    def composite(self, whole: str, hi: str, lo: str, hi_size: Dim, lo_size: Dim) -> list[Term]:
        """δ(whole, hi·lo_size + lo); a pair with a part of size 1 is a plain delta."""
        if lo_size == 1:
            return self.delta(whole, hi)
        if hi_size == 1:
            return self.delta(whole, lo)
        sizes = self.names.sizes
        sizes.setdefault(hi, hi_size)
        sizes.setdefault(lo, lo_size)
        sizes.setdefault(whole, product(hi_size, lo_size))
        return [Term(1.0, [("c", whole, hi, lo)])]

    def align(self, e: Expr, idx: Indices) -> Indices:
        """An operand of the node's own shape is not broadcast, sizes of 1 included."""
        sizes = self.names.sizes
        if len(e.ty.dims) == len(idx) and all(sizes.get(i) == d for i, d in zip(idx, e.ty.dims)):
            return idx
        return _align(e, idx)

    def bounded(self, terms: list[Term]) -> list[Term]:
        if len(terms) > MAX_TERMS:
            raise TooLarge
        return terms


def _seed_to_delta(t: Term, f_idx: Indices) -> Term:
    factors: list[Factor] = []
    for f in t.factors:
        if f[0] == "v":
            if len(f[1]) != len(f_idx):
                raise NoIndexForm
            factors.extend(("d", a, b) for a, b in zip(f[1], f_idx))
        else:
            factors.append(f)
    return Term(t.coef, factors, list(t.sums), t.sizes)


def _contract(t: Term) -> Term:
    """Σ_s δ(s, i) E(s) = E(i); δ(i, i) = 1."""
    factors, sums = list(t.factors), list(t.sums)
    changed = True
    while changed:
        changed = False
        for n, f in enumerate(factors):
            if f[0] != "d":
                continue
            a, b = f[1], f[2]
            if a == b:
                factors.pop(n)
                changed = True
                break
            for old, new in ((a, b), (b, a)):
                if old in sums:
                    sums.remove(old)
                    factors.pop(n)
                    factors = [_rename(g, old, new) for g in factors]
                    changed = True
                    break
            if changed:
                break
    return Term(t.coef, factors, sums, t.sizes)


def _same_pairs(t: Term, sizes: dict[str, Dim]) -> Term:
    """δ(t, (a, b)) δ(t, (c, d)) with b and d of one size is δ(t, (a, b)) δ(a, c) δ(b, d)
    (vec(unvec(g, m)) read through its indices), contracted again."""
    pairs: dict[tuple[str, Dim], tuple[str, str]] = {}
    factors: list[Factor] = []
    for f in t.factors:
        if f[0] == "c" and (f[1], sizes.get(f[3], 0)) in pairs:
            h, lo = pairs[(f[1], sizes.get(f[3], 0))]
            factors += [("d", h, f[2]), ("d", lo, f[3])]
            continue
        if f[0] == "c":
            pairs[(f[1], sizes.get(f[3], 0))] = (f[2], f[3])
        factors.append(f)
    if len(factors) == len(t.factors):
        return t
    return _same_pairs(_contract(Term(t.coef, factors, list(t.sums), t.sizes)), sizes)


def _rename(f: Factor, old: str, new: str) -> Factor:
    if f[0] == "d":
        return ("d", new if f[1] == old else f[1], new if f[2] == old else f[2])
    if f[0] == "c":
        return ("c", *(new if i == old else i for i in f[1:]))  # type: ignore[return-value]
    assert f[0] == "t", "no seed factor is left once the seed is turned into deltas"
    return ("t", f[1], tuple(new if i == old else i for i in f[2]), f[3])


def _factor_order(f: Factor) -> int:
    """A count (n δ(i,k)) first, then the deltas, then the other factors as they come."""
    if f[0] == "t" and len(f) > 3 and f[3].op == "numel":
        return 0
    return 1 if f[0] in "dc" else 2


_PAIR_TEXT = {  # how a composite index's parts read: whole mod size, whole div size, hi·size + lo
    "unicode": ("{w} mod {n}", "{w} div {n}", "{n}·{h}+{l}"),
    "ascii": ("{w}%{n}", "{w}//{n}", "{n}*{h}+{l}"),
    "latex": (r"{w} \bmod {n}", r"\lfloor {w}/{n} \rfloor", r"{n} \cdot {h}+{l}"),
}


def _readable(t: Term, style: str) -> tuple[list[Factor], list[str], dict[str, str]]:
    """A term's composite deltas written into its indices, for display: δ(i, (s, r)) with r, s
    summed reads X[r,s] as X[i mod m, i div m] (r = i mod m, s = i div m), a summed whole t
    whose parts are known reads x[t] as x[m s + r]; a part that stays free keeps its delta,
    δ(k, i div p).  Returns the factors left, the sums left, and the text of each index."""
    mod, div, pair = _PAIR_TEXT[style]
    text: dict[str, str] = {}
    sums = list(t.sums)
    factors: list[Factor] = [f for f in t.factors if f[0] != "c"]
    pending: list[Composite] = [f for f in t.factors if f[0] == "c"]

    def show(i: str) -> str:
        out = text.get(i, i)
        return out if out.isalnum() else f"({out})"

    def size(i: str) -> str:
        d = t.sizes.get(i, "?")
        return fmt_dim(d).replace("*", "·" if style == "unicode" else "*") if not isinstance(d, DimProduct) \
            else f"({fmt_dim(d)})"
    def step(f: Composite, last: bool) -> bool:
        _, w, h, lo = f
        n = size(lo)
        if w not in sums or w in text:  # the whole is known: each summed part is read from it
            for part, form in ((lo, mod), (h, div)):
                value = form.format(w=show(w), n=n)
                if part in sums and part not in text:
                    text[part] = value
                    sums.remove(part)
                else:  # a part known otherwise: the delta stays
                    factors.append(("d", part, value))
            return True
        if last or not any(g[1] in (h, lo) for g in pending):  # Σ_t δ(t, (s, r)) x[t] = x[n·s+r]
            text[w] = pair.format(h=show(h), l=show(lo), n=n)
            sums.remove(w)
            return True
        return False
    for last in (False, True):
        progress = True
        while pending and progress:
            progress = False
            for f in list(pending):
                if step(f, last):
                    pending.remove(f)
                    progress = True
    return factors, sums, text


def _render(terms: list[Term], style: str) -> str:
    terms = [t for t in terms if t.coef != 0.0]
    if not terms:
        return "0"
    parts = []
    for n, t in enumerate(terms):
        pieces = []
        factors, sums, shown = _readable(t, style)
        for f in sorted(factors, key=_factor_order):
            if f[0] == "d":
                a, b = sorted((shown.get(f[1], f[1]), shown.get(f[2], f[2])))
                comma = "" if len(a) == len(b) == 1 else ","
                pieces.append({"unicode": f"δ({a},{b})", "ascii": f"delta({a},{b})",
                               "latex": rf"\delta_{{{a}{comma}{b}}}"}[style])
            else:
                assert f[0] == "t", "no seed factor is left once the seed is turned into deltas"
                idx = tuple(shown.get(i, i) for i in f[2])
                if len(idx) == 2 and idx[0] > idx[1] and len(f) > 3 and is_symmetric(f[3]):
                    idx = (idx[1], idx[0])  # S[k,i] = S[i,k], written in order
                if idx and style == "latex":  # X_{ki}: LaTeX's subscripts, not brackets
                    from ..language.render import latex_subscript

                    pieces.append(latex_subscript(f[1], idx))
                else:
                    pieces.append(f[1] + (f"[{','.join(idx)}]" if idx else ""))
        body = " ".join(pieces) if pieces else "1"
        if sums:
            prefix = {"unicode": "Σ_", "ascii": "sum_", "latex": r"\sum_{"}[style]
            body = prefix + ",".join(sums) + ("}" if style == "latex" else "") + " " + body
        c = t.coef
        if c != 1.0 and c != -1.0:
            body = f"{abs(c):g} {body}"
        sign = "-" if c < 0 else "+"
        if style == "unicode" and sign == "-":
            sign = "−"
        parts.append((sign if (n or c < 0) else "") + ("" if not n and c >= 0 else " ") + body
                     if n else (sign if c < 0 else "") + body)
    text = parts[0]
    for p in parts[1:]:
        text += " " + p.strip() if p.strip()[0] in "+-−" else " + " + p
    return text


def index_notation(f: Expr, x: Expr, style: str = "unicode") -> str | None:
    """∂f/∂x in index notation (numerator layout), for derivatives with no matrix formula."""
    if too_deep(f, x):  # deeper than index notation is read: skip building its g
        return None
    v = seed_for(f)
    (g,) = gradients(f, [x], seed=v)
    return index_formula(g, v, f.ty.full_dims if not f.ty.row else f.ty.dims, x.ty.dims, style)
