"""The application: `gradcli.grad`, `hess`, `shape`, `check` and `check_files`, one call each with
keyword arguments, for everything the command line can do.

    >>> import numpy as np, gradcli
    >>> r = gradcli.grad("||y - X@theta||^2 wrt theta", X=np.eye(3), y=np.ones(3), theta=np.zeros(3))
    >>> r["theta"].formula, r["theta"].shape, r["theta"].value.tolist()
    ('−2Xᵀ(y − Xθ)', (3,), [-2.0, -2.0, -2.0])

Why: in a notebook one has arrays, not files and flags; the command line has files and flags.
Both run `run(formula, RunOptions)` below (the CLI only parses its arguments into the keywords
and prints the `Results`), so a Python user gets everything a command does: random draws
(`random=True, seed=`), data files (`data=`), finite differences (`check=True, tol=`), the
folder of arrays (`save=`), claims, the derivation (`.steps`), code (`.emit()`) and the JSON
document (`.to_json()`).  Messages name the keywords; the CLI passes its own `Spelling`.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import GradcliError, printable
from .record import Factory, record
from .results import Checks, Results
from .language.shapes import Dim
from .language.structures import split_structure
from .numeric.structured import check_structure
from .spelling import PYTHON, Spelling
from .values import Backend, Inputs, Progress, Quiet, drawn, evaluate_on, finite_differences, gather, \
    open_data, save, translated

if TYPE_CHECKING:
    from .api import Problem
    from .checks.checkfiles import Outcome

Dims = tuple[Dim, ...]


@record
class RunOptions:
    """Everything one run is asked to do (what `grad`'s keywords and the CLI's options say)."""

    order: int = 1  # 1: gradients and Jacobians; 2: the Hessian blocks; k ≥ 3: the k-th derivative tensor
    direction: Mapping[str, str] = Factory(default_factory=dict)  # wrt symbol → the symbol of its direction
    formulas: bool = True  # False: shapes only (gradcli.shape)
    wrt: tuple[str, ...] = ()
    shapes: Mapping[str, Dims] = Factory(default_factory=dict)  # declared shapes
    sizes: Mapping[str, int] | None = None  # named dimensions no array fixes
    structures: Mapping[str, str] = Factory(default_factory=dict)  # S → symmetric | spd | diagonal
    symmetric_gradient: str = "sym"  # gradient wrt a symmetric S: sym (G + Gᵀ)/2 | vech (G + Gᵀ − G⊙I)
    layout: str | None = None
    fns: Mapping[str, str] = Factory(default_factory=dict)  # abstract function → element-wise builtin
    arrays: Mapping[str, Any] = Factory(default_factory=dict)  # float arrays by symbol name
    data: tuple[str, ...] = ()  # NAME=FILE.npy, FILE.npz, NAME=NUMBER, NAME=folder/ (as -d)
    evaluate: bool = True  # False: data gives shapes only (code is emitted, nothing computed)
    random: bool = False
    seed: int = 0
    allow_nonfinite: bool = False
    check: bool = False
    tol: float = 1e-5
    save: str | None = None  # a folder for f.npy, d_<x>.npy … (as -o)
    claims: tuple[str, ...] = ()  # EXPR or NAME=EXPR (as --claim)
    steps: bool = False  # claims report the chain of a product; to_json() has the derivation
    backend: Backend = Backend()
    progress: Progress = Factory(default_factory=Quiet)
    spelling: Spelling = PYTHON
    _record_fields: ClassVar[tuple[str, ...]]  # set by @record: the fields, in order


# ----------------------------------------------------------------------------- the calls
def grad(formula: str, values: Mapping[str, Any] | None = None, /, *, wrt: str | Sequence[str] | None = None,
         sizes: Mapping[str, int] | None = None, shapes: Mapping[str, Any] | None = None,
         layout: str | None = None, fns: Mapping[str, str] | None = None, seed: int = 0, order: int = 1,
         data: str | Sequence[str] | Mapping[str, Any] | None = None, random: bool = False,
         allow_nonfinite: bool = False, check: bool = False, tol: float = 1e-5, save: str | None = None,
         claims: str | Sequence[str] | Mapping[str, str] | None = None, backend: str | None = None,
         scheduler: str | None = None, chunk_rows: int | None = None,
         direction: str | Sequence[str] | Mapping[str, str] | None = None,
         structures: Mapping[str, str] | None = None, symmetric_gradient: str = "sym", **arrays: Any) -> Results:
    """The derivatives of `formula` with respect to its wrt symbols, keyed by name.

    arrays (keywords, or the mapping after the formula): values of symbols by name (their shapes
    bind the formula's dimensions); sizes: {"n": 3} for named dimensions no array fixes;
    shapes: {"X": "m,n"} declared shapes; layout: gradient | numerator | denominator | vec;
    fns: {"h": "tanh"} binds abstract functions; order=2: the Hessian blocks (as `hess`), order=k
    (k ≥ 3): the k-th derivative tensor; direction={"x": "v"}: the derivative along the array v
    (given like any other; with order=2 the Hessian-vector product);
    data: {"X": "X.npy"}, "run.npz" or ["X=X.npy", …] (files, as the command's -d);
    random=True: seeded draws (`seed`) for the symbols without values; allow_nonfinite: NaN/Inf
    results instead of a math error; check=True: finite differences now (`.checks`, below `tol`);
    save: a folder for f.npy and d_<x>.npy; claims: a claimed derivative ("EXPR" or
    {"x": "EXPR"}; `.claims`); backend="dask" (with scheduler, chunk_rows); structures:
    {"S": "spd"} declared structure (symmetric, spd, diagonal; or shapes={"S": "n,n,spd"});
    symmetric_gradient: "sym" ((G + Gᵀ)/2) or "vech" (G + Gᵀ − G⊙I)."""
    keywords = dict(wrt=wrt, sizes=sizes, shapes=shapes, layout=layout, fns=fns, seed=seed, order=order,
                    data=data, random=random, allow_nonfinite=allow_nonfinite, check=check, tol=tol,
                    save=save, claims=claims, backend=backend, scheduler=scheduler, chunk_rows=chunk_rows,
                    direction=direction, structures=structures, symmetric_gradient=symmetric_gradient)
    return run(formula, options(formula, {**(values or {}), **arrays}, **keywords))


def hess(formula: str, values: Mapping[str, Any] | None = None, /, **keywords: Any) -> Results:
    """The Hessian blocks of a scalar `formula`, keyed "x" (∂²f/∂x²) and "x,y" (mixed); the
    keywords of `grad`."""
    return grad(formula, values, **{**keywords, "order": 2})


def shape(formula: str, values: Mapping[str, Any] | None = None, /, *, wrt: str | Sequence[str] | None = None,
          sizes: Mapping[str, int] | None = None, shapes: Mapping[str, Any] | None = None,
          layout: str | None = None, fns: Mapping[str, str] | None = None,
          data: str | Sequence[str] | Mapping[str, Any] | None = None, **arrays: Any) -> Results:
    """Shapes only: every symbol's, f's and each derivative's (formulas are not built; data
    files are read for their shapes only)."""
    opts = options(formula, {**(values or {}), **arrays}, wrt=wrt, sizes=sizes, shapes=shapes, layout=layout,
                   fns=fns, data=data)
    return run(formula, _replace(opts, formulas=False, evaluate=False))


def check(formula: str, values: Mapping[str, Any] | None = None, /, *, tol: float = 1e-5,
          hessian: bool = False, **keywords: Any) -> Checks:
    """Each derivative compared with central finite differences at the given arrays, the
    symbols without one drawn as `random=True` draws them (seeded); the keywords of `grad`."""
    _check_types(formula, tol=(tol, (Real,)), hessian=(hessian, (bool,)))
    check_tolerance(float(tol), PYTHON)  # this tol is not grad's: checked here, before any work
    results = grad(formula, values, **{**keywords, "order": 2 if hessian else keywords.get("order", 1)})
    return results.check(float(tol))


def check_files(paths: Sequence[str]) -> Iterator[Outcome]:
    """Shape-check every formula of text files, Markdown fences, folders or - (standard input),
    lazily, as `gradcli check` does: one Outcome a formula (file, line, column, ok, message)."""
    from .checks.checkfiles import check_paths

    outcomes: Iterator[Outcome] = check_paths(list(paths))
    return outcomes


def _replace(opts: RunOptions, **changes: Any) -> RunOptions:
    return RunOptions(**{**{name: getattr(opts, name) for name in opts._record_fields}, **changes})


# ----------------------------------------------------------------------------- keywords → options
def options(formula: str, arrays: Mapping[str, Any], **kw: Any) -> RunOptions:
    """The keywords of `grad` checked and normalised (an option given something else than its
    type is most likely an array for a symbol that shares its name: the message says so)."""
    if not isinstance(formula, str):
        raise TypeError(f"the formula must be a string, not {type(formula).__name__}")
    none = type(None)
    _check_types(formula, **{k: (kw.get(k), t) for k, t in {
        "wrt": (str, list, tuple, none), "sizes": (Mapping, none), "shapes": (Mapping, none),
        "layout": (str, none), "fns": (Mapping, none), "seed": (Integral,), "order": (Integral,),
        "data": (str, list, tuple, Mapping, none), "random": (bool,), "allow_nonfinite": (bool,),
        "check": (bool,), "tol": (Real,), "save": (str, none), "claims": (str, list, tuple, Mapping, none),
        "backend": (str, none), "scheduler": (str, none), "chunk_rows": (Integral, none),
        "direction": (str, list, tuple, Mapping, none),
        "structures": (Mapping, none), "symmetric_gradient": (str,)}.items() if k in kw})
    from .api import declared_shape

    order = int(kw.get("order", 1))
    check_order(order, PYTHON)
    wrt = kw.get("wrt")
    claims = kw.get("claims")
    return RunOptions(
        order=order, wrt=tuple([wrt] if isinstance(wrt, str) else wrt or ()),
        shapes={n: declared_shape(n, s) for n, s in (kw.get("shapes") or {}).items()},
        structures={**{n: split_structure(s)[1] for n, s in (kw.get("shapes") or {}).items()
                       if isinstance(s, str) and split_structure(s)[1]}, **dict(kw.get("structures") or {})},
        symmetric_gradient=kw.get("symmetric_gradient", "sym"),
        sizes=kw.get("sizes"), layout=kw.get("layout"), fns=dict(kw.get("fns") or {}),
        arrays={n: _as_value(n, v) for n, v in arrays.items()}, data=_data_specs(kw.get("data")),
        random=kw.get("random", False), seed=int(kw.get("seed", 0)), allow_nonfinite=kw.get("allow_nonfinite", False),
        check=kw.get("check", False), tol=float(kw.get("tol", 1e-5)), save=kw.get("save"),
        claims=(claims,) if isinstance(claims, str) else tuple(f"{n}={c}" for n, c in claims.items())
        if isinstance(claims, Mapping) else tuple(claims or ()),
        backend=Backend(kw.get("backend") or "numpy", kw.get("scheduler"), kw.get("chunk_rows")),
        direction=directions(kw.get("direction"), PYTHON))


MAX_ORDER = 8  # a tensor of n^k entries: past 8 no use is known, and n = 3 is 6561 entries already


def check_order(order: int, spelling: Spelling) -> None:
    if not 1 <= order <= MAX_ORDER:
        raise GradcliError("usage", f"{spelling.order(order)}: expected 1 (gradients, Jacobians), 2 (Hessians) or "
                                    f"k from 3 to {MAX_ORDER} (the k-th derivative tensor)")


def directions(given: str | Sequence[str] | Mapping[str, str] | None, spelling: Spelling) -> dict[str, str]:
    """{wrt symbol: direction symbol} from X=V texts (as --direction) or a mapping; each a name."""
    from .language.parse import KEYWORDS, is_name

    pairs: list[tuple[Any, Any]]
    if given is None:
        return {}
    if isinstance(given, Mapping):
        pairs = list(given.items())
    else:
        texts = [given] if isinstance(given, str) else list(given)
        pairs = []
        for text in texts:
            x, eq, v = str(text).partition("=")
            if not eq:
                raise GradcliError("usage", f"{spelling.direction(str(text))}: expected X=V, the wrt symbol and the "
                                            "symbol of its direction (-d V=v.npy, or --random)")
            pairs.append((x.strip(), v.strip()))
    out: dict[str, str] = {}
    for x, v in pairs:
        where = printable(spelling.direction(f"{x}={v}"))
        if not all(isinstance(n, str) and is_name(n) and n not in KEYWORDS for n in (x, v)):
            raise GradcliError("usage", f"{where}: expected two symbol names (X=V)")
        if x in out:
            raise GradcliError("usage", f"{where}: {x} has a direction already ({x}={out[x]})")
        out[x] = v
    if len(set(out.values())) < len(out):
        raise GradcliError("usage", f"{spelling.direction(', '.join(f'{x}={v}' for x, v in out.items()))}: "
                                    "each wrt symbol needs a direction of its own")
    return out


def _check_types(formula: str, **options: tuple[Any, tuple[type, ...]]) -> None:
    for name, (value, types) in options.items():
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise GradcliError("usage", f"{name}= is an option of gradcli.grad/hess/shape/check, not "
                                        f"{type(value).__name__}; an array for a symbol named {name} goes in "
                                        f"the mapping after the formula: grad({formula!r}, {{{name!r}: array}})")


def _data_specs(data: str | Sequence[str] | Mapping[str, Any] | None) -> tuple[str, ...]:
    """data= as the command's -d options: "run.npz", ["X=X.npy"], or {"X": "X.npy", "a": 2.0}."""
    if data is None:
        return ()
    if isinstance(data, str):
        return (data,)
    if isinstance(data, Mapping):
        return tuple(f"{n}={v}" for n, v in data.items())
    return tuple(str(s) for s in data)


def _as_value(name: str, value: Any) -> Any:
    """An array given for a symbol, checked as data files are: numbers (float, int or bool;
    complex would lose its imaginary part), a scalar, vector or matrix, finite."""
    import numpy as np

    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise GradcliError("data", f"{name}: dtype {arr.dtype.name} is not numeric (need float, int or bool)")
    if arr.ndim > 2:
        raise GradcliError("data", f"{name}: {arr.ndim}-d arrays are not supported (scalars, vectors and "
                                   "matrices only)")
    arr = arr.astype(float, copy=False)  # a float array is used as given, never copied (it is only read)
    if not np.all(np.isfinite(arr)):
        raise GradcliError("data", f"{name} contains NaN or Inf")
    return arr


def check_tolerance(tol: float, spelling: Spelling) -> None:
    if not (math.isfinite(tol) and tol >= 0):
        raise GradcliError("usage", f"{spelling.tolerance(tol)}: expected a finite number ≥ 0 (e.g. 1e-5)")


def check_functions(fns: Mapping[str, str], spelling: Spelling) -> dict[str, str]:
    """Each abstract function bound to an element-wise builtin: the name never a builtin's or
    a keyword (`exp=log` would silently change nothing), the builtin an element-wise one."""
    from .language.infer import BUILTINS
    from .language.operators import ELEMENTWISE
    from .language.parse import KEYWORDS, is_name

    for name, builtin in fns.items():
        where = printable(spelling.fn(name, builtin))
        if not isinstance(name, str) or not isinstance(builtin, str):
            raise GradcliError("usage", f"{where}: expected a function name and a builtin's name (strings)")
        if name in KEYWORDS:
            raise GradcliError("usage", f"{where}: '{name}' is a keyword, not a function name")
        if not is_name(name):
            raise GradcliError("usage", f"{where}: '{printable(name)}' is not a function name (a letter, "
                                        "then letters, digits or _)")
        if name in BUILTINS:
            raise GradcliError("usage", f"{where}: {name} is a builtin function; {spelling.fns} binds an "
                                        "abstract function such as h in h(z)")
        if builtin not in ELEMENTWISE:
            close = difflib.get_close_matches(builtin, ELEMENTWISE, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise GradcliError("usage", f"{where}: '{printable(builtin)}' is not an element-wise builtin"
                                        f"{hint} (one of {', '.join(ELEMENTWISE)})")
    return dict(fns)


def _warn_unused_functions(fns: Mapping[str, str], problem: Problem, spelling: Spelling) -> None:
    """A bound function the formula never calls is most likely a typo: say so."""
    if not fns:  # nothing to look for: a 100,000-term formula is not walked for nothing
        return
    called = _called_names(problem.typed.formula.expr)
    for name, builtin in fns.items():
        if name not in called:
            warnings.warn(f"{spelling.fn(name, builtin)}: the formula does not call {name}", UserWarning)


def _called_names(root: Any) -> set[str]:
    """Names applied as functions anywhere in a parsed formula (no recursion: formulas nest
    thousands deep)."""
    from .language.syntax import Call, Node

    names: set[str] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, Call):
            names.add(node.name)
        for name in getattr(node, "_record_fields", ()):
            value = getattr(node, name)
            if isinstance(value, Node):
                todo.append(value)
            elif isinstance(value, tuple):
                todo.extend(v for v in value if isinstance(v, Node))
    return names


# ----------------------------------------------------------------------------- the run
def run(formula: str, o: RunOptions) -> Results:
    """Analyse, differentiate and (with numbers) evaluate, check, save and judge claims, in the
    order the command line has always done it (so its failures come in the same order)."""
    from .api import analyze

    s = o.spelling
    check_tolerance(o.tol, s)
    o.backend.check(s)
    fns = check_functions(o.fns, s)
    check_order(o.order, s)
    along = set(o.direction.values())  # the direction symbols: values, but not symbols of f
    sources = open_data(o.data, formula, s, along)
    given = {n: v for n, v in o.arrays.items() if n not in along}  # the arrays of f's symbols
    numbers = bool(sources or o.random or o.arrays) and o.evaluate
    if o.save is not None:
        from .outputs import check_target

        with translated(s):
            check_target(o.save)
        if not numbers:
            raise GradcliError("usage", f"{s.save} needs numbers to write: give {s.data} or {s.random}")
    data_shapes = {k: tuple(v.shape) for k, v in sources.items() if k not in along}
    # the arrays' shapes from the start, as data files': a formula may be well-shaped only at
    # them (unvec(vec(L), 2) needs L's size even); `bind` below still refuses unknown names
    data_shapes.update({k: tuple(v.shape) for k, v in given.items() if k not in data_shapes})
    if given:
        from .numeric.data import check_declared_shapes

        with translated(s):  # an array's shape must agree with a declared one, as data files
            check_declared_shapes(dict(o.shapes), {n: v.shape for n, v in given.items()})
    with translated(s):  # the shape checker's advice names flags (--fn h=tanh)
        problem = analyze(formula, dict(o.shapes), list(o.wrt), o.layout, data_shapes, set(fns),
                          dict(o.structures), o.symmetric_gradient)
        if given or o.sizes:
            problem = problem.bind(dict(given), dict(o.sizes) if o.sizes is not None else None)
    for name, structure in problem.typed.structures.items():  # arrays that contradict a declaration
        if name in given:
            check_structure(name, given[name], structure)
    _warn_unused_functions(fns, problem, s)
    if not problem.wrt and o.formulas:
        raise GradcliError("usage", f"nothing to differentiate: add 'wrt NAME' to the formula or {s.wrt}")
    if o.direction:
        problem = _sized_by_directions(problem, o, sources, given)
    inputs = Inputs(o.arrays, sources, o.random, o.seed, o.allow_nonfinite, dict(o.shapes))
    with translated(s):  # the messages of --direction and --order name the caller's options
        results = Results(problem, inputs, fns, o.order == 2, o.formulas, order=o.order, direction=o.direction)
    if not o.formulas:
        return results
    if o.claims:
        results.not_extended(s.claim)
    if numbers and (sources or o.random or o.check or o.save is not None):
        with translated(s):  # the evaluator's advice names flags (--allow-nonfinite)
            _compute(results, o)
    elif o.check:
        raise GradcliError("usage", f"{s.check} needs numbers: give {s.data} or {s.random}")
    if o.claims:
        _claims(formula, results, o)
    return results


def _compute(results: Results, o: RunOptions) -> None:
    """The values, in order: memory checked, arrays loaded or drawn, f and the derivatives
    evaluated, finite differences (check), the folder written (save)."""
    from .api import check_verdict

    problem, derivs, s = results.problem, results.derivatives, o.spelling
    compiled = results.compiled()
    # a symbolic problem compiles lazily (no program yet): gather then says which shape is missing
    values = gather(problem, derivs, results.inputs, s, getattr(compiled, "program", None))
    along = results.direction_values(values, s)
    values.update(along)
    try:
        with o.progress.rows() as rows_done:
            f_value, base = evaluate_on(o.backend, compiled, values, rows_done)
    except GradcliError as err:
        raise drawn(err, o.seed, s) if o.random and err.kind == "math" else err
    results.computed(f_value, {d.wrt: d.to_layout(base[d.wrt]) for d in derivs},
                     getattr(compiled, "evaluation_note", lambda: None)())
    if o.check:
        errors = finite_differences(compiled, derivs, values, base, results.fns, o.progress)
        results.checks = Checks.of({k: check_verdict(e, o.tol, o.allow_nonfinite) for k, e in errors.items()},
                                   o.tol)
    if o.save is not None:
        inputs = results.inputs
        drawn_arrays = ({n: values[n] for n in [*problem.symbols, *along] if n not in inputs.sources
                         and n not in inputs.arrays} if o.random else None)
        found = results.found()
        assert found is not None
        save(o.save, found[0], found[1], results.hessian, drawn_arrays, s)


def _sized_by_directions(problem: Problem, o: RunOptions, sources: Mapping[str, Any],
                         given: Mapping[str, Any]) -> Problem:
    """Each direction is for a wrt symbol and is not a symbol of f (it is not differentiated);
    a direction given as data sizes the named dimensions of its symbol (v has x's shape)."""
    s = o.spelling
    sizes: dict[str, int] = {}
    for x, v in o.direction.items():
        where = printable(s.direction(f"{x}={v}"))
        if x not in problem.wrt:
            raise GradcliError("usage", f"{where}: {x} is not differentiated (the wrt symbols: "
                                        f"{', '.join(problem.wrt) or 'none'})")
        if v in problem.symbols:
            raise GradcliError("usage", f"{where}: {v} is a symbol of the formula; a direction needs a name of its "
                                        "own (it is held fixed, not differentiated)")
        shape = tuple(o.arrays[v].shape) if v in o.arrays else tuple(sources[v].shape) if v in sources else None
        dims = problem.symbols[x].shape
        if shape is None or len(shape) != len(dims):
            continue
        sizes.update({d: int(k) for d, k in zip(dims, shape) if isinstance(d, str) and d not in sizes})
    if not sizes:
        return problem
    with translated(s):
        return problem.bind(dict(given), {**(dict(o.sizes) if o.sizes is not None else {}), **sizes})


def _claims(formula: str, results: Results, o: RunOptions) -> None:
    from .checks.claims import check_claims, split_claims

    problem = results.problem
    with translated(o.spelling):
        claims = split_claims(list(o.claims), [d.wrt for d in results.derivatives])
    results.claims = check_claims(formula, claims, {n: s.shape for n, s in problem.symbols.items()},
                                  problem.wrt, o.layout, fns=dict(results.fns), hessian=results.hessian,
                                  steps=o.steps, direction=dict(o.direction), structures=dict(o.structures),
                                  symmetric_gradient=o.symmetric_gradient)
