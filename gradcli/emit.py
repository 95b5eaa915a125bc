"""`--emit numpy`: the derivative as a standalone Python module that needs only numpy; and, with
the operators' array API source from emit_xp.py, `--emit array-api`: the same module for any
array API library.

The module defines `value_and_grad(**arrays)` (`value_and_hess` for Hessians), which takes the
formula's symbols by name and returns `(f, {wrt: derivative})` in the layout asked for; `INPUTS`
lists the names it needs.  Every node of the DAG becomes one assignment, so shared
subexpressions are computed once; each operator's numpy source comes from its `emit` entry in
the operator table.  The module computes what `Problem.compile` does: the same target (a 1×1 f
is the scalar it holds), the same rewrite of det(X)ᵖ·X⁻ᵀ into the adjugate, whose SVD kernel is
copied from `operators.linalg` rather than written twice.

Names: the code mixes the user's symbols with names of its own, and neither may shadow the
other.  Every name gradcli makes up starts with `_` (`_t3`, `_J0`, `_seed`), which the grammar
never allows a symbol to start with.  A symbol whose name Python cannot use as a local — a
keyword (`lambda`), a builtin or a global the code calls (`float`, `np`), a name that is not an
identifier or that Python would normalise (NFKC) into another — gets a made-up name too, and the
docstring says which.  Literals that Python cannot spell (inf, nan) become `np.inf`, `np.nan`.

Abstract functions: one bound with `--fn` is compiled in (its builtin, as the evaluator has it);
one left unbound is a positional-only parameter of the generated function, given as a sequence
of callables (h, h', …) as long as `FUNCTIONS` says, so it never collides with an array passed
by name, not even a symbol of the same name (`h(h)`).
"""

from __future__ import annotations

import builtins
import keyword
import math
import unicodedata

from .errors import GradcliError
from .evaluate import adjugates, bind_functions, deferred_nodes
from .expr import OPS, Expr, topological
from .operators.linalg import adjugate_transpose
from .render import render
from .shapes import DimProduct, fmt_dims

HELPERS = '''

def _sigmoid(z):
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def _logsumexp(a):
    m = np.max(a)
    return m + np.log(np.sum(np.exp(a - m)))


def _softmax(v):
    e = np.exp(v - np.max(v))
    return e / np.sum(e)


def _logdet(a):
    sign, value = np.linalg.slogdet(a)
    return value if sign > 0 else float("nan")


def _ismax(a):
    mask = (np.abs(a - np.max(a)) <= 1e-12 * (abs(np.max(a)) or 1.0)) * 1.0
    return mask / np.sum(mask)


def _ismin(a):
    mask = (np.abs(a - np.min(a)) <= 1e-12 * (abs(np.min(a)) or 1.0)) * 1.0
    return mask / np.sum(mask)


def _prod_others(a):
    flat = np.ravel(a)
    before = np.concatenate([[1.0], np.cumprod(flat)[:-1]])
    after = np.concatenate([np.cumprod(flat[::-1])[:-1][::-1], [1.0]])
    return np.reshape(before * after, np.shape(a))


def _u1v1(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return np.outer(u[:, 0], vt[0])


def _polar(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > max(a.shape) * np.finfo(float).eps * s[0]
    return u[:, keep] @ vt[keep]
'''

# Helpers whose one implementation is the evaluator's own: a function of (xp, array) that uses
# nothing but `xp`, copied into the module under the name on the left (called with xp = np).
SHARED_HELPERS = {"_adjugate_transpose": adjugate_transpose}


def _shared_source(name: str, fn) -> str:
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # a damaged installation: reported as an internal error
        raise RuntimeError(f"gradcli's source of {fn.__name__} is missing (a damaged installation); "
                           "--emit numpy copies it into the module") from None
    return f"def {name}(" + source.split("(", 1)[1]


def _helpers_used(code: str) -> list[str]:
    """The source of every helper that code calls (HELPERS, then the shared ones)."""
    own = [h.strip("\n") for h in HELPERS.split("\n\n\n") if h.strip()]
    used = [h for h in own if h.split("(")[0].split()[-1] + "(" in code]
    return used + [_shared_source(n, fn).strip("\n") for n, fn in SHARED_HELPERS.items() if n + "(" in code]


# Names the generated function body reads as globals or binds itself besides the made-up ones:
# a symbol with one of these names is renamed.
RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"np", "INPUTS", "FUNCTIONS", "arrays"}


class Namer:
    """Hands out Python names that collide with nothing already handed out or reserved: `stem`,
    or `stem1`, `stem2`, … (always numbered if asked), counting on from the last one given."""

    def __init__(self, taken):
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


def python_names(symbols, namer: Namer) -> dict[str, str]:
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


class Codegen:
    """Turns a set of roots into straight-line numpy code.

    symbols maps each symbol to its Python name, dims each symbolic dimension to the source of
    its size; new temporaries come from the shared namer.  `functions` maps (abstract function,
    derivative order) to the Python name of the callable the module is given for it."""

    def __init__(self, symbols: dict[str, str], dims: dict[str, str], namer: Namer,
                 functions: dict | None = None):
        self.symbols = symbols
        self.dims = dims
        self.namer = namer
        self.functions = functions if functions is not None else {}
        self.used_functions: list[str] = []
        self.names: dict[int, str] = {}
        self.lines: list[str] = []
        self.lazy: set[int] = set()
        self.scaled: set[int] = set()  # c·z used only by sums: folded into them (a − z)

    def function(self, name: str, order: int) -> str:
        """The Python name of the callable for the order-th derivative of an abstract function."""
        key = (name, order)
        if key not in self.functions:
            self.functions[key] = (self.namer.fresh(f"_{name}_d{order}") if _usable(name)
                                   else self.namer.fresh("_function", True))
        if self.functions[key] not in self.used_functions:
            self.used_functions.append(self.functions[key])
        return self.functions[key]

    def source(self, node: Expr, args: list[str]) -> str:
        """The source of one node from its arguments' names."""
        if node.op == "apply":
            return f"{self.function(*node.params)}({args[0]})"
        spec = OPS[node.op].emit
        return spec(self, node, args) if callable(spec) else spec.format(*args)

    def symbol(self, name: str) -> str:
        return self.symbols[name]

    literal: staticmethod[[float], str] = staticmethod(literal)

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        if isinstance(d, DimProduct):  # kron's m*p
            return "(" + " * ".join(self.dim(f) for f in d.factors) + ")"
        if d not in self.dims:
            raise GradcliError("data", f"dimension '{d}' is not the size of any input")
        return self.dims[d]

    def shape(self, ty) -> str:
        parts = [self.dim(d) for d in ty.dims]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def matmul(self, node: Expr, a: list[str]) -> str:
        x, y = node.args
        if id(x) in self.lazy and id(y) in self.lazy:
            return f"np.diag({a[0]} * {a[1]})"
        if id(x) in self.lazy:
            return f"{a[0]}[:, None] * {a[1]}" if y.ty.is_matrix else f"{a[0]} * {a[1]}"
        if id(y) in self.lazy:
            return f"{a[0]} * {a[1]}"
        if x.ty.is_col and y.ty.is_row:
            return f"np.outer({a[0]}, {a[1]})"
        return f"{a[0]} @ {a[1]}"

    def add(self, node: Expr, a: list[str]) -> str:
        x, y = node.args
        if id(x) in self.scaled:
            x, y, a = y, x, [a[1], a[0]]
        if id(y) in self.scaled:
            c, z = y.args[0].value, self.names[id(y.args[1])]
            left = a[0] if id(x) not in self.scaled else f"{self.literal(x.args[0].value)} * {self.names[id(x.args[1])]}"
            return f"{left} - {z}" if c == -1.0 else f"{left} + {self.literal(c)} * {z}"
        return f"{a[0]} + {a[1]}"

    def expand(self, node: Expr, a: list[str]) -> str:
        axis, keep, ty = node.params
        g = a[0] if keep else f"np.expand_dims({a[0]}, {axis})"
        return f"np.broadcast_to({g}, {self.shape(ty)})"

    def emit(self, roots: list[Expr]) -> list[str]:
        order = topological(roots)
        deferred = deferred_nodes(order, roots)
        self.lazy |= {id(n) for n in order if id(n) in deferred and n.op == "diagm"}
        self.scaled |= {id(n) for n in order if id(n) in deferred and n.op == "mul"}
        for n in order:
            if id(n) in self.names:
                continue
            if id(n) in self.scaled:
                self.names[id(n)] = "<folded>"
                continue
            if n.op in ("sym", "const"):
                self.names[id(n)] = OPS[n.op].emit(self, n, [])
                continue
            args = [self.names[id(a)] for a in n.args]
            if id(n) in self.lazy:  # diag(v) used only in products: keep v
                self.names[id(n)] = args[0]
                continue
            code = self.source(n, args)
            name = self.namer.fresh("_t", numbered=True)
            self.lines.append(f"    {name} = {code}")
            self.names[id(n)] = name
        return [self.names[id(r)] for r in roots]


class Dialect:
    """What differs between the numpy module and the array API one."""

    def __init__(self, name: str):
        self.name = name
        self.xp = name == "array-api"
        self.ns = "_xp" if self.xp else "np"
        if self.xp:
            from .emit_xp import XpCodegen

            self.codegen = XpCodegen
        else:
            self.codegen = Codegen
        self.context = ["_xp", "_dtype", "_device"] if self.xp else []  # passed to helper functions

    def reserved(self) -> set[str]:
        from .emit_xp import helper_names

        return set(self.context) | helper_names() if self.xp else set()

    def layout(self, d, value: str) -> str:
        if not d.transposes:
            return value
        if d.kind == "gradient":
            return f"{self.ns}.reshape({value}, (1, -1))" if d.x_ty.is_vector else f"{value}.T"
        kf = len(d.f_ty.full_dims)
        nd = kf + len(d.x_ty.dims)
        axes = tuple(list(range(kf, nd)) + list(range(kf)))
        return f"{self.ns}.permute_dims({value}, {axes})" if self.xp else f"np.transpose({value}, {axes})"

    def result(self, value: str) -> str:
        if self.xp:
            return f"_xp.asarray({value}, dtype=_dtype, device=_device)"
        return f"np.asarray({value}, dtype=float)"

    def dim_source(self, symbol: str, axis: int) -> str:
        return f"{symbol}.shape[{axis}]" if self.xp else f"np.shape({symbol})[{axis}]"

    def tensor_loop(self, names: dict, call: str, f_shape: str, x_shape: str, full: str, count: str) -> list[str]:
        """Lines that build a tensor derivative from one vector-Jacobian product per entry of f."""
        seed, index, jac = names["seed"], names["index"], names["jac"]
        if not self.xp:
            return [f"    {jac} = []",
                    f"    for {index} in np.ndindex(*{f_shape}):",
                    f"        {seed} = np.zeros({f_shape})",
                    f"        {seed}[{index}] = 1.0",
                    f"        {jac}.append(np.broadcast_to({call}, {x_shape}))",
                    f"    {jac} = np.reshape(np.array({jac}), {full})"]
        return [f"    {jac} = []",  # one-hot seeds built without writing into an array (jax)
                f"    for {index} in range({count}):",
                f"        {seed} = _xp.reshape(_xp.astype(_xp.arange({count}, device=_device) == {index}, "
                f"_dtype), {f_shape})",
                f"        {jac}.append(_xp.broadcast_to({self.result(call)}, {x_shape}))",
                f"    {jac} = _xp.reshape(_xp.stack({jac}), {full})"]

    def header(self, used_helpers: list[str]) -> list[str]:
        if self.xp:
            return ["from array_api_compat import array_namespace as _array_namespace, device as _device_of"]
        return ["import numpy as np"]

    def inputs(self, users: list[str], symbols: dict) -> list[str]:
        if not self.xp:
            return [f"    {symbols[s]} = np.asarray(arrays[{s!r}], dtype=float)" for s in users]
        if not users:  # a formula of constants: numpy's namespace
            return ["    _xp = _namespace()", "    _dtype, _device = _xp.float64, None"]
        return ["    _xp = _namespace(*[arrays[_name] for _name in INPUTS])",
                *[f"    {symbols[s]} = _float(_xp, arrays[{s!r}])" for s in users],
                f"    _dtype = _xp.result_type({', '.join(symbols[s] for s in users)})",
                f"    _device = _device_of({symbols[users[0]]})"]

    def helpers(self, code: str) -> list[str]:
        if self.xp:
            from .emit_xp import helper_sources

            return helper_sources(code + "_namespace( _float(")
        return _helpers_used(code)


DIALECTS = ("numpy", "array-api")


def _helper_names() -> set[str]:
    return {line.split("(")[0].split()[1] for line in HELPERS.splitlines() if line.startswith("def ")} | set(SHARED_HELPERS)


def _bind_known(roots: list[Expr], fns: dict[str, str]) -> list[Expr]:
    """Abstract functions bound with --fn become their builtin (as the evaluator has them); the
    others stay, and the module takes a callable for each (the evaluator refuses them)."""
    from .evaluate import bind_functions

    unbound = {n.params[0] for n in topological(roots) if n.op == "apply"} - set(fns)
    if not unbound:
        return bind_functions(roots, fns)
    from . import operators  # noqa: F401  (fills the operator registry)
    from . import simplify as S
    from .differentiate import elementwise_derivative
    from .expr import make

    done: dict[int, Expr] = {}
    for n in topological(roots):
        args = tuple(done[id(a)] for a in n.args)
        if n.op == "apply" and n.params[0] in fns:
            name, order = n.params
            new = S.fn(fns[name], args[0]) if order == 0 else elementwise_derivative(fns[name], order, args[0])
        elif not n.args or all(a is b for a, b in zip(args, n.args)):
            new = n
        else:
            new = make(n.op, *args, params=n.params)
        done[id(n)] = new
    return [done[id(r)] for r in roots]


def emit_numpy(problem, derivs, fns: dict[str, str], hessian: bool) -> str:
    """`--emit numpy`: the module on numpy alone (the fast path)."""
    return emit_module(problem, derivs, fns, hessian, "numpy")


def emit_module(problem, derivs, fns: dict[str, str], hessian: bool, dialect: str = "numpy") -> str:
    """The module of `--emit numpy` or `--emit array-api` (see the module docstrings)."""
    from .differentiate import SEED, gradients, seed_for

    kind = Dialect(dialect)
    fname = "value_and_hess" if hessian else "value_and_grad"
    namer = Namer(RESERVED | _helper_names() | kind.reserved() | {fname, "_missing", "_name", "_callables"})
    users = list(problem.symbols)
    symbols = python_names(users, namer)
    params = [symbols[s] for s in users]
    dims: dict[str, str] = {}
    for name, info in problem.typed.symbols.items():
        for axis, d in enumerate(info.ty.dims):
            if isinstance(d, str) and d not in dims:
                dims[d] = kind.dim_source(symbols[name], axis)
    functions: dict = {}
    gen = kind.codegen(symbols, dims, namer, functions)
    with_formula = [d for d in derivs if d.expr is not None]
    target = problem.target  # a 1×1 f is the scalar it holds, as the evaluator has it
    roots = adjugates(_bind_known([target] + [d.expr for d in with_formula], fns))
    names = gen.emit(roots)
    body = list(gen.lines)
    f_name = names[0]
    results = dict(zip([d.wrt for d in with_formula], names[1:]))
    helpers_fn: list[str] = []
    for d in (d for d in derivs if d.expr is None):  # tensors: one VJP per entry of f
        v = seed_for(d.of)
        (g,) = gradients(d.of, [d.x], seed=v)
        (g,) = adjugates(_bind_known([g], fns))
        loop = {stem: namer.fresh("_" + stem if stem != "jac" else "_J") for stem in ("seed", "index", "jac")}
        fn = namer.fresh("_vjp")
        sub = kind.codegen({**symbols, SEED: loop["seed"]}, dims, namer, functions)
        (out,) = sub.emit([g])
        args = kind.context + params + sub.used_functions + [loop["seed"]]
        helpers_fn += [f"def {fn}({', '.join(args)}):", *sub.lines, f"    return {out}", "", ""]
        f_shape = gen.shape(d.f_ty) if d.f_ty.dims else "()"
        count = " * ".join(gen.dim(x) for x in d.f_ty.dims) or "1"
        full = "(" + ", ".join([gen.dim(x) for x in d.f_ty.full_dims] + [gen.dim(x) for x in d.x_ty.dims]) + ",)"
        body += kind.tensor_loop(loop, f"{fn}({', '.join(args)})", f_shape,
                                 gen.shape(d.x_ty) if d.x_ty.dims else "()", full, count)
        results[d.wrt] = loop["jac"]
    if target.ty.row:
        f_name = f"{kind.ns}.reshape({f_name}, (1, -1))"
    out_items = ", ".join(f"{d.wrt!r}: {kind.layout(d, kind.result(results[d.wrt]))}" for d in derivs)
    abstract = _function_parameters(functions, namer)
    renamed = [f"{s} is {symbols[s]}" for s in users if s != symbols[s]]
    code = "\n".join(body + helpers_fn)
    used = kind.helpers(code) + ([CALLABLES.strip()] if abstract else [])
    doc = _docstring(problem, derivs, target, renamed, abstract, kind, code + "\n".join(used))
    signature = ", ".join([p for p, _, _ in abstract] + ["/"] * bool(abstract) + ["**arrays"])
    lines = [f'"""Generated by gradcli from: {_docstring_text(problem.typed.formula.text)}"""', "",
             *kind.header(used), "", f"INPUTS = {tuple(users)!r}  # {fname} takes these arrays by name",
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
             *body,
             f"    return {kind.result(f_name)}, {{{out_items}}}", ""]
    return "\n".join(lines)


CALLABLES = '''def _callables(given, name, count):
    functions = (given,) if callable(given) and count == 1 else tuple(given) if not callable(given) else ()
    if len(functions) < count or not all(callable(f) for f in functions[:count]):
        raise TypeError(f"the abstract function {name} is given as a sequence of {count} callables "
                        f"(the function and its derivatives up to order {count - 1})")
    return functions[:count]


'''


def _function_parameters(functions: dict, namer: Namer) -> list[tuple[str, str, list[str]]]:
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


def _docstring(problem, derivs, target, renamed, abstract, kind, code: str) -> list[str]:
    doc = [f"f = {render(problem.expr, 'ascii')}", "",
           "Inputs (by name): " + ", ".join(f"{n} {fmt_dims(s.shape)}" for n, s in problem.symbols.items()),
           *([f"Named differently in the code (Python cannot use these names here): {', '.join(renamed)}"]
             if renamed else []),
           *([("Abstract functions (positional, before the arrays): " +
               ", ".join(f"{name} as ({', '.join(name + chr(39) * k for k in range(len(o)))})"
                         for _, name, o in abstract))] if abstract else []),
           *(["Array namespace: that of the inputs (array_api_compat.array_namespace); results in their "
              "common float dtype, on the first input's device"] if kind.xp else []),
           *(["Needs the array API linalg extension (xp.linalg)"] if kind.xp and ".linalg." in code else []),
           f"Returns (f, derivatives): f has shape {fmt_dims(target.ty.full_dims)}"
           + (f" (the scalar its {fmt_dims(problem.shape)} value holds)" if target is not problem.expr else "")
           + ", and"]
    for d in derivs:
        text = d.formula("ascii") or "(numeric only)"
        doc.append(f"{d.wrt}: {d.kind} {fmt_dims(d.shape)}, {d.layout} layout = {text}")
    doc_lines = _docstring_text("\n".join(doc)).split("\n")
    return [f'    """{doc_lines[0]}'] + [f"    {line}" if line else "" for line in doc_lines[1:]] + ['    """']
