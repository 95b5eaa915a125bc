"""The notebook-first API: `gradcli.grad(formula, **arrays)` and friends.

    >>> import numpy as np, gradcli
    >>> r = gradcli.grad("||y - X@theta||^2 wrt theta", X=np.eye(3), y=np.ones(3), theta=np.zeros(3))
    >>> r["theta"].formula, r["theta"].shape, r["theta"].value.tolist()
    ('−2Xᵀ(y − Xθ)', (3,), [-2.0, -2.0, -2.0])

Why: in a notebook one has arrays, not files and flags.  The arrays given by keyword bind the
symbols' sizes (and values); `sizes=` names the rest; derivatives come back keyed by the wrt
names, each knowing its formula (Unicode, ASCII, LaTeX), shape, value, derivation and code, and
showing itself rendered (LaTeX, a table of symbols and shapes) in Jupyter.  The CLI prints what
these same functions of gradcli.api compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from .errors import GradcliError


def grad(formula: str, values: Mapping | None = None, /, *, wrt: list[str] | None = None, sizes: dict | None = None,
         shapes: dict | None = None, layout: str | None = None, fns: dict | None = None,
         seed: int = 0, **arrays: Any) -> "Results":
    """The derivatives of `formula` with respect to its wrt symbols, keyed by name.

    arrays: values of symbols by name (their shapes bind the formula's dimensions);
    sizes: {"n": 3} for named dimensions no array fixes; shapes: {"X": "m,n"} declared shapes;
    fns: {"h": "tanh"} binds abstract functions; seed: of the values `check()` draws."""
    return _results(formula, False, wrt, sizes, shapes, layout, fns, seed, {**(values or {}), **arrays})


def hess(formula: str, values: Mapping | None = None, /, *, wrt: list[str] | None = None, sizes: dict | None = None,
         shapes: dict | None = None, layout: str | None = None, fns: dict | None = None,
         seed: int = 0, **arrays: Any) -> "Results":
    """The Hessian blocks of a scalar `formula`, keyed "x" (∂²f/∂x²) and "x,y" (mixed)."""
    return _results(formula, True, wrt, sizes, shapes, layout, fns, seed, {**(values or {}), **arrays})


def shape(formula: str, values: Mapping | None = None, /, *, wrt: list[str] | None = None, sizes: dict | None = None,
          shapes: dict | None = None, layout: str | None = None, fns: dict | None = None,
          **arrays: Any) -> "Results":
    """Shapes only: every symbol's, f's and each derivative's (formulas are not built)."""
    return _results(formula, False, wrt, sizes, shapes, layout, fns, 0, {**(values or {}), **arrays},
                    formulas=False)


def check(formula: str, values: Mapping | None = None, /, *, wrt: list[str] | None = None, sizes: dict | None = None,
          shapes: dict | None = None, layout: str | None = None, fns: dict | None = None,
          seed: int = 0, tol: float = 1e-5, hessian: bool = False, **arrays: Any) -> "Checks":
    """Each derivative compared with central finite differences at the given arrays, the
    symbols without one drawn as `--random` draws them (seeded)."""
    _check_options(formula, tol=(tol, (Real,)), hessian=(hessian, (bool,)))
    results = _results(formula, hessian, wrt, sizes, shapes, layout, fns, seed, {**(values or {}), **arrays})
    return results.check(tol)


def _results(formula, hessian, wrt, sizes, shapes, layout, fns, seed, arrays, formulas=True) -> "Results":
    from .api import analyze

    if not isinstance(formula, str):
        raise TypeError(f"the formula must be a string, not {type(formula).__name__}")
    _check_options(formula, wrt=(wrt, (str, list, tuple, type(None))), sizes=(sizes, (Mapping, type(None))),
                   shapes=(shapes, (Mapping, type(None))), layout=(layout, (str, type(None))),
                   fns=(fns, (Mapping, type(None))), seed=(seed, (Integral,)))
    wrt = [wrt] if isinstance(wrt, str) else wrt
    values = {n: _as_value(n, v) for n, v in arrays.items()}
    declared = {n: _declared(n, s) for n, s in (shapes or {}).items()}
    try:  # an array's shape must agree with a declared one, as -d data with -s
        from .data import check_declared_shapes

        check_declared_shapes(declared, {n: v.shape for n, v in values.items()})
    except GradcliError as err:
        raise GradcliError(err.kind, err.message.replace("contradicts -s ", "contradicts shapes ")) from None
    fns = dict(fns or {})
    from .infer import BUILTINS
    from .operators import ELEMENTWISE

    for name, builtin in fns.items():  # checked as --fn checks them, before they reach the graph
        if name in BUILTINS or builtin not in ELEMENTWISE:
            raise GradcliError("usage", f"fns: {name}={builtin!r}: binds an abstract function (h in h(z)) to "
                                        f"an element-wise builtin, one of {', '.join(ELEMENTWISE)}")
    problem = analyze(formula, declared, list(wrt or []), layout, {}, set(fns))
    problem = problem.bind(values, sizes)
    if not problem.wrt and formulas:
        raise GradcliError("usage", "nothing to differentiate: add 'wrt NAME' to the formula or wrt=[...]")
    return Results(problem, values, fns, hessian, seed, formulas)




def _declared(name: str, dims: Any) -> tuple:
    """A declared shape: "m,n" / "3x2" as -s takes it, or a tuple of sizes and dimension names."""
    from .api import parse_dims

    if isinstance(dims, str):
        return parse_dims(dims)
    entries = tuple(dims) if isinstance(dims, (tuple, list)) else None
    if entries is None or len(entries) > 2 or not all(
            (isinstance(d, Integral) and not isinstance(d, bool) and d >= 1) or (isinstance(d, str) and d.isidentifier())
            for d in entries):
        raise GradcliError("usage", f"shapes: {name} = {dims!r} is not a shape (a string such as 'm,n' or '3x2', or "
                                    "a tuple of at most 2 positive sizes and dimension names)")
    return tuple(int(d) if isinstance(d, Integral) else d for d in entries)


def _as_value(name: str, value: Any):
    """An array given for a symbol, checked as `-d` data is: numbers (float, int or bool; complex
    would lose its imaginary part), a scalar, vector or matrix, finite."""
    import numpy as np

    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise GradcliError("data", f"{name}: dtype {arr.dtype.name} is not numeric (need float, int or bool)")
    if arr.ndim > 2:
        raise GradcliError("data", f"{name}: {arr.ndim}-d arrays are not supported (scalars, vectors and "
                                   "matrices only)")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise GradcliError("data", f"{name} contains NaN or Inf")
    return arr


def _check_options(formula: str, **options) -> None:
    """An option given something else than its type is most likely an array for a symbol that
    shares its name (`sizes`, `seed`, `wrt`…): say so, and how to pass it (the mapping)."""
    for name, (value, types) in options.items():
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise GradcliError("usage", f"{name}= is an option of gradcli.grad/hess/shape/check, not "
                                        f"{type(value).__name__}; an array for a symbol named {name} goes in "
                                        f"the mapping after the formula: grad({formula!r}, {{{name!r}: array}})")


class Results(Mapping):
    """The derivatives of one formula, keyed by wrt name (a Hessian block by "x" or "x,y"),
    with f's own formula, shape and value."""

    def __init__(self, problem, arrays: dict, fns: dict, hessian: bool, seed: int, formulas: bool = True):
        self.problem, self.arrays, self.fns, self.hessian, self.seed = problem, arrays, fns, hessian, seed
        self._formulas = formulas  # False for `shape`: shapes only
        derivs = (problem.hessians() if hessian else problem.derivatives()) if formulas \
            else problem.derivative_shapes()
        self._items = {d.wrt: Result(self, d) for d in derivs}
        self._values: tuple | None = None

    # the mapping
    def __getitem__(self, wrt: str) -> "Result":
        try:
            return self._items[wrt]
        except KeyError:
            raise KeyError(f"{wrt!r}: the derivatives are {', '.join(map(repr, self._items))}") from None

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # f
    @property
    def formula(self) -> str:
        return self.problem.text("unicode")

    @property
    def latex(self) -> str:
        return f"f = {self.problem.text('latex')}"

    @property
    def shape(self) -> tuple:
        return self.problem.shape

    @property
    def symbols(self) -> dict:
        """{name: shape} of every symbol."""
        return {n: s.shape for n, s in self.problem.symbols.items()}

    @property
    def value(self):
        """f at the given arrays (None unless every symbol has one)."""
        found = self._evaluate()
        return None if found is None else found[0]

    @property
    def derivatives(self) -> list:
        return [r.derivative for r in self._items.values()]

    def _evaluate(self):
        """(f, {wrt: value}) at the given arrays, computed once; None while a symbol has none."""
        if self._values is None:
            if not self._formulas or any(n not in self.arrays for n in self.problem.symbols):
                return None
            f, base = self.problem.compile(self.fns, hessian=self.hessian).evaluate(self.arrays)
            self._values = (f, {d.wrt: d.to_layout(base[d.wrt]) for d in self.derivatives})
        return self._values

    def check(self, tol: float = 1e-5) -> "Checks":
        """Each derivative against central finite differences, at the given arrays and, for the
        symbols without one, values drawn as `gradcli grad --random` draws them."""
        from .api import check_verdict
        from .data import random_values

        missing = {n: s.shape for n, s in self.problem.symbols.items() if n not in self.arrays}
        unsized = sorted({str(d) for dims in missing.values() for d in dims if not isinstance(d, int)})
        if unsized:
            raise GradcliError("data", f"check() needs a size for every dimension: {', '.join(unsized)} "
                                       f"{'has' if len(unsized) == 1 else 'have'} none (pass arrays, or "
                                       f"sizes={{{', '.join(repr(u) + ': 3' for u in unsized)}}})")
        values = {**self.arrays, **random_values(missing, self.seed)}
        compiled = self.problem.compile(self.fns, hessian=self.hessian)
        _, base = compiled.evaluate(values)
        errors = compiled.check(values, base, self.fns)
        return Checks({k: Check(k, **check_verdict(e, tol), tol=tol) for k, e in errors.items()})

    @property
    def steps(self) -> "Steps":
        """The derivation of every derivative, step by step, with the shape of each piece."""
        from .api import derivation

        return Steps(*derivation(self.problem, self.derivatives, self.hessian))

    def emit(self, target: str = "numpy") -> str:
        """Source for all the derivatives: "numpy" (a module), "latex" (a standalone document)."""
        from .api import emit_code

        return emit_code(target, self.problem, self.derivatives, self.fns, self.hessian)

    def to_json(self) -> dict:
        """The `gradcli grad --json` document of these results (README: JSON output)."""
        from .cli import _document

        found = self._evaluate()
        f, values = found if found is not None else (None, {})
        return _document(self.problem, self.derivatives, f, values, {}, formulas=self._formulas)

    def __repr__(self) -> str:
        from .display import results_text

        return results_text(self)

    def _repr_latex_(self) -> str:
        from .display import results_latex

        return results_latex(self)

    def _repr_markdown_(self) -> str:
        from .display import results_markdown

        return results_markdown(self)

    def _repr_html_(self) -> str:
        from .display import results_html

        return results_html(self)


class Result:
    """One derivative: `.formula` (Unicode), `.ascii` (gradcli's language, re-parseable),
    `.latex` (a whole equation), `.shape`, `.kind`, `.layout`, `.value`, `.check()`, `.steps`,
    `.emit()`."""

    def __init__(self, results: Results, derivative):
        self.results, self.derivative = results, derivative

    @property
    def wrt(self) -> str:
        return self.derivative.wrt

    @property
    def kind(self) -> str:
        return self.derivative.kind

    @property
    def layout(self) -> str:
        return self.derivative.layout

    @property
    def shape(self) -> tuple:
        return self.derivative.shape

    @property
    def formula(self) -> str | None:
        """The formula in matrix notation (index notation for a tensor); None for shapes only."""
        return self.derivative.formula("unicode") if self.results._formulas else None

    @property
    def ascii(self) -> str | None:
        return self.derivative.formula("ascii") if self.results._formulas else None

    @property
    def latex(self) -> str | None:
        """A whole equation: `\\frac{\\partial f}{\\partial X} = …`."""
        if not self.results._formulas:
            return None
        from .latexdoc import derivative_label

        text = self.derivative.text("latex")
        return f"{derivative_label(self.derivative)} = {text}" if text else self.derivative.formula("latex")

    @property
    def value(self):
        found = self.results._evaluate()
        return None if found is None else found[1][self.wrt]

    def check(self, tol: float = 1e-5) -> "Check":
        return self.results.check(tol)[self.wrt]

    @property
    def steps(self) -> "Steps":
        from .api import derivation

        hessian = self.results.hessian
        return Steps(*derivation(self.results.problem, [self.derivative], hessian))

    def emit(self, target: str = "numpy") -> str:
        from .api import emit_code

        r = self.results
        return emit_code(target, r.problem, [self.derivative], r.fns, r.hessian)

    def __repr__(self) -> str:
        from .display import result_text

        return result_text(self)

    def _repr_latex_(self) -> str:
        from .display import result_latex

        return result_latex(self)

    def _repr_markdown_(self) -> str:
        from .display import result_markdown

        return result_markdown(self)

    def _repr_html_(self) -> str:
        from .display import result_html

        return result_html(self)


class Check:
    """One derivative's finite-difference verdict (`ok`, `max_rel_error`, `tol`)."""

    def __init__(self, wrt: str, max_rel_error: float | None, ok: bool, tol: float):
        self.wrt, self.max_rel_error, self.ok, self.tol = wrt, max_rel_error, ok, tol

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        err = "nothing to compare" if self.max_rel_error is None else f"max relative error {self.max_rel_error:.2e}"
        return f"check ∂f/∂{self.wrt}: {err} vs finite differences ({'ok' if self.ok else 'FAILED'})"


class Checks(dict):
    """{wrt: Check}; true when every derivative passed."""

    def __bool__(self) -> bool:
        return all(self.values())

    @property
    def ok(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return "\n".join(repr(c) for c in self.values())


class Steps:
    """A derivation: `.lines` as the terminal shows them (`str()`), `.records` as in JSON."""

    def __init__(self, lines: list[str], records: list[dict]):
        self.lines, self.records = lines, records

    def __str__(self) -> str:
        return "\n".join(self.lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"
