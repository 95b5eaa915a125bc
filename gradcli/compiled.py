"""A problem compiled to numbers: `Compiled` (sizes known) and `Deferred` (named dimensions,
compiled for the arrays' shapes when called), and the evaluation of derivatives that have no
matrix formula (index notation by einsum, else one vector-Jacobian product per entry of f).

Why a module of its own: this is the numeric half of a `Problem` (gradcli.api), which knows
nothing of arrays; `Problem.compile` makes these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .derivative import Derivative
from .calculus.differentiate import SEED, gradients, seed_for
from .errors import GradcliError
from .numeric.evaluate import Program, compile_graph
from .numeric.fdcheck import structured_check
from .numeric.structured import project
from .language.structures import structure_of
from .calculus.indexform import evaluate_terms, index_terms
from .record import record
from .language.shapes import Dim, Ty

Fns = dict[str, str] | None  # abstract functions bound to element-wise builtins

if TYPE_CHECKING:
    from .language.expr import Array
    from .calculus.indexform import Indices, Term
    from .api import Problem


class IndexProgram:
    """A tensor derivative evaluated from its index form (see `evaluate`)."""

    def __init__(self, terms: list[Term], f_idx: Indices, x_idx: Indices, fns: dict[str, str] | None):
        self.terms, self.f_idx, self.x_idx = terms, f_idx, x_idx
        self.keys = list(dict.fromkeys(f[3] for t in terms for f in t.factors if f[0] == "t"))
        self.program = compile_graph(self.keys, fns)

    def evaluate(self, shape: tuple[int, ...], values: dict[str, Array]) -> Array:
        computed = dict(zip(self.keys, self.program.run(values)))
        return evaluate_terms(self.terms, self.f_idx, self.x_idx, shape, computed)


def vjp_program(d: Derivative, fns: Fns) -> Program | IndexProgram:
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
    fallback: dict[str, Program | IndexProgram]

    def __repr__(self) -> str:
        return f"Compiled({' '.join(self.problem.typed.formula.text.split())}; {', '.join(d.wrt for d in self.derivs)})"

    def __call__(self, xp: Any = None, **arrays: Any) -> tuple[Any, dict[str, Any]]:
        """(f, {wrt: derivative in its layout})."""
        f, base = self.evaluate(arrays, xp)
        return f, {d.wrt: d.to_layout(base[d.wrt]) for d in self.derivs}

    def evaluate(self, arrays: dict[str, Any], xp: Any = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[Any, dict[str, Any]]:
        """(f, {wrt: derivative in its base layout: shape(f) + shape(x)}); progress(rows done,
        total) is called after each block when the data is evaluated in row blocks."""
        from .numeric.blocked import evaluate as evaluate_blocked  # in row blocks when that pays (blocked.py)

        wrt = {name for d in self.derivs for name in d.wrt.split(",")}
        values = evaluate_blocked(self.program, arrays, wrt, xp, progress=progress)
        f = _as_row(self.problem.target.ty, values[0])
        rest = iter(values[1:])
        out: dict[str, Any] = {}
        if self.fallback and xp is not None:  # tensors without a matrix formula: by numpy
            import numpy as np

            arrays, xp = {n: np.asarray(a, dtype=float) for n, a in arrays.items()}, None
        for d in self.derivs:
            if d.expr is not None:
                out[d.wrt] = _as_array(next(rest), d.base_dims())
            else:
                fallback = self.fallback[d.wrt]
                out[d.wrt] = (fallback.evaluate(_sizes(d.base_dims()), arrays) if isinstance(fallback, IndexProgram)
                              else _by_vjp(fallback, d, arrays, xp))
            for at, convention in d.projected:  # wrt a structured S: projected on S's axes
                out[d.wrt] = project(out[d.wrt], convention, (at, at + 1))
        return f, out

    def evaluation_note(self) -> str | None:
        """How the last evaluation was cut into row blocks, or why not (None when the data was
        too small to ask: see blocked.py)."""
        plan = self.program.__dict__.get("_block_plan")
        return None if plan is None else str(plan.note())

    def check(self, arrays: dict[str, Any], base: dict[str, Any], fns: Fns = None,
              on_step: Callable[[], None] | None = None) -> dict[str, float]:
        """{wrt: max relative error} of each derivative against central finite differences of
        the expression it differentiates (f, or the gradient for a Hessian)."""
        from .numeric.fdcheck import check_derivative

        out: dict[str, float] = {}
        for d in self.derivs:
            program = compile_graph([d.of], fns)
            program.allow_nonfinite = self.program.allow_nonfinite  # as f itself was evaluated
            x_name = d.x.params[0]
            if d.convention:  # along directions of the declared structure
                out[d.wrt] = structured_check(lambda vals: program.run(vals)[0], arrays, x_name, base[d.wrt],
                                              structure_of(d.x.params), d.convention, on_step)
                continue
            out[d.wrt] = check_derivative(lambda vals: program.run(vals)[0], arrays, x_name,
                                          base[d.wrt], on_step=on_step)
        return out


class Deferred:
    """The compilation of a problem with named dimensions: called with arrays, it binds their
    shapes (`Problem.bind`) and compiles that, once per set of shapes."""

    def __init__(self, problem: Problem, fns: Fns, hessian: bool, allow_nonfinite: bool):
        self.problem, self.fns, self.hessian, self.allow_nonfinite = problem, fns, hessian, allow_nonfinite
        self._compiled: dict[tuple[tuple[str, Any], ...], Compiled] = {}

    def __repr__(self) -> str:
        return f"Compiled({' '.join(self.problem.typed.formula.text.split())}; sizes bound when called)"

    def bound(self, arrays: dict[str, Any]) -> Compiled:
        """The compilation for these arrays' shapes (numpy arrays by name)."""
        missing = [n for n in self.problem.symbols if n not in arrays]
        if missing:
            raise GradcliError("usage", f"missing array(s) for {', '.join(missing)}: the formula's symbols are "
                                        f"{', '.join(self.problem.symbols)}")
        key = tuple((n, a.shape) for n, a in sorted(arrays.items()))
        if key not in self._compiled:
            compiled = self.problem.bind(arrays).compile(self.fns, self.hessian, self.allow_nonfinite)
            assert isinstance(compiled, Compiled)  # bound to the arrays' shapes: no named dimension is left
            self._compiled[key] = compiled
        return self._compiled[key]

    def __call__(self, xp: Any = None, **arrays: Any) -> tuple[Any, dict[str, Any]]:
        arrays = _float_arrays(arrays)
        return self.bound(arrays)(xp, **arrays)

    def evaluate(self, arrays: dict[str, Any], xp: Any = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[Any, dict[str, Any]]:
        arrays = _float_arrays(arrays)
        return self.bound(arrays).evaluate(arrays, xp, progress)

    def check(self, arrays: dict[str, Any], base: dict[str, Any], fns: Fns = None,
              on_step: Callable[[], None] | None = None) -> dict[str, float]:
        arrays = _float_arrays(arrays)
        return self.bound(arrays).check(arrays, base, fns, on_step)


def _float_arrays(arrays: dict[str, Any]) -> dict[str, Any]:
    """Lists and numbers as float arrays (the evaluator's input), arrays as they are."""
    import numpy as np

    return {n: a if isinstance(a, np.ndarray) or hasattr(a, "__array_namespace__") or hasattr(a, "dask")
            else np.asarray(a, dtype=float) for n, a in arrays.items()}  # another library's arrays stay


def _by_vjp(program: Program, d: Derivative, arrays: dict[str, Any], xp: Any) -> Any:
    """J[i, ...] = (Jᵀ eᵢ)[...]: one vector-Jacobian product per entry of f."""
    import numpy as np

    f_dims = _sizes(d.f_ty.dims)
    size = int(np.prod(f_dims)) if f_dims else 1
    rows = []
    for k in range(size):
        seed = np.zeros(size)
        seed[k] = 1.0
        (g,) = program.run({**arrays, SEED: seed.reshape(f_dims)}, xp)
        rows.append(np.broadcast_to(np.asarray(g, dtype=float), _sizes(d.x_ty.dims)))
    return np.array(rows).reshape(_sizes(d.f_ty.full_dims + d.x_ty.dims))


def _sizes(dims: tuple[Dim, ...]) -> tuple[int, ...]:
    """The sizes of a compiled problem's dimensions (all numbers once sizes are bound)."""
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def _as_array(value: Any, dims: tuple[Dim, ...]) -> Any:
    import numpy as np

    sizes = _sizes(dims)
    value = np.asarray(value, dtype=float)
    if value.shape != sizes:
        value = np.broadcast_to(value, sizes).copy() if value.size != int(np.prod(sizes) if sizes else 1) \
            else value.reshape(sizes)
    return value


def _as_row(ty: Ty, value: Any) -> Any:
    import numpy as np

    value = np.asarray(value, dtype=float)
    return value.reshape(1, -1) if ty.row else value
