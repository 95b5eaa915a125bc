"""The `gradcli` command: a thin layer over gradcli.api that reads options, prints, and exits.

Exit codes (SPEC §2): 0 success; 1 invalid formula, data that does not fit, or a failed
--check; 2 a wrong command line.  Every failure is one message on stderr (and with --json an
`error` object on stdout) — never a traceback.
"""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and as
# strings each is eval'd and compiled again on every run (about 190 evals, ~5 ms a one-liner).
import contextlib
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

from .errors import GradcliError, OutputError, printable
from .record import record

if TYPE_CHECKING:
    from .api import Derivative, Problem
    from .language.shapes import Dim
    from .checks.checkfiles import Outcome
    from .checks.claims import Verdict
    from .output import Printer
    from .results import Results
    from .run import RunOptions

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Matrix calculus at the command line: derivatives in matrix notation, "
                       "shapes, and numeric values.")

FormulaArg = Annotated[str, typer.Argument(metavar="FORMULA", help="The formula, e.g. \"||y - X@theta||^2 wrt theta\"; "
                                                "- reads it from standard input.")]
WrtOpt = Annotated[Optional[list[str]], typer.Option("--wrt", metavar="NAME", help="Differentiate with respect to NAME "
                                                                   "(repeatable; same as the wrt clause).")]
ShapeOpt = Annotated[Optional[list[str]], typer.Option("--shape", "-s", metavar="NAME=DIMS", help="NAME=DIMS: X=100x3, X=M,n, "
                                                                            "X=(M,n), a=scalar; S=n,n,sym (also spd, diag) "
                                                                            "declares a structure.")]
SymGradOpt = Annotated[Optional[str], typer.Option("--symmetric-gradient", metavar="CONVENTION",
                                                   help="Gradient wrt a symmetric S: sym ((G + Gᵀ)/2, default) or "
                                                        "vech (G + Gᵀ − G⊙I).")]
DataOpt = Annotated[Optional[list[str]], typer.Option("--data", "-d", metavar="NAME=FILE|FILE.npz", help="NAME=FILE.npy, FILE.npz "
                                                                          "or NAME=NUMBER.")]
FnOpt = Annotated[Optional[list[str]], typer.Option("--fn", metavar="NAME=BUILTIN", help="NAME=BUILTIN: bind an abstract "
                                                                 "function, e.g. h=tanh.")]
LayoutOpt = Annotated[Optional[str], typer.Option("--layout", metavar="LAYOUT", help="gradient | numerator | denominator | vec.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
LatexOpt = Annotated[bool, typer.Option("--latex", help="Print formulas as LaTeX.")]


def _json(doc: Any) -> str:
    import json  # only --json output needs it

    return json.dumps(doc)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"gradcli {__version__}")
        raise typer.Exit()


def _json_schema(value: bool) -> None:
    if value:
        from .schema import schema_text

        sys.stdout.write(schema_text() + "\n")
        raise typer.Exit()


@app.callback()
def main_callback(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                        help="Print the version and exit.")] = False,
                  json_schema: Annotated[bool, typer.Option("--json-schema", callback=_json_schema, is_eager=True,
                                                            help="Print the JSON Schema of --json output "
                                                                 "and exit.")] = False) -> None:
    """gradcli: derivatives of matrix formulas."""


# ----------------------------------------------------------------------------- helpers
def _printer(stderr: bool = False) -> "Printer":
    from .output import Printer

    return Printer(stderr)


def _error_lines(text: str) -> None:
    """An error's caret view on stderr, 'error:' in red on a terminal."""
    err = _printer(stderr=True)
    for line in text.split("\n"):
        if line.startswith("error: "):
            err(("error:", "bold red"), line[len("error:"):])
        else:
            err(line)


def _stdin_formulas() -> list[tuple[int, str]]:
    """FORMULA `-`: (line number, formula) for each line of standard input that has one (blank
    lines and `#` comments are skipped); each is answered on its own."""
    text = _read_stdin("the formula")
    # lines end at \n (and \r\n), as for wc, sed and editors: str.splitlines would also end one
    # at a form feed, \x1c-\x1e, U+0085, U+2028, splitting a formula and shifting the numbers
    lines = [(k, ln.strip()) for k, ln in enumerate(text.split("\n"), 1)]
    formulas = [(k, ln) for k, ln in lines if ln and not ln.startswith("#")]
    if not formulas:
        raise GradcliError("parse", "empty formula on standard input", 1, "")
    return formulas


def _each_formula(formula: str, as_json: bool, answer: Callable[[str], None],
                 single: dict[str, bool] | None = None) -> None:
    """Answer FORMULA, or (FORMULA `-`) every formula on standard input in turn: with --json one
    document a line (JSON Lines), else the answers separated by a blank line; the exit status is
    the worst of them.  `single` names options ({option: given}) that write one thing per run and
    so take one formula only."""
    formulas = [(0, formula)]
    if formula == "-":
        formulas = []
        _run(as_json, lambda: formulas.extend(_stdin_formulas()))
    clash = [name for name, given in (single or {}).items() if given]
    if len(formulas) > 1 and clash:
        _run(as_json, lambda: _usage(f"{clash[0]} takes one formula, and standard input has "
                                     f"{len(formulas)}: give them one per run"))
    worst = 0
    for i, (line, text) in enumerate(formulas):
        if i and not as_json:
            _printer()()
        try:
            _run(as_json, lambda: _numbered(line if len(formulas) > 1 else 0, answer, text))
        except typer.Exit as stop:
            worst = max(worst, stop.exit_code or 0)
    if worst:
        raise typer.Exit(worst)


def _numbered(line: int, answer: Callable[[str], None], text: str) -> None:
    """An answer whose error says which line of standard input it is about (line 0: the one
    formula, nothing to say)."""
    try:
        answer(text)
    except GradcliError as err:
        if line:
            err.message = f"standard input line {line}: {err.message}"
            if err.column is not None:  # JSON's line counts standard input's lines, as the message does
                err.text = "\n" * (line - 1) + (err.text if err.text is not None else text)
                err.line += line - 1
        raise


def _usage(message: str) -> NoReturn:
    raise GradcliError("usage", message)


def _read_stdin(what: str) -> str:
    """Standard input as UTF-8 text (a leading BOM dropped), or a usage error saying why not."""
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    if stream is None:
        raise GradcliError("usage", f"standard input is closed: nothing to read {what} from")
    try:
        data = stream.read()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "it is closed"
        raise GradcliError("usage", f"cannot read {what} from standard input: {reason}") from None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return str(data.decode("utf-8")).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise GradcliError("parse", f"standard input is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                                    f"at offset {exc.start})") from None


def _shapes(specs: list[str] | None) -> dict[str, "tuple[Dim, ...]"]:
    from .api import parse_dims
    from .language.parse import is_name
    from .language.structures import split_structure

    out = {}
    for spec in specs or []:
        name, sep, dims = spec.partition("=")
        if not sep:
            raise GradcliError("usage", f"-s {printable(spec)}: expected NAME=DIMS, e.g. X=100x3 or X=M,n")
        if not is_name(name.strip()):
            raise GradcliError("usage", f"-s {printable(spec)}: '{printable(name.strip())}' is not a symbol name")
        out[name.strip()] = parse_dims(split_structure(dims)[0])
    return out


def _structures(specs: list[str] | None) -> dict[str, str]:
    """The structures -s declares (S=n,n,sym): name → symmetric | spd | diagonal."""
    from .language.structures import split_structure

    out = {}
    for spec in specs or []:
        name, _, dims = spec.partition("=")
        structure = split_structure(dims)[1]
        if structure:
            out[name.strip()] = structure
    return out


def _fns(specs: list[str] | None) -> dict[str, str]:
    """--fn NAME=BUILTIN, each checked as it comes (gradcli.run.check_functions says what may be
    bound to what), a name bound once."""
    from .run import check_functions
    from .spelling import CLI

    out: dict[str, str] = {}
    for spec in specs or []:
        name, sep, builtin = (part.strip() for part in spec.partition("="))
        if not sep or not name or not builtin:
            raise GradcliError("usage", f"--fn {printable(spec)}: expected NAME=BUILTIN, e.g. h=tanh")
        check_functions({name: builtin}, CLI)
        if out.get(name, builtin) != builtin:
            raise GradcliError("usage", f"--fn {printable(spec)}: {name} is already bound to {out[name]}")
        out[name] = builtin
    return out


def _count(n: int, noun: str) -> str:
    """`1 formula`, `2 formulas`, `0 expected failures`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fail(err: GradcliError, as_json: bool) -> None:
    code = 2 if err.kind == "usage" else 1
    _error_lines(err.caret_view())  # first: it still reaches stderr if stdout cannot be written
    if as_json:
        try:
            sys.stdout.write(_json(err.to_json()) + "\n")
        except OutputError as exc:
            exc.exit_code = code
            raise
    raise typer.Exit(code)


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Each distinct warning once (finite differences evaluate f a hundred times)."""
    err = _printer(stderr=True)
    for message in dict.fromkeys(str(w.message) for w in caught):
        err(("warning:", "yellow"), f" {message}")


def _run(as_json: bool, body: Callable[[], None]) -> None:
    """Run a command body, turning every error into one message and an exit code."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # as Python's defaults: a file left open by an interrupted write is no user's news
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                body()
            finally:  # also when the run fails (a failed --check): what was found is said first
                _print_warnings(caught)
    except KeyboardInterrupt as exc:
        raise _Interrupt(exc) from None
    except GradcliError as err:
        _fail(err, as_json)
    except (typer.Exit, OutputError, BrokenPipeError):  # the process reports a stream's failure
        raise
    except RecursionError:
        _fail(GradcliError("parse", "the formula is nested too deeply"), as_json)
    except Exception as exc:  # a bug: still one line, never a traceback
        _fail(GradcliError("internal", f"internal error ({type(exc).__name__}: {exc}); please report "
                                       "this formula"), as_json)


def _symbol_table(out: Any, problem: "Problem") -> None:
    from .language.render import pretty_name
    from .language.shapes import fmt_dims

    out.table(["symbol", "shape", "source"],
              [[pretty_name(name, "unicode"), fmt_dims(info.shape), info.source]
               for name, info in problem.symbols.items()])


def _notes(out: Any, problem: "Problem") -> None:
    """SPEC §1: what the shapes alone do not say (a broadcast undeclared symbol, a 1×1 f)."""
    for note in problem.notes:
        out(("note:", "yellow"), f" {note.message}")


def _layout_note(d: "Derivative") -> str:
    """How the value's shape is laid out (and, for a formula printed with its axes of length 1
    dropped, the printed matrix's shape)."""
    printed = d.printed_dims()
    if printed is None:
        return _layout(d)
    from .language.shapes import fmt_dims

    dropped = len(d.shape) - len(printed)
    what = {0: "a scalar", 1: f"the vector {fmt_dims(printed)}"}.get(len(printed), f"the {fmt_dims(printed)} matrix")
    return f"{_layout(d)}; printed as {what}, {'its' if dropped == 1 else 'the'} " \
           f"{'axis' if dropped == 1 else f'{dropped} axes'} of length 1 dropped"


def _layout(d: "Derivative") -> str:
    from .language.render import pretty_name

    x = pretty_name(d.wrt, "unicode")
    if d.along or d.tensor is not None:
        from .directions import shape_note

        return shape_note(d)
    if d.layout == "vec":
        a, _, b = d.wrt.partition(",")
        of = "∇f" if d.kind == "hessian" else "f"
        if d.kind == "gradient":
            return f"vec layout: vec(∂f/∂{x}), {x}'s columns stacked"
        return f"vec layout: ∂vec({of})/∂vec({_pn(b or a)})ᵀ, entries in column-major order"
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        x, y = _pn(a), _pn(b or a)
        if d.layout == "numerator":
            return f"shape({x}) + shape({y}), H[i,j] = ∂²f/∂{x}ᵢ∂{y}ⱼ"
        return f"denominator layout: shape({y}) + shape({x})"
    if d.kind == "gradient":
        return {"gradient": f"gradient layout: the shape of {x}",
                "denominator": f"denominator layout: the shape of {x}",
                "numerator": f"numerator layout: the transpose of {x}'s shape"}[d.layout]
    return {"numerator": "numerator layout: shape(f) + shape(x), J[i,j] = ∂fᵢ/∂xⱼ",
            "denominator": "denominator layout: shape(x) + shape(f)"}[d.layout]


def _summary(value: Any) -> str:
    import numpy as np

    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.10g}"
    if arr.size <= 24:
        return np.array2string(arr, precision=6, suppress_small=False, max_line_width=100)
    return (f"array {arr.shape}: min {arr.min():.6g}, max {arr.max():.6g}, mean {arr.mean():.6g}, "
            f"‖·‖ {np.linalg.norm(arr):.6g}  (full values with -o DIR or --json)")


# ----------------------------------------------------------------------------- shape
@app.command(epilog="\b\nExamples:\n  gradcli shape \"||y - X@theta||^2 wrt theta\"\n"
                    "  gradcli shape \"0.5*sum((y - h(X@Theta))^2) wrt Theta\" -s X=M,in -s Theta=in,out -s y=M,out")
def shape(formula: FormulaArg, wrt: WrtOpt = None, shape_: ShapeOpt = None, data: DataOpt = None,
          layout: LayoutOpt = None, as_json: JsonOpt = False) -> None:
    """Shape check only: every symbol's shape, the result's, each derivative's shape and layout."""
    def body(text: str) -> None:
        from .run import RunOptions, run
        from .language.shapes import fmt_dims
        from .spelling import CLI

        results = run(text, RunOptions(formulas=False, evaluate=False, wrt=tuple(wrt or ()), shapes=_shapes(shape_),
                                       data=tuple(data or ()), layout=layout, spelling=CLI))
        if as_json:
            sys.stdout.write(_json(results.to_json()) + "\n")
            return
        problem, out = results.problem, _printer()
        out(("f", "bold"), f" = {problem.text()}", (f"    shape {fmt_dims(problem.shape)}  "
                                                    f"({problem.expr.ty.kind()})", "dim"))
        out()
        _symbol_table(out, problem)
        _notes(out, problem)
        for d in results.derivatives:
            out()
            out((f"∂f/∂{_pn(d.wrt)}", "bold"), f"  {d.kind}  shape {fmt_dims(d.shape)}",
                (f"  ({_layout_note(d)})", "dim"))
    _each_formula(formula, as_json, body)


def _pn(name: str) -> str:
    from .language.render import pretty_name

    return pretty_name(name, "unicode")


# ----------------------------------------------------------------------------- grad, hess
RandomOpt = Annotated[bool, typer.Option("--random", help="Fill symbols without data with seeded random "
                                                          "arrays (numeric shapes needed).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", min=0, help="Seed for --random (an integer ≥ 0; "
                                                                    "default 0).")]
CheckOpt = Annotated[bool, typer.Option("--check", help="Compare each derivative with central finite "
                                                        "differences; exit 1 above --tol.")]
TolOpt = Annotated[Optional[float], typer.Option("--tol", help="Tolerance of --check (max relative error; "
                                                               "default 1e-5).")]
EmitOpt = Annotated[Optional[str], typer.Option("--emit", metavar="numpy|array-api|latex",
                                                help="Print a standalone module (value_and_grad / "
                                                     "value_and_hess) on numpy, or on any array API "
                                                     "library (array-api), or a standalone LaTeX document.")]
NonfiniteOpt = Annotated[bool, typer.Option("--allow-nonfinite",
                                             help="Give IEEE NaN/Inf results (with a warning) instead of a "
                                                  "math error for log(0), 1/0, overflow, singular matrices.")]
StepsOpt = Annotated[bool, typer.Option("--steps", help="Show the derivation step by step, with the shape "
                                                         "of every intermediate and adjoint.")]
ClaimOpt = Annotated[Optional[list[str]], typer.Option("--claim", metavar="[NAME=]EXPR",
                                                      help="Check a claimed derivative: EXPR (or NAME=EXPR per wrt "
                                                           "symbol, repeatable) is compared with the derivative on "
                                                           "random draws; exit 1 unless correct.")]
BackendOpt = Annotated[Optional[str], typer.Option("--backend", metavar="numpy|dask",
                                                  help="Where the numbers are computed: numpy (default) or dask "
                                                       "(inputs chunked along their rows; needs gradcli[dask]).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS",
                                                     help="With --backend dask: a dask.distributed scheduler "
                                                          "(tcp://HOST:PORT) instead of local threads.")]
ChunkRowsOpt = Annotated[Optional[int], typer.Option("--chunk-rows", metavar="N",
                                                     help="With --backend dask: rows per chunk (default: about "
                                                          "64 MiB of the widest input per chunk).")]
DirectionOpt = Annotated[Optional[list[str]], typer.Option(
    "--direction", metavar="X=V", help="X=V: the derivative along V, an array of X's shape (given with -d V=… or "
                                       "drawn by --random); with hess, the Hessian-vector product. One per wrt symbol.")]
OrderOpt = Annotated[Optional[int], typer.Option("--order", metavar="K", help="grad: the K-th derivative "
                                                 "(K ≥ 3: a tensor in index notation).")]
OutOpt = Annotated[Optional[str], typer.Option("--out", "-o", metavar="DIR",
                                               help="Write f.npy and d_<name>.npy (h_<name>.npy) into DIR.")]


@record
class DerivativeOptions:
    """What `grad` and `hess` were given, as typed (the command's parameters, packed once)."""

    hessian: bool
    wrt: Optional[list[str]] = None
    shapes: Optional[list[str]] = None
    data: Optional[list[str]] = None
    fn: Optional[list[str]] = None
    random: bool = False
    seed: Optional[int] = None
    check: bool = False
    tol: Optional[float] = None
    layout: Optional[str] = None
    as_json: bool = False
    latex: bool = False
    out: Optional[str] = None
    emit: Optional[str] = None
    allow_nonfinite: bool = False
    steps: bool = False
    claim: Optional[list[str]] = None
    backend: Optional[str] = None
    scheduler: Optional[str] = None
    chunk_rows: Optional[int] = None
    direction: Optional[list[str]] = None
    order: Optional[int] = None
    symmetric_gradient: Optional[str] = None

    def run_options(self) -> "RunOptions":
        """The application's options: -s and --fn parsed, defaults put in, the CLI's spelling."""
        from .run import RunOptions, directions
        from .spelling import CLI
        from .values import Backend

        if self.hessian and self.order not in (None, 2):
            _usage(f"hess --order {self.order}: hess is the order 2; the K-th derivative is grad --order K")
        return RunOptions(
            order=(2 if self.hessian else 1) if self.order is None else self.order,
            direction=directions(self.direction, CLI), wrt=tuple(self.wrt or ()), shapes=_shapes(self.shapes),
            structures=_structures(self.shapes), symmetric_gradient=self.symmetric_gradient or "sym",
            layout=self.layout, fns=_fns(self.fn), data=tuple(self.data or ()), evaluate=self.emit is None,
            random=self.random, seed=0 if self.seed is None else self.seed, allow_nonfinite=self.allow_nonfinite,
            check=self.check, tol=1e-5 if self.tol is None else self.tol, save=self.out,
            claims=tuple(self.claim or ()), steps=self.steps,
            backend=Backend(self.backend or "numpy", self.scheduler, self.chunk_rows),
            progress=_Bars(quiet=self.as_json), spelling=CLI)

    def conflicts(self) -> None:
        """Usage errors of the options alone: --emit's value, pairs that conflict, the backend."""
        emit = self.emit
        code = emit if emit in ("numpy", "array-api") else None
        if emit is not None and emit != "latex" and code is None:
            _usage(f"--emit {printable(emit)}: expected numpy, array-api or latex")
        _check_conflicts({
            "--json": self.as_json, "--emit": emit, "--emit code": code, "--latex": self.latex,
            "--check": self.check, "--random": self.random, "-o": self.out is not None, "--claim": bool(self.claim),
            "--steps": self.steps, "--seed": self.seed is not None, "--tol": self.tol is not None,
            "--backend": self.backend is not None})
        if self.backend is not None or self.scheduler is not None or self.chunk_rows is not None:
            from .spelling import CLI
            from .values import Backend

            Backend(self.backend or "numpy", self.scheduler, self.chunk_rows).check(CLI)


def _derivative_command(hessian: bool) -> Callable[..., None]:
    """`grad` and `hess` share every option; they differ in what they differentiate.  The
    parameters are typer's declaration of the options: they are packed into one
    DerivativeOptions at once."""

    def command(formula: FormulaArg, wrt: WrtOpt = None, shape_: ShapeOpt = None, data: DataOpt = None,
                fn: FnOpt = None, random: RandomOpt = False, seed: SeedOpt = None, check: CheckOpt = False,
                tol: TolOpt = None, layout: LayoutOpt = None, as_json: JsonOpt = False,
                latex: LatexOpt = False, out: OutOpt = None, emit: EmitOpt = None,
                allow_nonfinite: NonfiniteOpt = False, steps: StepsOpt = False, claim: ClaimOpt = None,
                backend: BackendOpt = None, scheduler: SchedulerOpt = None, chunk_rows: ChunkRowsOpt = None,
                direction: DirectionOpt = None, order: OrderOpt = None,
                symmetric_gradient: SymGradOpt = None) -> None:
        opts = DerivativeOptions(hessian, wrt, shape_, data, fn, random, seed, check, tol, layout, as_json, latex,
                                 out, emit, allow_nonfinite, steps, claim, backend, scheduler, chunk_rows,
                                 direction, order, symmetric_gradient)
        _run(as_json, opts.conflicts)
        _each_formula(formula, as_json, lambda text: _differentiate(text, opts),
                      single={"-o": out is not None, "--emit": emit is not None, "--claim": bool(claim)})
    return command


# Options that cannot be used together (the first is ignored by the second, or asks for output
# the other replaces), and options that do nothing without another: both are usage errors
# naming the two, never a silently ignored option (README: "Options that conflict").
CONFLICTS = (
    ("--emit", "--json", "--emit prints a module or a LaTeX document, not a JSON document"),
    ("--emit code", "--latex", "the module is code; --emit latex is the LaTeX document"),
    ("--emit", "--check", "--emit computes no numbers to check"),
    ("--emit", "--random", "--emit computes no numbers"),
    ("--emit", "-o", "--emit writes no arrays"),
    ("--emit", "--claim", "--emit checks no claim"),
    ("--emit", "--steps", "--emit prints no derivation"),
    ("--latex", "--json", "the JSON document has every formula's LaTeX in its latex field"),
    ("--emit", "--backend", "--emit computes no numbers"),
)
NEEDS = (("--seed", "--random"), ("--tol", "--check"))


def _check_conflicts(given: dict[str, Any]) -> None:
    """A usage error (exit 2) naming both options of the first conflict among those given
    (`--emit` by its value: "--emit numpy and --json cannot be used together")."""
    def label(key: str) -> str:
        return f"--emit {given[key]}" if key.startswith("--emit") else key

    for a, b, why in CONFLICTS:
        if given.get(a) and given.get(b):
            raise GradcliError("usage", f"{label(a)} and {label(b)} cannot be used together ({why})")
    for a, b in NEEDS:
        if given.get(a) and not given.get(b):
            raise GradcliError("usage", f"{a} does nothing without {b}")


grad = app.command(
    name="grad",
    help="Derivatives of FORMULA wrt its wrt symbols: the gradient of a scalar, the Jacobian of a "
         "vector or matrix; formulas, shapes, layouts and (with data) values.",
    epilog="\b\nExamples:\n  gradcli grad \"||y - X@theta||^2 wrt theta\"\n"
           "  gradcli grad \"x'@A@x wrt x\" -s A=3x3 --random --check\n"
           "  gradcli grad \"tanh(W@x + b) wrt x\" -s W=4x3 --random\n"
           "  gradcli grad \"0.5*sum((y - h(X@Theta))^2) wrt Theta\" -d samples/net.npz --fn h=tanh")(
    _derivative_command(hessian=False))

hess = app.command(
    name="hess",
    help="Hessian of a scalar FORMULA: shape(x) + shape(x); with several wrt symbols, every block.",
    epilog="\b\nExamples:\n  gradcli hess \"x'@A@x wrt x\"\n"
           "  gradcli hess \"sum(log(1 + exp(-y*(X@w)))) wrt w\" -d samples/logistic.npz --check\n"
           "  gradcli hess \"x'@A@y wrt x, y\"   (the mixed blocks too)")(_derivative_command(hessian=True))


def _differentiate(text: str, opts: DerivativeOptions) -> None:
    """One formula of `grad` / `hess`: one run of the application, printed."""
    from .run import run

    results = run(text, opts.run_options())
    if opts.emit is not None:
        sys.stdout.write(results.emit(opts.emit))
        return
    if opts.as_json:
        sys.stdout.write(_json(results.to_json(steps=opts.steps)) + "\n")
    else:
        _print_derivatives(results, "latex" if opts.latex else "unicode")
        if results.evaluation:
            _printer()(("note:", "yellow"), f" {results.evaluation}")
        if opts.steps:
            _print_steps(results, opts.latex)
        _print_claims(results.claims)
    if not (results.checks is None or results.checks.ok) or any(not v.ok for v in results.claims):
        raise typer.Exit(1)


def _print_steps(results: "Results", latex: bool) -> None:
    from .output import Commented

    lines = results.derivation("latex" if latex else "unicode").lines
    if not lines:
        return
    out: Any = Commented(_printer()) if latex else _printer()  # --latex: the derivation in comments
    out()
    out(("derivation (--steps):", "bold"))
    for line in lines:
        out(line)


def _print_derivatives(results: "Results", style: str) -> None:
    """f, its value, the symbols, the notes, each derivative (formula, shape, layout, value,
    check) and the shared subexpressions, as a person reads them."""
    from .api import render_derivatives
    from .output import Commented
    from .language.shapes import fmt_dims

    problem, derivs = results.problem, results.derivatives
    found = results.found()
    f_value, d_values = found if found is not None else (None, {})
    checks = results.checks if results.checks is not None else {}
    out = _printer()
    # --latex: every formula line is whole LaTeX, every other line a LaTeX comment
    note = Commented(out) if style == "latex" else out
    comment = "% " if style == "latex" else ""
    out(("f", "bold"), f" = {problem.text(style)}", (f"    {comment}shape {fmt_dims(problem.shape)}", "dim"))
    if f_value is not None:
        note(f"  value: {_summary(f_value)}")
    out()
    _symbol_table(note, problem)
    _notes(note, problem)
    bindings, texts = render_derivatives(derivs, style)
    for d, t in zip(derivs, texts):
        out()
        label = (_label(d) if style != "latex" else _latex_label(d), "bold")
        if t:
            out(label, f" = {t}")
        else:
            index = d.formula(style)
            if index and style == "latex":  # its own left-hand side, one entry of the tensor
                out((index, "bold"))
                note(("  no matrix formula: a tensor in index notation (Kronecker's delta, sums over "
                      "the indices under the sum sign)", "dim"))
            elif index:
                out("(", label, f"){index}")
                out((f"  no matrix formula: a {len(d.shape)}-index tensor, in index notation "
                     "(δ is Kronecker's delta, Σ sums over repeated indices)", "dim"))
            elif d.layout == "vec":
                note((_label(d), "bold"), ": no Kronecker form found; its values are the derivative's "
                                          "entries in vec (column-major) order")
            else:
                how = ("one evaluation of its formula per entry of its directions" if d.tensor is not None
                       else "one vector-Jacobian product per entry of f")
                note((_label(d), "bold"), f": no matrix formula (a {len(d.shape)}-index tensor); its values come "
                           f"from {how}")
        note(f"  shape {fmt_dims(d.shape)}", (f"  ({_layout_note(d)})", "dim"))
        if d.wrt in d_values:
            note(f"  value: {_summary(d_values[d.wrt])}")
        if d.wrt in checks:
            c = checks[d.wrt]
            if c.max_rel_error is None:
                note("  check: nothing to compare (no entry where both the derivative and its finite "
                    "difference are finite)")
            else:
                note(f"  check: max relative error {c.max_rel_error:.2e} vs finite differences (",
                     ("ok", "green") if c.ok else ("FAILED", "bold red"), ")")
    if bindings:
        out()
        note(("where", "bold"))
        for name, t in bindings:
            out(f"  {name} = {t}")


def _latex_label(d: "Derivative") -> str:
    from .latexdoc import derivative_label

    return derivative_label(d)


def _print_claims(verdicts: list["Verdict"]) -> None:
    """One verdict line per claimed derivative (with --steps, the chain of a product claim)."""
    out = _printer()
    for v in verdicts:
        out()
        out((f"claim {v.label}:", "bold"), " ", (v.message, "green" if v.ok else "bold red"))
        for line in v.chain_lines():
            out(f"  {line}")


def _label(d: "Derivative") -> str:
    if d.along or d.tensor is not None:
        return d.symbol("unicode")
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        b = b or a
        return f"∂²f/∂{_pn(a)}∂{_pn(b)}" if a != b else f"∂²f/∂{_pn(a)}²"
    return f"∂f/∂{_pn(d.wrt)}"


class _Rows:
    """Rows done of the total while data is evaluated in row blocks (blocked.py): a rich bar on
    stderr, started at the first block."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from rich.progress import Progress

            self.bar = Progress(console=_printer(stderr=True).console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("rows", total=total)
        self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _Bars:
    """The run's progress (gradcli.values.Progress) as bars on stderr, only when it is a
    terminal: rows evaluated (not under --json), and the steps of long checks (many steps, or
    steps over large arrays: each step evaluates f twice)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    @contextlib.contextmanager
    def rows(self) -> Iterator[Optional[Callable[[int, int], None]]]:
        if self.quiet or not sys.stderr.isatty():
            yield None
            return
        rows = _Rows()
        try:
            yield rows
        finally:
            rows.stop()

    @contextlib.contextmanager
    def steps(self, total: int, work: float) -> Iterator[Optional[Callable[[], None]]]:
        if (total < 200 and work < 2e7) or not sys.stderr.isatty():
            yield None
            return
        from rich.progress import Progress

        with Progress(console=_printer(stderr=True).console(), transient=True) as bar:
            task = bar.add_task("finite differences", total=total)
            yield lambda: bar.advance(task)


# ----------------------------------------------------------------------------- check
@app.command(name="check", epilog="\b\nExamples:\n  gradcli check samples/\n  gradcli check docs/*.md --json\n"
                                  "  git show HEAD:formulas.gradcli | gradcli check -")
def check_cmd(files: Annotated[list[str], typer.Argument(help="Text files (one formula a line) or "
                                                               "Markdown files (```gradcli or ~~~gradcli "
                                                               "fences), folders (their git-tracked *.gradcli and "
                                                               "Markdown files), or - for "
                                                               "standard input.")],
              as_json: JsonOpt = False) -> None:
    """CI mode: shape-check every formula in FILES; report failures as file:line:column."""
    def body() -> None:
        from .run import check_files

        outcomes = check_files(files)
        tally = _check_json(outcomes) if as_json else _check_report(outcomes)
        if tally.failed:
            raise typer.Exit(1)
    _run(as_json, body)


class _Tally:
    def __init__(self) -> None:
        self.checked = self.failed = self.expected_failures = 0

    def add(self, outcome: "Outcome") -> None:
        self.checked += 1
        self.failed += not outcome.ok
        self.expected_failures += outcome.expected_failure


def _location(o: "Outcome", column: int | None = None) -> str:
    return f"{printable(o.entry.path)}:{o.entry.line}:{column or o.column or o.entry.col}:"


def _excerpt(text: str, column: int) -> str:
    from .errors import excerpt

    return printable(excerpt(text, column)[0])


def _check_report(outcomes: Iterable["Outcome"]) -> _Tally:
    """Failures on stderr as they are found (with any warnings, at their line); the count on
    stdout at the end."""
    tally, err = _Tally(), _printer(stderr=True)
    for o in outcomes:
        tally.add(o)
        for w in o.warnings:
            err((_location(o, o.entry.col), "bold"), (" warning:", "yellow"), f" {printable(w)}")
        if not o.ok:
            err((_location(o), "bold"), f" {printable(o.message)}")
            err(f"    {_excerpt(o.entry.text, (o.column or o.entry.col) - o.entry.col + 1)}")
    _printer()(f"{_count(tally.checked, 'formula')} checked: {tally.checked - tally.failed} ok "
               f"({_count(tally.expected_failures, 'expected failure')}), ",
               (f"{tally.failed} failed", "bold red" if tally.failed else ""))
    return tally


def _check_json(outcomes: Iterable["Outcome"]) -> _Tally:
    """One JSON document, written as the results come (its size is the files' size): the
    results first, the counts last.  A file that cannot be read half-way still leaves a valid
    document, with an `error` object beside the results so far."""
    import json

    tally, out = _Tally(), sys.stdout
    out.write('{"results": [')
    try:
        for o in outcomes:
            out.write(", " * bool(tally.checked) + json.dumps({
                "file": o.entry.path, "line": o.entry.line, "column": o.column or o.entry.col,
                "formula": o.entry.text, "ok": o.ok, "expected_failure": o.expected_failure,
                "message": o.message or None, "warnings": o.warnings, **o.details}))
            tally.add(o)
    except GradcliError as err:
        out.write('], ' + json.dumps(err.to_json())[1:-1] + "}\n")
        _error_lines(err.caret_view())
        raise typer.Exit(2 if err.kind == "usage" else 1) from None
    out.write(f'], "checked": {tally.checked}, "failed": {tally.failed}, '
              f'"expected_failures": {tally.expected_failures}}}\n')
    return tally


# ----------------------------------------------------------------------------- entry point
def _click_exceptions() -> Any:
    """typer ≥ 0.2x carries its own copy of click; older releases use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _present(module: Any, name: str) -> tuple[type[BaseException], ...]:
    cls = getattr(module, name, None)
    return (cls,) if cls is not None else ()


_NEGATED_CALL = re.compile(r"-\s*[^\W\d]\w*\s*\(")


def _formula_after_dashes(args: list[str]) -> list[str]:
    """`gradcli grad "-sum(y*log(p)) wrt p"` reads as the option -s to any argument parser.  A
    negated formula is recognisable (an operator, a wrt clause, or a function call right after
    the sign, none of which an option value has), so it is moved behind '--' for the parser."""
    if len(args) < 2 or args[0] not in ("grad", "hess", "shape") or "--" in args:
        return args
    for i, a in enumerate(args[1:], 1):
        if args[i - 1] == "--claim":  # a claimed derivative may start with '-' too: an option's value
            continue
        if (a.startswith("-") and not a.startswith("--") and (
                any(c in a for c in "@*^|'") or " wrt " in a or _NEGATED_CALL.match(a))):
            return args[:i] + args[i + 1:] + ["--", a]
    return args


class _Interrupt(BaseException):
    """A KeyboardInterrupt on its way through typer, which would turn it into its Exit(130) and
    drop what it carries (`detail`: where it came, e.g. while writing -o files); `main` raises
    the interrupt itself again, so the process's one final message can say where it came."""

    def __init__(self, interrupt: KeyboardInterrupt):
        super().__init__()
        self.interrupt = interrupt


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: usage errors exit 2 (with a JSON error under --json)."""
    ce = _click_exceptions()
    exits: tuple[type[BaseException], ...] = (typer.Exit, *_present(ce, "Exit"))
    aborts: tuple[type[BaseException], ...] = (typer.Abort, *_present(ce, "Abort"))
    args = _formula_after_dashes(list(sys.argv[1:] if argv is None else argv))
    try:
        rc = app(args=args, standalone_mode=False, prog_name="gradcli")
    except _Interrupt as wrapped:
        raise wrapped.interrupt from None
    except exits as exc:
        return getattr(exc, "exit_code", 0)
    except aborts:
        return 1
    except ce.UsageError as exc:
        if getattr(exc, "ctx", None) is not None and type(exc).__name__ == "NoArgsIsHelpError":
            _printer(stderr=True)(exc.ctx.get_help())
            return 2
        message = printable(exc.format_message())  # it may quote what was typed
        if ("No such option" in message or "Missing argument" in message) and any(
                a.startswith("-") and not a.startswith("--") for a in args[1:]):
            message += " (a formula that starts with '-' goes after '--': gradcli grad -- '-x wrt x')"
        if "--json" in args:
            sys.stdout.write(_json({"error": {"kind": "usage", "message": message,
                                                   "line": None, "column": None}}) + "\n")
        err = _printer(stderr=True)
        err(("usage error:", "bold red"), f" {message}")
        err("(see gradcli --help)")
        return 2
    except ce.ClickException as exc:
        _error_lines(f"error: {exc.format_message()}")
        return int(exc.exit_code)
    return rc if isinstance(rc, int) else 0
