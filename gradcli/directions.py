"""The derivatives `--direction` and `--order` ask for, and their numbers: the directional
derivative (`grad --direction x=v`), the Hessian-vector product (`hess --direction x=v`), the
k-th derivative tensor (`grad --order k`) and the Hessian of a vector or matrix f.

Why a module of its own: these derivatives are built from the formulas of calculus/higher.py,
not from the problem's gradient and Hessian blocks, and they are evaluated their own way: the
Hessian-vector product as the one vector formula it is (the Hessian is never formed), a tensor
from its index form by einsum.  `Extended` answers as `Compiled` does (evaluate, check), so a
run, its Results and the CLI handle them as any other derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .calculus.higher import Multilinear, directional, hessian_tensor, hessian_vector, order_tensor
from .compiled import IndexProgram
from .derivative import Derivative, derivative_symbol, fmt_shape, superscript
from .errors import GradcliError
from .language import simplify as S
from .language.structures import convention_of, project_gradient
from .numeric.evaluate import Program, compile_graph
from .numeric.structured import project

if TYPE_CHECKING:
    from .api import Problem
    from .language.expr import Expr
    from .language.shapes import Dim
    from .values import Inputs

Values = dict[str, Any]


def derivatives(problem: Problem, order: int, direction: Mapping[str, str]) -> list[Derivative]:
    """The derivatives asked for, one per wrt symbol (one in all for a directional derivative;
    one per pair of symbols for the Hessian of a vector or matrix f); a tensor's value is
    projected on the axes of each structured matrix (`structured_axes`)."""
    out = _derivatives(problem, order, direction)
    for d in out:
        if d.tensor is not None:
            d.projected = structured_axes(problem, d)
    return out


def _derivatives(problem: Problem, order: int, direction: Mapping[str, str]) -> list[Derivative]:
    f = problem.target
    xs = [problem.symbol(n) for n in problem.wrt]
    if direction:
        missing = [n for n in problem.wrt if n not in direction]
        if missing:
            raise GradcliError("usage", f"--direction: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} "
                                        f"no direction (give one for each wrt symbol: --direction "
                                        f"{missing[0]}=v)")
        if order > 2:
            raise GradcliError("usage", f"--direction goes with grad (the directional derivative) or hess (the "
                                        f"Hessian-vector product), not with order {order}")
        vs = [S.sym(direction[n], x.ty) for n, x in zip(problem.wrt, xs)]
        along = tuple((n, direction[n]) for n in problem.wrt)
        if order == 1:
            return [Derivative(",".join(problem.wrt), "directional", tuple(f.ty.full_dims), "gradient",
                               directional(f, xs, vs), f.ty, f.ty, f, xs[0], order=1, direction=along)]
        _scalar(problem, "the Hessian-vector product")
        return [Derivative(n, "hessian-vector", tuple(x.ty.dims), "gradient", _structured(problem, n, e), x.ty, x.ty,
                           f, x, order=2, direction=along)
                for n, x, e in zip(problem.wrt, xs, hessian_vector(f, xs, vs))]
    if order == 2:  # a vector or matrix f: T[i…, j…, k…] = ∂²fᵢ/∂xⱼ∂y_k
        out = []
        for a, x in zip(problem.wrt, xs):
            for b, y in zip(problem.wrt, xs):
                t = hessian_tensor(f, x, y)
                out.append(Derivative(a if a == b else f"{a},{b}", "hessian", t.dims(), "numerator", None, y.ty,
                                      x.ty, f, y, order=2, tensor=t))
        return out
    _scalar(problem, f"the derivative of order {order}")
    return [Derivative(n, "tensor", tuple(x.ty.dims) * order, "numerator", None, x.ty, f.ty, f, x, order=order,
                       tensor=order_tensor(f, x, order)) for n, x in zip(problem.wrt, xs)]


def _structured(problem: Problem, name: str, hv: Expr) -> Expr:
    """H·v wrt a structured S (v of S's structure): the derivative of the projected gradient
    along v, which is the gradient of ⟨∇f, v⟩ projected as a gradient is (structures.py)."""
    structure = problem.typed.structures.get(name)
    return hv if not structure else project_gradient(hv, structure, problem.symmetric_gradient)


def structured_axes(problem: Problem, d: Derivative) -> tuple[tuple[int, str], ...]:
    """(first axis, convention) of each pair of axes of a tensor derivative that belongs to a
    structured matrix: every pair of the k-th derivative wrt S; the x and y pairs of the
    Hessian T[i…, j…, k…] = ∂²fᵢ/∂xⱼ∂y_k of a vector f.  Each is projected (structures.py)."""
    def convention(name: str) -> str:
        return convention_of(problem.typed.structures.get(name, ""), problem.symmetric_gradient)
    if d.kind == "tensor":
        c = convention(d.wrt)
        return tuple((2 * k, c) for k in range(d.order)) if c else ()
    a, _, b = d.wrt.partition(",")
    start = len(problem.target.ty.full_dims)
    x_dims = len(problem.typed.symbols[a].ty.dims)
    return tuple((at, c) for at, c in ((start, convention(a)), (start + x_dims, convention(b or a))) if c)


def _projected(value: Any, axes: Sequence[tuple[int, str]]) -> Any:
    for at, c in axes:
        value = project(value, c, (at, at + 1))
    return value


def _scalar(problem: Problem, what: str) -> None:
    if not problem.target.ty.is_scalar:
        raise GradcliError("shape", f"{what} needs a scalar f; f has shape {fmt_shape(problem.shape)}")


def derivation(problem: Problem, derivs: Sequence[Derivative], style: str = "unicode") -> tuple[list[str], list[Any]]:
    """`--steps` along directions: the first derivative's derivation (the gradient of a scalar
    f, the vector-Jacobian product JᵀV of a vector f), then how the derivative along v comes
    from it — ⟨∇f, v⟩, or J·v as the derivative of ⟨JᵀV, v⟩ wrt V — and, for H·v, the
    derivation of the gradient of ⟨∇f, v⟩ (forward over reverse: no Hessian on the way)."""
    from .calculus.steps import render_steps, seed_symbol_name
    from .language.render import pretty_name, render

    f = problem.target
    xs = [problem.symbol(n) for n in problem.wrt]
    along = dict(derivs[0].direction) if derivs else {}
    vs = [S.sym(along[n], x.ty) for n, x in zip(problem.wrt, xs)]
    avoid = frozenset(along.values())
    lines, records = render_steps(f, xs, style, avoid=avoid)
    inner = " + ".join(f"⟨∂f/∂{render(x, 'unicode')}, {render(v, 'unicode')}⟩" for x, v in zip(xs, vs))
    label = derivs[0].symbol("unicode") if derivs else ""
    if derivs and derivs[0].kind == "directional":
        seed = pretty_name(seed_symbol_name(f, avoid), "unicode")
        directions = ", ".join(render(v, "unicode") for v in vs)
        how = inner if f.ty.is_scalar else \
            f"J·{directions if len(vs) == 1 else '(' + directions + ')'}: the derivative wrt {seed} of " \
            f"{inner.replace('∂f/', f'∂⟨{seed}, f⟩/')}, the map Jᵀ{seed} above applied to the direction"
        lines += ["", f"{label} = {how}"]
    elif derivs:
        lines += ["", f"H·v: the gradient of {inner} (forward over reverse: the Hessian is never formed)"]
        more, recs = render_steps(directional(f, xs, vs), xs, style)
        lines += more
        records += [{**r, "block": "H·v"} for r in recs]
    lines += ["", "result:"]
    for d in derivs:
        lines.append(f"  {d.symbol('unicode')} = {d.text(style)}")
        records.append({"name": d.symbol("ascii"), "expression": d.formula("ascii"), "rule": None,
                        "adjoint": None, "shape": [k if isinstance(k, int) else str(k) for k in d.shape]})
    return lines, records


def shape_note(d: Derivative) -> str:
    """What the shape of one of these derivatives is (the CLI prints it after the shape)."""
    if d.kind == "directional":
        return "the shape of f: its rate of change along the direction"
    if d.kind == "hessian-vector":
        return f"the shape of {d.wrt}: H·v, the Hessian never formed"
    names = d.index_names()
    if d.kind == "tensor":
        groups = " + ".join([f"shape({d.wrt})"] * d.order)
        return f"{groups}, T[{','.join(names)}] = {_entry(d.order, [d.wrt] * d.order, names)}" \
            if len(d.x_ty.dims) == 1 else groups
    a, _, b = d.wrt.partition(",")
    groups = f"shape(f) + shape({a}) + shape({b or a})"
    return f"{groups}, T[{','.join(names)}] = ∂²f{_SUB[names[0]]}/∂{a}{_SUB[names[1]]}∂{b or a}{_SUB[names[2]]}" \
        if len(names) == 3 else groups


_SUB = {"i": "ᵢ", "j": "ⱼ", "k": "ₖ", "l": "ₗ", "p": "ₚ", "q": "q"}


def _entry(order: int, xs: list[str], names: list[str]) -> str:
    """∂³f/∂xᵢ∂xⱼ∂xₖ."""
    return f"∂{superscript(order)}f/" + "".join(f"∂{x}{_SUB.get(n, '[' + n + ']')}" for x, n in zip(xs, names))


class Extended:
    """f and these derivatives at the arrays (the direction symbols' values among them):
    `evaluate` and `check` as `Compiled` has them.  A problem with named dimensions is bound to
    the arrays' shapes when evaluated."""

    def __init__(self, problem: Problem, order: int, direction: Mapping[str, str], fns: Mapping[str, str] | None,
                 allow_nonfinite: bool):
        self.problem, self.order, self.direction = problem, order, dict(direction)
        self.fns, self.allow_nonfinite = dict(fns or {}), allow_nonfinite
        self.derivs = derivatives(problem, order, direction)
        self._program: Program | None = None

    @property
    def program(self) -> Program | None:
        """f and the derivatives that have a formula, compiled once (None while a dimension has
        no size: then `evaluate` binds the arrays' shapes first)."""
        if self._program is None and not self.problem.is_symbolic:
            roots = [self.problem.target] + [d.expr for d in self.derivs if d.expr is not None]
            self._program = compile_graph(roots, self.fns)
            self._program.allow_nonfinite = self.allow_nonfinite
        return self._program

    def _bound(self, arrays: Values) -> Extended:
        if not self.problem.is_symbolic:
            return self
        names = {n: a for n, a in arrays.items() if n in self.problem.symbols}
        return Extended(self.problem.bind(names), self.order, self.direction, self.fns, self.allow_nonfinite)

    def evaluate(self, arrays: Values, xp: Any = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[Any, Values]:
        """(f, {key: value}): a formula's value as it is, a tensor's from its index form."""
        import numpy as np

        bound = self._bound(arrays)
        assert bound.program is not None
        if xp is not None and any(d.tensor is not None for d in bound.derivs):  # tensors: by numpy's einsum
            arrays, xp = {n: np.asarray(a, dtype=float) for n, a in arrays.items()}, None
        values = bound.program.run(arrays, xp)
        f = _shaped(values[0], bound.problem.target.ty.full_dims)
        rest = iter(values[1:])
        out: Values = {}
        for d in bound.derivs:
            if d.expr is not None:
                out[d.wrt] = _shaped(next(rest), d.base_dims())
            else:
                assert d.tensor is not None
                out[d.wrt] = _projected(tensor_value(d.tensor, arrays, self.fns, self.allow_nonfinite), d.projected)
        return f, out

    def evaluation_note(self) -> str | None:
        return None

    def check(self, arrays: Values, base: Values, fns: Mapping[str, str] | None = None,
              on_step: Callable[[], None] | None = None) -> dict[str, float]:
        """{key: max relative error} against central finite differences: of f along the
        direction, of the gradient along it (H·v), of the derivative one order lower (a tensor)."""
        from .numeric.fdcheck import check_derivative, structured_check

        bound = self._bound(arrays)
        out: dict[str, float] = {}
        for d in bound.derivs:
            if d.along:
                out[d.wrt] = self._along(bound, d, arrays, base[d.wrt], on_step)
                continue
            assert d.tensor is not None and d.tensor.lower is not None
            lower = d.tensor.lower
            x_name = str(d.x.params[0])
            axes = d.projected
            last = len(d.shape) - len(d.x_ty.dims)  # x's axes, the last: those the differences move along
            lower_axes = [(at, c) for at, c in axes if at < last]

            def lower_value(vals: Values) -> Any:
                return _projected(tensor_value(lower, vals, self.fns, True), lower_axes)
            if any(at == last for at, _ in axes):  # along directions of x's structure
                structure = bound.problem.typed.structures[x_name]
                out[d.wrt] = structured_check(lower_value, arrays, x_name, base[d.wrt], structure,
                                              dict(axes)[last], on_step)
            else:
                out[d.wrt] = check_derivative(lower_value, arrays, x_name, base[d.wrt], on_step=on_step)
        return out

    def _along(self, bound: Extended, d: Derivative, arrays: Values, value: Any,
               on_step: Callable[[], None] | None) -> float:
        """(F(x + hv) − F(x − hv)) / 2h for F = f (directional) or ∂f/∂x (H·v)."""
        import numpy as np

        from .numeric.fdcheck import noise_floor, relative_error

        p = bound.problem
        if d.kind == "directional":
            of = p.target
        else:  # the gradient as gradcli gives it (projected wrt a structured symbol)
            (of,) = [g.expr for g in p.derivatives() if g.wrt == d.wrt and g.expr is not None]
        program = compile_graph([of], self.fns)
        program.allow_nonfinite = True
        scale = max(1.0, *(float(np.max(np.abs(arrays[x]), initial=0.0)) for x, _ in d.direction))
        h = 1e-6 * scale

        def at(t: float) -> Any:
            moved = {**arrays, **{x: arrays[x] + t * arrays[v] for x, v in d.direction}}
            return np.asarray(program.run(moved)[0], dtype=float)
        fd = (at(h) - at(-h)) / (2 * h)
        if on_step:
            on_step()
        return relative_error(fd.reshape(np.shape(value)), value, noise_floor(at(0.0)))


def direction_values(direction: Mapping[str, str], values: Mapping[str, Any], inputs: Inputs,
                     random: bool, structures: Mapping[str, str] | None = None) -> Values:
    """{v: array} for each direction x=v: given, from data, or (random) drawn standard normal
    from a stream of the seed of its own (never the draws of f's symbols); of x's shape, which
    is checked here once for all three (and against a shape declared for v: -s v=…, shapes=)."""
    import numpy as np

    from .numeric.draws import conform
    from .numeric.structured import check_structure

    structures = structures or {}
    out: Values = {}
    for n, (x, v) in enumerate(sorted(direction.items())):
        if x not in values:
            continue  # x has no value: the evaluation says so, as for any symbol
        shape = tuple(np.shape(values[x]))
        declared = inputs.shapes.get(v)
        if declared is not None and all(isinstance(d, int) for d in declared) and tuple(declared) != shape:
            raise GradcliError("shape", f"{v} is declared with shape {tuple(declared)}, but a direction has the "
                                        f"shape of its symbol: {x} has shape {shape}")
        if v in inputs.arrays:
            a = np.asarray(inputs.arrays[v], dtype=float)
        elif v in inputs.sources:
            a = np.asarray(inputs.sources[v].load(inputs.allow_nonfinite), dtype=float)
        elif random:  # a direction of x's declared structure, as every direction must be (below)
            a = np.random.default_rng([inputs.seed, 1 + n]).standard_normal(shape)
            a = conform(a, structures[x], True) if x in structures else a
        else:
            raise GradcliError("data", f"--direction {x}={v}: {v} has no value (give -d {v}=FILE.npy or --random)")
        if a.shape != shape:
            raise GradcliError("data", f"--direction {x}={v}: {v} has shape {fmt_shape(a.shape)} and {x} has shape "
                                       f"{fmt_shape(shape)}: a direction has the shape of its symbol")
        if x in structures:  # x + tv stays symmetric (diagonal): v is (any sign: not spd)
            need = "diagonal" if structures[x] == "diagonal" else "symmetric"
            try:
                check_structure(v, a, need)
            except GradcliError as err:
                raise GradcliError("data", f"--direction {x}={v}: {x} is declared {structures[x]}, so its direction "
                                           f"must be {need}, and {v} {err.message.partition(' but ')[2]}") from None
        out[v] = a
    return out


def tensor_value(t: Multilinear, arrays: Values, fns: Mapping[str, str], allow_nonfinite: bool) -> Any:
    """The tensor's entries: its index form by einsum, else g at every combination of unit
    seeds (one evaluation of g per entry of the seeds)."""
    import itertools

    import numpy as np

    shape = _sizes(t.dims())
    found = t.terms() if t.seeds else None
    if found is not None and found[0]:
        index = IndexProgram(found[0], found[1], found[2], dict(fns))
        index.program.allow_nonfinite = allow_nonfinite
        return index.evaluate(shape, arrays)
    program = compile_graph([t.g], dict(fns))
    program.allow_nonfinite = allow_nonfinite
    seed_shapes = [_sizes(s.ty.dims) for s in t.seeds]
    own = shape[sum(len(s) for s in seed_shapes):]
    out = np.zeros(shape)
    for at in itertools.product(*(np.ndindex(*s) for s in seed_shapes)):
        units = {}
        for s, sh, i in zip(t.seeds, seed_shapes, at):
            e = np.zeros(sh)
            e[i] = 1.0
            units[str(s.params[0])] = e
        (g,) = program.run({**arrays, **units})
        out[tuple(k for i in at for k in i)] = np.broadcast_to(np.asarray(g, dtype=float), own)
    return out


def _sizes(dims: Sequence[Dim]) -> tuple[int, ...]:
    """The sizes of a bound problem's dimensions (all numbers once the arrays are bound)."""
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def _shaped(value: Any, dims: Sequence[Any]) -> Any:
    import numpy as np

    sizes = tuple(int(k) for k in dims)
    value = np.asarray(value, dtype=float)
    return value.reshape(sizes) if value.size == int(np.prod(sizes)) else np.broadcast_to(value, sizes).copy()
