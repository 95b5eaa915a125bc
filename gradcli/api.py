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

from numbers import Integral
from collections.abc import Iterable, Mapping
from typing import Any

from .language import operators  # noqa: F401  (fills the operator registry)
from .language import simplify as S
from .calculus.columns import (as_scalar, column_symbol, entries_column, fold_units, has_singleton, is_unit, squeeze,
                               squeezed_ty)
from .compiled import Compiled, Deferred, vjp_program
from .derivative import LAYOUTS, Derivative, default_layout, derivative_dims, derivative_symbol, fmt_shape
from .calculus.differentiate import expand_derivatives, gradients
from .calculus.higher import directional
from .calculus.linearize import jacobian_formula
from .errors import GradcliError
from .numeric.evaluate import Program, compile_graph
from .language.expr import Expr, symbols_of
from .language.infer import Note, Typed, infer
from .language.parse import dimension, parse
from .record import record
from .language.render import render, render_formulas
from .language.shapes import Dim, DimProduct, DimVar, Ty, product
from .language.structures import CONVENTIONS, canonical, convention_of, split_structure, gradient_note, \
    jacobian_note, project_gradient

__all__ = ["LAYOUTS", "Compiled", "Deferred", "Derivative", "Problem", "SymbolInfo", "analyze", "check_verdict",
           "default_layout", "derivation", "derivative_dims", "derivative_symbol", "emit_code", "fmt_shape",
           "declared_shape", "parse_dims", "parse_shape", "render_derivatives", "vjp_program"]


def _jacobian(f: Expr, x: Expr) -> Expr | None:
    """∂f/∂x in numerator layout, where a matrix formula has its shape.  A row or a matrix f wrt
    a scalar x has f's shape, and its formula is the derivative along dx = 1 (forward mode):
    ∂(A + aB)⁻¹/∂a = −(A + aB)⁻¹B(A + aB)⁻¹, ∂(a·xᵀ)/∂a = xᵀ."""
    J = jacobian_formula(f, x)
    if J is None and x.ty.is_scalar and not f.ty.is_scalar:
        return directional(f, [x], [S.const(1.0)])
    return J


def parse_dims(text: str, max_rank: int = 2) -> tuple[Dim, ...]:
    """`100x3`, `M,n`, `(M, n)`, `scalar`, `()`, `n` → a dims tuple (the -s option)."""
    t = text.strip()
    if t in ("scalar", "()", ""):
        return ()
    t = t.strip("()").replace("×", "x")
    parts = [p.strip() for p in (t.split(",") if "," in t else t.split("x") if _is_numeric_x(t) else [t])]
    parts = [p for p in parts if p]
    dims: list[Dim] = []
    for p in parts:
        factors = [f.strip() for f in p.replace("·", "*").split("*")]  # m*n: a product (kron, vec)
        if not all(f.isascii() and f.isdigit() or f.isidentifier() for f in factors):
            raise GradcliError("usage", f"bad dimension '{p}' in shape '{text}'")
        dims.append(product(*(dimension(f) if f.isdigit() else f for f in factors)))
    if len(dims) > max_rank:
        raise GradcliError("usage", f"shape '{text}': at most 2 dimensions (scalar, vector, matrix)")
    return tuple(dims)


def declared_shape(name: str, dims: Any) -> tuple[Dim, ...]:
    """A shape declared through the Python API: "m,n" / "3x2" / "n,n,spd" as -s takes it (the
    structure is read by `shape_structure`), or a tuple of at most two positive sizes and
    dimension names (products such as "m*n" included); anything else is a usage error, never a
    crash further down."""
    if isinstance(dims, str):
        return parse_dims(split_structure(dims)[0])
    entries = tuple(dims) if isinstance(dims, (tuple, list)) else None
    if entries is None or len(entries) > 2 or not all(
            (isinstance(d, Integral) and not isinstance(d, bool) and int(d) >= 1)
            or (isinstance(d, str) and _is_dimension_name(d)) or isinstance(d, (DimVar, DimProduct))
            for d in entries):
        raise GradcliError("usage", f"shapes: {name} = {dims!r} is not a shape (a string such as 'm,n' or '3x2', or "
                                    "a tuple of at most 2 positive sizes and dimension names)")
    return tuple(int(d) if isinstance(d, Integral) else parse_dims(d, 1)[0] if isinstance(d, str) else d
                 for d in entries)


def shape_structure(dims: Any) -> str:
    """The structure written after a shape string ("n,n,spd" → "spd"), or ''."""
    return split_structure(dims)[1] if isinstance(dims, str) else ""


def _is_dimension_name(text: str) -> bool:
    """A dimension name or a product of names and sizes (m, m*n, 2*n)."""
    factors = [f.strip() for f in text.replace("·", "*").split("*")]
    return all(f.isidentifier() or (f.isascii() and f.isdigit() and int(f) >= 1) for f in factors)


def parse_shape(text: str) -> tuple[tuple[Dim, ...], str]:
    """-s NAME=DIMS[,STRUCTURE]: `n,n,sym`, `3x3,spd`, `(n, n),diag` → (dims, structure or '')."""
    dims, structure = split_structure(text)
    return parse_dims(dims), structure


def _is_numeric_x(t: str) -> bool:
    return all(p.strip().isdigit() for p in t.split("x")) and "x" in t


@record
class SymbolInfo:
    name: str
    shape: tuple[Dim, ...]
    source: str


@record
class Problem:
    """A shape-checked formula with everything later stages need."""

    typed: Typed
    layout: str | None = None
    _expanded: Expr | None = None  # f with h'(x) written out (`expr`)
    _functions: frozenset[str] = frozenset()  # the names of bound abstract functions (set by analyze)
    _derivs: list[Derivative] | None = None
    symmetric_gradient: str = "sym"  # the convention for a symmetric S: sym (G + Gᵀ)/2 or vech
    _hessians: tuple[str | None, list[Derivative]] | None = None  # (the layout they were made in, blocks)
    _notes: tuple[tuple[str, str, set[str]], ...] = ()  # (wrt, label, symbols used) of each derivative
    _symbols: dict[str, SymbolInfo] | None = None  # `symbols`, made once (a copy is handed out)
    # printed with singleton axes dropped

    @property
    def expr(self) -> Expr:
        """f, with each h'(x) of a builtin h written out (shape inference leaves it a node)."""
        if self._expanded is None:
            self._expanded = expand_derivatives(self.typed.expr)
        return self._expanded

    @property
    def target(self) -> Expr:
        """What is differentiated and evaluated: f, or the scalar a 1×1 f holds (SPEC §1)."""
        return as_scalar(self.expr)

    @property
    def shape(self) -> tuple[Dim, ...]:
        return tuple(self.typed.ty.full_dims)

    @property
    def wrt(self) -> list[str]:
        return self.typed.wrt

    @property
    def symbols(self) -> dict[str, SymbolInfo]:
        if self._symbols is None:
            self._symbols = {n: SymbolInfo(n, s.ty.full_dims, s.source) for n, s in self.typed.symbols.items()}
        return dict(self._symbols)

    @property
    def notes(self) -> list[Note]:
        """What the output must say besides shapes: broadcast undeclared symbols, a 1×1 f taken
        as a scalar, formulas written with singleton axes dropped."""
        out = list(self.typed.notes)
        if is_unit(self.expr.ty):
            out.append(Note("scalar", f"f has shape {fmt_shape(self.shape)}: it is taken as the scalar it "
                                      "holds (derivatives are gradients, its value a number)"))
        return out + self._structure_notes() + self._squeezed_note() + self._alike_names_note()

    def _structure_notes(self) -> list[Note]:
        """Which convention each derivative wrt a structured symbol follows (one line each): a
        gradient's, or a Jacobian's (projected on the symbol's axes; structures.py)."""
        structures = self.typed.structures
        if not self.target.ty.is_scalar:
            return [Note("structure", jacobian_note(name, structures[name],
                                                    convention_of(structures[name], self.symmetric_gradient),
                                                    False), name)
                    for name in self.wrt if name in structures]
        return [Note("structure", gradient_note(name, structures[name], self.symmetric_gradient), name)
                for name in self.wrt if name in structures]

    def symbol(self, name: str) -> Expr:
        return S.sym(name, self.typed.symbols[name].ty, self.typed.structures.get(name, ""))

    def text(self, style: str = "unicode") -> str:
        return render(self.expr, style)

    def derivative_shapes(self) -> list[Derivative]:
        """Shapes and layouts of each derivative, without building formulas."""
        f = self.target
        layout = default_layout(f.ty, self.layout)
        out = []
        for name in self.wrt:
            x_ty = self.typed.symbols[name].ty
            kind = "gradient" if f.ty.is_scalar else "jacobian"
            out.append(Derivative(name, kind, derivative_dims(f.ty, x_ty, layout), layout, None,
                                  x_ty, f.ty, f, self.symbol(name)))
        return out

    def derivatives(self) -> list[Derivative]:
        """Each ∂f/∂x: the gradient for a scalar f (one reverse pass for all), the Jacobian
        otherwise (a matrix formula where one exists)."""
        if self._derivs is None:
            shapes = self.derivative_shapes()
            f = self.target
            exprs: list[Expr | None]
            if f.ty.is_scalar:
                grads = gradients(f, [d.x for d in shapes]) if shapes else []
                if f is not self.expr:  # a 1×1 f: fold the 1×1 ones its adjoints carry
                    grads = [fold_units(e) for e in grads]
                exprs = [self._structured(d.wrt, g) for d, g in zip(shapes, grads)]
            else:
                exprs = [_jacobian(f, d.x) for d in shapes]
            for d, e in zip(shapes, exprs):
                d.expr = e
                d.convention = self._convention(d.wrt)
                if d.convention and d.kind != "gradient":  # a gradient's formula is projected already
                    d.projected = ((len(f.ty.full_dims), d.convention),)
                if e is None:
                    self._squeeze(d, f)
            self._derivs = shapes
        return self._derivs

    def _convention(self, name: str) -> str:
        """How a derivative wrt the symbol `name` is projected on its axes ('' if general)."""
        return convention_of(self.typed.structures.get(name, ""), self.symmetric_gradient)

    def _structured(self, name: str, g: Expr) -> Expr:
        """The gradient wrt a declared symmetric/spd/diagonal symbol (structures.py)."""
        structure = self.typed.structures.get(name)
        return g if not structure else project_gradient(g, structure, self.symmetric_gradient)

    def hessians(self) -> list[Derivative]:
        """∂²f/∂x∂y for every pair of wrt symbols (x = y: the Hessian; else the mixed block),
        computed as the Jacobian of the gradient. Shape: shape(x) + shape(y)."""
        if not self.target.ty.is_scalar:
            raise GradcliError("shape", f"the Hessian needs a scalar f; f has shape {fmt_shape(self.shape)}")
        if self._hessians is not None and self._hessians[0] == self.layout:
            return self._hessians[1]
        layout = self.layout if self.layout in ("numerator", "denominator", "vec") else "numerator"
        grads = {d.wrt: d for d in self.derivatives()}
        out = []
        for a in self.wrt:
            g = grads[a]
            assert g.expr is not None  # the gradient of a scalar always has a formula
            for b in self.wrt:
                y = self.symbol(b)
                dims = (derivative_dims(g.x_ty, y.ty, layout) if layout == "vec"
                        else g.x_ty.dims + y.ty.dims if layout == "numerator" else y.ty.dims + g.x_ty.dims)
                d = Derivative(a if a == b else f"{a},{b}", "hessian", dims, layout,
                               jacobian_formula(g.expr, y), y.ty, g.x_ty, g.expr, y, convention=self._convention(b))
                if d.convention:  # the gradient's axes are projected by its formula; y's here
                    d.projected = ((len(g.x_ty.dims), d.convention),)
                if d.expr is None:
                    self._squeeze(d, self.target, g.x)
                out.append(d)
        self._hessians = (self.layout, out)
        return out

    def _squeeze(self, d: Derivative, f: Expr, first: Expr | None = None) -> None:
        """Where a derivative has no matrix formula in the declared shapes only because of
        singleton axes (n×1 vectors), derive it with those axes dropped: d.squeezed, and a note.
        `first` is the other wrt symbol of a Hessian block (f is then the scalar target)."""
        x = d.x
        tys = (f.ty, x.ty, first.ty if first is not None else x.ty)
        if not (f.ty.is_row or any(has_singleton(t) for t in tys)):
            return
        f_sq = squeeze(f)
        if f_sq is None:
            return
        x_sq = column_symbol(x)
        if first is not None:
            (of,) = gradients(f_sq, [column_symbol(first)])
        else:
            column = entries_column(f_sq)
            if column is None:
                return
            of = column
        formula = jacobian_formula(of, x_sq)
        declared = [k for k in d.base_dims() if k != 1]
        if formula is None or [k for k in formula.ty.full_dims if k != 1] != declared:
            return
        d.squeezed = formula
        if d.wrt not in [w for w, _, _ in self._notes]:
            used = {e.params[0] for e in symbols_of(formula)}
            self._notes = self._notes + ((d.wrt, derivative_symbol(d), used),)

    def _alike_names_note(self) -> list[Note]:
        """Different names that print alike (`theta` and `θ` are both θ; `W1` and `W_1` both W₁)
        would make the printed formula ambiguous: say so, and which output keeps them apart."""
        from .language.render import pretty_name

        out: list[Note] = []
        for style in ("unicode", "latex"):
            shown: dict[str, list[str]] = {}
            for name in self.typed.symbols:
                shown.setdefault(pretty_name(name, style), []).append(name)
            for text, names in shown.items():
                if len(names) > 1 and not any(n.symbol == names[0] for n in out):
                    out.append(Note("names", f"{' and '.join(names)} print alike ({text}) in "
                                             f"{style} output; the ASCII formula (--json) spells "
                                             "them apart", names[0]))
        return out

    def _squeezed_note(self) -> list[Note]:
        """One note for every formula written with singleton axes dropped."""
        if not self._notes:
            return []
        labels = [label for _, label, _ in self._notes]
        used = set().union(*(names for _, _, names in self._notes))
        changed = [(n, fmt_shape(squeezed_ty(s.ty).full_dims)) for n, s in self.typed.symbols.items()
                   if n in used and squeezed_ty(s.ty).full_dims != s.ty.full_dims]
        where = ", ".join(f"{n} is {'a scalar' if sh == '()' else sh}" for n, sh in changed)
        one = len(labels) == 1
        text = (f"{', '.join(labels)} {'is' if one else 'are'} printed with singleton axes dropped, as the "
                f"matrix of {'its' if one else 'their'} entries (values keep the declared shape)")
        if where:
            text += f"; in {'that formula' if one else 'those formulas'} {where}"
        return [Note("squeezed", text)]

    def __repr__(self) -> str:
        """`Problem(||y - X@theta||^2 wrt theta: f (); X (m, n), y (m,), theta (n,))`: the
        formula and the shapes, not the syntax tree."""
        symbols = ", ".join(f"{n} {fmt_shape(s.shape)}" for n, s in self.symbols.items())
        return f"Problem({' '.join(self.typed.formula.text.split())}: f {fmt_shape(self.shape)}; {symbols})"

    def _repr_latex_(self) -> str:
        from .display import problem_latex

        return problem_latex(self)

    def _repr_markdown_(self) -> str:
        from .display import problem_markdown

        return problem_markdown(self)

    @property
    def is_symbolic(self) -> bool:
        """Whether some dimension has a name and no size (then values need arrays or sizes)."""
        return any(not isinstance(d, int) for s in self.symbols.values() for d in s.shape)

    def bind(self, arrays: dict[str, Any] | None = None, sizes: dict[str, Any] | None = None) -> Problem:
        """The same problem with sizes: the shapes of the given arrays, and `sizes` for named
        dimensions ({"n": 3}); the dimensions these fix propagate through the formula."""
        arrays, sizes = arrays or {}, sizes or {}
        dims = {d for s in self.symbols.values() for d in s.shape if not isinstance(d, int)}
        unknown = [n for n in sizes if n not in dims]
        if unknown:
            raise GradcliError("usage", f"sizes: {', '.join(map(str, unknown))} is not a dimension of the formula "
                                        f"(its named dimensions: {', '.join(sorted(map(str, dims))) or 'none'})")
        for n, k in sizes.items():
            if not (isinstance(k, Integral) and int(k) >= 1) or isinstance(k, bool):
                raise GradcliError("usage", f"sizes: {n} = {k!r} is not a positive integer")
        sizes = {n: int(k) for n, k in sizes.items()}  # numpy's integers too
        strange = [n for n in arrays if n not in self.symbols]
        if strange:
            raise GradcliError("usage", f"{', '.join(strange)}: the formula has no such symbol "
                                        f"(its symbols: {', '.join(self.symbols)})")
        data = {n: s.shape for n, s in self.symbols.items() if s.source == "data"}
        data.update({n: tuple(getattr(a, "shape", ())) for n, a in arrays.items()})
        # declared shapes stay declared (sizes put in); an assumed one only where a size fixes it,
        # so that the others are still inferred from the data
        shapes = {n: tuple(sizes.get(d, d) if isinstance(d, str) else d for d in s.shape)
                  for n, s in self.symbols.items()
                  if n not in data and (s.source != "assumed" or any(d in sizes for d in s.shape))}
        extra = [w for w in self.wrt if w not in {name for name, _ in self.typed.formula.wrt}]
        return analyze(self.typed.formula.text, shapes, extra, self.layout, data, self._functions,
                       {n: s for n, s in self.typed.structures.items()
                        if n not in {d.name for d in self.typed.formula.where if d.structure}},
                       self.symmetric_gradient)

    def compile(self, fns: dict[str, str] | None = None, hessian: bool = False,
                allow_nonfinite: bool = False) -> Compiled | Deferred:
        """`f(**arrays) -> (value, {wrt: derivative})`.  A problem with named dimensions is
        compiled for the arrays' shapes when it is called (a `Deferred` compilation)."""
        if self.is_symbolic:
            return Deferred(self, fns, hessian, allow_nonfinite)
        derivs = self.hessians() if hessian else self.derivatives()
        with_formula = [d for d in derivs if d.expr is not None]
        program = compile_graph([self.target] + [d.expr for d in with_formula if d.expr is not None], fns)
        fallback = {d.wrt: vjp_program(d, fns) for d in derivs if d.expr is None}
        for prog in (program, *fallback.values()):
            if isinstance(prog, Program):
                prog.allow_nonfinite = allow_nonfinite
        return Compiled(self, program, derivs, fallback)


def check_verdict(error: float, tol: float, allow_nonfinite: bool = False) -> dict[str, Any]:
    """--check compares the entries where the derivative and its finite difference are both
    finite; under --allow-nonfinite the others are the NaN/Inf the user accepted, so a
    derivative with no comparable entry is not a failure (its error is null)."""
    import math

    if math.isnan(error):
        return {"max_rel_error": None, "ok": allow_nonfinite}
    return {"max_rel_error": error, "ok": bool(error <= tol)}


def derivation(problem: Problem, derivs: list[Derivative], hessian: bool,
               style: str = "unicode") -> tuple[list[str], list[dict[str, Any]]]:
    """The --steps derivation: its lines and its JSON records.  For a Hessian, first the
    gradient, then each block as the Jacobian of a gradient."""
    from .calculus.steps import render_steps

    numerator = problem.layout == "numerator"
    if not hessian:
        return render_steps(problem.target, [d.x for d in derivs], style, numerator)
    grads = {d.wrt: d for d in problem.derivatives()}
    lines, records = render_steps(problem.target, [grads[w].x for w in problem.wrt], style, numerator)
    for d in derivs:
        more, recs = render_steps(d.of, [d.x], style, numerator)
        a = render(S.sym(d.wrt.partition(",")[0], d.f_ty), "unicode")
        lines += ["", f"{derivative_symbol(d, 'unicode')}: the Jacobian of ∂f/∂{a} wrt {render(d.x, 'unicode')}"] + more
        records += [{**r, "block": d.wrt} for r in recs]
    return lines, records


def emit_code(target: str, problem: Problem, derivs: list[Derivative], fns: dict[str, str] | None = None,
              hessian: bool = False) -> str:
    """Source code for the derivatives: `numpy` a standalone module, `array-api` the same module
    for any array API library, `latex` a standalone document."""
    if target == "latex":
        from .latexdoc import document

        return document(problem, derivs, problem.typed.formula.text)
    if target in ("numpy", "array-api"):  # array-api: the module for any array API library
        from .numeric.emit import emit_module

        return emit_module(problem, derivs, fns or {}, hessian, target)
    raise GradcliError("usage", f"emit {target!r}: expected numpy, array-api or latex")


def analyze(text: str, shapes: Mapping[str, Any] | None = None, wrt: list[str] | None = None,
            layout: str | None = None, data_shapes: Mapping[str, tuple[Dim, ...]] | None = None,
            functions: Iterable[str] = (), structures: Mapping[str, str] | None = None,
            symmetric_gradient: str = "sym") -> Problem:
    """Parse and shape-check one formula. shapes: -s options; data_shapes: shapes of given arrays;
    functions: names bound with --fn (abstract functions whatever their length); structures:
    declared structure by name (symmetric/sym, spd, diagonal/diag: -s S=n,n,sym);
    symmetric_gradient: sym ((G + Gᵀ)/2) or vech (G + Gᵀ − G⊙I)."""
    if symmetric_gradient not in CONVENTIONS:
        raise GradcliError("usage", f"unknown symmetric gradient convention {symmetric_gradient!r} (sym, vech)")
    kinds: dict[str, str] = {}
    written = {name: shape_structure(dims) for name, dims in (shapes or {}).items()}
    for name, word in {**{n: w for n, w in written.items() if w}, **dict(structures or {})}.items():
        found = canonical(word)
        if found is None:
            raise GradcliError("usage", f"{name}: unknown structure {word!r} (symmetric, spd, diagonal)")
        kinds[name] = found
    formula = parse(text)
    declared: dict[str, tuple[tuple[Dim, ...], str]] = {}
    bound: dict[Dim, Dim] = {}  # dimension names of -s shapes that the data fixes (-s X=M,n with X 4×3: M=4)
    if shapes:  # "m,n" strings, tuples of sizes and names, "m*n" products: checked and read
        shapes = {name: declared_shape(name, dims) for name, dims in shapes.items()}
    if shapes and data_shapes:
        from .numeric.data import check_declared_shapes

        bound = check_declared_shapes(dict(shapes), dict(data_shapes))
    for name, dims in (shapes or {}).items():
        declared[name] = (tuple(bound.get(d, d) if isinstance(d, str) else d for d in dims), "option")
    for name, dims in (data_shapes or {}).items():
        declared[name] = (tuple(dims), "data")
    try:
        typed = infer(formula, declared, wrt, functions, kinds)
    except GradcliError as err:
        raise err.with_text(text)
    problem = Problem(typed, layout, symmetric_gradient=symmetric_gradient)
    problem._functions = frozenset(functions)
    default_layout(typed.ty, layout)  # validate early
    return problem


def render_derivatives(derivs: list[Derivative], style: str,
                       bound_nodes: list[Expr] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """Formulas of several derivatives ('' where one has no matrix formula), with large shared
    subexpressions named once (render.render_formulas)."""
    return render_formulas([d.shown() for d in derivs], style, bound_nodes)
