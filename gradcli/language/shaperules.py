"""Shape rules shared by the operators: numpy broadcasting, matrix products, reductions.

A rule takes a context (`ctx.same(d1, d2)` unifies two dimensions while shapes are inferred, and
checks them afterwards), the argument shapes and the node's parameters, and returns the result's
shape or raises `ShapeMsg` naming the operator and both shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .expr import ShapeMsg
from .shapes import SCALAR, DimMismatch, Ty, col, fmt, mat

if TYPE_CHECKING:
    from .expr import Params, ShapeContext, ShapeRule
    from .shapes import Dim


# ----------------------------------------------------------------- shape rules
def _shape_err(op: str, why: str) -> ShapeMsg:
    return ShapeMsg(f"{op}: {why}")


def _show(ctx: ShapeContext) -> Callable[[Ty], str]:
    """The context's spelling of a shape: the inferrer names its dimension variables (`m×n`),
    the strict checker after inference has none and uses the plain `fmt`."""
    show: Callable[[Ty], str] = getattr(ctx, "show", fmt)
    return show


def aligned(a: Ty, b: Ty) -> bool:
    """Whether numpy broadcasting of a with b stretches no axis whatever the unknowns turn out
    to be: one rank, one orientation, no axis written 1.  The broadcast rule then makes each
    pair of dimensions one, and the result has a's shape (and b's): the terms of a long sum."""
    return a.row == b.row and len(a.dims) == len(b.dims) and 1 not in a.dims and 1 not in b.dims


def broadcast_shape(symbol: str) -> ShapeRule:
    """numpy broadcasting for element-wise binary operators."""

    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        a, b = tys
        if a is b or not a.dims:  # the same shape (a long sum's terms), or a scalar
            return b
        if not b.dims:
            return a
        if a.dims == b.dims and a.row == b.row:  # the very same dimensions: nothing to unify
            return a
        if aligned(a, b):  # each pair of dimensions one; the result a itself (not rebuilt)
            try:
                for x, y in zip(a.dims, b.dims):
                    ctx.same(x, y)
            except DimMismatch as m:
                show = _show(ctx)
                raise _shape_err(symbol, f"cannot broadcast {show(a)} with {show(b)}: "
                                         f"dimensions {m}") from None
            return a
        show = _show(ctx)
        if a.is_vector and b.is_vector and a.row != b.row:
            raise _shape_err(symbol, f"cannot combine {show(a)} and {show(b)}: a column and a row "
                                     "vector (use outer(a, b) or a@b' for an outer product)")
        out: list[Dim] = []
        da, db = list(a.dims), list(b.dims)
        if a.rank != b.rank:  # a vector against a matrix: align with the last axis, as numpy,
            short, long_ = (da, db) if a.rank < b.rank else (db, da)  # whose missing axes are 1
            short[:0] = [1] * (len(long_) - len(short))
        for x, y in zip(da, db):
            if x == 1 and y != 1:
                out.append(y)
            elif y == 1 and x != 1:
                out.append(x)
            else:
                try:
                    ctx.same(x, y)
                except DimMismatch as m:
                    raise _shape_err(symbol, f"cannot broadcast {show(a)} with {show(b)}: "
                                             f"dimensions {m}") from None
                out.append(x)
        row = a.row if a.rank >= b.rank else b.row
        return Ty(tuple(out), row and len(out) == 1)

    return rule


def matmul_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    a, b = tys
    show = _show(ctx)
    if a.is_scalar or b.is_scalar:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: @ needs vectors or "
                              "matrices (use * to scale by a scalar)")
    if a.is_matrix and b.is_row or a.is_row and b.is_row:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: inner dimensions "
                              f"{_d(ctx, a.dims[-1])} and 1 differ")
    if a.is_col and b.is_row:
        return mat(a.dims[0], b.dims[0])
    inner_a = a.dims[-1] if (a.is_matrix or a.is_row) else a.dims[0]
    inner_b = b.dims[0]
    try:
        ctx.same(inner_a, inner_b)
    except DimMismatch:
        raise _shape_err("@", f"cannot multiply {show(a)} by {show(b)}: inner dimensions "
                              f"{_d(ctx, inner_a)} and {_d(ctx, inner_b)} differ") from None
    if a.is_matrix and b.is_matrix:
        return mat(a.dims[0], b.dims[1])
    if a.is_matrix:  # matrix @ column
        return col(a.dims[0])
    if b.is_matrix:  # row @ matrix is a row; column @ matrix (numpy 1-D) is the column Bᵀa
        return Ty((b.dims[1],), a.row)
    return SCALAR  # row @ column, or column @ column (numpy's inner product)


def _d(ctx: ShapeContext, d: Dim) -> str:
    show_dim: Callable[[Dim], str] | None = getattr(ctx, "show_dim", None)
    return show_dim(d) if show_dim else str(d)


def same_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    return tys[0]


def to_scalar(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    return SCALAR


def square(name: str) -> Callable[[ShapeContext, Ty], None]:
    def check(ctx: ShapeContext, ty: Ty) -> None:
        show = _show(ctx)
        if not ty.is_matrix:
            raise _shape_err(name, f"needs a square matrix, got {ty.kind()} {show(ty)}")
        try:
            ctx.same(ty.dims[0], ty.dims[1])
        except DimMismatch:
            raise _shape_err(name, f"needs a square matrix, got {show(ty)}") from None
    return check


def square_to(name: str, result: Callable[[Ty], Ty]) -> ShapeRule:
    check = square(name)

    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        check(ctx, tys[0])
        return result(tys[0])
    return rule


def vector_only(name: str, result: Callable[[Ty], Ty]) -> ShapeRule:
    def rule(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
        ty = tys[0]
        if not ty.is_vector:
            raise _shape_err(name, f"needs a vector, got {ty.kind()} {_show(ctx)(ty)}")
        return result(ty)
    return rule


def sum_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    axis, keep = params
    ty = tys[0]
    if axis is None:
        return SCALAR
    if ty.rank == 0 or axis >= ty.rank or axis < -ty.rank:
        raise _shape_err("sum", f"axis {axis} is out of range for {ty.kind()} {_show(ctx)(ty)}")
    axis %= ty.rank
    if keep:
        dims = list(ty.dims)
        dims[axis] = 1
        return Ty(tuple(dims), ty.row)
    rest = tuple(d for i, d in enumerate(ty.dims) if i != axis)
    return Ty(rest)


def pow_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    if not tys[1].is_scalar:
        raise _shape_err("^", f"the exponent must be a scalar, got {_show(ctx)(tys[1])}")
    return tys[0]
