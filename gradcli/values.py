"""The numbers of a run: data headers, seeded draws, the memory check, evaluation on a backend,
finite differences, and the -o / `save=` folder.

Why a module of its own: these are the application's steps between a shape-checked problem and
its values, shared by `gradcli.grad(...)` and `gradcli grad`; none of them prints anything
(progress is reported to the caller's `Progress`, messages use the caller's `Spelling`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from .errors import GradcliError
from .record import Factory, record
from .spelling import Spelling

if TYPE_CHECKING:
    from .api import Compiled, Deferred, Derivative, Problem

RowsDone = Callable[[int, int], None]  # (rows done, total) while data is evaluated in row blocks
StepDone = Callable[[], None]  # one finite-difference step done


class Progress(Protocol):
    """Where a long run reports how far it is (the CLI draws bars on a terminal)."""

    def rows(self) -> AbstractContextManager[RowsDone | None]: ...

    def steps(self, total: int, work: float) -> AbstractContextManager[StepDone | None]: ...


class Quiet:
    """No progress reported (Python callers, --json)."""

    def rows(self) -> AbstractContextManager[RowsDone | None]:
        return nullcontext(None)

    def steps(self, total: int, work: float) -> AbstractContextManager[StepDone | None]:
        return nullcontext(None)


@record
class Backend:
    """Where the numbers are computed: numpy here, or dask (on a cluster with a scheduler)."""

    name: str = "numpy"
    scheduler: str | None = None
    chunk_rows: int | None = None

    def check(self, spelling: Spelling) -> None:
        if (self.name, self.scheduler, self.chunk_rows) == ("numpy", None, None):
            return
        from .numeric.backends import check_backend

        with translated(spelling):
            check_backend(self.name, self.scheduler, self.chunk_rows)


@contextlib.contextmanager
def translated(spelling: Spelling) -> Iterator[None]:
    """Errors of the stages below (which name flags) in the caller's words."""
    try:
        yield
    except GradcliError as err:
        raise spelling.translate(err) from None


def open_data(specs: Sequence[str], formula: str, spelling: Spelling, more: Collection[str] = ()) -> dict[str, Any]:
    """The data options' headers only, {name: data.Source}: shapes before anything is
    allocated.  Of an .npz bound as a whole, only the members the formula names are looked at
    (and `more`: the symbols of directions)."""
    if not specs:
        return {}
    from .numeric.data import open_sources

    wanted = symbol_names(formula) | set(more) if any("=" not in s for s in specs) else None
    with translated(spelling):
        return dict(open_sources(list(specs), wanted))


def symbol_names(text: str) -> set[str]:
    """Every name the formula uses as a symbol (wrt names included)."""
    from .language.parse import parse
    from .language.syntax import Sym

    formula = parse(text)
    names = {name for name, _ in formula.wrt}
    stack: list[Any] = [formula.expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Sym):
            names.add(node.name)
        for child in (getattr(node, "left", None), getattr(node, "right", None), getattr(node, "operand", None),
                      *getattr(node, "args", ())):
            if child is not None:
                stack.append(child)
    return names


def entries(dims: Sequence[object]) -> int:
    n = 1
    for d in dims:
        n *= int(d)  # type: ignore[call-overload]
    return n


@record
class Inputs:
    """Where a run's arrays come from: given arrays, data files, seeded draws for the rest."""

    arrays: Mapping[str, Any]
    sources: Mapping[str, Any]
    random: bool
    seed: int
    allow_nonfinite: bool
    shapes: Mapping[str, tuple[Any, ...]] = Factory(default_factory=dict)  # declared (-s, shapes=)


def gather(problem: Problem, derivs: Sequence[Derivative], inputs: Inputs, spelling: Spelling,
           program: Any = None) -> dict[str, Any]:
    """The arrays of a run: the given ones, the data the formula uses and (random) seeded
    arrays for the rest, allocated only after checking that they, f, every derivative and the
    evaluation's largest set of live intermediates (`peak_entries` of the compiled program) fit
    in memory."""
    from .api import derivative_symbol
    from .numeric.data import ensure_memory, load_values, random_shapes, random_values
    from .numeric.evaluate import peak_entries
    from .numeric.structured import check_structure

    used = {n: inputs.sources[n] for n in problem.symbols if n in inputs.sources and n not in inputs.arrays}
    missing = ({n: s.shape for n, s in problem.symbols.items() if n not in used and n not in inputs.arrays}
               if inputs.random else {})
    with translated(spelling):
        random_shapes(missing)
    streamed = any(s.streams for s in used.values())  # read in row blocks: not in memory whole
    parts = [(f"{n} ({s.origin})", int(s.entries)) for n, s in used.items() if not s.streams]
    parts += [(f"{n} ({spelling.random})", entries(dims)) for n, dims in missing.items()]
    parts += [(label, entries(dims)) for label, dims in
              [("f", problem.shape)] + [(derivative_symbol(d, "unicode"), d.shape) for d in derivs]
              if all(isinstance(x, int) for x in dims)]
    peak = peak_entries(program) if program is not None else None
    if peak is not None and not streamed:  # beyond the roots it ends with (f and the derivatives, counted above)
        roots = sum(entries(r.ty.dims) for r in program.roots)
        parts.append(("intermediates", max(peak - roots, 0)))
    ensure_memory(parts, estimate=peak is not None)
    values = dict(load_values(used, inputs.allow_nonfinite))
    values.update(inputs.arrays)
    for name, structure in problem.typed.structures.items():  # data that contradicts a declaration
        if name in values:
            with translated(spelling):
                check_structure(name, values[name], structure)
    values.update(random_values(missing, inputs.seed, problem.expr))
    return {n: values[n] for n in problem.symbols if n in values}


def drawn(err: GradcliError, seed: int, spelling: Spelling) -> GradcliError:
    """A math error on values the random draws gave: the draws respect the domains gradcli can
    see (log, sqrt, logdet of a symbol), not every one a formula makes (log(x - 1)), so the
    message says where the values came from and what to do instead."""
    err.message += (f"; the values were drawn by {spelling.random} (seed {seed}), which cannot meet every "
                    f"domain: give {spelling.data_with}, or try another {spelling.seed}")
    err.args = (err.message,)
    return err


def evaluate_on(backend: Backend, compiled: Compiled | Deferred, values: dict[str, Any],
                progress: RowsDone | None = None) -> tuple[Any, dict[str, Any]]:
    """f and the derivatives in their base layout, on the chosen backend (README: Data of any
    size): numpy here, or one dask graph computed once (on a cluster with a scheduler)."""
    if backend.name == "numpy":
        f, derivatives = compiled.evaluate(values, progress=progress)
        return f, dict(derivatives)
    from dask.array import PerformanceWarning

    from .numeric.backends import DaskBackend, connect, to_dask

    client = connect(backend.scheduler) if backend.scheduler else None
    try:
        with warnings.catch_warnings():  # dask's advice on chunk counts: chunk_rows is the user's choice
            warnings.simplefilter("ignore", PerformanceWarning)
            f, derivatives = compiled.evaluate(to_dask(values, backend.chunk_rows), DaskBackend(client))
            return f, dict(derivatives)
    finally:
        if client is not None:
            client.close(timeout=5)


def finite_differences(compiled: Compiled | Deferred, derivs: Sequence[Derivative], values: dict[str, Any],
                       base: dict[str, Any], fns: Mapping[str, str], progress: Progress) -> dict[str, float]:
    """{wrt: max relative error} of each derivative against central finite differences, with
    the number of steps (and the work: each step evaluates f twice) told to `progress`."""
    n_steps = sum(min(values[str(d.x.params[0])].size, 64) for d in derivs if d.x is not None)
    data_size = sum(v.size for v in values.values())
    with progress.steps(n_steps, n_steps * data_size) as step:
        return dict(compiled.check(values, base, dict(fns), on_step=step))


def save(folder: str, f_value: Any, d_values: dict[str, Any], hessian: bool,
         drawn_arrays: dict[str, Any] | None, spelling: Spelling) -> None:
    """f, the derivatives and (random) the arrays drawn, written into `folder` (outputs.py)."""
    from .outputs import run_files, write_outputs

    with translated(spelling):
        write_outputs(folder, run_files(f_value, d_values, hessian, drawn_arrays))
