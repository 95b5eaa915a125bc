"""`--emit numpy`: the derivative as a standalone Python module that needs only numpy.

The module defines `value_and_grad(**arrays)` (`value_and_hess` for Hessians) returning
`(f, {wrt: derivative})`, in the layout asked for.  Every node of the DAG becomes one
assignment, so shared subexpressions are computed once; each operator's numpy source comes from
its `emit` entry in the operator table.
"""

from __future__ import annotations

from .errors import GradcliError
from .evaluate import bind_functions, deferred_nodes
from .expr import OPS, Expr, topological
from .render import render
from .shapes import fmt_dims

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
'''


class Codegen:
    """Turns a set of roots into straight-line numpy code."""

    def __init__(self, dims: dict[str, str]):
        self.dims = dims
        self.names: dict[int, str] = {}
        self.lines: list[str] = []
        self.lazy: set[int] = set()
        self.scaled: set[int] = set()  # c·z used only by sums: folded into them (a − z)
        self.counter = 0

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
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
            left = a[0] if id(x) not in self.scaled else f"{x.args[0].value!r} * {self.names[id(x.args[1])]}"
            return f"{left} - {z}" if c == -1.0 else f"{left} + {c!r} * {z}"
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
            spec = OPS[n.op].emit
            code = spec(self, n, args) if callable(spec) else spec.format(*args)
            self.counter += 1
            name = f"t{self.counter}"
            self.lines.append(f"    {name} = {code}")
            self.names[id(n)] = name
        return [self.names[id(r)] for r in roots]


def _layout_code(d, value: str) -> str:
    if not d.transposes:
        return value
    if d.kind == "gradient":
        return f"np.reshape({value}, (1, -1))" if d.x_ty.is_vector else f"{value}.T"
    kf = len(d.f_ty.full_dims)
    nd = kf + len(d.x_ty.dims)
    axes = tuple(list(range(kf, nd)) + list(range(kf)))
    return f"np.transpose({value}, {axes})"


def emit_numpy(problem, derivs, fns: dict[str, str], hessian: bool) -> str:
    from .differentiate import SEED, gradients, seed_for

    params = list(problem.symbols)
    dims: dict[str, str] = {}
    for name, info in problem.typed.symbols.items():
        for axis, d in enumerate(info.ty.dims):
            if isinstance(d, str) and d not in dims:
                dims[d] = f"np.shape({name})[{axis}]"
    gen = Codegen(dims)
    with_formula = [d for d in derivs if d.expr is not None]
    roots = bind_functions([problem.expr] + [d.expr for d in with_formula], fns)
    names = gen.emit(roots)
    body = list(gen.lines)
    f_name = names[0]
    results = dict(zip([d.wrt for d in with_formula], names[1:]))
    helpers_fn: list[str] = []
    for k, d in enumerate(d for d in derivs if d.expr is None):  # tensors: one VJP per entry of f
        v = seed_for(d.of)
        (g,) = gradients(d.of, [d.x], seed=v)
        (g,) = bind_functions([g], fns)
        sub = Codegen(dims)
        (out,) = sub.emit([g])
        fn = f"_vjp{k}"
        helpers_fn += [f"def {fn}({', '.join(params)}, _seed):"] + \
            [line.replace(SEED, "_seed") for line in sub.lines] + [f"    return {out.replace(SEED, '_seed')}", "", ""]
        f_shape = gen.shape(d.f_ty) if d.f_ty.dims else "()"
        full = "(" + ", ".join([gen.dim(x) for x in d.f_ty.full_dims] + [gen.dim(x) for x in d.x_ty.dims]) + ",)"
        body += [
            f"    J{k} = []",
            f"    for idx in np.ndindex(*{f_shape}):",
            f"        seed = np.zeros({f_shape})",
            "        seed[idx] = 1.0",
            f"        J{k}.append(np.broadcast_to({fn}({', '.join(params)}, seed), {gen.shape(d.x_ty) if d.x_ty.dims else '()'}))",
            f"    J{k} = np.reshape(np.array(J{k}), {full})",
        ]
        results[d.wrt] = f"J{k}"
    if problem.expr.ty.row:
        f_name = f"np.reshape({f_name}, (1, -1))"
    out_items = ", ".join(f"{d.wrt!r}: {_layout_code(d, f'np.asarray({results[d.wrt]}, dtype=float)')}"
                          for d in derivs)
    fname = "value_and_hess" if hessian else "value_and_grad"
    doc = [f'    """f = {render(problem.expr, "ascii")}', "",
           "    Inputs: " + ", ".join(f"{n} {fmt_dims(s.shape)}" for n, s in problem.symbols.items()),
           f"    Returns (f, derivatives): f has shape {fmt_dims(problem.shape)}, and"]
    for d in derivs:
        text = d.formula("ascii") or "(numeric only)"
        doc.append(f"    {d.wrt}: {d.kind} {fmt_dims(d.shape)}, {d.layout} layout = {text}")
    doc.append('    """')
    code = "\n".join(body + helpers_fn)
    used = [h for h in HELPERS.split("\n\n\n") if h.strip() and h.split("(")[0].split()[-1] + "(" in code]
    lines = [f'"""Generated by gradcli from: {problem.typed.formula.text}"""', "", "import numpy as np",
             *(["", "", "\n\n\n".join(h.strip("\n") for h in used)] if used else []), "", "", *helpers_fn,
             f"def {fname}({', '.join(params)}):", *doc,
             *[f"    {p} = np.asarray({p}, dtype=float)" for p in params],
             *body,
             f"    return np.asarray({f_name}, dtype=float), {{{out_items}}}", ""]
    return "\n".join(lines)
