"""The JSON document of a derivative run (SPEC §2; `gradcli --json-schema` describes it).

Why a module of its own: the document is what `gradcli grad --json` prints and what
`Results.to_json()` returns in Python, one function for both, so the two cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Derivative, Problem


def jsonable(value: Any) -> Any:
    """A number or nested list of numbers, NaN and ±Inf as null (JSON has no spelling for them)."""
    import numpy as np

    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else None
    return [jsonable(v) for v in arr] if arr.ndim == 1 else [jsonable(row) for row in arr]


def dims_json(dims: Sequence[object]) -> list[int | str]:
    """Sizes as numbers, named dimensions as their names."""
    return [d if isinstance(d, int) else str(d) for d in dims]


def document(problem: Problem, derivs: Sequence[Derivative], f_value: Any, d_values: Mapping[str, Any],
             checks: Mapping[str, dict[str, Any]], formulas: bool = True) -> dict[str, Any]:
    """The JSON document.  Subexpressions the derivatives share are named once, as in the
    human view: `bindings` lists {name, formula, latex, shape} in dependency order, each
    binding a symbol of its own shape in the formulas after it (README: JSON output)."""
    texts, latex = [""] * len(derivs), [""] * len(derivs)
    bindings: list[dict[str, Any]] = []
    if formulas:
        from .api import render_derivatives

        nodes: list[Any] = []
        ascii_bindings, texts = render_derivatives(list(derivs), "ascii", nodes)
        latex_bindings, latex = render_derivatives(list(derivs), "latex")
        bindings = [{"name": name, "formula": text, "latex": tex,
                     "shape": dims_json(node.ty.full_dims)}
                    for (name, text), (_, tex), node in zip(ascii_bindings, latex_bindings, nodes)]
    entries: list[dict[str, Any]] = []
    doc: dict[str, Any] = {
        "formula": problem.text("ascii"),
        "shape": dims_json(problem.shape),
        "symbols": {n: {"shape": dims_json(s.shape), "source": s.source}
                    for n, s in problem.symbols.items()},
        "value": jsonable(f_value) if f_value is not None else None,
        "derivatives": entries,
    }
    for i, d in enumerate(derivs):
        entries.append({
            "wrt": d.wrt, "kind": d.kind,
            "formula": (texts[i] or d.formula("ascii")) if formulas else None,
            "latex": (latex[i] or d.formula("latex")) if formulas else None,
            "shape": dims_json(d.shape), "layout": d.layout,
            "value": jsonable(d_values[d.wrt]) if d.wrt in d_values else None,
            "check": checks.get(d.wrt),
        })
        if d.direction:  # --direction: the symbol of each wrt symbol's direction
            entries[-1]["direction"] = dict(d.direction)
        if d.order > 2 or d.tensor is not None:  # a tensor: how many times f is differentiated
            entries[-1]["order"] = d.order
    if formulas:
        doc["bindings"] = bindings
    doc["notes"] = [note.to_json() for note in problem.notes]
    return doc
