"""Shapes: the type of every value, and the unifier that makes dimensions agree.

A value is a scalar `()`, a column vector `(n,)`, a row vector (a transposed column; written
`(1, n)`), or a matrix `(m, n)`.  Dimensions are integers, names the user gave (rigid: two
different names never unify), or variables made up for assumed shapes (they unify with
anything and are named m, n, k, ... at the end, in order of first appearance).
"""

from __future__ import annotations

import math
from itertools import count
from typing import Any, Callable, NoReturn, Union


class DimVar:
    """An unknown dimension of an assumed shape; `order` fixes the naming order."""

    _ids = count()
    __slots__ = ("order",)

    def __init__(self) -> None:
        self.order = next(DimVar._ids)

    def __repr__(self) -> str:
        return f"?{self.order}"


class DimProduct:
    """A dimension that is the product of others: kron(A, B) is (m·p, n·q), vec(X) is (m·n,).
    Made by `product`, which multiplies the integers out, so that a product of known sizes is
    the int it is; compared by its factors."""

    __slots__ = ("factors", "_hash")

    def __init__(self, factors: tuple["Dim", ...]):
        self.factors = factors
        self._hash = hash(("*",) + factors)

    def __eq__(self, other: object) -> bool:
        return type(other) is DimProduct and self.factors == other.factors

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return "*".join(fmt_dim(f) for f in self.factors)

    __repr__ = __str__


Dim = Union[int, str, DimVar, DimProduct]


def product(*dims: Dim) -> Dim:
    """d₁·d₂·…: an int when every factor is known, else a DimProduct (a lone factor itself)."""
    known, rest = 1, []  # type: tuple[int, list[Dim]]
    for d in dims:
        for f in (d.factors if isinstance(d, DimProduct) else (d,)):
            if isinstance(f, int):
                known *= f
            else:
                rest.append(f)
    if not rest:
        return known
    # named sizes in one order, since m·n is n·m (in kron(Bᵀ, A)@vec(X) the product's inner
    # sizes are written p·n and n·p); unknowns keep their order (stable sort: the unifier pairs
    # the factors of two products by position)
    rest.sort(key=lambda f: (0, f) if isinstance(f, str) else (1, ""))
    if known != 1:
        rest.insert(0, known)
    return rest[0] if len(rest) == 1 else DimProduct(tuple(rest))


def divide(ctx: object, d: Dim, by: Dim) -> Dim | None:
    """d / by in a shape rule: exact from the structure (`quotient`), or, while shapes are
    inferred and d is still unknown, a new unknown k with d = by·k (the unifier's `fresh_dim`)."""
    find = getattr(ctx, "find")
    d, by = find(d), find(by)
    out = quotient(d, by)
    fresh = getattr(ctx, "fresh_dim", None)
    if out is None and isinstance(d, DimVar) and fresh is not None:
        out = fresh()
        getattr(ctx, "same")(d, product(by, out))
    return out


def quotient(d: Dim, by: Dim) -> Dim | None:
    """d / by when it is exact from the structure (12 / 3, m·p / p), else None."""
    if d == by:
        return 1
    if isinstance(d, int) and isinstance(by, int):
        return d // by if by and d % by == 0 else None
    factors: list[Dim] = list(d.factors) if isinstance(d, DimProduct) else [d]
    for f in (by.factors if isinstance(by, DimProduct) else (by,)):
        if f in factors:
            factors.remove(f)
        elif isinstance(f, int) and factors and isinstance(factors[0], int) and factors[0] % f == 0:
            factors[0] //= f
        else:
            return None
    return product(*factors)


class Ty:
    """The shape of an expression; `row` marks a transposed vector.  Immutable, compared by value."""

    __slots__ = ("dims", "row", "_hash", "is_scalar", "is_col", "is_matrix")
    dims: tuple[Dim, ...]  # set once, in __init__
    row: bool
    _hash: int
    # what the simplification hooks and shape rules ask most, as attributes set once (a
    # property call cost more than the rest of most tests they appear in)
    is_scalar: bool  # no dimensions
    is_col: bool  # a (column) vector, not transposed
    is_matrix: bool  # two dimensions

    def __init__(self, dims: tuple[Dim, ...], row: bool = False):
        dims = tuple(dims)
        row = bool(row)
        setter = object.__setattr__
        setter(self, "dims", dims)
        setter(self, "row", row)
        setter(self, "_hash", hash((dims, row)))
        setter(self, "is_scalar", not dims)
        setter(self, "is_col", len(dims) == 1 and not row)
        setter(self, "is_matrix", len(dims) == 2)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Ty is immutable")

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is Ty and self._hash == other._hash  # unequal: usually
                                 and self.dims == other.dims and self.row == other.row)  # one compare

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Ty(dims={self.dims!r}, row={self.row!r})"

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def is_row(self) -> bool:
        return self.row

    @property
    def is_vector(self) -> bool:
        return len(self.dims) == 1

    def transposed(self) -> "Ty":
        if self.is_vector:
            return Ty(self.dims, not self.row)
        if self.is_matrix:
            return Ty((self.dims[1], self.dims[0]))
        return self

    @property
    def full_dims(self) -> tuple[Dim, ...]:
        """The shape a user reads: a row vector is (1, n)."""
        return (1, *self.dims) if self.row else self.dims

    def map(self, f: Callable[[Dim], Dim]) -> "Ty":
        return Ty(tuple(f(d) for d in self.dims), self.row)

    def kind(self) -> str:
        return ["scalar", "row vector" if self.row else "vector", "matrix"][self.rank]


SCALAR = Ty(())


def col(n: Dim) -> Ty:
    return Ty((n,))


def mat(m: Dim, n: Dim) -> Ty:
    return Ty((m, n))


def fmt_dim(d: Dim) -> str:
    return repr(d) if isinstance(d, DimVar) else str(d)


def fmt_dims(dims: tuple[Dim, ...]) -> str:
    """numpy-style tuple text: (), (n,), (m, n)."""
    if len(dims) == 1:
        return f"({fmt_dim(dims[0])},)"
    return "(" + ", ".join(fmt_dim(d) for d in dims) + ")"


def fmt(ty: Ty) -> str:
    return fmt_dims(ty.full_dims)


class DimMismatch(Exception):
    def __init__(self, a: Dim, b: Dim, why: str = ""):
        super().__init__(f"{fmt_dim(a)} and {fmt_dim(b)} differ" + (f" ({why})" if why else ""))
        self.a, self.b, self.why = a, b, why


class Unifier:
    """Union-find over dimensions; the representative prefers int > name > variable."""

    def __init__(self) -> None:
        self.parent: dict[Dim, Dim] = {}

    def find(self, d: Dim) -> Dim:
        root = d
        while root in self.parent:
            root = self.parent[root]
        while d in self.parent and self.parent[d] is not root and self.parent[d] != root:
            self.parent[d], d = root, self.parent[d]
        if isinstance(root, DimProduct):  # its factors may be known by now
            return product(*(self.find(f) for f in root.factors))
        return root

    def same(self, a: Dim, b: Dim) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra is rb or (not isinstance(ra, DimVar) and ra == rb):
            return
        if isinstance(ra, DimVar):
            self.parent[ra] = rb
        elif isinstance(rb, DimVar):
            self.parent[rb] = ra
        elif isinstance(ra, str) and isinstance(rb, int):
            self.parent[ra] = rb
        elif isinstance(rb, str) and isinstance(ra, int):
            self.parent[rb] = ra
        elif (isinstance(ra, DimProduct) and isinstance(rb, DimProduct)
              and len(ra.factors) == len(rb.factors)):  # m·p = n·q where m = n and p = q
            try:
                for x, y in zip(ra.factors, rb.factors):
                    self.same(x, y)
            except DimMismatch:
                raise DimMismatch(ra, rb) from None
        elif isinstance(ra, DimProduct) and isinstance(rb, int) or isinstance(rb, DimProduct) and isinstance(ra, int):
            self._product_is(*((ra, rb) if isinstance(ra, DimProduct) else (rb, ra)))
        else:
            raise DimMismatch(ra, rb)

    def _product_is(self, prod: DimProduct, size: int) -> None:
        """m·3 = 12 makes m 4; a product of two unknowns against a number cannot be split (and
        12 is no m·5)."""
        unknown = [f for f in prod.factors if not isinstance(f, int)]
        known = math.prod(f for f in prod.factors if isinstance(f, int))
        if size % known:
            raise DimMismatch(prod, size, f"{size} is not a multiple of {known}")
        if len(unknown) != 1:
            raise DimMismatch(prod, size, f"{size} does not say what {' and '.join(map(fmt_dim, unknown))} are: "
                                          "give all but one of them")
        try:
            self.same(unknown[0], size // known)
        except DimMismatch:
            raise DimMismatch(prod, size) from None

    def resolve(self, ty: Ty) -> Ty:
        return ty.map(self.find)


class Strict:
    """The checker used once shapes are resolved: dimensions must already be equal."""

    def same(self, a: Dim, b: Dim) -> None:
        if a != b:
            raise DimMismatch(a, b)

    def find(self, d: Dim) -> Dim:
        return d


STRICT = Strict()


def entries(dims: tuple[Any, ...]) -> int:
    """How many entries resolved dims hold (the product; 1 for a scalar)."""
    return math.prod(dims)
