"""Checking a claimed derivative: is the user's formula gradcli's derivative, and if not, how not?

People arrive with a derivative in hand (an exercise's answer, a hand-written backward pass, a
formula in a paper).  The claim is parsed as a gradcli formula over the formula's own symbols
(same shapes; it may not introduce new ones), then claim and derivative are evaluated on
several seeded random draws and compared.  The verdict says what a student needs to hear:

    correct          equal at every draw (never decided on a single draw)
    close            equal to about 4 digits only (a rounded constant)
    other_layout     equal to the derivative in another layout (a row where a column is due)
    transposed       equal to the derivative's transpose
    factor           a constant multiple of it (the factor is named: 2, −1, ½)
    size_factor      a multiple whose factor changes with the sizes (a lost 1/n)
    term             the difference is one term: a missing or extra term, or one term with
                     the wrong sign, factor or transpose
    diagonal         a vector whose diag(·) is the (diagonal) Jacobian
    wrong_shape      a shape that is no layout of the derivative
    wrong            wrong everywhere: none of the above
    undefined        the claim is not finite where the derivative is

How the draws are chosen: gradcli/checks/claimeval.py.  `--steps`: gradcli/checks/claimchain.py.

The symbolic fast path is recorded (`same_tree`: claim and derivative simplify to one node;
nodes are hash-consed, so identity is equality), but the numbers decide.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .claimchain import chain_report
from .claimeval import TOLERANCE, ZERO, Evaluator, alternate, parse_claim, rel_error, same_dims
from ..record import Factory, record

if TYPE_CHECKING:
    from ..api import Problem
    from ..derivative import Derivative
    from .checkfiles import Entry
    from .claimeval import Draw
    from ..language.expr import Array, Expr
    from ..language.shapes import Dim

CLOSE = 1e-4  # under this, "nearly equal": a constant rounded (0.333 for 1/3)
LAYOUT_WORDS = {"gradient": "gradient layout", "numerator": "numerator layout",
                "denominator": "denominator layout"}


@record
class Verdict:
    """The judgement of one claimed derivative (one wrt symbol or Hessian block)."""

    wrt: str
    label: str  # ∂f/∂θ, ∂²f/∂x²
    verdict: str
    message: str  # unicode, for people
    layout: str  # the layout the claim was read in
    claim_shape: tuple[Dim, ...]
    expected_shape: tuple[Dim, ...]
    factor: float | None = None
    difference: str | None = None  # ASCII gradcli syntax of the difference, when it has a form
    max_rel_error: float | None = None
    same_tree: bool = False
    draws: list[Draw] = Factory(default_factory=list)
    chain: dict[str, Any] | None = None  # --steps: the factors of a product claim and their shapes

    @property
    def ok(self) -> bool:
        return self.verdict == "correct"

    def chain_lines(self) -> list[str]:
        return list((self.chain or {}).get("lines", []))

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "ok": self.ok, "message": self.message,
                "layout": self.layout, "shape": _dims_json(self.claim_shape),
                "expected_shape": _dims_json(self.expected_shape), "factor": self.factor,
                "difference": self.difference, "max_rel_error": self.max_rel_error,
                "same_tree": self.same_tree,
                "draws": [{"seed": d.seed, "sizes": d.sizes, "domain": d.domain,
                           **({"functions": d.functions} if d.functions else {})} for d in self.draws],
                **({"chain": {k: v for k, v in self.chain.items() if k != "lines"}}
                   if self.chain is not None else {})}


def _dims_json(dims: tuple[Dim, ...]) -> list[int | str]:
    return [d if isinstance(d, int) else str(d) for d in dims]


# ----------------------------------------------------------------------------- reading claims
def split_claims(specs: list[str], names: list[str]) -> dict[str, str]:
    """`--claim EXPR` (one derivative) or `--claim NAME=EXPR` → {wrt: claim text}."""
    from ..errors import GradcliError

    out: dict[str, str] = {}
    for spec in specs:
        name, text = _named(spec, names)
        if name is None:
            if len(names) != 1:
                raise GradcliError("usage", f"--claim {spec}: there are {len(names)} derivatives "
                                            f"({', '.join(names)}); write --claim NAME=EXPR")
            name = names[0]
        if name in out:
            raise GradcliError("usage", f"--claim: two claims for ∂f/∂{name}")
        out[name] = text
    return out


def _named(spec: str, names: list[str]) -> tuple[str | None, str]:
    """NAME=EXPR when the part before the first '=' names a derivative (`x`, or `x,y` for a
    Hessian block); the language has no '=' of its own, so anything else is an error."""
    from ..errors import GradcliError

    head, sep, tail = spec.partition("=")
    if not sep:
        return None, spec
    key = head.replace(" ", "")
    if key in names:
        return key, tail
    raise GradcliError("usage", f"--claim {spec}: '{head.strip()}' is not a derivative here "
                                f"(they are {', '.join(names) or 'none'})")


# ----------------------------------------------------------------------------- comparing
def _ratio(c: Array, d: Array) -> float | None:
    """The least-squares k with c ≈ k·d, when c is a multiple of d (None otherwise)."""
    import numpy as np

    dd = float(np.sum(d * d))
    if dd == 0.0:
        return None
    k = float(np.sum(c * d)) / dd
    return k if rel_error(c, k * d) <= TOLERANCE * 10 else None


def _common(ks: list[float | None]) -> float | None:
    """The factor every ratio in ks is (to 1e-6), or None when some ratio is None or another."""
    first = ks[0]
    if first is None:
        return None
    known = [k for k in ks if k is not None]
    if len(known) < len(ks) or any(abs(k - first) > 1e-6 * max(1.0, abs(first)) for k in known):
        return None
    return first


def factor_text(k: float, style: str = "unicode") -> str:
    """2, −1, ½, 1/3, −2/3 for simple fractions; 6 significant digits otherwise."""
    frac = Fraction(k).limit_denominator(12)
    if abs(float(frac) - k) > 1e-9 * max(1.0, abs(k)):
        text = f"{k:.6g}" if abs(float(f"{k:.6g}") - k) <= 1e-9 * abs(k) else f"{k:.10g}"
    elif frac.denominator == 1:
        text = str(frac.numerator)
    elif style == "unicode" and (abs(frac.numerator), frac.denominator) in _VULGAR:
        text = ("-" if frac < 0 else "") + _VULGAR[(abs(frac.numerator), frac.denominator)]
    else:
        text = f"{frac.numerator}/{frac.denominator}"
    return text.replace("-", "−") if style == "unicode" else text


_VULGAR = {(1, 2): "½", (1, 3): "⅓", (2, 3): "⅔", (1, 4): "¼", (3, 4): "¾"}


@record
class _Reading:
    """The claim compared with the derivative read in one layout."""

    verdict: str
    message: str
    factor: float | None = None
    difference: str | None = None
    max_rel_error: float | None = None


def compare(ev: Evaluator, name: str, claim: Expr, d: Derivative, wrt_label: str,
            as_printed: bool = False) -> _Reading:
    """Claim `name` (symbolically `claim`) against derivative d read in d.layout, at every draw;
    `as_printed`: read at the printed formula's shape (d.printed_dims: the value's axes of length
    1 dropped, which keeps the order of its entries)."""
    import numpy as np

    ks = range(len(ev.draws))
    claimed = [ev.claim(name, k) for k in ks]
    C = [c for c in claimed if c is not None]
    if len(C) < len(claimed):
        bad = next(k for k in ks if claimed[k] is None)
        return _Reading("undefined", f"the claim is not finite at draw {bad} (seed {ev.draws[bad].seed}), "
                                     "where the derivative is")
    D = [np.asarray(ev.derivative(d.wrt, d.layout, k), dtype=float) for k in ks]
    if as_printed:
        D = [x.reshape(c.shape) if c.ndim and c.size == x.size else x for c, x in zip(C, D)]
    C = [np.broadcast_to(c, x.shape) if c.ndim == 0 else c for c, x in zip(C, D)]  # 1 means ones
    errors = [rel_error(c, x) for c, x in zip(C, D)]
    worst = max(errors)
    if worst <= TOLERANCE:
        return _Reading("correct", f"correct ({_draws_text(ev)}; max relative error {worst:.1e})",
                        max_rel_error=worst)
    if worst <= CLOSE:
        return _Reading("close", f"nearly equal, but not equal (max relative error {worst:.1e}, over "
                                 f"{TOLERANCE:.0e}): a rounded constant?", max_rel_error=worst)
    if all(c.ndim == 2 and c.shape[0] == c.shape[1] for c in C) and \
            all(rel_error(c, x.T) <= TOLERANCE for c, x in zip(C, D)):
        return _Reading("transposed", f"transposed: the claim is ({wrt_label})ᵀ", max_rel_error=worst)
    if all(float(np.max(np.abs(x), initial=0.0)) <= ZERO for x in D):
        return _Reading("wrong", f"wrong: {wrt_label} is 0 (everywhere), the claim is not",
                        max_rel_error=worst)
    if all(float(np.max(np.abs(c), initial=0.0)) <= ZERO for c in C):
        return _Reading("wrong", f"wrong: the claim is 0, {wrt_label} is not", max_rel_error=worst)
    ratios = [_ratio(c, x) for c, x in zip(C, D)]
    k = _common(ratios)
    if k is not None:
        what = "the sign is wrong (off by a factor −1)" if abs(k + 1) < 1e-9 else \
            f"off by a constant factor {factor_text(k)}"
        return _Reading("factor", f"{what}: the claim is {factor_text(k)} × {wrt_label}",
                        factor=k, max_rel_error=worst)
    known = [r for r in ratios if r is not None]
    if len(known) == len(ratios):
        at = ", ".join(f"{factor_text(r)} at {_sizes_text(ev.draws[i].sizes)}" for i, r in enumerate(known)
                       if i == 0 or _common([known[i - 1], r]) is None)
        return _Reading("size_factor", f"off by a factor that changes with the sizes ({at}): a size "
                                       "(n, or 1/n as in a mean) is lost or extra", max_rel_error=worst)
    term = _one_term(ev, name, claim, d, C, D, wrt_label)
    if term is not None:
        verdict, message, diff = term
        return _Reading(verdict, message, difference=diff, max_rel_error=worst)
    close = sum(e <= TOLERANCE for e in errors)
    where = f"; it agrees at {close} of {len(errors)} draws only" if close else ""
    return _Reading("wrong", f"wrong everywhere (max relative error {worst:.2g}){where}; the "
                             f"difference is not a term of {wrt_label}", max_rel_error=worst)


def _numeric_shown(ev: Evaluator, name: str, layout: str) -> list[Expr | None]:
    out: list[Expr | None] = []
    for ds in ev.derivs:
        d = ds[name] if ds[name].layout == layout else alternate(ds[name])
        assert d is not None, "asked for the other layout of a derivative that has one only"
        out.append(d.shown())
    return out


def _one_term(ev: Evaluator, name: str, claim: Expr, d: Derivative, C: list[Array], D: list[Array],
              wrt_label: str) -> tuple[str, str, str] | None:
    """(verdict, message, difference) when claim − derivative is one term of either (missing,
    extra, or with another sign or factor), or one term transposed; None otherwise."""
    from ..language import simplify as S
    from ..language.render import render

    if d.expr is None:
        return None
    diffs = [c - x for c, x in zip(C, D)]
    own = ev.terms(d.shown(), _numeric_shown(ev, d.wrt, d.layout))
    theirs = ev.terms(claim, [cs[name] for cs in ev.claims])
    for (t, values), whose in [(x, "derivative") for x in own] + [(x, "claim") for x in theirs]:
        try:
            values = [_broadcast(v, c.shape) for v, c in zip(values, C)]
        except ValueError:
            continue
        k = _common([_ratio(df, v) for df, v in zip(diffs, values)])
        if k is None:
            continue
        text = render(t, "unicode")
        if whose == "claim" and abs(k - 1) < 1e-9:
            return "term", f"an extra term: the claim has {text}, which {wrt_label} has not", render(t, "ascii")
        if whose == "derivative":
            diff = render(S.neg(t) if abs(k + 1) < 1e-9 else S.scale(k, t), "ascii")
            if abs(k + 1) < 1e-9:
                rest = f"− {text[1:]}" if text.startswith("−") else f"+ {text}"
                return "term", f"a term is missing: {wrt_label} = claim {rest}", diff
            if abs(k + 2) < 1e-9:
                return "term", f"one term has the wrong sign: {text} (in {wrt_label}) appears as −({text})", diff
            return "term", (f"one term has the wrong factor: {text} (in {wrt_label}) appears "
                            f"{factor_text(1 + k)} times"), diff
    for (t, tv), (u, uv) in ((a, b) for a in own for b in own if a is not b):
        if all(rel_error(df, v - w) <= TOLERANCE for df, v, w in zip(diffs, tv, uv)):
            return "term", (f"one term is wrong: the claim has {render(t, 'unicode')} where {wrt_label} "
                            f"has {render(u, 'unicode')}"), render(S.sub(t, u), "ascii")
    for t, values in own:
        if len(t.ty.full_dims) != 2 or t.ty.full_dims[0] != t.ty.full_dims[1]:
            continue
        if all(rel_error(v, v.T) <= TOLERANCE for v in values):
            continue
        if all(rel_error(df, v.T - v) <= TOLERANCE for df, v in zip(diffs, values)):
            tt = S.T(t)
            return "term", (f"one term is transposed: the claim has {render(tt, 'unicode')} where "
                            f"{wrt_label} has {render(t, 'unicode')}"), render(S.sub(tt, t), "ascii")
    return None


def _broadcast(v: Array, shape: tuple[int, ...]) -> Array:
    import numpy as np

    return np.broadcast_to(v, shape)


def _sizes_text(sizes: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "the given sizes"


def _draws_text(ev: Evaluator) -> str:
    sets: list[dict[str, int]] = []
    for d in ev.draws:
        if d.sizes not in sets:
            sets.append(d.sizes)
    where = " and ".join(_sizes_text(s) for s in sets) if any(sets) else "the given sizes"
    return f"{len(ev.draws)} random draws at {where}"


# ----------------------------------------------------------------------------- layouts
def label(d: Derivative) -> str:
    from ..language.render import pretty_name

    if d.along:
        return d.symbol("unicode")
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        b = b or a
        pa, pb = pretty_name(a, "unicode"), pretty_name(b, "unicode")
        return f"∂²f/∂{pa}²" if a == b else f"∂²f/∂{pa}∂{pb}"
    return f"∂f/∂{pretty_name(d.wrt, 'unicode')}"


def judge(d: Derivative, name: str, claim: Expr, ev: Evaluator) -> Verdict:
    """The verdict on claim `name` (typed symbolically: `claim`) for the derivative d."""
    from ..language.shapes import fmt_dims

    what = label(d)
    shape = claim.ty.full_dims
    base: dict[str, Any] = dict(wrt=d.wrt, label=what, claim_shape=shape, expected_shape=d.shape,
                                draws=ev.draws, same_tree=d.expr is not None and claim is d.shown())
    alt = alternate(d)
    if same_dims(shape, d.shape) or shape == ():  # a scalar claim stands for a constant array
        r = compare(ev, name, claim, d, what)
        if r.verdict == "transposed" and alt is not None and same_dims(alt.shape, d.shape):
            r.message += f" — that is {LAYOUT_WORDS[alt.layout]}; {LAYOUT_WORDS[d.layout]} wants its transpose"
        return Verdict(verdict=r.verdict, message=r.message, layout=d.layout, factor=r.factor,
                       difference=r.difference, max_rel_error=r.max_rel_error, **base)
    printed = d.printed_dims()
    if printed is not None and same_dims(shape, printed):  # the claim copies the printed formula
        r = compare(ev, name, claim, d, what, as_printed=True)
        return Verdict(verdict=r.verdict, message=r.message, layout=d.layout, factor=r.factor,
                       difference=r.difference, max_rel_error=r.max_rel_error, **base)
    alt_printed = alt.printed_dims() if alt is not None else None
    if alt is not None and (same_dims(shape, alt.shape) or
                            (alt_printed is not None and same_dims(shape, alt_printed))):
        r = compare(ev, name, claim, alt, what, as_printed=not same_dims(shape, alt.shape))
        wants = f"{LAYOUT_WORDS[d.layout]} wants {fmt_dims(printed or d.shape)}"
        if r.verdict == "correct":
            return Verdict(verdict="other_layout", layout=alt.layout, max_rel_error=r.max_rel_error,
                           message=f"right in {LAYOUT_WORDS[alt.layout]} (shape {fmt_dims(shape)}); "
                                   f"{wants}: transpose it", **base)
        return Verdict(verdict=r.verdict, layout=alt.layout, factor=r.factor, difference=r.difference,
                       max_rel_error=r.max_rel_error,
                       message=f"read in {LAYOUT_WORDS[alt.layout]} (shape {fmt_dims(shape)}; {wants}): "
                               f"{r.message}", **base)
    diagonal = _as_diagonal(ev, name, claim, d, what)
    if diagonal is not None:
        return Verdict(verdict="diagonal", layout=d.layout, message=diagonal, **base)
    layouts = f"{fmt_dims(d.shape)} in {LAYOUT_WORDS[d.layout]}"
    if printed is not None:
        layouts += f" (printed as {fmt_dims(printed)})"
    if alt is not None and not same_dims(alt.shape, d.shape):
        layouts += f", {fmt_dims(alt.shape)} in {LAYOUT_WORDS[alt.layout]}"
        if alt_printed is not None:
            layouts += f" (printed as {fmt_dims(alt_printed)})"
    return Verdict(verdict="wrong_shape", layout=d.layout,
                   message=f"wrong shape: the claim is {fmt_dims(shape)}; {what} is {layouts}", **base)


def _as_diagonal(ev: Evaluator, name: str, claim: Expr, d: Derivative, what: str) -> str | None:
    """A vector claim for a square Jacobian that is diag(claim): the element-wise derivative
    written where the Jacobian was asked for."""
    import numpy as np

    from ..language.shapes import fmt_dims

    if len(claim.ty.full_dims) != 1 or len(d.shape) != 2 or not same_dims(d.shape, claim.ty.dims * 2):
        return None
    for k in range(len(ev.draws)):
        c, x = ev.claim(name, k), np.asarray(ev.derivative(d.wrt, d.layout, k))
        if c is None or rel_error(np.diag(c), x) > TOLERANCE:
            return None
    return (f"right as a diagonal: {what} is diag(claim), shape {fmt_dims(d.shape)}; the claim is its "
            f"diagonal, shape {fmt_dims(claim.ty.full_dims)}")


# ----------------------------------------------------------------------------- entry points
class ClaimChecker:
    """Judges claims about the derivatives of one formula (analysed with the same options as
    `analyze`), all at the same draws; `claims` given up front also choose the draws' domain."""

    def __init__(self, text: str, shapes: dict[str, tuple[Dim, ...]] | None = None,
                 wrt: list[str] | None = None, layout: str | None = None,
                 data_shapes: dict[str, tuple[int, ...]] | None = None, fns: dict[str, str] | None = None,
                 hessian: bool = False, claims: dict[str, str] | None = None,
                 direction: dict[str, str] | None = None, structures: dict[str, str] | None = None,
                 symmetric_gradient: str = "sym"):
        from ..api import analyze
        from ..errors import GradcliError

        self.fns = dict(fns or {})
        self.direction = dict(direction or {})  # claims of derivatives along these (directions.py)
        self.problem = analyze(text, shapes, wrt, layout, data_shapes, set(self.fns), structures,
                               symmetric_gradient)
        if self.direction:
            from ..directions import derivatives

            found = derivatives(self.problem, 2 if hessian else 1, self.direction)
        else:
            found = self.problem.hessians() if hessian else self.problem.derivatives()
        self.derivs = {d.wrt: d for d in found}
        claims = dict(claims or {})
        for name in claims:
            if name not in self.derivs:
                raise GradcliError("usage", f"--claim {name}=...: ∂f/∂{name} is not computed here "
                                            f"(derivatives: {', '.join(self.derivs)})")
        self.exprs = {name: parse_claim(self.problem, t, self.fns, self.direction) for name, t in claims.items()}
        self.ev = Evaluator({"text": text, "wrt": wrt, "layout": layout}, self.problem, claims,
                             hessian, self.fns, self.direction)

    def verdict(self, name: str, steps: bool = False) -> Verdict:
        """The verdict on the claim given up front for ∂f/∂name."""
        v = judge(self.derivs[name], name, self.exprs[name], self.ev)
        if steps:
            v.chain = chain_report(self.exprs[name], self.derivs[name], label(self.derivs[name]))
        return v

    def judge(self, name: str, text: str) -> Verdict:
        """The verdict on another claim for ∂f/∂name, at the same draws."""
        key = f"{name}\0{text}"
        if key not in self.exprs:
            self.exprs[key] = parse_claim(self.problem, text, self.fns, self.direction)
            self.ev.add_claim(key, text)
        return judge(self.derivs[name], key, self.exprs[key], self.ev)


def check_claims(text: str, claims: dict[str, str], shapes: dict[str, tuple[Dim, ...]] | None = None,
                 wrt: list[str] | None = None, layout: str | None = None,
                 data_shapes: dict[str, tuple[int, ...]] | None = None, fns: dict[str, str] | None = None,
                 hessian: bool = False, steps: bool = False, direction: dict[str, str] | None = None,
                 structures: dict[str, str] | None = None, symmetric_gradient: str = "sym") -> list[Verdict]:
    """Judge each claimed derivative {wrt: claim text} of the formula `text`; the Hessian
    blocks with hessian; with direction {x: v}, the derivative along v (the Hessian-vector
    product with hessian), the claim written over f's symbols and v; structures {S: spd, ...}
    declared by -s (a where clause declares its own) with their gradient convention."""
    checker = ClaimChecker(text, shapes, wrt, layout, data_shapes, fns, hessian, claims, direction, structures,
                           symmetric_gradient)
    return [checker.verdict(name, steps) for name in claims]


# ----------------------------------------------------------------------------- check files
_SHAPE_SPEC = r"^\s*(scalar|\(\s*(\w+\s*(,\s*\w+\s*)*,?)?\)|\w+|\d+\s*[x×]\s*\d+)\s*$"


def is_claim(spec: str, problem: Problem) -> bool:
    """In a check file's `NAME: ...`, a shape is `()`, `(n,)`, `(m, n)`, `scalar`, `3x4` or a
    bare dimension name; anything else (or a bare name of one of the formula's symbols: the
    claim ∂f/∂x = a) is a claimed derivative."""
    import re

    if re.match(_SHAPE_SPEC, spec) is None:
        return True
    return spec.strip() in problem.symbols


def check_file_claim(entry: Entry, name: str, spec: str, details: dict[str, Any]) -> tuple[str, int] | None:
    """A derivative stated in a check file: None when correct, else (message, column)."""
    from ..errors import GradcliError

    column = _column_of(entry, name, spec)
    try:
        (verdict,) = check_claims(entry.text, {name: spec.strip()})
    except GradcliError as err:
        return f"claim ∂f/∂{name}: {err.message}", column + ((err.column or 1) - 1)
    details.setdefault("claims", {})[name] = verdict.to_json()
    return None if verdict.ok else (f"claim {verdict.label}: {verdict.message}", column)


def _column_of(entry: Entry, name: str, spec: str) -> int:
    """The 1-based column of the claim's first character in its file line."""
    import re
    from itertools import islice

    pattern = re.compile(rf"(?<!\w){re.escape(name)}\s*:\s*({re.escape(spec.strip())})")
    try:  # only on a failure: read up to that one line, never the whole file into memory
        with open(entry.path, encoding="utf-8", errors="replace") as fh:
            line = next(islice(fh, entry.line - 1, None))
        found = pattern.search(line, max(entry.expect_col - 1, 0))
        if found:
            return found.start(1) + 1
    except (OSError, StopIteration):
        pass
    found = pattern.search(entry.expect or "")  # standard input: assume one space after '=>'
    return entry.expect_col + 1 + found.start(1) if found else entry.expect_col
