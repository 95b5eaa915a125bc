"""Canonical forms of issue 19 in the derivative form: powers of one base merged (x/‖x‖²/‖x‖ =
x/‖x‖³), rational functions of one expression over a common denominator where that prints
shorter, common scalar factors pulled out of sums.  Each rewrite keeps the value (against numpy,
written here), and each printed formula is the short one and parses back to the same value."""

import warnings

import numpy as np
import pytest

import gradcli
from gradcli.language import simplify as S
from gradcli.language.render import render
from gradcli.language.shapes import Ty
from gradcli.numeric.evaluate import compile_graph

gradcli.analyze("x")  # the operator registry, before the constructors below

SHAPES = {"s": (), "a": (), "b": (), "x": (3,), "y": (3,)}
s, a, b = (S.sym(n, Ty(())) for n in "sab")
x, y = (S.sym(n, Ty((3,))) for n in "xy")
c = S.const
sqrt, norm, sqnorm = (lambda e: S.fn("sqrt", e)), (lambda e: S.fn("norm2", e)), (lambda e: S.fn("sqnorm", e))
n2 = np.linalg.norm


def run(e, values):
    program = compile_graph([e])
    program.allow_nonfinite = True
    return np.asarray(program.run(values)[0], float)


def reparsed(text, values):
    """The printed ASCII text, parsed back as a formula and evaluated."""
    p = gradcli.analyze(text, shapes={n: d for n, d in SHAPES.items() if n in values})
    return run(p.expr, values)


# (what is rewritten, built as written; its value in numpy; its derivative form, printed)
REWRITES = [
    (S.div(S.div(x, sqnorm(x)), norm(x)), lambda v: v["x"] / n2(v["x"]) ** 3, "x / ‖x‖³"),
    (S.mul(S.power(s, c(2.5)), sqrt(s)), lambda v: v["s"] ** 3, "s³"),
    (S.div(S.power(s, c(2.5)), S.power(s, c(0.75))), lambda v: v["s"] ** 1.75, "s^1.75"),
    (S.div(S.power(sqrt(s), c(3.0)), s), lambda v: np.sqrt(v["s"]), "√(s)"),
    (S.mul(sqrt(s), sqrt(s)), lambda v: v["s"], "s"),
    (S.mul(S.power(sqnorm(x), c(2.0)), norm(x)), lambda v: n2(v["x"]) ** 5, "‖x‖⁵"),
    (S.div(x, S.mul(sqrt(x), x)), lambda v: 1 / np.sqrt(v["x"]), "1 ⊘ √(x)"),  # element-wise
    # the pseudo-Huber Hessian's 1/√(1 + r²) − r²/√(1 + r²)³, over the common denominator
    # where the numerator collects: (1 + r² − r²)/√(1 + r²)³
    (S.sub(S.div(c(1.0), sqrt(S.add(c(1.0), S.power(a, c(2.0))))),
           S.div(S.power(a, c(2.0)), S.power(sqrt(S.add(c(1.0), S.power(a, c(2.0)))), c(3.0)))),
     lambda v: (1 + v["a"] ** 2) ** -1.5, "(1 + a²)^(−1.5)"),
    (S.add(S.div(x, s), S.mul(c(2.0), S.div(y, s))),  # over the same denominator
     lambda v: (v["x"] + 2 * v["y"]) / v["s"], "(x + 2y) / s"),
    (S.sub(S.mul(S.fn("exp", s), x), S.mul(S.fn("exp", s), y)),
     lambda v: np.exp(v["s"]) * (v["x"] - v["y"]), "exp(s)·(x − y)"),
]
# written as they are: not shorter over a common denominator, a numerator that does not
# collect (the textbooks keep p/s − q/s² apart), or not an identity
KEPT = [
    (S.sub(S.div(c(1.0), sqrt(x)), S.div(S.power(y, c(2.0)), S.power(sqrt(x), c(3.0)))),
     lambda v: 1 / np.sqrt(v["x"]) - v["y"] ** 2 / np.sqrt(v["x"]) ** 3),
    (S.sub(S.div(y, S.mul(s, a)), S.div(S.mul(b, x), S.mul(S.power(s, c(3.0)), a))),
     lambda v: v["y"] / (v["s"] * v["a"]) - v["b"] * v["x"] / (v["s"] ** 3 * v["a"])),
    (S.add(S.div(x, s), y), lambda v: v["x"] / v["s"] + v["y"]),
    (S.div(S.power(S.power(s, c(2.0)), c(0.5)), s), lambda v: np.abs(v["s"]) / v["s"]),  # |s|/s, not 1
]


# (built as written; its value in numpy; its derivative form, printed): one scalar d is the only
# denominator of both terms, to different powers: its lower power is pulled out of the sum,
# p/dʲ + q/dᵏ = (p + q/dᵏ⁻ʲ)/dʲ, the textbook's canonical form even where it is a little longer
CANONICAL = [
    (S.sub(S.div(a, s), S.div(b, S.power(s, c(2.0)))),
     lambda v: v["a"] / v["s"] - v["b"] / v["s"] ** 2, "(a − b / s) / s"),
    (S.sub(S.div(x, S.power(s, c(2.0))), S.div(y, S.power(s, c(3.0)))),
     lambda v: v["x"] / v["s"] ** 2 - v["y"] / v["s"] ** 3, "(x − y / s) / s²"),
    # the Jacobian of x/‖x‖: I/‖x‖ − xxᵀ/‖x‖³ = (I − xxᵀ/‖x‖²)/‖x‖ (‖x‖ and ‖x‖² one base)
    (S.sub(S.div(x, norm(x)), S.div(S.mul(a, y), S.power(norm(x), c(3.0)))),
     lambda v: v["x"] / n2(v["x"]) - v["a"] * v["y"] / n2(v["x"]) ** 3, "(x − a·y / ‖x‖²) / ‖x‖"),
    # √s and √s³: s^½ pulled out, (x − y/s)/√s
    (S.sub(S.div(x, sqrt(s)), S.div(y, S.power(sqrt(s), c(3.0)))),
     lambda v: v["x"] / np.sqrt(v["s"]) - v["y"] / np.sqrt(v["s"]) ** 3, "(x − y / s) / √(s)"),
]


@pytest.mark.parametrize("e, closed, printed", CANONICAL, ids=[p for _, _, p in CANONICAL])
def test_the_lower_power_of_a_common_scalar_denominator_is_pulled_out(e, closed, printed):
    (tidy,) = S.derivative_form([e], ())
    assert render(tidy) == printed
    assert S.printed_symbols(tidy) <= S.MAX_CANONICAL_GROWTH * S.printed_symbols(e)
    for seed in range(5):
        v = draws(e, seed)
        assert np.allclose(run(e, v), closed(v), rtol=1e-12)
        assert np.allclose(run(tidy, v), closed(v), rtol=1e-12)
        assert np.allclose(reparsed(render(tidy, "ascii"), v), closed(v), rtol=1e-12)


def test_constants_of_a_quotient_meet():
    """−2p/(2s) = −p/s and p/(4s) = 0.25·p/s: a constant factor of the denominator is the
    numerator's (derivatives only: a user's formula is echoed as typed)."""
    cases = [(S.div(S.mul(c(-2.0), x), S.mul(c(2.0), S.power(s, c(2.0)))), lambda v: -v["x"] / v["s"] ** 2, "−x / s²"),
             (S.div(S.mul(c(3.0), x), S.mul(c(4.0), s)), lambda v: 0.75 * v["x"] / v["s"], "0.75x / s")]
    for e, closed, printed in cases:
        (tidy,) = S.derivative_form([e], ())
        assert render(tidy) == printed
        for seed in range(3):
            v = draws(e, seed)
            assert np.allclose(run(tidy, v), closed(v), rtol=1e-12)
            assert np.allclose(reparsed(render(tidy, "ascii"), v), closed(v), rtol=1e-12)
    as_typed = gradcli.analyze("x/(2*s)", shapes={"x": (3,), "s": ()})
    assert render(as_typed.expr, "ascii").replace(" ", "") == "x/(2*s)"


def draws(e, seed, low=0.5, high=2.0):
    rng = np.random.default_rng(seed)
    names = {n.params[0] for n in S._unknown_first(e, ()) if n.op == "sym"}
    return {n: rng.uniform(low, high, size=SHAPES[n]) for n in names}


@pytest.mark.parametrize("e, closed, printed", REWRITES, ids=[p for _, _, p in REWRITES])
def test_each_rewrite_keeps_the_value_and_prints_short(e, closed, printed):
    (tidy,) = S.derivative_form([e], ())
    assert render(tidy) == printed
    assert S.printed_symbols(tidy) < S.printed_symbols(e)
    for seed in range(5):
        v = draws(e, seed)
        assert np.allclose(run(e, v), closed(v), rtol=1e-12)  # the oracle is the formula's
        assert np.allclose(run(tidy, v), closed(v), rtol=1e-12)
        assert np.allclose(reparsed(render(tidy, "ascii"), v), closed(v), rtol=1e-12)


@pytest.mark.parametrize("e, closed", KEPT)
def test_what_is_not_shorter_or_not_an_identity_is_kept(e, closed):
    (tidy,) = S.derivative_form([e], ())
    assert tidy is e
    for seed in range(5):
        v = draws(e, seed, -2.0, 2.0)  # (s²)^½/s is −1 for s < 0
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # √x is nan where x < 0, in both
            assert np.allclose(run(tidy, v), closed(v), equal_nan=True)


def test_merging_powers_never_narrows_the_domain():
    """√s·√s = s is defined for s < 0, where √s·√s was not: the derivative form may extend
    where a formula is defined (as x/x = 1 does), never narrow it; (s²)^½·s is |s|·s."""
    (e,) = S.derivative_form([S.mul(S.power(S.power(s, c(2.0)), c(0.5)), s)], ())
    assert run(e, {"s": np.float64(-1.5)}) == pytest.approx(-2.25)


# ------------------------------------------------------------- derivatives that read short
rng = np.random.default_rng(19)


def cosine_hessian(v):
    x_, y_ = v["x"], v["y"]
    nx, ny, d = n2(x_), n2(y_), x_ @ y_
    return (-(np.outer(x_, y_) + np.outer(y_, x_)) / (nx ** 3 * ny) - d * np.eye(len(x_)) / (nx ** 3 * ny)
            + 3 * d * np.outer(x_, x_) / (nx ** 5 * ny))


# (formula; gradient or Hessian; printed; its value in numpy; the textbook's form, in ASCII;
#  how much longer than the textbook's the print may be: none, or issue 19's bound 1.5)
DERIVATIVES = [
    ("1/norm(x) wrt x", "grad", "−x / ‖x‖³", lambda v: -v["x"] / n2(v["x"]) ** 3, "-x/||x||^3", 1.0),
    ("1/norm(x) wrt x", "hess", "(3xxᵀ / ‖x‖² − I) / ‖x‖³",
     lambda v: (3 * np.outer(v["x"], v["x"]) - n2(v["x"]) ** 2 * np.eye(4)) / n2(v["x"]) ** 5,
     "(3*x@x' - ||x||^2*eye(m))/||x||^5", 1.5),  # ‖x‖³ pulled out: canonical, a little longer
    ("exp(-norm(x-y)^2/2) wrt x", "hess", "exp(−0.5‖x − y‖²)·((x − y)(x − y)ᵀ − I)",
     lambda v: np.exp(-n2(v["x"] - v["y"]) ** 2 / 2) * (np.outer(v["x"] - v["y"], v["x"] - v["y"]) - np.eye(4)),
     "exp(-||x - y||^2/2)*((x - y)@(x - y)' - eye(m))", 1.0),
    ("sum(sqrt(1 + (X@w - y)^2)) wrt w", "hess", "Xᵀ diag((1 + (Xw − y)²)^(−1.5)) X",
     lambda v: v["X"].T @ np.diag((1 + (v["X"] @ v["w"] - v["y"]) ** 2) ** -1.5) @ v["X"],
     "X'@diag((1 + (X@w - y)^2)^-1.5)@X", 1.0),
    ("dot(x, y)/(norm2(x)*norm2(y)) wrt x", "grad", "y / (‖x‖·‖y‖) − xᵀy·x / (‖y‖·‖x‖³)",
     lambda v: v["y"] / (n2(v["x"]) * n2(v["y"])) - (v["x"] @ v["y"]) * v["x"] / (n2(v["x"]) ** 3 * n2(v["y"])),
     "y/(||x||*||y||) - x'@y*x/(||x||^3*||y||)", 1.0),
    ("dot(x, y)/(norm2(x)*norm2(y)) wrt x", "hess", None, cosine_hessian,
     "-(x@y' + y@x')/(||x||^3*||y||) - x'@y*eye(m)/(||x||^3*||y||) + 3*x'@y*x@x'/(||x||^5*||y||)", 1.5),
]


@pytest.mark.parametrize("text, kind, printed, closed, textbook, bound", DERIVATIVES)
def test_derivatives_print_short_and_parse_back_to_their_values(text, kind, printed, closed, textbook, bound):
    shapes = {"X": (5, 3), "w": (3,), "y": (5,)} if "X" in text else {"x": (4,), "y": (4,)}
    (d,) = getattr(gradcli.analyze(text), "hessians" if kind == "hess" else "derivatives")()
    if printed is not None:
        assert d.text() == printed  # as gradcli prints it, with symbolic shapes
    numeric = gradcli.analyze(text, shapes=shapes)
    (d,) = numeric.hessians() if kind == "hess" else numeric.derivatives()
    book = gradcli.analyze(textbook.replace("eye(m)", "eye(4)"), shapes=shapes).expr
    assert len(d.text("ascii")) <= bound * len(render(book, "ascii"))  # as long as the textbook's
    for _ in range(3):
        v = {n: rng.uniform(0.5, 2.0, size=shapes[n]) for n in shapes}
        expected = closed(v)
        assert np.allclose(run(book, v), expected, rtol=1e-10)  # the textbook's form, as a check
        assert np.allclose(run(d.expr, v), expected, rtol=1e-10)
        back = gradcli.analyze(d.text("ascii"), shapes=shapes).expr
        assert np.allclose(run(back, v), expected, rtol=1e-10)
