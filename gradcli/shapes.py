"""Shapes: the type of every value, and the unifier that makes dimensions agree.

A value is a scalar `()`, a column vector `(n,)`, a row vector (a transposed column; written
`(1, n)`), or a matrix `(m, n)`.  Dimensions are integers, names the user gave (rigid: two
different names never unify), or variables made up for assumed shapes (they unify with
anything and are named m, n, k, ... at the end, in order of first appearance).
"""

from __future__ import annotations

from itertools import count
from typing import Callable, NoReturn, Union


class DimVar:
    """An unknown dimension of an assumed shape; `order` fixes the naming order."""

    _ids = count()
    __slots__ = ("order",)

    def __init__(self) -> None:
        self.order = next(DimVar._ids)

    def __repr__(self) -> str:
        return f"?{self.order}"


Dim = Union[int, str, DimVar]


class Ty:
    """The shape of an expression; `row` marks a transposed vector.  Immutable, compared by value."""

    __slots__ = ("dims", "row", "_hash")
    dims: tuple[Dim, ...]  # set once, in __init__
    row: bool
    _hash: int

    def __init__(self, dims: tuple[Dim, ...], row: bool = False):
        object.__setattr__(self, "dims", tuple(dims))
        object.__setattr__(self, "row", bool(row))
        object.__setattr__(self, "_hash", hash((self.dims, self.row)))

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
    def is_scalar(self) -> bool:
        return not self.dims

    @property
    def is_col(self) -> bool:
        return len(self.dims) == 1 and not self.row

    @property
    def is_row(self) -> bool:
        return self.row

    @property
    def is_vector(self) -> bool:
        return len(self.dims) == 1

    @property
    def is_matrix(self) -> bool:
        return len(self.dims) == 2

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
    def __init__(self, a: Dim, b: Dim):
        super().__init__(f"{fmt_dim(a)} and {fmt_dim(b)} differ")
        self.a, self.b = a, b


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
        else:
            raise DimMismatch(ra, rb)

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
