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

from .record import record
from numbers import Integral
from typing import Any

from . import operators  # noqa: F401  (fills the operator registry)
from . import simplify as S
from .differentiate import SEED, gradients, index_notation, jacobian_formula, seed_for
from .errors import GradcliError
from .columns import as_scalar, fold_units, has_singleton, is_unit, squeeze, squeezed_symbol, squeezed_ty
from .evaluate import Program, compile_graph
from .expr import Expr, symbols_of, topological
from .indexform import IndexProgram, index_terms
from .infer import Note, Typed, infer
from .parse import dimension, parse
from .render import binding_prefix, render, render_with_bindings
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
        if p.isascii() and p.isdigit():
            dims.append(dimension(p))
        elif p.isidentifier():
            dims.append(p)
        else:
            raise GradcliError("usage", f"bad dimension '{p}' in shape '{text}'")
    if len(dims) > max_rank:
        raise GradcliError("usage", f"shape '{text}': at most 2 dimensions (scalar, vector, matrix)")
    return tuple(dims)


def _is_numeric_x(t: str) -> bool:
    return all(p.strip().isdigit() for p in t.split("x")) and "x" in t


@record
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


@record
class Derivative:
    """∂f/∂x (or a Hessian block ∂²f/∂x∂y): its expression, shape in the chosen layout, kind.

    `expr` is in the base layout — the shape of x for a gradient, shape(f) + shape(x) for a
    Jacobian or Hessian — or None where no matrix formula exists (tensors): then the value is
    computed numerically from vector-Jacobian products, one per entry of f.
    """

    wrt: str
    kind: str  # gradient | jacobian | hessian
    shape: tuple
    layout: str
    expr: Expr | None
    x_ty: Ty
    f_ty: Ty  # the differentiated expression's shape (the gradient's, for a Hessian)
    of: Expr | None = None  # the expression differentiated (f, or a gradient for a Hessian)
    x: Expr | None = None
    squeezed: Expr | None = None  # where expr is None: the formula with singleton axes dropped

    @property
    def transposes(self) -> bool:
        """Whether the chosen layout is the transpose of the base one."""
        if self.kind == "gradient":
            return self.layout == "numerator" and not self.x_ty.is_scalar
        return self.layout == "denominator" and not self.f_ty.is_scalar and not self.x_ty.is_scalar

    def shown(self) -> Expr | None:
        """The expression in the chosen layout (the squeezed one where only that exists)."""
        expr = self.expr if self.expr is not None else self.squeezed
        if expr is None:
            return None
        return S.T(expr) if self.transposes else expr

    def text(self, style: str = "unicode") -> str:
        """The matrix formula in the chosen layout, or '' where there is none."""
        shown = self.shown()
        return "" if shown is None else render(shown, style)

    def index_text(self, style: str = "unicode") -> str | None:
        """The right-hand side of the index notation (indices i, j of f and k, l of x, whatever
        the layout), for tensor derivatives."""
        if self.of is None or self.x is None:
            return None
        return index_notation(self.of, self.x, style)

    def formula(self, style: str = "unicode") -> str | None:
        """What to print: the matrix formula, else `J[i,j,k] = ...` in index notation (in LaTeX
        `\\frac{\\partial f_{i}}{\\partial X_{jk}} = …`, subscripts for indices)."""
        text = self.text(style)
        if text:
            return text
        index = self.index_text(style)
        if index is None:
            return None
        if style == "latex":  # a whole equation, one entry of the tensor on the left
            from .latexdoc import indexed_label

            return f"{indexed_label(self)} = {index}"
        return f"[{','.join(self.index_names())}] = {index}"

    def index_names(self) -> list[str]:
        """The indices of the printed J[…], in the order of the value's axes: f's then x's in
        numerator layout, x's then f's in denominator layout (J[k,l,i,j] = ∂f_ij/∂x_kl).  A row
        vector's leading axis has the one index 0: J[0,i,k] = ∂fᵢ/∂xₖ."""
        from .indexform import F_INDEX, X_INDEX

        f_names = ["0"] * bool(self.f_ty.row) + list(F_INDEX[:len(self.f_ty.dims)])
        x_names = list(X_INDEX[:len(self.x_ty.dims)])
        return x_names + f_names if self.transposes else f_names + x_names

    def __repr__(self) -> str:
        formula = self.formula("ascii")
        return (f"Derivative({self.wrt}: {formula if formula is not None else 'no matrix formula'}; "
                f"{self.kind} {fmt_shape(self.shape)}, {self.layout} layout)")

    def _repr_latex_(self) -> str:
        from .display import derivative_latex

        return derivative_latex(self)

    def to_layout(self, value: Any) -> Any:
        """Numeric value, rearranged from the base layout into this derivative's layout."""
        if not self.transposes:
            return value
        if self.kind == "gradient":
            return value.reshape(1, -1) if value.ndim == 1 else value.T
        kf = len(self.f_ty.full_dims)
        return value.transpose(list(range(kf, value.ndim)) + list(range(kf)))


@record
class Problem:
    """A shape-checked formula with everything later stages need."""

    typed: Typed
    layout: str | None = None
    _functions: frozenset = frozenset()  # the names bound with --fn (set by analyze)
    _derivs: list | None = None
    _hessians: list | None = None
    _notes: tuple = ()  # (wrt, label) of each derivative printed with singleton axes dropped

    @property
    def expr(self) -> Expr:
        return self.typed.expr

    @property
    def target(self) -> Expr:
        """What is differentiated and evaluated: f, or the scalar a 1×1 f holds (SPEC §1)."""
        return as_scalar(self.typed.expr)

    @property
    def shape(self) -> tuple:
        return self.expr.ty.full_dims

    @property
    def wrt(self) -> list[str]:
        return self.typed.wrt

    @property
    def symbols(self) -> dict[str, SymbolInfo]:
        return {n: SymbolInfo(n, s.ty.full_dims, s.source) for n, s in self.typed.symbols.items()}

    @property
    def notes(self) -> list[Note]:
        """What the output must say besides shapes: broadcast undeclared symbols, a 1×1 f taken
        as a scalar, formulas written with singleton axes dropped."""
        out = list(self.typed.notes)
        if is_unit(self.expr.ty):
            out.append(Note("scalar", f"f has shape {fmt_shape(self.shape)}: it is taken as the scalar it "
                                      "holds (derivatives are gradients, its value a number)"))
        return out + self._squeezed_note() + self._alike_names_note()

    def symbol(self, name: str) -> Expr:
        return S.sym(name, self.typed.symbols[name].ty)

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
            if f.ty.is_scalar:
                exprs = gradients(f, [d.x for d in shapes]) if shapes else []
                if f is not self.expr:  # a 1×1 f: fold the 1×1 ones its adjoints carry
                    exprs = [fold_units(e) for e in exprs]
            else:
                exprs = [jacobian_formula(f, d.x) for d in shapes]
            for d, e in zip(shapes, exprs):
                d.expr = e
                if e is None:
                    self._squeeze(d, f)
            self._derivs = shapes
        return self._derivs

    def hessians(self) -> list[Derivative]:
        """∂²f/∂x∂y for every pair of wrt symbols (x = y: the Hessian; else the mixed block),
        computed as the Jacobian of the gradient. Shape: shape(x) + shape(y)."""
        if not self.target.ty.is_scalar:
            raise GradcliError("shape", f"the Hessian needs a scalar f; f has shape {fmt_shape(self.shape)}")
        if self._hessians is not None and self._hessians[0] == self.layout:
            return self._hessians[1]
        layout = self.layout if self.layout in ("numerator", "denominator") else "numerator"
        grads = {d.wrt: d for d in self.derivatives()}
        out = []
        for a in self.wrt:
            g = grads[a]
            for b in self.wrt:
                y = self.symbol(b)
                dims = g.x_ty.dims + y.ty.dims if layout == "numerator" else y.ty.dims + g.x_ty.dims
                d = Derivative(a if a == b else f"{a},{b}", "hessian", dims, layout,
                               jacobian_formula(g.expr, y), y.ty, g.x_ty, g.expr, y)
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
        if not any(has_singleton(t) for t in (f.ty, x.ty, first.ty if first is not None else x.ty)):
            return
        f_sq = squeeze(f)
        if f_sq is None:
            return
        x_sq = squeezed_symbol(x)
        if x_sq.op != "sym":
            return  # a 1×n row symbol: no column to differentiate by
        if first is not None:
            first_sq = squeezed_symbol(first)
            if first_sq.op != "sym":
                return
            (of,) = gradients(f_sq, [first_sq])
        else:
            of = f_sq
        formula = jacobian_formula(of, x_sq)
        declared = [k for k in _base_dims(d) if k != 1]
        if formula is None or [k for k in formula.ty.full_dims if k != 1] != declared:
            return
        d.squeezed = formula
        if d.wrt not in [w for w, _, _ in self._notes]:
            used = {e.params[0] for e in symbols_of(formula)}
            self._notes = self._notes + ((d.wrt, derivative_symbol(d), used),)

    def _alike_names_note(self) -> list[Note]:
        """Different names that print alike (`theta` and `θ` are both θ; `W1` and `W_1` both W₁)
        would make the printed formula ambiguous: say so, and which output keeps them apart."""
        from .render import pretty_name

        out = []
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

    def bind(self, arrays: dict | None = None, sizes: dict | None = None) -> "Problem":
        """The same problem with sizes: the shapes of the given arrays, and `sizes` for named
        dimensions ({"n": 3}); the dimensions these fix propagate through the formula."""
        arrays, sizes = arrays or {}, sizes or {}
        dims = {d for s in self.symbols.values() for d in s.shape if not isinstance(d, int)}
        unknown = [n for n in sizes if n not in dims]
        if unknown:
            raise GradcliError("usage", f"sizes: {', '.join(map(str, unknown))} is not a dimension of the formula "
                                        f"(its named dimensions: {', '.join(sorted(map(str, dims))) or 'none'})")
        for n, k in sizes.items():
            if not (isinstance(k, Integral) and k >= 1) or isinstance(k, bool):
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
        return analyze(self.typed.formula.text, shapes, extra, self.layout, data, self._functions)

    def compile(self, fns: dict[str, str] | None = None, hessian: bool = False,
                allow_nonfinite: bool = False) -> "Compiled":
        """`f(**arrays) -> (value, {wrt: derivative})`.  A problem with named dimensions is
        compiled for the arrays' shapes when it is called (a `Deferred` compilation)."""
        if self.is_symbolic:
            return Deferred(self, fns, hessian, allow_nonfinite)
        derivs = self.hessians() if hessian else self.derivatives()
        with_formula = [d for d in derivs if d.expr is not None]
        program = compile_graph([self.target] + [d.expr for d in with_formula], fns)
        fallback = {d.wrt: vjp_program(d, fns) for d in derivs if d.expr is None}
        for prog in (program, *fallback.values()):
            if isinstance(prog, Program):
                prog.allow_nonfinite = allow_nonfinite
        return Compiled(self, program, derivs, fallback)


def derivative_symbol(d: Derivative, style: str = "ascii") -> str:
    """∂f/∂x, ∂²f/∂x², ∂²f/∂x∂y: names as typed, or (unicode) in Greek with subscripts."""
    from .render import pretty_name

    def name(n: str) -> str:
        return pretty_name(n, style) if style == "unicode" else n
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        return f"∂²f/∂{name(a)}∂{name(b)}" if b and b != a else f"∂²f/∂{name(a)}²"
    return f"∂f/∂{name(d.wrt)}"


def vjp_program(d: Derivative, fns):
    """For a derivative without a matrix formula: its index form (evaluated by einsum), or else
    the vector-Jacobian product with a seed, run once per entry of f."""
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    found = index_terms(g, v, d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims, d.x_ty.dims)
    if found is not None and found[0] and len(found[1]) + len(found[2]) == len(d.f_ty.full_dims + d.x_ty.dims):
        return IndexProgram(*found, fns)
    return compile_graph([g], fns)


@record
class Compiled:
    """`f(**arrays) -> (value, {wrt: derivative})` evaluated from the symbolic result."""

    problem: Problem
    program: Program
    derivs: list[Derivative]
    fallback: dict

    def __repr__(self) -> str:
        return f"Compiled({' '.join(self.problem.typed.formula.text.split())}; {', '.join(d.wrt for d in self.derivs)})"

    def __call__(self, xp=None, **arrays):
        """(f, {wrt: derivative in its layout})."""
        f, base = self.evaluate(arrays, xp)
        return f, {d.wrt: d.to_layout(base[d.wrt]) for d in self.derivs}

    def evaluate(self, arrays: dict, xp=None, progress=None):
        """(f, {wrt: derivative in its base layout: shape(f) + shape(x)}); progress(rows done,
        total) is called after each block when the data is evaluated in row blocks."""
        from .blocked import evaluate as evaluate_blocked  # in row blocks when that pays (blocked.py)

        wrt = {name for d in self.derivs for name in d.wrt.split(",")}
        values = evaluate_blocked(self.program, arrays, wrt, xp, progress=progress)
        f = _as_row(self.problem.target.ty, values[0])
        rest = iter(values[1:])
        out = {}
        if self.fallback and xp is not None:  # tensors without a matrix formula: by numpy
            import numpy as np

            arrays, xp = {n: np.asarray(a, dtype=float) for n, a in arrays.items()}, None
        for d in self.derivs:
            if d.expr is not None:
                out[d.wrt] = _as_array(next(rest), _base_dims(d))
            elif isinstance(self.fallback[d.wrt], IndexProgram):
                out[d.wrt] = self.fallback[d.wrt].evaluate(_base_dims(d), arrays)
            else:
                out[d.wrt] = _by_vjp(self.fallback[d.wrt], d, arrays, xp)
        return f, out

    def evaluation_note(self) -> str | None:
        """How the last evaluation was cut into row blocks, or why not (None when the data was
        too small to ask: see blocked.py)."""
        plan = self.program.__dict__.get("_block_plan")
        return plan.note() if plan is not None else None

    def check(self, arrays: dict, base: dict, fns: dict | None = None, on_step=None) -> dict:
        """{wrt: max relative error} of each derivative against central finite differences of
        the expression it differentiates (f, or the gradient for a Hessian)."""
        from .fdcheck import check_derivative

        out = {}
        for d in self.derivs:
            program = compile_graph([d.of], fns)
            program.allow_nonfinite = self.program.allow_nonfinite  # as f itself was evaluated
            x_name = d.x.params[0]
            out[d.wrt] = check_derivative(lambda vals: program.run(vals)[0], arrays, x_name,
                                          base[d.wrt], on_step=on_step)
        return out


class Deferred:
    """The compilation of a problem with named dimensions: called with arrays, it binds their
    shapes (`Problem.bind`) and compiles that, once per set of shapes."""

    def __init__(self, problem: Problem, fns, hessian: bool, allow_nonfinite: bool):
        self.problem, self.fns, self.hessian, self.allow_nonfinite = problem, fns, hessian, allow_nonfinite
        self._compiled: dict = {}

    def __repr__(self) -> str:
        return f"Compiled({' '.join(self.problem.typed.formula.text.split())}; sizes bound when called)"

    def bound(self, arrays: dict) -> "Compiled":
        """The compilation for these arrays' shapes (numpy arrays by name)."""
        missing = [n for n in self.problem.symbols if n not in arrays]
        if missing:
            raise GradcliError("usage", f"missing array(s) for {', '.join(missing)}: the formula's symbols are "
                                        f"{', '.join(self.problem.symbols)}")
        key = tuple((n, a.shape) for n, a in sorted(arrays.items()))
        if key not in self._compiled:
            self._compiled[key] = self.problem.bind(arrays).compile(self.fns, self.hessian, self.allow_nonfinite)
        return self._compiled[key]

    def __call__(self, xp=None, **arrays):
        arrays = _float_arrays(arrays)
        return self.bound(arrays)(xp, **arrays)

    def evaluate(self, arrays: dict, xp=None, progress=None):
        arrays = _float_arrays(arrays)
        return self.bound(arrays).evaluate(arrays, xp, progress)

    def check(self, arrays: dict, base: dict, fns: dict | None = None, on_step=None) -> dict:
        arrays = _float_arrays(arrays)
        return self.bound(arrays).check(arrays, base, fns, on_step)


def _float_arrays(arrays: dict) -> dict:
    """Lists and numbers as float arrays (the evaluator's input), arrays as they are."""
    import numpy as np

    return {n: a if isinstance(a, np.ndarray) or hasattr(a, "__array_namespace__") or hasattr(a, "dask")
            else np.asarray(a, dtype=float) for n, a in arrays.items()}  # another library's arrays stay


def check_verdict(error: float, tol: float, allow_nonfinite: bool = False) -> dict:
    """--check compares the entries where the derivative and its finite difference are both
    finite; under --allow-nonfinite the others are the NaN/Inf the user accepted, so a
    derivative with no comparable entry is not a failure (its error is null)."""
    import math

    if math.isnan(error):
        return {"max_rel_error": None, "ok": allow_nonfinite}
    return {"max_rel_error": error, "ok": bool(error <= tol)}


def derivation(problem: Problem, derivs: list[Derivative], hessian: bool,
               style: str = "unicode") -> tuple[list[str], list[dict]]:
    """The --steps derivation: its lines and its JSON records.  For a Hessian, first the
    gradient, then each block as the Jacobian of a gradient."""
    from .steps import render_steps

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


def emit_code(target: str, problem: Problem, derivs: list[Derivative], fns: dict | None = None,
              hessian: bool = False) -> str:
    """Source code for the derivatives: `numpy` a standalone module, `array-api` the same module
    for any array API library, `latex` a standalone document."""
    if target == "latex":
        from .latexdoc import document

        return document(problem, derivs, problem.typed.formula.text)
    if target in ("numpy", "array-api"):  # array-api: the module for any array API library
        from .emit import emit_module

        return emit_module(problem, derivs, fns or {}, hessian, target)
    raise GradcliError("usage", f"emit {target!r}: expected numpy, array-api or latex")


def _base_dims(d: Derivative) -> tuple:
    if d.kind == "gradient":
        return d.x_ty.dims
    return d.f_ty.full_dims + d.x_ty.dims


def _by_vjp(program: Program, d: Derivative, arrays: dict, xp) -> Any:
    """J[i, ...] = (Jᵀ eᵢ)[...]: one vector-Jacobian product per entry of f."""
    import numpy as np

    f_dims = d.f_ty.dims
    size = int(np.prod(f_dims)) if f_dims else 1
    rows = []
    for k in range(size):
        seed = np.zeros(size)
        seed[k] = 1.0
        (g,) = program.run({**arrays, SEED: seed.reshape(f_dims)}, xp)
        rows.append(np.broadcast_to(np.asarray(g, dtype=float), d.x_ty.dims))
    return np.array(rows).reshape(d.f_ty.full_dims + d.x_ty.dims)


def _as_array(value, dims: tuple):
    import numpy as np

    value = np.asarray(value, dtype=float)
    if value.shape != tuple(dims):
        value = np.broadcast_to(value, dims).copy() if value.size != int(np.prod(dims) if dims else 1) \
            else value.reshape(dims)
    return value


def _as_row(ty: Ty, value):
    import numpy as np

    value = np.asarray(value, dtype=float)
    return value.reshape(1, -1) if ty.row else value


def fmt_shape(dims: tuple) -> str:
    from .shapes import fmt_dims

    return fmt_dims(dims)


def analyze(text: str, shapes: dict[str, tuple] | None = None, wrt: list[str] | None = None,
            layout: str | None = None, data_shapes: dict[str, tuple] | None = None,
            functions=()) -> Problem:
    """Parse and shape-check one formula. shapes: -s options; data_shapes: shapes of given arrays;
    functions: names bound with --fn (abstract functions whatever their length)."""
    formula = parse(text)
    declared: dict[str, tuple[tuple, str]] = {}
    bound: dict = {}  # dimension names of -s shapes that the data fixes (-s X=M,n with X 4×3: M=4)
    if shapes and data_shapes:
        from .data import check_declared_shapes

        bound = check_declared_shapes(shapes, data_shapes)
    for name, dims in (shapes or {}).items():
        declared[name] = (tuple(bound.get(d, d) if isinstance(d, str) else d for d in dims), "option")
    for name, dims in (data_shapes or {}).items():
        declared[name] = (tuple(dims), "data")
    try:
        typed = infer(formula, declared, wrt, functions)
    except GradcliError as err:
        raise err.with_text(text)
    problem = Problem(typed, layout)
    problem._functions = frozenset(functions)
    default_layout(typed.expr.ty, layout)  # validate early
    return problem


def render_derivatives(derivs: list[Derivative], style: str,
                       bound_nodes: list | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """Formulas of several derivatives, with large shared subexpressions named once ('' where a
    derivative has no matrix formula).  The names (z1, z2, …; zz1, … if the formula has a
    symbol or dimension spelled so) never collide with the formula's own names, so a binding
    can be read back as a symbol of its own shape.  Every style names the same nodes."""
    roots = [d.shown() for d in derivs if d.shown() is not None]
    taken: set[str] = set()
    for n in topological(roots):
        if n.op == "sym":
            taken.add(n.params[0])
        taken.update(str(d) for d in n.ty.dims)
    bindings, texts = render_with_bindings(roots, style, prefix=binding_prefix(taken), bound_nodes=bound_nodes)
    it = iter(texts)
    return bindings, [next(it) if d.shown() is not None else "" for d in derivs]
