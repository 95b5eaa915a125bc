"""What a run of gradcli gives back: `Results` keyed by wrt name, each a `Result`.

    >>> import numpy as np, gradcli
    >>> r = gradcli.grad("||y - X@theta||^2 wrt theta", X=np.eye(3), y=np.ones(3), theta=np.zeros(3))
    >>> r["theta"].formula, r["theta"].shape, r["theta"].value.tolist()
    ('−2Xᵀ(y − Xθ)', (3,), [-2.0, -2.0, -2.0])

Why: derivatives come back keyed by the wrt names, each knowing its formula (Unicode, ASCII,
LaTeX), shape, value, derivation (`.steps`) and code (`.emit()`), and showing itself rendered
(LaTeX, a table of symbols and shapes) in Jupyter.  The run that made them (gradcli.run) is the
same for Python and the command line: the CLI prints these objects, and `--json` is
`to_json()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import GradcliError
from .spelling import PYTHON
from .values import Inputs, gather, translated

if TYPE_CHECKING:
    from .api import Derivative, Problem
    from .checks.claims import Verdict
    from .directions import Extended


class Results(Mapping[str, "Result"]):
    """The derivatives of one formula, keyed by wrt name (a Hessian block by "x" or "x,y"),
    with f's own formula, shape and value; after `check=True` its `.checks`, after `claims=`
    its `.claims`."""

    def __init__(self, problem: Problem, inputs: Inputs, fns: Mapping[str, str], hessian: bool,
                 formulas: bool = True, order: int | None = None, direction: Mapping[str, str] | None = None):
        self.problem, self.inputs, self.fns, self.hessian = problem, inputs, dict(fns), hessian
        self._formulas = formulas  # False for `shape`: shapes only
        self.order = order if order is not None else 2 if hessian else 1
        self.direction = dict(direction or {})  # wrt symbol → direction symbol (directional derivatives)
        # directions, orders past 2 and the Hessian of a vector f: built and evaluated by directions.py
        self._extended: Extended | None = None
        if formulas and (self.direction or self.order > 2 or (self.order == 2 and not problem.target.ty.is_scalar)):
            from .directions import Extended

            self._extended = Extended(problem, self.order, self.direction, self.fns, inputs.allow_nonfinite)
        derivs = self._extended.derivs if self._extended is not None else \
            (problem.hessians() if hessian else problem.derivatives()) if formulas else problem.derivative_shapes()
        self._items = {d.wrt: Result(self, d) for d in derivs}
        self._values: tuple[Any, dict[str, Any]] | None = None
        self.checks: Checks | None = None  # check=True: each derivative against finite differences
        self.claims: list[Verdict] = []  # claims=: the verdict on each claimed derivative
        self.evaluation: str | None = None  # how the data was cut into row blocks, when that was asked

    # the mapping
    def __getitem__(self, wrt: str) -> Result:
        try:
            return self._items[wrt]
        except KeyError:
            raise KeyError(f"{wrt!r}: the derivatives are {', '.join(map(repr, self._items))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # what the run was given
    @property
    def arrays(self) -> Mapping[str, Any]:
        return self.inputs.arrays

    @property
    def seed(self) -> int:
        return self.inputs.seed

    # f
    @property
    def formula(self) -> str:
        return self.problem.text("unicode")

    @property
    def latex(self) -> str:
        return f"f = {self.problem.text('latex')}"

    @property
    def shape(self) -> tuple[Any, ...]:
        return tuple(self.problem.shape)

    @property
    def symbols(self) -> dict[str, tuple[Any, ...]]:
        """{name: shape} of every symbol."""
        return {n: s.shape for n, s in self.problem.symbols.items()}

    @property
    def value(self) -> Any:
        """f at the given arrays (None unless every symbol has one)."""
        found = self.found()
        return None if found is None else found[0]

    @property
    def derivatives(self) -> list[Derivative]:
        return [r.derivative for r in self._items.values()]

    def computed(self, f_value: Any, values: dict[str, Any], evaluation: str | None) -> None:
        """The run evaluated f and the derivatives (values in their layouts)."""
        self._values, self.evaluation = (f_value, values), evaluation

    def compiled(self) -> Any:
        """What evaluates f and these derivatives (`Compiled`, `Deferred` or directions.Extended)."""
        if self._extended is not None:
            return self._extended
        return self.problem.compile(self.fns, hessian=self.hessian, allow_nonfinite=self.inputs.allow_nonfinite)

    def direction_values(self, values: Mapping[str, Any], spelling: Any = PYTHON,
                         random: bool | None = None) -> dict[str, Any]:
        """The arrays of the direction symbols (given, data, or drawn), for f's arrays `values`."""
        if not self.direction:
            return {}
        from .directions import direction_values

        inputs = self.inputs
        with translated(spelling):
            return direction_values(self.direction, values, inputs, inputs.random if random is None else random,
                                    self.problem.typed.structures)

    def found(self) -> tuple[Any, dict[str, Any]] | None:
        """(f, {wrt: value}) at the given arrays, computed once; None while a symbol has none."""
        if self._values is None:
            if not self._formulas or any(n not in self.arrays for n in [*self.problem.symbols, *self.direction.values()]):
                return None
            arrays = dict(self.arrays)
            arrays.update(self.direction_values(arrays, random=False))  # the directions' shapes checked
            with translated(PYTHON):  # only Python asks lazily
                f, base = self.compiled().evaluate(arrays)
            self._values = (f, {d.wrt: d.to_layout(base[d.wrt]) for d in self.derivatives})
        return self._values

    _evaluate = found

    def check(self, tol: float = 1e-5) -> Checks:
        """Each derivative against central finite differences, at the given arrays and data
        and, for the symbols without one, values drawn as `random=True` draws them."""
        from .api import check_verdict

        given = set(self.arrays) | set(self.inputs.sources)
        missing = {n: s.shape for n, s in self.problem.symbols.items() if n not in given}
        unsized = sorted({str(d) for dims in missing.values() for d in dims if not isinstance(d, int)})
        if unsized:
            raise GradcliError("data", f"check() needs a size for every dimension: {', '.join(unsized)} "
                                       f"{'has' if len(unsized) == 1 else 'have'} none (pass arrays, or "
                                       f"sizes={{{', '.join(repr(u) + ': 3' for u in unsized)}}})")
        allow = self.inputs.allow_nonfinite
        with translated(PYTHON):
            compiled = self.compiled()
            values = gather(self.problem, self.derivatives, Inputs(self.inputs.arrays, self.inputs.sources, True, self.inputs.seed, allow, self.inputs.shapes), PYTHON,
                            getattr(compiled, "program", None))
            values.update(self.direction_values(values, random=True))
            _, base = compiled.evaluate(values)
            errors = compiled.check(values, base, self.fns)
        return Checks.of({k: check_verdict(e, tol, allow) for k, e in errors.items()}, tol)

    @property
    def steps(self) -> Steps:
        """The derivation of every derivative, step by step, with the shape of each piece."""
        return self.derivation()

    def derivation(self, style: str = "unicode") -> Steps:
        """The derivation with its formulas in `style` (unicode, ascii or latex)."""
        self.not_extended("the derivation (steps)")
        return Steps(*_derivation(self, self.derivatives, style))

    def not_extended(self, what: str) -> None:
        """What every derivative has but a tensor of order ≥ 3 (`--order k`, the Hessian of a
        vector or matrix f): a formula the code, the derivation or a claim can be made of.  Its
        index form is evaluated by einsum over the tensor's own index walk (calculus/higher.py),
        not a formula of the language, so there is no claim to compare it with, no chain of
        rules to show and no module to write from it: a usage error says so."""
        if any(d.tensor is not None for d in self.derivatives):
            asked = f"--order {self.order}" if self.order > 2 else "the Hessian of a vector or matrix f"
            raise GradcliError("usage", f"{what}: not available for {asked}, a tensor in index notation (its "
                                        "values and --check are; --emit, --steps and --claim need a formula: "
                                        "gradients, Jacobians, Hessians, --direction)")

    def emit(self, target: str = "numpy") -> str:
        """Source for all the derivatives: "numpy" (a module), "array-api" (the module for any
        array API library), "latex" (a standalone document)."""
        from .api import emit_code

        self.not_extended(f"emit {target}")
        return emit_code(target, self.problem, self.derivatives, self.fns, self.hessian)

    def to_json(self, steps: bool = False) -> dict[str, Any]:
        """The `gradcli grad --json` document of these results (README: JSON output); with
        `steps`, the derivation's records (`--steps --json`)."""
        from .document import document

        found = self.found()
        f, values = found if found is not None else (None, {})
        checks = {k: c.to_json() for k, c in (self.checks if self.checks is not None else {}).items()}
        doc = document(self.problem, self.derivatives, f, values, checks, formulas=self._formulas)
        if self.evaluation:
            doc["notes"].append({"kind": "evaluation", "message": self.evaluation, "symbol": None, "column": None})
        if steps:
            doc["steps"] = self.derivation().records
        for v in self.claims:
            next(x for x in doc["derivatives"] if x["wrt"] == v.wrt)["claim"] = v.to_json()
        return doc

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

    def __init__(self, results: Results, derivative: Derivative):
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
    def shape(self) -> tuple[Any, ...]:
        return tuple(self.derivative.shape)

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
    def value(self) -> Any:
        found = self.results.found()
        return None if found is None else found[1][self.wrt]

    def check(self, tol: float = 1e-5) -> Check:
        return self.results.check(tol)[self.wrt]

    @property
    def steps(self) -> Steps:
        return self.derivation()

    def derivation(self, style: str = "unicode") -> Steps:
        r = self.results
        r.not_extended("the derivation (steps)")
        return Steps(*_derivation(r, [self.derivative], style))

    def emit(self, target: str = "numpy") -> str:
        from .api import emit_code

        r = self.results
        r.not_extended(f"emit {target}")
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


def _derivation(results: Results, derivs: list[Derivative], style: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The derivation of these derivatives: along directions (directions.py), else api's."""
    if results.direction:
        from .directions import derivation as along

        return along(results.problem, derivs, style)
    from .api import derivation

    return derivation(results.problem, derivs, results.hessian, style)


class Check:
    """One derivative's finite-difference verdict (`ok`, `max_rel_error`, `tol`)."""

    def __init__(self, wrt: str, max_rel_error: float | None, ok: bool, tol: float):
        self.wrt, self.max_rel_error, self.ok, self.tol = wrt, max_rel_error, ok, tol

    def __bool__(self) -> bool:
        return self.ok

    def to_json(self) -> dict[str, Any]:
        """The `check` object of a derivative in the JSON document."""
        return {"max_rel_error": self.max_rel_error, "ok": self.ok}

    def __repr__(self) -> str:
        err = "nothing to compare" if self.max_rel_error is None else f"max relative error {self.max_rel_error:.2e}"
        return f"check ∂f/∂{self.wrt}: {err} vs finite differences ({'ok' if self.ok else 'FAILED'})"


class Checks(dict[str, Check]):
    """{wrt: Check}; true when every derivative passed."""

    @classmethod
    def of(cls, verdicts: Mapping[str, dict[str, Any]], tol: float) -> Checks:
        """From {wrt: {"max_rel_error", "ok"}} (api.check_verdict) at tolerance `tol`."""
        return cls({k: Check(k, v["max_rel_error"], v["ok"], tol) for k, v in verdicts.items()})

    def __bool__(self) -> bool:
        return all(self.values())

    @property
    def ok(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return "\n".join(repr(c) for c in self.values())


class Steps:
    """A derivation: `.lines` as the terminal shows them (`str()`), `.records` as in JSON."""

    def __init__(self, lines: list[str], records: list[dict[str, Any]]):
        self.lines, self.records = lines, records

    def __str__(self) -> str:
        return "\n".join(self.lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"
