"""`--steps --claim`: a claim written as a product (a chain of Jacobians) compared factor by
factor with gradcli's own formula, and where the chain first goes wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..derivative import Derivative
    from ..language.expr import Expr
    from ..language.shapes import Dim


def _dims_json(dims: tuple[Dim, ...]) -> list[int | str]:
    return [d if isinstance(d, int) else str(d) for d in dims]


def chain_report(claim: Expr, d: Derivative, what: str) -> dict[str, Any] | None:
    """For a claim written as a product (a chain of Jacobians): each factor's shape next to the
    factors of gradcli's own formula, and the first factor whose shape differs; None when the
    claim is not a product."""
    from .claimeval import same_dims
    from ..language.render import render
    from ..language.shapes import fmt_dims

    mine = _factors(claim)
    if len(mine) < 2:
        return None
    shown = d.shown()
    theirs = _factors(shown) if shown is not None else []

    def side(fs: list[Expr]) -> list[dict[str, Any]]:
        return [{"factor": render(f, "ascii"), "text": render(f, "unicode"), "shape": _dims_json(f.ty.full_dims)}
                for f in fs]
    first = next((i for i, (a, b) in enumerate(zip(mine, theirs))
                  if not same_dims(a.ty.full_dims, b.ty.full_dims)), None)
    if first is None and len(mine) != len(theirs) and theirs:
        first = min(len(mine), len(theirs))

    def line(fs: list[Expr], result: tuple[Dim, ...]) -> str:
        return " · ".join(f"{render(f, 'unicode')} {fmt_dims(f.ty.full_dims)}" for f in fs) + \
            f" = {fmt_dims(result)}"
    lines = [f"chain of the claim: {line(mine, claim.ty.full_dims)}"]
    if theirs:
        lines.append(f"chain of {what}: {line(theirs, d.shape)}")
    if first is not None and first < len(mine) and first < len(theirs):
        lines.append(f"first difference at factor {first + 1}: the claim's is "
                     f"{fmt_dims(mine[first].ty.full_dims)}, {what}'s is {fmt_dims(theirs[first].ty.full_dims)}")
    elif first is not None:
        lines.append(f"the chains differ in length ({len(mine)} factors, {len(theirs)} in {what})")
    rows, want = _rows(mine[0]), _rows_of(d.shape)
    if want is not None and rows is not None and str(rows) != str(want):
        lines.append(f"a product whose first factor has {rows} rows cannot have the {want} rows of {what}")
    return {"claim": side(mine), "derivative": side(theirs),
            "first_difference": None if first is None else first + 1, "lines": lines}


def _factors(e: Expr) -> list[Expr]:
    """The factors of a matrix product, scalar constants dropped (−2·XᵀG is Xᵀ · G)."""
    while e.op == "mul" and e.args[0].is_const:
        e = e.args[1]
    if e.op == "matmul":
        return _factors(e.args[0]) + _factors(e.args[1])
    return [e]


def _rows(f: Expr) -> Dim | None:
    dims = f.ty.full_dims
    return dims[0] if dims else None


def _rows_of(dims: tuple[Dim, ...]) -> Dim | None:
    return dims[0] if len(dims) == 2 else None
