"""The pipeline as a Python API; the CLI is a thin layer over these functions.

    >>> import gradcli
    >>> p = gradcli.analyze("||y - X@theta||^2 wrt theta")
    >>> p.symbols["X"].shape
    ('m', 'n')
    >>> d = p.derivatives()[0]
    >>> d.text()
    '−2Xᵀ(y − Xθ)'

text → parse → infer (shapes) → differentiate → render / compile to a numpy function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import ops as O
from .differentiate import gradients
from .errors import GradcliError
from .evaluate import Program, compile_graph
from .expr import Expr
from .infer import Typed, infer
from .parse import parse
from .render import render, render_with_bindings
from .shapes import Ty

LAYOUTS = ("gradient", "numerator", "denominator")


def parse_dims(text: str, max_rank: int = 2) -> tuple:
    """`100x3`, `M,n`, `(M, n)`, `scalar`, `()`, `n` → a dims tuple (the -s option)."""
    t = text.strip()
    if t in ("scalar", "()", ""):
        return ()
    t = t.strip("()").replace("×", "x")
    parts = [p.strip() for p in (t.split(",") if "," in t else t.split("x") if _is_numeric_x(t) else [t])]
    parts = [p for p in parts if p]
    dims: list = []
    for p in parts:
        if p.isdigit():
            dims.append(int(p))
        elif p.isidentifier():
            dims.append(p)
        else:
            raise GradcliError("usage", f"bad dimension '{p}' in shape '{text}'")
    if len(dims) > max_rank:
        raise GradcliError("usage", f"shape '{text}': at most 2 dimensions (scalar, vector, matrix)")
    return tuple(dims)


def _is_numeric_x(t: str) -> bool:
    return all(p.strip().isdigit() for p in t.split("x")) and "x" in t


@dataclass
class SymbolInfo:
    name: str
    shape: tuple
    source: str


def derivative_dims(f_ty: Ty, x_ty: Ty, layout: str) -> tuple:
    """SPEC §1: gradient = shape of x; Jacobian = shape(f) + shape(x) (numerator)."""
    if f_ty.is_scalar:
        if layout == "numerator":
            if x_ty.is_vector:
                return (1, x_ty.dims[0])
            return tuple(reversed(x_ty.dims))
        return x_ty.dims
    if layout == "denominator":
        return x_ty.dims + f_ty.full_dims
    return f_ty.full_dims + x_ty.dims


def default_layout(f_ty: Ty, layout: str | None) -> str:
    if layout is None or (layout == "gradient" and not f_ty.is_scalar):
        return "gradient" if f_ty.is_scalar else "numerator"
    if layout not in LAYOUTS:
        raise GradcliError("usage", f"unknown layout '{layout}' (gradient, numerator, denominator)")
    return layout


@dataclass
class Derivative:
    """∂f/∂x: its expression (in gradient layout, the shape of x), its shape in the chosen
    layout, and its kind (gradient for a scalar f, jacobian otherwise)."""

    wrt: str
    kind: str
    shape: tuple
    layout: str
    expr: Expr | None  # None where no formula is built (Jacobians: shape only for now)
    x_ty: Ty
    f_ty: Ty

    def text(self, style: str = "unicode") -> str:
        if self.expr is None:
            return ""
        out = self.expr
        if self.layout == "numerator" and self.f_ty.is_scalar and not self.x_ty.is_scalar:
            out = O.T(out)
        return render(out, style)

    def to_layout(self, value: Any) -> Any:
        """Numeric value, rearranged from gradient layout into this derivative's layout."""
        if self.layout == "numerator" and self.f_ty.is_scalar:
            if value.ndim == 1:
                return value.reshape(1, -1)
            return value.T
        return value


@dataclass
class Problem:
    """A shape-checked formula with everything later stages need."""

    typed: Typed
    layout: str | None = None
    _derivs: list | None = field(default=None, repr=False)

    @property
    def expr(self) -> Expr:
        return self.typed.expr

    @property
    def shape(self) -> tuple:
        return self.expr.ty.full_dims

    @property
    def wrt(self) -> list[str]:
        return self.typed.wrt

    @property
    def symbols(self) -> dict[str, SymbolInfo]:
        return {n: SymbolInfo(n, s.ty.full_dims, s.source) for n, s in self.typed.symbols.items()}

    def text(self, style: str = "unicode") -> str:
        return render(self.expr, style)

    def derivative_shapes(self) -> list[Derivative]:
        """Shapes and layouts of each derivative, without building formulas."""
        f_ty = self.expr.ty
        layout = default_layout(f_ty, self.layout)
        out = []
        for name in self.wrt:
            x_ty = self.typed.symbols[name].ty
            kind = "gradient" if f_ty.is_scalar else "jacobian"
            out.append(Derivative(name, kind, derivative_dims(f_ty, x_ty, layout), layout, None,
                                  x_ty, f_ty))
        return out

    def derivatives(self) -> list[Derivative]:
        """Each ∂f/∂x as a formula (reverse mode; f must be scalar)."""
        if self._derivs is None:
            shapes = self.derivative_shapes()
            if not self.expr.ty.is_scalar and shapes:
                raise GradcliError("shape", f"f has shape {fmt_shape(self.shape)}: derivatives of "
                                            "non-scalar formulas (Jacobians) are not supported yet; "
                                            "`gradcli shape` reports their shape")
            xs = [O.sym(n, self.typed.symbols[n].ty) for n in self.wrt]
            exprs = gradients(self.expr, xs) if xs else []
            for d, e in zip(shapes, exprs):
                d.expr = e
            self._derivs = shapes
        return self._derivs

    def compile(self, fns: dict[str, str] | None = None) -> "Compiled":
        derivs = self.derivatives()
        program = compile_graph([self.expr] + [d.expr for d in derivs], fns)
        return Compiled(self, program, derivs)


@dataclass
class Compiled:
    """`f(**arrays) -> (value, {wrt: derivative})` evaluated from the symbolic result."""

    problem: Problem
    program: Program
    derivs: list[Derivative]

    def __call__(self, xp=None, **arrays):
        values = self.program.run(arrays, xp)
        f, rest = values[0], values[1:]
        f = _as_row(self.problem.expr.ty, f)
        return f, {d.wrt: d.to_layout(_as_array(v, d.x_ty)) for d, v in zip(self.derivs, rest)}


def _as_array(value, ty: Ty):
    import numpy as np

    return np.broadcast_to(np.asarray(value, dtype=float), ty.dims).copy() if np.ndim(value) != len(ty.dims) \
        else np.asarray(value, dtype=float)


def _as_row(ty: Ty, value):
    import numpy as np

    value = np.asarray(value, dtype=float)
    return value.reshape(1, -1) if ty.row else value


def fmt_shape(dims: tuple) -> str:
    from .shapes import fmt_dims

    return fmt_dims(dims)


def analyze(text: str, shapes: dict[str, tuple] | None = None, wrt: list[str] | None = None,
            layout: str | None = None, data_shapes: dict[str, tuple] | None = None) -> Problem:
    """Parse and shape-check one formula. shapes: -s options; data_shapes: shapes of given arrays."""
    formula = parse(text)
    declared: dict[str, tuple[tuple, str]] = {}
    for name, dims in (shapes or {}).items():
        declared[name] = (tuple(dims), "option")
    for name, dims in (data_shapes or {}).items():
        if name in declared and len(declared[name][0]) != len(dims):
            raise GradcliError("data", f"{name}: data shape {fmt_shape(tuple(dims))} contradicts "
                                       f"-s {name}={fmt_shape(declared[name][0])}")
        declared[name] = (tuple(dims), "data")
    try:
        typed = infer(formula, declared, wrt)
    except GradcliError as err:
        raise err.with_text(text)
    problem = Problem(typed, layout)
    default_layout(typed.expr.ty, layout)  # validate early
    return problem


def render_derivatives(derivs: list[Derivative], style: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Formulas of several derivatives, with large shared subexpressions named once."""
    roots = []
    for d in derivs:
        e = d.expr
        if d.layout == "numerator" and d.f_ty.is_scalar and not d.x_ty.is_scalar:
            e = O.T(e)
        roots.append(e)
    return render_with_bindings(roots, style)
