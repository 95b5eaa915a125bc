"""Seeded values for a formula's symbols, drawn where the formula is defined: the one place that
draws, for `--random` (whose arrays `-o` saves as inputs.npz) and for checking claims.

`--random` (`random_inputs`) draws what a network's inputs and weights look like, so that a
formula at random inputs behaves as at real ones (the old uniform [0.5, 1.5) draws saturated
`tanh(X@W)` at any realistic width, and its gradient was exactly 0):
- standard normal entries, scaled by 1/√(fan-in): the size of the axis along which the symbol is
  contracted by a matrix product (`X@W` with X 3000×1000 and W 1000×k: both by 1/√1000; the
  largest such axis where there are several); symbols no product contracts are not scaled;
- where the formula needs a positive argument (log, log2, log10, log1p, sqrt, a fractional
  power) and cannot be seen to have one whatever the signs (`log(1 + exp(z))` can), every
  symbol inside that argument is drawn positive: exp(z/2)/√(fan-in);
- inside arcsin, arccos, arctanh: 0.5·tanh(z) (in the domain, |v| < 1);
- a square matrix inside logdet, det or inv: symmetric positive definite, GGᵀ/n + I (a
  determinant > 0 and a condition number below 5 or so).
One generator seeded with `seed` draws the symbols in sorted order, so a run is reproducible.

Claims (`claim_values`) are compared at small sizes and need values away from 0 with both
signs, so that abs, sign, relu and max are seen on both sides; their caller redraws positive
where the formula is not defined at mixed signs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..record import record

if TYPE_CHECKING:
    from ..language.expr import Expr

POSITIVE_ARGUMENT = frozenset({"log", "log2", "log10", "log1p", "sqrt"})
UNIT_INTERVAL = frozenset({"arcsin", "arccos", "arctanh"})
NEEDS_INVERTIBLE = frozenset({"logdet", "det", "inv"})
# value > 0 whatever the argument's sign (norms and squares are ≥ 0, and 0 has probability 0)
ALWAYS_POSITIVE = frozenset({"exp", "sigmoid", "softplus", "cosh", "softmax", "abs", "square", "sqrt",
                             "norm2", "sqnorm", "norm1", "specnorm", "nucnorm", "opnorm1", "opnorminf",
                             "norminf", "numel"})
# positive when every argument is
PRESERVES_POSITIVE = frozenset({"add", "mul", "div", "matmul", "T", "expand", "fill", "sum", "mean",
                                "max", "min", "prod", "diagv", "tr", "reciprocal", "logsumexp"})


@record
class Domain:
    """What a formula needs of its symbols' values."""

    positive: frozenset[str]
    unit: frozenset[str]  # inside arcsin, arccos, arctanh
    spd: frozenset[str]  # square matrices inside logdet, det, inv
    fan_in: dict[str, int]  # symbol → the size of the axis a matrix product contracts


def _symbols_in(node: Expr) -> set[str]:
    from ..language.expr import topological

    return {n.params[0] for n in topological([node]) if n.op == "sym"}


def _even_integer(node: Expr) -> bool:
    return node.op == "const" and float(node.value) % 2 == 0


def _integer(node: Expr) -> bool:
    return node.op == "const" and float(node.value).is_integer()


def _positive_nodes(order: list[Expr], positive: set[str]) -> set[Expr]:
    """The nodes whose value is > 0 when the symbols in `positive` are."""
    out: set[Expr] = set()
    for n in order:
        if n.op == "sym":
            ok = n.params[0] in positive
        elif n.op == "const":
            ok = float(n.value) > 0
        elif n.op in ALWAYS_POSITIVE:
            ok = True
        elif n.op == "pow":
            ok = n.args[0] in out or _even_integer(n.args[1])
        elif n.op in PRESERVES_POSITIVE:
            ok = all(a in out for a in n.args)
        else:
            ok = False
        if ok:
            out.add(n)
    return out


def _needs_positive(n: Expr) -> Expr | None:
    """The argument of n that must be positive, or None."""
    if n.op in POSITIVE_ARGUMENT:
        return n.args[0]
    if n.op == "pow" and not _integer(n.args[1]):
        return n.args[0]
    return None


def domain(expr: Expr) -> Domain:
    """The domain analysis of an expression (see the module docstring)."""
    from ..language.expr import topological

    order = topological([expr])
    positive: set[str] = set()
    while True:  # a symbol made positive can make other arguments positive: to a fixed point
        known = _positive_nodes(order, positive)
        grown = set(positive)
        for n in order:
            arg = _needs_positive(n)
            if arg is not None and arg not in known:
                grown |= _symbols_in(arg)
        if grown == positive:
            break
        positive = grown
    unit: set[str] = set()
    spd: set[str] = set()
    for n in order:
        if n.op in UNIT_INTERVAL:
            unit |= _symbols_in(n.args[0])
        elif n.op in NEEDS_INVERTIBLE:
            spd |= {m.params[0] for m in topological([n.args[0]])
                    if m.op == "sym" and m.ty.is_matrix and m.ty.dims[0] == m.ty.dims[1]}
    return Domain(frozenset(positive), frozenset(unit), frozenset(spd), fan_in(order))


def _contracted(node: Expr, last: bool) -> tuple[str, object] | None:
    """(symbol, size of the contracted axis) when node is a symbol, or a transpose of one, that a
    matrix product contracts along its last (left operand) or first (right operand) axis."""
    flips = 0
    while node.op == "T":
        node, flips = node.args[0], flips + 1
    if node.op != "sym" or not node.ty.dims:
        return None
    axis = 0 if len(node.ty.dims) == 1 else (1 if last else 0) ^ (flips % 2)
    return node.params[0], node.ty.dims[axis]


def fan_in(order: Iterable[Expr]) -> dict[str, int]:
    """symbol → the size of the axis a matrix product contracts it along (the largest)."""
    out: dict[str, int] = {}
    for n in order:
        if n.op != "matmul":
            continue
        x, y = n.args
        if x.ty.is_col and y.ty.is_row:  # an outer product contracts nothing
            continue
        for found in (_contracted(x, True), _contracted(y, False)):
            if found is not None and isinstance(found[1], int) and found[1] > out.get(found[0], 0):
                out[found[0]] = found[1]
    return out


def random_inputs(shapes: Mapping[str, tuple[int, ...]], seed: int, expr: Expr | None = None) -> dict[str, Any]:
    """`--random`: {symbol: float64 array} for the symbols in `shapes` (numeric dims), drawn for
    the expression `expr` (none: plain standard normal)."""
    import numpy as np

    d = domain(expr) if expr is not None else Domain(frozenset(), frozenset(), frozenset(), {})
    structured = declared_structures(expr) if expr is not None else {}
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        dims = tuple(shapes[name])
        z = rng.standard_normal(size=dims)
        scale = 1.0 / np.sqrt(d.fan_in.get(name, 1))
        if name in d.spd and len(dims) == 2 and dims[0] == dims[1]:
            arr = z @ z.T / dims[0] + np.eye(dims[0])
        elif name in d.unit:
            arr = 0.5 * np.tanh(z) * scale
            if name in d.positive:
                arr = np.abs(arr) + 0.05 * scale
        elif name in d.positive:
            arr = np.exp(0.5 * z) * scale
        else:
            arr = z * scale
        if name in structured and len(dims) == 2 and dims[0] == dims[1]:
            arr = conform(arr, structured[name], name in d.spd)
        out[name] = np.asarray(arr, dtype=np.float64)
    return out


def conform(arr: Any, structure: str, spd_already: bool) -> Any:
    """A drawn square matrix made to have its declared structure: its symmetric part; for spd,
    AAᵀ/n + I unless drawn so already (inside logdet, det, inv); for diagonal, its diagonal
    (positive where the draw was)."""
    import numpy as np

    n = arr.shape[0]
    if structure == "diagonal":
        return np.diag(np.diag(arr))
    if structure == "spd" and not spd_already:
        return arr @ arr.T / n + np.eye(n)
    return (arr + arr.T) / 2


def declared_structures(expr: Expr) -> dict[str, str]:
    """symbol → its declared structure (symmetric, spd, diagonal), for the symbols that have one."""
    from ..language.expr import topological

    return {str(n.params[0]): str(n.params[2]) for n in topological([expr]) if n.op == "sym" and len(n.params) > 2}


def claim_values(shapes: Mapping[str, tuple[int, ...]], seed: int, positive: bool,
                 structures: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Claim checking's draws: magnitudes in [0.5, 1.5), signs mixed unless positive; square
    matrices plus n·I (invertible, and still unsymmetric unless `structures` declares them
    symmetric, spd or diagonal: then drawn so, as the claim is about such matrices)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        dims = shapes[name]
        arr = rng.uniform(0.5, 1.5, size=dims)
        signs = rng.choice([-1.0, 1.0], size=dims)
        if not positive:
            arr = arr * signs
        if len(dims) == 2 and dims[0] == dims[1]:
            arr = arr + dims[0] * np.eye(dims[0])
            if structures and name in structures:
                arr = conform(arr, structures[name], False)
        out[name] = np.asarray(arr, dtype=float)
    return out
