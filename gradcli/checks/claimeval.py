"""Claims at random draws: the formula and each claimed derivative analysed again at numeric
sizes, seeded values chosen for the formula's domain, and everything evaluated there.

Sizes: each symbolic dimension gets its own small size (3, 4, 5, ...; a second, larger set for
the later draws), so a mix-up of two dimensions cannot go unseen.  Values: mixed signs, away
from zero (abs, sign, relu and max are checked on both sides), positive where the formula, its
derivative or a claim needs it (log, sqrt, fractional powers: the mixed draw fails and is
redrawn positive); square matrices get n·I added (invertible, logdet defined) and stay
unsymmetric (a missing transpose shows).  Unbound abstract functions (h) are bound to a
different smooth builtin at each draw, so a claim is not accepted for one function's accidents.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..language.shapes import DimProduct
from ..record import record

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import TypedDict

    from ..api import Problem
    from ..compiled import Compiled, Deferred
    from ..derivative import Derivative
    from ..directions import Extended
    from ..language.expr import Array, Expr
    from ..language.shapes import Dim
    from ..numeric.evaluate import Program

    class Source(TypedDict):
        """The formula as the user gave it, analysed again at each size set."""

        text: str
        wrt: list[str] | None
        layout: str | None

    Binding = tuple[tuple[str, str], ...]  # abstract function → the builtin bound to it, sorted

DRAWS = 4  # seeds 0..3: two at the first size set, two at the second
TOLERANCE = 1e-7  # relative (max-norm) error under which two values count as equal
ABSTRACT_BINDINGS = ("tanh", "sin", "softplus", "arctan")  # smooth on all of R, unlike each other


@record
class Draw:
    seed: int
    sizes: dict[str, int]  # each dimension name's size
    domain: str  # "mixed" (signs ±) or "positive"
    functions: dict[str, str]  # each unbound abstract function's builtin


def parse_claim(problem: Problem, text: str, functions: Iterable[str] = (),
                direction: Mapping[str, str] | None = None) -> Expr:
    """The claim as a typed expression over the formula's symbols, in their shapes (and the
    directions' symbols, each in the shape of its wrt symbol)."""
    import re

    from ..api import analyze
    from ..errors import GradcliError

    shapes = {n: s.shape for n, s in problem.symbols.items()}
    shapes.update(direction_shapes(problem, direction))
    try:
        claim = analyze(text, shapes, functions=set(functions))
    except GradcliError as err:
        err.message = f"in the claim: {err.message}"
        raise err.with_text(text)
    new = [n for n in claim.symbols if n not in shapes]
    if new:
        found = re.search(rf"(?<![\w']){re.escape(new[0])}(?!\w)", text)
        raise GradcliError("parse", f"the claim uses '{new[0]}', which is not a symbol of the "
                                    f"formula ({', '.join(problem.symbols)}); a claim may use only "
                                    "the formula's symbols", found.start() + 1 if found else None, text)
    if claim.wrt:
        raise GradcliError("parse", "a claim has no wrt clause: it is the derivative itself", None, text)
    known = set(_abstract_functions([problem.expr])) | set(functions)
    new_fns = [n for n in _abstract_functions([claim.expr]) if n not in known]
    if new_fns:
        found = re.search(rf"(?<![\w']){re.escape(new_fns[0])}'*\s*\(", text)
        raise GradcliError("parse", f"the claim uses the function '{new_fns[0]}', which the formula "
                                    "does not", found.start() + 1 if found else None, text)
    return claim.expr


def direction_shapes(problem: Problem, direction: Mapping[str, str] | None) -> dict[str, tuple[Dim, ...]]:
    """{v: the shape of x} for each direction x=v (a claim may use v)."""
    return {v: problem.symbols[x].shape for x, v in (direction or {}).items() if x in problem.symbols}


def _factors(d: Dim) -> tuple[Dim, ...]:
    """The dimensions a product dimension (kron's m*p, vec's m*n) multiplies; d alone otherwise."""
    return d.factors if isinstance(d, DimProduct) else (d,)


def size_sets(problem: Problem) -> list[dict[str, int]]:
    """Two assignments of distinct small sizes to the dimension names (numeric ones stay); a
    product dimension is sized by its factors, so x in x + kron(a, b) keeps a's times b's."""
    dims: list[Dim] = []
    for s in problem.symbols.values():
        for d in s.shape:
            for f in _factors(d):
                if f not in dims:
                    dims.append(f)
    numeric = {d for d in dims if isinstance(d, int)}
    names = [str(d) for d in dims if not isinstance(d, int)]  # resolved: only names are left

    def assign(start: int) -> dict[str, int]:
        out: dict[str, int] = {}
        k = start
        for name in names:
            while k in numeric:
                k += 1
            out[name] = k
            k += 1
        return out
    return [assign(3), assign(3 + len(names) + 1)]


def sized(text: str, sizes: Mapping[str, int], problem: Problem) -> str:
    """The claim at numeric sizes: a dimension name it uses (`eye(n)`) becomes its size.  Names
    of symbols and functions are left alone (a claim cannot use any other name: the symbolic
    analysis refused it already)."""
    import re

    def size(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(sizes[name]) if name in sizes and name not in problem.symbols else name
    return re.sub(r"(?<![\w'.])([^\W\d]\w*)(?!\w|\s*\()", size, text)


def _numeric(dims: tuple[Dim, ...], sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(math.prod(f if isinstance(f, int) else sizes[str(f)] for f in _factors(d)) for d in dims)


def draw_values(shapes: Mapping[str, tuple[int, ...]], seed: int, positive: bool,
                structures: Mapping[str, str] | None = None) -> dict[str, Array]:
    """Seeded arrays for a claim: drawn by the one drawing module (draws.claim_values), with
    the declared structure of each structured matrix."""
    from ..numeric.draws import claim_values

    return claim_values(shapes, seed, positive, structures)


def _abstract_functions(exprs: Iterable[Expr]) -> list[str]:
    from ..language.expr import topological

    names: list[str] = []
    for n in topological(list(exprs)):
        if n.op == "apply" and n.params[0] not in names:
            names.append(n.params[0])
    return names


class Evaluator:
    """The formula, its derivatives and the claims at every draw.  Evaluation needs numeric
    sizes in the graph, so the formula and each claim are analysed again for each size set."""

    def __init__(self, source: Source, problem: Problem, claims: Mapping[str, str], hessian: bool,
                 fns: dict[str, str], direction: Mapping[str, str] | None = None):
        from ..api import analyze

        self.hessian = hessian
        self.fns = fns
        self.direction = dict(direction or {})  # the derivatives along these (directions.py)
        from ..numeric.draws import declared_structures

        self.sets = size_sets(problem)
        # S declared symmetric / spd / diagonal (-s or where): re-analysed and drawn as declared
        self.structures = declared_structures(problem.expr)
        self.problems: list[Problem] = []
        self.claims: list[dict[str, Expr]] = []  # per size set: each claim, analysed at those sizes
        self.derivs: list[dict[str, Derivative]] = []  # per size set: the derivatives, by wrt
        self._base: dict[int, dict[str, Array]] = {}  # per draw: the derivatives in base layout
        for sizes in self.sets:
            shapes = {n: _numeric(s.shape, sizes) for n, s in problem.symbols.items()}
            p = analyze(source["text"], shapes, source.get("wrt"), source.get("layout"), None, set(fns),
                        self.structures, problem.symmetric_gradient)
            self.problems.append(p)
            self.claims.append({n: parse_claim(p, sized(t, sizes, p), fns, self.direction) for n, t in claims.items()})
            self.derivs.append({d.wrt: d for d in self._derivatives(p)})
        exprs = [x for p, cs, ds in zip(self.problems, self.claims, self.derivs)
                 for x in [p.expr, *cs.values(), *(d.expr for d in ds.values() if d.expr is not None)]]
        unbound = [n for n in _abstract_functions(exprs) if n not in fns]
        self.draws: list[Draw] = []
        self.values: list[dict[str, Array]] = []
        self._bindings: list[dict[str, str]] = []
        self._programs: dict[tuple[Expr, Binding], Program] = {}
        self._derivative_programs: dict[tuple[int, Binding], Compiled | Deferred | Extended] = {}
        for seed in range(DRAWS):
            binding = {**fns, **{n: ABSTRACT_BINDINGS[(seed + i) % len(ABSTRACT_BINDINGS)]
                                 for i, n in enumerate(unbound)}}
            self.draws.append(Draw(seed, dict(self.sets[self.set_of(seed)]), "mixed",
                                   {n: binding[n] for n in unbound}))
            self._bindings.append(binding)
            self.values.append({})
        self._prepare()

    def _derivatives(self, p: Problem) -> list[Derivative]:
        if self.direction:
            from ..directions import derivatives

            return derivatives(p, 2 if self.hessian else 1, self.direction)
        return p.hessians() if self.hessian else p.derivatives()

    def add_claim(self, key: str, text: str) -> None:
        """One more claim, at the draws already chosen."""
        for p, cs, sizes in zip(self.problems, self.claims, self.sets):
            cs[key] = parse_claim(p, sized(text, sizes, p), self.fns, self.direction)

    def set_of(self, k: int) -> int:
        return k * len(self.sets) // DRAWS

    def _program(self, e: Expr, k: int) -> Program:
        from ..numeric.evaluate import compile_graph

        key = (e, tuple(sorted(self._bindings[k].items())))
        if key not in self._programs:
            self._programs[key] = compile_graph([e], self._bindings[k])  # e itself in the key
        return self._programs[key]

    def _compiled_derivatives(self, k: int) -> Compiled | Deferred | Extended:
        key = (self.set_of(k), tuple(sorted(self._bindings[k].items())))
        if key not in self._derivative_programs:
            p = self.problems[self.set_of(k)]
            if self.direction:
                from ..directions import Extended

                self._derivative_programs[key] = Extended(p, 2 if self.hessian else 1, self.direction,
                                                          self._bindings[k], False)
            else:
                self._derivative_programs[key] = p.compile(self._bindings[k], hessian=self.hessian)
        return self._derivative_programs[key]

    def _prepare(self) -> None:
        """Each draw's values: mixed signs, else positive where the formula, its derivatives or
        a claim is undefined with negative entries."""
        from ..errors import GradcliError

        for k, draw in enumerate(self.draws):
            p = self.problems[self.set_of(k)]
            shapes = {n: _numeric(s.shape, draw.sizes) for n, s in p.symbols.items()}
            shapes.update({v: _numeric(dims, draw.sizes) for v, dims in direction_shapes(p, self.direction).items()})
            for positive in (False, True):
                values = draw_values(shapes, draw.seed, positive, self.structures)
                try:
                    self._compiled_derivatives(k).evaluate(values)
                    for e in self.claims[self.set_of(k)].values():
                        self._program(e, k).run(values)
                except GradcliError as err:
                    if err.kind != "math":
                        raise
                    continue  # positive values are kept even if they fail too: reported per claim
                break
            draw.domain = "positive" if positive else "mixed"
            self.values[k] = values

    def derivative(self, wrt: str, layout: str, k: int) -> Array:
        """∂f/∂x in the given layout at draw k."""
        from ..errors import GradcliError

        if k not in self._base:
            try:
                self._base[k] = self._compiled_derivatives(k).evaluate(self.values[k])[1]
            except GradcliError as err:
                raise GradcliError("math", f"cannot check a claim here: the derivative is not "
                                           f"defined at random points ({err.message})") from None
        base = self._base[k]
        d = self.derivs[self.set_of(k)][wrt]
        if d.layout != layout:
            other = alternate(d)
            assert other is not None, "asked for the other layout of a derivative that has one only"
            d = other
        return d.to_layout(base[wrt])

    def claim(self, name: str, k: int) -> Array | None:
        return self.value(self.claims[self.set_of(k)][name], k)

    def value(self, e: Expr, k: int) -> Array | None:
        """The value of e at draw k, as an array of e's full shape; None where not finite."""
        import numpy as np

        from ..errors import GradcliError

        try:
            (value,) = self._program(e, k).run(self.values[k])
        except GradcliError as err:
            if err.kind != "math":
                raise
            return None
        dims = _numeric(e.ty.full_dims, self.sets[self.set_of(k)])
        value = np.asarray(value, dtype=float)
        return value.reshape(dims) if value.size == int(np.prod(dims)) else np.broadcast_to(value, dims)

    def terms(self, symbolic: Expr | None, numeric: Sequence[Expr | None]) -> list[tuple[Expr, list[Array]]]:
        """[(term, [value at each draw])] for the terms of an expression, given symbolically
        (for printing) and as its numeric version per size set (for evaluating); [] when the
        size sets split it differently, or where there is no matrix formula (None)."""
        if symbolic is None:
            return []
        sym_terms = terms(symbolic)
        per_set = [terms(e) if e is not None else [] for e in numeric]
        if len(sym_terms) < 2 or any(len(t) != len(sym_terms) for t in per_set):
            return []
        out: list[tuple[Expr, list[Array]]] = []
        for i, t in enumerate(sym_terms):
            values = [self.value(per_set[self.set_of(k)][i], k) for k in range(len(self.draws))]
            if all(v is not None for v in values):
                out.append((t, values))
        return out


# Draws have entries of magnitude about 1 (0.5 to 1.5): a derivative whose entries all stay below
# this is an exact 0 left with rounding (mean(s sᵀ) of a softmax s is 1/n², its gradient ~1e-17),
# and two such values are equal, not "wrong everywhere" (relative to each other they are noise).
ZERO = 1e-8


def rel_error(a: Array, b: Array) -> float:
    """max |a − b| relative to the larger of the two (at least ZERO: rounding of an exact 0)."""
    import numpy as np

    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), ZERO)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def terms(e: Expr, limit: int = 16) -> list[Expr]:
    """The top-level terms of a sum, products distributed over sums one level ((A + Aᵀ)x is
    Ax + Aᵀx), constant factors kept on their terms."""
    from ..language import simplify as S

    out: list[Expr] = []

    def walk(n: Expr, coef: float) -> None:
        if len(out) > limit:
            return
        if n.op == "add":
            for a in n.args:
                walk(a, coef)
        elif n.op == "mul" and n.args[0].is_const and n.args[1].op in ("add", "matmul", "mul"):
            walk(n.args[1], coef * n.args[0].value)
        elif n.op in ("matmul", "mul") and any(a.op == "add" and _uniform(a) for a in n.args):
            i = 0 if n.args[0].op == "add" and _uniform(n.args[0]) else 1
            for part in _addends(n.args[i]):
                args = list(n.args)
                args[i] = part
                a, b = args
                out.append(S.scale(coef, S.matmul(a, b) if n.op == "matmul" else S.mul(a, b)))
        else:
            out.append(S.scale(coef, n))
    walk(e, 1.0)
    return out[:limit]


def _uniform(n: Expr) -> bool:
    """A sum whose addends all have its shape (none broadcast), so a product distributes."""
    return all(a.ty == n.ty for a in _addends(n))


def _addends(n: Expr) -> list[Expr]:
    return [x for a in n.args for x in _addends(a)] if n.op == "add" else [n]


def alternate(d: Derivative) -> Derivative | None:
    """The same derivative in the other layout, or None where both layouts are one shape."""
    from ..derivative import Derivative, derivative_dims

    if d.along:  # f's shape or x's, in every layout
        return None
    if d.kind == "gradient":
        other = "numerator" if d.layout != "numerator" else "gradient"
        dims = derivative_dims(d.f_ty, d.x_ty, other)
    else:
        other = "denominator" if d.layout == "numerator" else "numerator"
        if d.kind == "hessian":
            dims = d.f_ty.dims + d.x_ty.dims if other == "numerator" else d.x_ty.dims + d.f_ty.dims
        else:
            dims = derivative_dims(d.f_ty, d.x_ty, other)
    if d.x_ty.is_scalar or (d.kind != "gradient" and d.f_ty.is_scalar):
        return None
    return Derivative(d.wrt, d.kind, dims, other, d.expr, d.x_ty, d.f_ty, d.of, d.x)


def same_dims(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> bool:
    return tuple(map(str, a)) == tuple(map(str, b))
