"""`--emit numpy` and `--emit array-api`: the derivative as a standalone Python module, on numpy
alone or on any array API library (numpy, CuPy, torch, jax.numpy, dask through array-api-compat).
One generator writes both; the dialect (`Dialect`) is what differs.

The module defines `value_and_grad(**arrays)` (`value_and_hess` for Hessians), which takes the
formula's symbols by name and returns `(f, {wrt: derivative})` in the layout asked for; `INPUTS`
lists the names it needs.  It computes what `Problem.compile` does, the way the evaluator does:
the graph is prepared as the evaluator prepares it (`evaluate.prepare`: the adjugate for
det(X)ᵖ·X⁻ᵀ, products regrouped for known sizes, XᵀDX as a rank-k update), and the code is the
evaluator's own `Schedule` written out — every node one assignment (shared subexpressions
computed once), each operator's kernel (`kernels.py`) as its source (`np.exp(t)`, `a @ b`, or a
call of a helper function whose source is copied into the module), element-wise results written
over dead temporaries (`np.tanh(t, out=t)`), temporaries deleted after their last use, diag(v)
factors applied as broadcasts.  So the module allocates what the evaluator allocates.

The array API module finds the namespace `_xp` of its input arrays
(`array_api_compat.array_namespace`), keeps floating inputs in their dtype and device (an integer
or bool input becomes float64), creates constants (eye, Python numbers handed to a function) in
the inputs' common dtype on the first input's device, and never writes into an array (jax arrays
are immutable).  Its matrix functions need the standard's linalg extension; the module's
docstring says when.

Names: the code mixes the user's symbols with names of its own, and neither may shadow the
other.  Every name gradcli makes up starts with `_` (`_t3`, `_J`, `_seed`, the helpers), which the
grammar never allows a symbol to start with.  A symbol whose name Python cannot use as a local —
a keyword (`lambda`), a builtin or a global the code calls (`float`, `np`), a name that is not an
identifier or that Python would normalise (NFKC) into another — gets a made-up name too, and the
docstring says which.  Literals that Python cannot spell (inf, nan) become `np.inf`, `np.nan`
(`float("inf")` in the array API module).

Abstract functions: one bound with `--fn` is compiled in (its builtin, as the evaluator has it);
one left unbound is a positional-only parameter of the generated function, given as a sequence
of callables (h, h', …) as long as `FUNCTIONS` says, so it never collides with an array passed
by name, not even a symbol of the same name (`h(h)`).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import math
import textwrap
import unicodedata
from typing import TYPE_CHECKING, Any, Callable

from .evaluate import Schedule, bind_functions, prepare, schedule
from ..language.expr import Expr
from ..calculus.indexform import Contraction, contractions, index_terms
from ..language.operators.kernels import HELPERS, Attr, Call, Helper, Infix, Kernel, Same, Setting, Shape, Size
from ..language.render import render
from ..language.shapes import DimProduct, fmt_dims

if TYPE_CHECKING:
    from ..api import Derivative, Problem

    def _array_namespace(*values: Any) -> Any: ...  # (the array API module imports it)
    from ..language.shapes import Dim, Ty

# Names the generated function body reads as globals or binds itself besides the made-up ones:
# a symbol with one of these names is renamed.
RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"np", "INPUTS", "FUNCTIONS", "arrays"}


class Namer:
    """Hands out Python names that collide with nothing already handed out or reserved: `stem`,
    or `stem1`, `stem2`, … (always numbered if asked), counting on from the last one given."""

    def __init__(self, taken: set[str] | frozenset[str]):
        self.used = set(taken)
        self.next: dict[str, int] = {}

    def fresh(self, stem: str, numbered: bool = False) -> str:
        k = self.next.get(stem, 1 if numbered else 0)
        while True:
            name = f"{stem}{k}" if k else stem
            k += 1
            if name not in self.used:
                self.used.add(name)
                self.next[stem] = k
                return name


def _usable(name: str) -> bool:
    """Whether a symbol can be a Python local under its own name."""
    return (name.isidentifier() and unicodedata.normalize("NFKC", name) == name
            and name not in RESERVED and not name.startswith("_"))


def python_names(symbols: list[str], namer: Namer) -> dict[str, str]:
    """Symbol → the Python name the generated code uses for it."""
    out = {s: s for s in symbols if _usable(s)}
    namer.used |= set(out)
    for s in symbols:
        if s not in out:
            stem = "_" + s
            ok = stem.isidentifier() and unicodedata.normalize("NFKC", stem) == stem
            out[s] = namer.fresh(stem) if ok else namer.fresh("_symbol", numbered=True)
    return out


def literal(value: float) -> str:
    """Python source for a float: `np.inf` and `np.nan` where repr would give names Python does
    not know, negative ones parenthesised (`(-2.0) ** x`, not `-2.0 ** x`)."""
    if math.isnan(value):
        return "np.nan"
    text = repr(abs(float(value))) if math.isfinite(value) else "np.inf"
    return f"(-{text})" if math.copysign(1.0, value) < 0 else text


def _docstring_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: no quote or backslash ends or escapes it."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(ch if ch.isprintable() or ch == "\n" else repr(ch)[1:-1] for ch in text)


def _plain_source(fn: Callable[..., Any]) -> str:
    """The source of one of gradcli's functions as the module carries it: its own text, the
    signature without annotations (the module imports nothing to spell them), comments kept."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # a damaged installation: reported as an internal error
        raise RuntimeError(f"gradcli's source of {fn.__name__} is missing (a damaged installation); "
                           "--emit copies it into the module") from None
    func = ast.parse(source).body[0]
    assert isinstance(func, ast.FunctionDef)
    first_line = func.body[0].lineno  # the body (docstring first) is kept as written
    func.returns = None
    for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs, func.args.vararg, func.args.kwarg]:
        if a is not None:
            a.annotation = None
    func.body = [ast.Pass()]
    header = ast.unparse(func).split("\n")[0]
    return "\n".join([header] + source.split("\n")[first_line - 1:]).strip("\n")


def _helpers_needed(used: list[str]) -> list[str]:
    """The helpers the code calls and those they call, in the order kernels.py defines them."""
    needed: set[str] = set()
    todo = list(used)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [n for n in HELPERS[name].__code__.co_names if n in HELPERS]
    return [n for n in HELPERS if n in needed]


# ----------------------------------------------------------------------------- the API module's own
def _namespace(*values: Any) -> Any:
    """The array namespace of the inputs (numpy's for Python numbers only)."""
    try:
        return _array_namespace(*values)
    except TypeError:
        import array_api_compat.numpy as xp

        return xp


def _float(xp: Any, value: Any) -> Any:
    """An input as an array of a real floating dtype (an integer or bool one becomes float64)."""
    a = xp.asarray(value)
    return a if xp.isdtype(a.dtype, "real floating") else xp.astype(a, xp.float64)


def _callables(given: Any, name: str, count: int) -> Any:
    """An abstract function's argument: a callable, or a sequence of them (h, h', ...)."""
    functions = (given,) if callable(given) and count == 1 else tuple(given) if not callable(given) else ()
    if len(functions) < count or not all(callable(f) for f in functions[:count]):
        raise TypeError(f"the abstract function {name} is given as a sequence of {count} callables "
                        f"(the function and its derivatives up to order {count - 1})")
    return functions[:count]


def _check_structure(xp: Any, name: str, a: Any, structure: str) -> None:
    """A ValueError when an input contradicts its declared structure (symmetric, spd, diagonal):
    the derivatives are projected on that structure, so on other data they would be wrong
    without a word.  The CLI's tolerance (numeric/structured.py): 1e-7 of the largest entry."""
    scale = max(1.0, float(xp.max(xp.abs(a)))) if a.shape[0] else 1.0
    if structure == "diagonal":
        off = a - a * xp.eye(a.shape[0], dtype=a.dtype)
        if a.shape[0] and float(xp.max(xp.abs(off))) > 1e-7 * scale:
            raise ValueError(f"{name} is declared diagonal but has an off-diagonal entry")
        return
    if a.shape[0] and float(xp.max(xp.abs(a - a.T))) > 1e-7 * scale:
        raise ValueError(f"{name} is declared {structure} but is not symmetric")
    if structure == "spd" and a.shape[0] and not bool(xp.all(xp.linalg.eigvalsh((a + a.T) / 2) > 0)):
        raise ValueError(f"{name} is declared spd but is not positive definite")


MODULE_FUNCTIONS = {"_namespace": _namespace, "_float": _float, "_callables": _callables,
                    "_check_structure": _check_structure}


class Dialect:
    """What differs between the numpy module and the array API one."""

    def __init__(self, name: str):
        self.name = name
        self.numpy = name == "numpy"
        self.ns = "np" if self.numpy else "_xp"
        self.context = [] if self.numpy else ["_xp", "_dtype", "_device"]  # passed to the VJP functions

    def literal(self, value: float) -> str:
        """Python source for a float: `np.inf` and `np.nan` (numpy) or `float("inf")` where repr
        would give names Python does not know, negative ones parenthesised (`(-2.0) ** x`)."""
        if self.numpy:
            return literal(value)
        if math.isnan(value):
            return 'float("nan")'
        text = repr(abs(float(value))) if math.isfinite(value) else 'float("inf")'
        return f"(-{text})" if math.copysign(1.0, value) < 0 else text

    def creation(self) -> list[str]:
        """Keywords of a function that makes an array from sizes alone."""
        return [] if self.numpy else ["dtype=_dtype", "device=_device"]

    def as_array(self, value: str) -> str:
        """A Python number as an array, where a function needs one (array API only)."""
        return value if self.numpy else f"_xp.asarray({value}, dtype=_dtype, device=_device)"

    def layout(self, d: Derivative, value: str) -> str:
        if d.layout == "vec":
            return self.vec_layout(d, value)
        if not d.transposes:
            return value
        if d.kind == "gradient":
            return f"{self.ns}.reshape({value}, (1, -1))" if d.x_ty.is_vector else f"{value}.T"
        kf = len(d.f_ty.full_dims)
        nd = kf + len(d.x_ty.dims)
        axes = tuple(list(range(kf, nd)) + list(range(kf)))
        return f"np.transpose({value}, {axes})" if self.numpy else f"_xp.permute_dims({value}, {axes})"

    def project(self, d: Derivative, value: str) -> str:
        """The base value projected on the axes of each structured matrix (numeric/structured.py
        `project`, as the evaluator does): sym ½(J + Jᵀ), vech J + Jᵀ − J⊙I, diagonal J⊙I, Jᵀ
        swapping the pair's two axes."""
        for at, convention in d.projected:
            nd = len(d.base_dims())
            axes = list(range(nd))
            axes[at], axes[at + 1] = at + 1, at
            swapped = f"np.transpose(_v, {tuple(axes)})" if self.numpy else f"_xp.permute_dims(_v, {tuple(axes)})"
            shape = ", ".join("_v.shape[%d]" % at if k in (at, at + 1) else "1" for k in range(nd))
            eye = (f"np.reshape(np.eye(_v.shape[{at}]), ({shape},))" if self.numpy else
                   f"_xp.reshape(_xp.eye(_v.shape[{at}], dtype=_dtype, device=_device), ({shape},))")
            body = {"sym": f"(_v + {swapped}) / 2", "vech": f"_v + {swapped} - _v * {eye}",
                    "diagonal": f"_v * {eye}"}[convention]
            value = f"(lambda _v: {body})({value})"
        return value

    def vec_layout(self, d: Derivative, value: str) -> str:
        """The base value in column-major (vec) order (Derivative.to_layout): f's axes and x's
        each reversed, then a row-major reshape to (size(f), size(x))."""
        kf = 0 if d.kind == "gradient" else len(d.f_ty.full_dims)
        nd = len(d.base_dims())
        f_axes, x_axes = list(range(kf)), list(range(kf, nd))
        if nd <= 1:
            return value
        axes = tuple(f_axes[::-1] + x_axes[::-1])
        permute = f"np.transpose(_v, {axes})" if self.numpy else f"_xp.permute_dims(_v, {axes})"
        rows = "*".join(f"_v.shape[{i}]" for i in f_axes) if f_axes and x_axes else "-1"
        sizes = f"({rows}, -1)" if f_axes and x_axes else "(-1,)"
        reshape = "np.reshape" if self.numpy else "_xp.reshape"
        return f"(lambda _v: {reshape}({permute}, {sizes}))({value})"

    def result(self, value: str) -> str:
        if self.numpy:
            return f"np.asarray({value}, dtype=float)"
        return f"_xp.asarray({value}, dtype=_dtype, device=_device)"

    def dim_source(self, symbol: str, axis: int) -> str:
        return f"np.shape({symbol})[{axis}]" if self.numpy else f"{symbol}.shape[{axis}]"

    def tensor_loop(self, names: dict[str, str], call: str, f_shape: str, x_shape: str, full: str,
                    count: str, entries: str) -> list[str]:
        """Lines that build a tensor derivative from one vector-Jacobian product per entry of f:
        numpy writes each into its place in one array; the array API (jax arrays are immutable)
        stacks them."""
        seed, index, jac = names["seed"], names["index"], names["jac"]
        if self.numpy:
            return [f"    {jac} = np.empty({entries})",
                    f"    for {index} in np.ndindex(*{f_shape}):",
                    f"        {seed} = np.zeros({f_shape})",
                    f"        {seed}[{index}] = 1.0",
                    f"        {jac}[{index}] = {call}",
                    f"    {jac} = np.reshape({jac}, {full})"]
        return [f"    {jac} = []",  # one-hot seeds built without writing into an array (jax)
                f"    for {index} in range({count}):",
                f"        {seed} = _xp.reshape(_xp.astype(_xp.arange({count}, device=_device) == {index}, "
                f"_dtype), {f_shape})",
                f"        {jac}.append(_xp.broadcast_to({self.result(call)}, {x_shape}))",
                f"    {jac} = _xp.reshape(_xp.stack({jac}), {full})"]

    def header(self) -> list[str]:
        if self.numpy:
            return ["import numpy as np"]
        return ["from array_api_compat import array_namespace as _array_namespace, device as _device_of"]

    def inputs(self, users: list[str], symbols: dict[str, str]) -> list[str]:
        if self.numpy:
            return [f"    {symbols[s]} = np.asarray(arrays[{s!r}], dtype=float)" for s in users]
        if not users:  # a formula of constants: numpy's namespace
            return ["    _xp = _namespace()", "    _dtype, _device = _xp.float64, None"]
        return ["    _xp = _namespace(*[arrays[_name] for _name in INPUTS])",
                *[f"    {symbols[s]} = _float(_xp, arrays[{s!r}])" for s in users],
                f"    _dtype = _xp.result_type({', '.join(symbols[s] for s in users)})",
                f"    _device = _device_of({symbols[users[0]]})"]

    def own_functions(self) -> list[str]:
        """The module's own functions every module of this dialect calls."""
        return [] if self.numpy else ["_namespace", "_float"]


DIALECTS = ("numpy", "array-api")
_ARITHMETIC = (Infix, Attr, Same)  # kernels that take Python numbers as they are


class Codegen:
    """Writes a `Schedule` out as straight-line code in a dialect.

    symbols maps each symbol to its Python name, dims each symbolic dimension to the source of
    its size; new temporaries come from the shared namer.  `functions` maps (abstract function,
    derivative order) to the Python name of the callable the module is given for it."""

    def __init__(self, dialect: Dialect, symbols: dict[str, str], dims: dict[str, str], namer: Namer,
                 functions: dict[tuple[str, int], str] | None = None):
        self.dialect = dialect
        self.symbols = symbols
        self.dims = dims
        self.namer = namer
        self.functions = functions if functions is not None else {}
        self.used_functions: list[str] = []
        self.helpers: list[str] = []  # helper functions the code calls
        self.names: dict[Expr, str] = {}
        self.lines: list[str] = []
        self._python: dict[Expr, bool] = {}  # whether a node's code is a Python number
        self._temporaries: set[str] = set()  # names this code assigned (only these are ever del'ed)

    def function(self, name: str, order: int) -> str:
        """The Python name of the callable for the order-th derivative of an abstract function."""
        key = (name, order)
        if key not in self.functions:
            self.functions[key] = (self.namer.fresh(f"_{name}_d{order}") if _usable(name)
                                   else self.namer.fresh("_function", True))
        if self.functions[key] not in self.used_functions:
            self.used_functions.append(self.functions[key])
        return self.functions[key]

    def dim(self, d: Dim) -> str:
        if isinstance(d, int):
            return str(d)
        if isinstance(d, DimProduct):  # kron's m*p
            return "(" + " * ".join(self.dim(f) for f in d.factors) + ")"
        if d not in self.dims:
            from ..errors import GradcliError

            raise GradcliError("data", f"dimension '{d}' is not the size of any input")
        return self.dims[d]

    def shape(self, dims: tuple[Dim, ...]) -> str:
        parts = [self.dim(d) for d in dims]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def setting(self, value: Setting) -> str:
        if isinstance(value, Size):
            return self.dim(value.dim)
        if isinstance(value, Shape):
            return self.shape(value.dims)
        if isinstance(value, float):
            return self.dialect.literal(value)
        return repr(value)

    def code(self, kernel: Kernel, node: Expr, args: list[str], out: str = "") -> str:
        """The source of one kernel applied to its arguments' code (a helper's result written
        into the array `out` when given: `code_into`)."""
        ns = self.dialect.ns
        if isinstance(kernel, Infix):
            return f"{args[0]} {kernel.symbol} {args[1]}"
        if isinstance(kernel, Attr):
            return f"{args[0]}.{kernel.name}"
        if isinstance(kernel, Call):
            parts = args + [self.setting(s) for s in (kernel.settings(node) if kernel.settings else ())]
            parts += [f"{k}={self.setting(v)}" for k, v in (kernel.keywords(node) if kernel.keywords else {}).items()]
            parts += self.dialect.creation() if kernel.creates else []
            return f"{ns}.{kernel.spelling(self.dialect.numpy)}({', '.join(parts)})"
        if isinstance(kernel, Helper):
            name = kernel.fn.__name__
            if name not in self.helpers:
                self.helpers.append(name)
            parts = [ns] + args + [self.setting(s) for s in (kernel.settings(node) if kernel.settings else ())]
            return f"{name}({', '.join(parts + ([f'out={out}'] if out else []))})"
        raise RuntimeError(f"no source for the kernel {kernel!r}")

    def code_into(self, kernel: Kernel, node: Expr, args: list[str], out: str) -> str:
        """The source of an `in_place` kernel writing into the array `out` (numpy)."""
        if isinstance(kernel, Helper) and kernel.into:
            return self.code(kernel, node, args, out)
        return f"np.{kernel.ufunc}({', '.join(args)}, out={out})"

    def emit(self, roots: list[Expr]) -> list[str]:
        """Lines for the roots (appended to `lines`); the roots' names."""
        plan = schedule(roots)
        owners: dict[str, int] = {}  # temporary name -> live nodes using it
        root_set = set(roots)
        for i, st in enumerate(plan.steps):
            n = st.node
            if n in self.names:  # (computed by an earlier call on the same generator)
                continue
            args = [self.names[a] for a in st.args]
            python = n.op in ("const", "numel") or (
                isinstance(st.kernel, _ARITHMETIC) and all(self._python[a] for a in st.args))
            self._python[n] = python
            if n.op == "sym":
                self.names[n] = self.symbols[n.params[0]]
                continue
            if n.op == "const":
                self.names[n] = self.dialect.literal(n.value)
                continue
            if not self.dialect.numpy and not isinstance(st.kernel, _ARITHMETIC):
                args = [self.dialect.as_array(a) if self._python[x] else a for x, a in zip(st.args, args)]
            if n.op == "apply":
                name = self._assign(f"{self.function(*n.params)}({args[0]})")
            elif isinstance(st.kernel, Same):
                name = args[0]
            elif st.overwrite is not None and self.dialect.numpy:
                assert st.kernel is not None
                name = args[st.overwrite]
                self.lines.append(f"    {self.code_into(st.kernel, n, args, name)}")
            else:
                assert st.kernel is not None
                name = self._assign(self.code(st.kernel, n, args))
            self.names[n] = name
            if name in self._temporaries:  # not by prefix: a symbol `try` is written _try
                owners[name] = owners.get(name, 0) + 1
            dead = []
            for a in dict.fromkeys(st.args):
                if plan.last_use.get(a) == i and a not in root_set:
                    held = self.names[a]
                    if held in owners:
                        owners[held] -= 1
                        if owners[held] == 0:
                            del owners[held]
                            dead.append(held)
            if dead:  # memory follows last use, as in the evaluator
                self.lines.append(f"    del {', '.join(dead)}")
        return [self.names[r] for r in roots]

    def _assign(self, code: str) -> str:
        name = self.namer.fresh("_t", numbered=True)
        self._temporaries.add(name)
        self.lines.append(f"    {name} = {code}")
        return name


def _index_form(d: Derivative) -> list[Contraction] | None:
    """A tensor derivative's index form as einsum contractions, where it has one (as
    `api.vjp_program` finds it for the evaluator)."""
    from ..calculus.differentiate import gradients, seed_for

    assert d.of is not None and d.x is not None  # (a derivative without a formula keeps both)
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    found = index_terms(g, v, d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims, d.x_ty.dims)
    if found is None or not found[0] or len(found[1]) + len(found[2]) != len(d.f_ty.full_dims + d.x_ty.dims):
        return None
    return contractions(*found)


def _contraction_lines(found: list[Contraction], jac: str, shape: str, names: dict[Expr, str], namer: Namer,
                       kind: Dialect, gen: Codegen) -> list[str]:
    """J = Σ coef · einsum(...) written onto (diagonal views of) one array of zeros; a composite
    index (kron, vec) is an axis reshaped into its pair, J's as a view."""
    lines = [f"    {jac} = np.zeros({shape})"]
    for k, c in enumerate(found):
        target = source = jac
        if c.view is not None:
            target = namer.fresh("_view")
            lines.append(f"    {target} = {jac}.reshape({gen.shape(c.view)})")
        if c.diagonal:
            source, target = target, namer.fresh("_view")
            lines.append(f"    {target} = np.einsum({c.diagonal!r}, {source})")
        shapes = c.shapes or (None,) * len(c.factors)
        operands = ", ".join(names[e] + ("" if s is None else f".reshape({gen.shape(s)})")
                             for e, s in zip(c.factors, shapes))
        operands += ", optimize=True" if len(c.factors) > 2 else ""  # pairwise, as the evaluator does
        if k == 0 and c.factors and not c.inserted:  # the first term straight into J: no temporary
            lines.append(f"    np.einsum({c.spec!r}, {operands}, out={target})")
            if c.coef != 1.0:
                lines.append(f"    {target} *= {kind.literal(c.coef)}")
        else:
            value = f"np.einsum({c.spec!r}, {operands})" if c.factors else kind.literal(c.coef)
            if c.factors and c.inserted:
                value = f"np.expand_dims({value}, {c.inserted!r})"
            if c.factors and c.coef != 1.0:
                value = f"{kind.literal(c.coef)} * {value}"
            lines.append(f"    {target} += {value}")
        if target != jac:
            lines.append(f"    del {target}" + (f", {source}" if c.view is not None and c.diagonal else ""))
    return lines


def _product_sources(problem: Problem, symbols: dict[str, str], dims: dict[str, str], kind: Dialect) -> None:
    """A size known only inside a product (v of unvec(v, 3) is (3*m,)): m = len(v) // 3, once
    the product's other factors are known."""
    progress = True
    while progress:
        progress = False
        for name, info in problem.typed.symbols.items():
            for axis, dim in enumerate(info.ty.dims):
                if not isinstance(dim, DimProduct):
                    continue
                unknown = [f for f in dim.factors if not isinstance(f, int) and f not in dims]
                if len(unknown) != 1 or not isinstance(unknown[0], str) or dim.factors.count(unknown[0]) != 1:
                    continue
                others = [str(f) if isinstance(f, int) else dims[f] for f in dim.factors  # type: ignore[index]
                          if f != unknown[0]]
                dims[unknown[0]] = f"({kind.dim_source(symbols[name], axis)} // ({' * '.join(others)}))"
                progress = True


def emit_numpy(problem: Problem, derivs: list[Derivative], fns: dict[str, str], hessian: bool) -> str:
    """`--emit numpy`: the module on numpy alone."""
    return emit_module(problem, derivs, fns, hessian, "numpy")


def emit_module(problem: Problem, derivs: list[Derivative], fns: dict[str, str], hessian: bool,
                dialect: str = "numpy") -> str:
    """The module of `--emit numpy` or `--emit array-api` (see the module docstring)."""
    from ..calculus.differentiate import SEED, gradients, seed_for

    kind = Dialect(dialect)
    fname = "value_and_hess" if hessian else "value_and_grad"
    namer = Namer(RESERVED | set(HELPERS) | set(MODULE_FUNCTIONS) | set(kind.context)
                  | {fname, "_missing", "_name", "_array_namespace", "_device_of"})
    along = dict(pair for d in derivs for pair in d.direction)  # --direction x=v: v is an input too
    users = list(problem.symbols) + [v for v in along.values() if v not in problem.symbols]
    symbols = python_names(users, namer)
    params = [symbols[s] for s in users]
    dims: dict[str, str] = {}
    for name, info in problem.typed.symbols.items():
        for axis, dim in enumerate(info.ty.dims):
            if isinstance(dim, str) and dim not in dims:
                dims[dim] = kind.dim_source(symbols[name], axis)
    _product_sources(problem, symbols, dims, kind)
    functions: dict[tuple[str, int], str] = {}
    gen = Codegen(kind, symbols, dims, namer, functions)
    with_formula = [d for d in derivs if d.expr is not None]
    formulas = [d.expr for d in with_formula if d.expr is not None]
    tensors = [d for d in derivs if d.expr is None]
    indexed = {d.wrt: found for d in tensors if kind.numpy and (found := _index_form(d)) is not None}
    factors = list(dict.fromkeys(e for cs in indexed.values() for c in cs for e in c.factors))
    target = problem.target  # a 1×1 f is the scalar it holds, as the evaluator has it
    roots = prepare(bind_functions([target] + formulas + factors, fns, keep_unbound=True))
    names = gen.emit(roots)
    body = list(gen.lines)
    f_name = names[0]
    results = dict(zip([d.wrt for d in with_formula], names[1:]))
    factor_names = dict(zip(factors, names[1 + len(with_formula):]))
    helpers_fn: list[str] = []
    helpers_used = list(gen.helpers)
    for d in tensors:
        if d.wrt in indexed:  # its index form, by einsum (as the evaluator computes it)
            jac = namer.fresh("_J")
            body += _contraction_lines(indexed[d.wrt], jac, gen.shape(tuple(d.f_ty.full_dims) + tuple(d.x_ty.dims)),
                                       factor_names, namer, kind, gen)
            results[d.wrt] = jac
            continue
        assert d.of is not None and d.x is not None
        v = seed_for(d.of)  # else one VJP per entry of f
        (g,) = gradients(d.of, [d.x], seed=v)
        (g,) = prepare(bind_functions([g], fns, keep_unbound=True))
        loop = {stem: namer.fresh("_" + stem if stem != "jac" else "_J") for stem in ("seed", "index", "jac")}
        fn = namer.fresh("_vjp")
        sub = Codegen(kind, {**symbols, SEED: loop["seed"]}, dims, namer, functions)
        (out,) = sub.emit([g])
        helpers_used += sub.helpers
        args = kind.context + params + sub.used_functions + [loop["seed"]]
        helpers_fn += [f"def {fn}({', '.join(args)}):", *sub.lines, f"    return {out}", "", ""]
        f_shape = gen.shape(d.f_ty.dims) if d.f_ty.dims else "()"
        count = " * ".join(gen.dim(x) for x in d.f_ty.dims) or "1"
        full = gen.shape(tuple(d.f_ty.full_dims) + tuple(d.x_ty.dims))
        body += kind.tensor_loop(loop, f"{fn}({', '.join(args)})", f_shape,
                                 gen.shape(d.x_ty.dims) if d.x_ty.dims else "()", full, count,
                                 gen.shape(tuple(d.f_ty.dims) + tuple(d.x_ty.dims)))
        results[d.wrt] = loop["jac"]
    if target.ty.row:
        f_name = f"{kind.ns}.reshape({f_name}, (1, -1))"
    out_items = ", ".join(f"{d.wrt!r}: {kind.layout(d, kind.project(d, kind.result(results[d.wrt])))}"
                          for d in derivs)
    abstract = _function_parameters(functions, namer)
    renamed = [f"{s} is {symbols[s]}" for s in users if s != symbols[s]]
    structured = {s: kind_of for s in users if (kind_of := _declared_structure(problem, s))}
    own = kind.own_functions() + (["_callables"] if abstract else []) + (["_check_structure"] if structured else [])
    used = ([_plain_source(HELPERS[h]) for h in _helpers_needed(helpers_used)]
            + [_plain_source(MODULE_FUNCTIONS[f]) for f in own])
    code = "\n".join(body + helpers_fn + used)
    doc = _docstring(problem, derivs, target, renamed, abstract, kind, code, along)
    signature = ", ".join([p for p, _, _ in abstract] + ["/"] * bool(abstract) + ["**arrays"])
    lines = [f'"""Generated by gradcli from: {_docstring_text(problem.typed.formula.text)}"""', "",
             *kind.header(), "", f"INPUTS = {tuple(users)!r}  # {fname} takes these arrays by name",
             *([f"FUNCTIONS = {dict((n, len(o)) for _, n, o in abstract)!r}  # then these abstract functions "
                "(positional, each a sequence: the function and its derivatives)"] if abstract else []),
             *(["", "", "\n\n\n".join(used)] if used else []), "", "", *helpers_fn,
             f"def {fname}({signature}):", *doc,
             "    _missing = [_name for _name in INPUTS if _name not in arrays]",
             "    if _missing:",
             f"        raise TypeError(f\"{fname}() is missing the input(s) {{_missing}} (it takes {{list(INPUTS)}})\")",
             *[f"    {', '.join(orders)}{',' * (len(orders) == 1)} = _callables({p}, {name!r}, {len(orders)})"
               for p, name, orders in abstract],
             *kind.inputs(users, symbols),
             *[f"    _check_structure({kind.ns}, {s!r}, {symbols[s]}, {k!r})" for s, k in structured.items()],
             *body,
             f"    return {kind.result(f_name)}, {{{out_items}}}", ""]
    return "\n".join(lines)


def _declared_structure(problem: Problem, name: str) -> str:
    """The structure (symmetric, spd, diagonal) declared for symbol `name`, or ''."""
    return problem.typed.structures.get(name, "")


def _function_parameters(functions: dict[tuple[str, int], str], namer: Namer) -> list[tuple[str, str, list[str]]]:
    """(parameter, abstract function, [local name of order 0, 1, ...]) for each abstract function
    the code calls, by name; every order from 0 up to the highest used is unpacked."""
    out = []
    for name in sorted({n for n, _ in functions}):
        top = max(k for n, k in functions if n == name)
        orders = [functions.get((name, k)) or (namer.fresh(f"_{name}_d{k}") if _usable(name)
                                                else namer.fresh("_function", True)) for k in range(top + 1)]
        param = namer.fresh(name if _usable(name) else "_function", not _usable(name))
        out.append((param, name, orders))
    return out


def _docstring(problem: Problem, derivs: list[Derivative], target: Expr, renamed: list[str],
               abstract: list[tuple[str, str, list[str]]], kind: Dialect, code: str,
               along: dict[str, str]) -> list[str]:
    inputs = [f"{n} {fmt_dims(s.shape)}" for n, s in problem.symbols.items()]
    inputs += [f"{v} {fmt_dims(problem.symbols[x].shape)} (the direction of {x})" for x, v in along.items()]
    doc = [f"f = {render(problem.expr, 'ascii')}", "",
           "Inputs (by name): " + ", ".join(inputs),
           *([f"Named differently in the code (Python cannot use these names here): {', '.join(renamed)}"]
             if renamed else []),
           *([("Abstract functions (positional, before the arrays): " +
               ", ".join(f"{name} as ({', '.join(name + chr(39) * k for k in range(len(o)))})"
                         for _, name, o in abstract))] if abstract else []),
           *(["Array namespace: that of the inputs (array_api_compat.array_namespace); results in their "
              "common float dtype, on the first input's device"] if not kind.numpy else []),
           *(["Needs the array API linalg extension (xp.linalg)"] if not kind.numpy and ".linalg." in code else []),
           f"Returns (f, derivatives): f has shape {fmt_dims(target.ty.full_dims)}"
           + (f" (the scalar its {fmt_dims(problem.shape)} value holds)" if target is not problem.expr else "")
           + ", and"]
    for d in derivs:
        text = d.formula("ascii") or "(numeric only)"
        doc.append(f"{d.wrt}: {d.kind} {fmt_dims(d.shape)}, {d.layout} layout = {text}")
    doc_lines = _docstring_text("\n".join(doc)).split("\n")
    return [f'    """{doc_lines[0]}'] + [f"    {line}" if line else "" for line in doc_lines[1:]] + ['    """']
