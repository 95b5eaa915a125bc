"""Issue 19's measuring instrument: a table of textbook derivatives, each checked numerically.

Every row is one derivative as a textbook prints it, written in gradcli's own input language so
that it parses with gradcli's parser and can be compared with what gradcli prints
(tests/textbook_compare.py; figures: `python -m bench --part textbook`).  A row holds

- `formula`: what a user types (with `wrt`, and `where` where the shapes need it),
- `command`: "grad" (gradient or Jacobian, gradcli's default layout) or "hess",
- `textbook`: the derivative as the source prints it (`I` is `eye(n)`, `𝟙` is `ones(n)`, `Xᵀ`
  is `X'`, `X⁻¹` is `inv(X)`),
- `source`: where the textbook form comes from (the Matrix Cookbook, Petersen & Pedersen 2012,
  by equation number; a loss by its name and the book that derives it),
- `alternatives`: other forms of the same derivative that other textbooks print, each with ITS
  OWN source (`∂Tr(AX⁻¹B)/∂X`: the Cookbook prints both `−(X⁻¹BAX⁻¹)ᵀ` and `−X⁻ᵀAᵀBᵀX⁻ᵀ`;
  `∂LSE/∂x`: `exp(x)/Σexp(x)` or, named, `softmax(x)`).  gradcli matches the row when it prints any of its forms; the length ratio is
  taken against the shortest form; every form is checked numerically like the first,
- `f`: an independent numpy implementation of the formula (arguments by symbol name), the
  oracle that central differences are taken of (tests/test_textbook_table.py),
- `domain`: how a symbol must be drawn for the formula to be defined or for the textbook form
  to hold (DOMAINS), `sizes`: sizes for named dimensions where the default ones do not fit.

The textbook forms were written from the sources, not from gradcli's output: a row where
gradcli prints something else is a row the figures count as different, which is the point.
Where a textbook assumes a structure gradcli cannot know (a symmetric A, one-hot labels,
y ∈ {±1} squared away), the row uses the general form the same source gives, or is left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gradcli

GROUPS = ("cookbook", "loss", "jacobian", "hessian")


@dataclass(frozen=True)
class Row:
    formula: str
    command: str  # "grad" | "hess"
    textbook: str
    source: str
    f: Callable[..., Any]
    group: str
    domain: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    alternatives: tuple[tuple[str, str], ...] = ()  # (form, its source), other textbooks' forms

    @property
    def forms(self) -> tuple[tuple[str, str], ...]:
        """Every textbook form of the derivative with its source, the row's own first."""
        return ((self.textbook, self.source), *self.alternatives)

    @property
    def label(self) -> str:
        return f"{self.command} {self.formula}"


# ------------------------------------------------------------------ numpy, written out here
inv, det, nrm, eye = np.linalg.inv, np.linalg.det, np.linalg.norm, np.eye


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def lse(z):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def logdet(a):
    sign, value = np.linalg.slogdet(a)
    assert sign > 0, "logdet of a matrix with det <= 0: the row's domain is wrong"
    return value


def relu(z):
    return np.maximum(z, 0.0)


# ------------------------------------------------------------------ data domains
DOMAINS = {
    "normal": "standard normal entries; a square matrix gets n·I added (invertible, well conditioned)",
    "spd": "GGᵀ/n + I: symmetric positive definite",
    "pos": "uniform in [0.5, 1.5]",
    "big": "uniform in [5, 6] (a barrier's slack stays positive)",
    "small": "0.3 × standard normal (exp and kernels stay O(1))",
    "labels01": "labels 0 or 1",
    "pm1": "labels −1 or +1",
}


def draw(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        a = rng.normal(size=shape)
        if len(shape) == 2 and shape[0] == shape[1]:
            a = a + shape[0] * np.eye(shape[0])
        return a
    if kind == "spd":
        g = rng.normal(size=shape)
        return g @ g.T / shape[0] + np.eye(shape[0])
    if kind == "pos":
        return rng.uniform(0.5, 1.5, size=shape)
    if kind == "big":
        return rng.uniform(5.0, 6.0, size=shape)
    if kind == "small":
        return 0.3 * rng.normal(size=shape)
    if kind == "labels01":
        return rng.integers(0, 2, size=shape).astype(float)
    if kind == "pm1":
        return 2.0 * rng.integers(0, 2, size=shape) - 1.0
    raise ValueError(f"unknown domain {kind!r}")


DEFAULT_SIZES = (3, 4, 5, 2, 6)  # named dimensions in order of first appearance


def shapes_and_sizes(row: Row) -> tuple[dict[str, tuple[Any, ...]], dict[str, int]]:
    """The symbols' (named) shapes as gradcli infers them from the formula, and a size for each
    named dimension: row.sizes, else 3, 4, 5, … in order of first appearance."""
    problem = gradcli.analyze(row.formula)
    shapes = {name: s.shape for name, s in problem.symbols.items()}
    sizes = dict(row.sizes)
    free = iter(k for k in DEFAULT_SIZES if k not in sizes.values())
    for shape in shapes.values():
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                sizes[d] = next(free)
    return shapes, sizes


def arrays(row: Row, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Values for every symbol of the row (drawn in its domain), and the dimension sizes."""
    shapes, sizes = shapes_and_sizes(row)
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in shapes[name])
        values[name] = np.asarray(draw(row.domain.get(name, "normal"), shape, rng), dtype=float)
    return values, sizes


def call(fn: Callable[..., Any], values: dict[str, np.ndarray]) -> np.ndarray:
    """fn applied to the values its parameters name."""
    names = inspect.signature(fn).parameters
    return np.asarray(fn(**{n: values[n] for n in names}), dtype=float)


def wrt(row: Row) -> str:
    return row.formula.split(" wrt ")[1].split(" where ")[0].strip()


ROWS: list[Row] = []


def add(group: str, command: str, formula: str, textbook: str, source: str, f: Callable[..., Any],
        domain: dict[str, str] | None = None, sizes: dict[str, int] | None = None,
        also: tuple[tuple[str, str], ...] = ()) -> None:
    """One row; `also`: (form, source) pairs of other textbooks' forms of the same derivative."""
    ROWS.append(Row(formula, command, textbook, source, f, group, domain or {}, sizes or {}, also))


MC = "Matrix Cookbook"  # Petersen & Pedersen, version of November 15, 2012
MC_TR, MC_DET, MC_INV = f"{MC} §2.5 (traces)", f"{MC} §2.1.2 (determinants)", f"{MC} §2.2 (inverses)"
MC_QF, MC_NORM = f"{MC} §2.4 (linear and quadratic forms)", f"{MC} §2.6–2.7 (norms)"
SQ3 = "where A: (n, n), X: (n, n), B: (n, n)"
LSE = "Wikipedia, “LogSumExp” (∂LSE/∂xᵢ = exp xᵢ / Σⱼ exp xⱼ)"
SOFTMAX_IS_GRAD = "Wikipedia, “Softmax function” (the softmax is the gradient of LogSumExp)"

# ------------------------------------------------------------------ the Matrix Cookbook
# traces (§2.5)
add("cookbook", "grad", "tr(X) wrt X", "eye(m)", f"{MC_TR}, ∂Tr(X)/∂X = I", lambda X: np.trace(X))
add("cookbook", "grad", "tr(X@A) wrt X", "A'", f"{MC_TR}", lambda X, A: np.trace(X @ A))
add("cookbook", "grad", "tr(A@X) wrt X", "A'", f"{MC_TR}, Tr(AX) = Tr(XA)", lambda X, A: np.trace(A @ X))
add("cookbook", "grad", "tr(A@X@B) wrt X", "A'@B'", f"{MC_TR}", lambda A, X, B: np.trace(A @ X @ B))
add("cookbook", "grad", "tr(A@X'@B) wrt X", "B@A", f"{MC_TR}", lambda A, X, B: np.trace(A @ X.T @ B))
add("cookbook", "grad", "tr(X'@A) wrt X", "A", f"{MC_TR}", lambda X, A: np.trace(X.T @ A))
add("cookbook", "grad", "tr(A@X') wrt X", "A", f"{MC_TR}", lambda A, X: np.trace(A @ X.T))
add("cookbook", "grad", "tr(X@X) wrt X", "2*X'", f"{MC_TR}", lambda X: np.trace(X @ X))
add("cookbook", "grad", "tr(X@X@B) wrt X", "(X@B + B@X)'", f"{MC_TR}", lambda X, B: np.trace(X @ X @ B))
add("cookbook", "grad", "tr(X'@B@X) wrt X", "B@X + B'@X", f"{MC_TR}", lambda X, B: np.trace(X.T @ B @ X))
add("cookbook", "grad", "tr(X@B@X') wrt X", "X@B' + X@B", f"{MC_TR}", lambda X, B: np.trace(X @ B @ X.T))
add("cookbook", "grad", "tr(A@X@B@X) wrt X", "A'@X'@B' + B'@X'@A'", f"{MC_TR}",
    lambda A, X, B: np.trace(A @ X @ B @ X), sizes={"n": 3})
add("cookbook", "grad", "tr(X'@X) wrt X", "2*X", f"{MC_TR}", lambda X: np.trace(X.T @ X))
add("cookbook", "grad", "tr(X@X') wrt X", "2*X", f"{MC_TR}, Tr(XXᵀ) = Tr(XᵀX)", lambda X: np.trace(X @ X.T))
add("cookbook", "grad", "tr(B'@X'@C@X@B) wrt X", "C'@X@B@B' + C@X@B@B'", f"{MC_TR}",
    lambda B, X, C: np.trace(B.T @ X.T @ C @ X @ B))
add("cookbook", "grad", "tr(X'@B@X@C) wrt X", "B@X@C + B'@X@C'", f"{MC_TR}",
    lambda X, B, C: np.trace(X.T @ B @ X @ C))
add("cookbook", "grad", "tr(A@X@B@X'@C) wrt X", "A'@C'@X@B' + C@A@X@B", f"{MC_TR}",
    lambda A, X, B, C: np.trace(A @ X @ B @ X.T @ C))
add("cookbook", "grad", "tr(A@X'@B@X@C) wrt X", "B'@X@A'@C' + B@X@C@A", f"{MC_TR} with X and Xᵀ exchanged",
    lambda A, X, B, C: np.trace(A @ X.T @ B @ X @ C))
add("cookbook", "grad", "tr(A@inv(X)@B) wrt X", "-(inv(X)@B@A@inv(X))'", f"{MC_TR}",
    lambda A, X, B: np.trace(A @ inv(X) @ B), sizes={"n": 3},
    also=(("-inv(X)'@A'@B'@inv(X)'", f"{MC_TR}, the same identity's second form −X⁻ᵀAᵀBᵀX⁻ᵀ"),))
add("cookbook", "grad", "tr(inv(X)) wrt X", "-(inv(X)@inv(X))'", f"{MC_TR} with A = B = I",
    lambda X: np.trace(inv(X)), also=(("-inv(X)'@inv(X)'", f"{MC_TR}, second form −X⁻ᵀAᵀBᵀX⁻ᵀ, A = B = I"),))
add("cookbook", "grad", "tr(X'@A@X) wrt X", "A@X + A'@X", f"{MC_TR}", lambda X, A: np.trace(X.T @ A @ X))
add("cookbook", "grad", "sum(X@u) wrt X", "ones(m)@u'", f"{MC_QF}, ∂aᵀXb/∂X with a = 𝟙", lambda X, u: np.sum(X @ u))
# determinants (§2.1.2)
add("cookbook", "grad", "det(X) wrt X", "det(X)*inv(X)'", f"{MC_DET}", lambda X: det(X))
add("cookbook", "grad", f"det(A@X@B) wrt X {SQ3}", "det(A@X@B)*inv(X)'", f"{MC_DET}, square A, B",
    lambda A, X, B: det(A @ X @ B))
add("cookbook", "grad", "det(X@X@X) wrt X", "3*det(X@X@X)*inv(X)'", f"{MC_DET}, k = 3",
    lambda X: det(X @ X @ X))
add("cookbook", "grad", "det(X@X) wrt X", "2*det(X@X)*inv(X)'", f"{MC_DET}, k = 2", lambda X: det(X @ X))
add("cookbook", "grad", "det(inv(X)) wrt X", "-det(inv(X))*inv(X)'", f"{MC_DET}, ∂det(X⁻¹)/∂X",
    lambda X: det(inv(X)))
add("cookbook", "grad", "det(X'@A@X) wrt X where X: (n, k), A: (n, n)",
    "det(X'@A@X)*(A@X@inv(X'@A@X) + A'@X@inv(X'@A'@X))", f"{MC_DET}, det(XᵀAX), general A",
    lambda X, A: det(X.T @ A @ X), domain={"A": "spd"}, sizes={"n": 4, "k": 2})
add("cookbook", "grad", "logdet(X) wrt X", "inv(X)'", f"{MC_DET}", lambda X: logdet(X), domain={"X": "spd"})
add("cookbook", "grad", "log(det(X)) wrt X", "inv(X)'", f"{MC_DET}", lambda X: logdet(X), domain={"X": "spd"})
add("cookbook", "grad", "log(abs(det(X))) wrt X", "inv(X)'", f"{MC_DET}, ln|det X|",
    lambda X: np.log(abs(det(X))))
add("cookbook", "grad", "log(det(inv(X))) wrt X", "-inv(X)'", f"{MC_DET}, ln det(X⁻¹) = −ln det X",
    lambda X: -logdet(X), domain={"X": "spd"})
add("cookbook", "grad", "logdet(X'@X) wrt X where X: (m, n)", "2*X@inv(X'@X)", f"{MC_DET}, 2(X⁺)ᵀ",
    lambda X: logdet(X.T @ X), sizes={"m": 4, "n": 2})
add("cookbook", "grad", f"logdet(A@X@B) wrt X {SQ3}", "inv(X)'", f"{MC_DET}: det(AXB) and ln det, the factors split",
    lambda A, X, B: logdet(A @ X @ B), domain={"A": "spd", "X": "spd", "B": "spd"})
add("cookbook", "grad", "log(abs(det(X@X))) wrt X", "2*inv(X)'", f"{MC_DET}: det(Xᵏ) and ln|det X|, k = 2",
    lambda X: np.log(abs(det(X @ X))))
# inverses (§2.2)
add("cookbook", "grad", "u'@inv(X)@v wrt X", "-inv(X)'@u@v'@inv(X)'", f"{MC_INV}",
    lambda u, X, v: u @ inv(X) @ v)
add("cookbook", "grad", "x'@inv(A)@x wrt A", "-inv(A)'@x@x'@inv(A)'", f"{MC_INV} with a = b = x",
    lambda x, A: x @ inv(A) @ x)
# linear and quadratic forms (§2.4)
add("cookbook", "grad", "u'@x wrt x", "u", f"{MC_QF}", lambda u, x: u @ x)
add("cookbook", "grad", "x'@u wrt x", "u", f"{MC_QF}", lambda u, x: x @ u)
add("cookbook", "grad", "u'@X@v wrt X", "u@v'", f"{MC_QF}", lambda u, X, v: u @ X @ v)
add("cookbook", "grad", "u'@X'@v wrt X", "v@u'", f"{MC_QF}", lambda u, X, v: u @ X.T @ v)
add("cookbook", "grad", "u'@X'@X@v wrt X", "X@(u@v' + v@u')", f"{MC_QF}", lambda u, X, v: u @ X.T @ X @ v)
add("cookbook", "grad", "(B@x + p)'@C@(D@x + q) wrt x", "B'@C@(D@x + q) + D'@C'@(B@x + p)", f"{MC_QF}",
    lambda B, x, p, C, D, q: (B @ x + p) @ C @ (D @ x + q))
add("cookbook", "grad", "(X@u + v)'@D@(X@u + v) wrt X", "(D + D')@(X@u + v)@u'", f"{MC_QF}",
    lambda X, u, v, D: (X @ u + v) @ D @ (X @ u + v))
add("cookbook", "grad", "x'@B@x wrt x", "(B + B')@x", f"{MC_QF}", lambda x, B: x @ B @ x)
add("cookbook", "grad", "x'@x wrt x", "2*x", f"{MC_QF} with B = I", lambda x: x @ x)
add("cookbook", "grad", "(x - s)'@W@(x - s) wrt x", "(W + W')@(x - s)", f"{MC_QF}, general W",
    lambda x, s, W: (x - s) @ W @ (x - s))
add("cookbook", "grad", "(x - A@s)'@W@(x - A@s) wrt s", "-A'@(W + W')@(x - A@s)", f"{MC_QF}, general W",
    lambda x, A, s, W: (x - A @ s) @ W @ (x - A @ s))
add("cookbook", "grad", "(x - A@s)'@W@(x - A@s) wrt x", "(W + W')@(x - A@s)", f"{MC_QF}, general W",
    lambda x, A, s, W: (x - A @ s) @ W @ (x - A @ s))
add("cookbook", "grad", "x'@A@x/(x'@x) wrt x", "((A + A')@x - 2*(x'@A@x)/(x'@x)*x)/(x'@x)",
    "Rayleigh quotient, general A (Horn & Johnson §4.2 with A + Aᵀ)", lambda x, A: x @ A @ x / (x @ x))
# norms (§2.6, §10)
add("cookbook", "grad", "||x|| wrt x", "x/||x||", f"{MC_NORM}", lambda x: nrm(x))
add("cookbook", "grad", "||x - u|| wrt x", "(x - u)/||x - u||", f"{MC_NORM}", lambda x, u: nrm(x - u))
add("cookbook", "grad", "1/||x|| wrt x", "-x/||x||^3",
    "∇(1/r) = −r̂/r² = −𝐫/r³ (Griffiths, Introduction to Electrodynamics, Problem 1.13); issue 19",
    lambda x: 1 / nrm(x))
add("cookbook", "grad", "||x||^2 wrt x", "2*x", f"{MC_NORM}", lambda x: x @ x)
add("cookbook", "grad", "sqrt(x'@x) wrt x", "x/sqrt(x'@x)", f"{MC_NORM}, ‖x‖ = √(xᵀx)", lambda x: np.sqrt(x @ x))
add("cookbook", "grad", "||X||_F^2 wrt X", "2*X", f"{MC_NORM}, ∂‖X‖²_F/∂X", lambda X: np.sum(X * X))
add("cookbook", "grad", "||A||_F wrt A", "A/||A||_F", f"{MC_NORM}, ∂‖X‖_F/∂X", lambda A: nrm(A))
add("cookbook", "grad", "||A@X - Y||_F^2 wrt X", "2*A'@(A@X - Y)", f"{MC_NORM}, least squares, matrix",
    lambda A, X, Y: np.sum((A @ X - Y) ** 2))
add("cookbook", "grad", "||M - U@V'||_F^2 wrt U", "-2*(M - U@V')@V", "matrix factorisation (Koren et al. 2009)",
    lambda M, U, V: np.sum((M - U @ V.T) ** 2))
add("cookbook", "grad", "||M - U@V'||_F^2 wrt V", "-2*(M - U@V')'@U", "matrix factorisation (Koren et al. 2009)",
    lambda M, U, V: np.sum((M - U @ V.T) ** 2))

# ------------------------------------------------------------------ ML losses (gradients)
ESL = "Hastie, Tibshirani & Friedman, ESL"
add("loss", "grad", "||y - X@theta||^2 wrt theta", "-2*X'@(y - X@theta)", f"least squares, {ESL}",
    lambda X, y, theta: np.sum((y - X @ theta) ** 2))
add("loss", "grad", "||A@x - y||^2 wrt x", "2*A'@(A@x - y)", "least squares, Boyd & Vandenberghe",
    lambda A, x, y: np.sum((A @ x - y) ** 2))
add("loss", "grad", "0.5*||X@w - y||^2 wrt w", "X'@(X@w - y)", "least squares, Bishop PRML",
    lambda X, w, y: 0.5 * np.sum((X @ w - y) ** 2))
add("loss", "grad", "||y - X@w||^2 + lam*||w||^2 wrt w", "-2*X'@(y - X@w) + 2*lam*w", f"ridge, {ESL}",
    lambda X, y, w, lam: np.sum((y - X @ w) ** 2) + lam * (w @ w), domain={"lam": "pos"})
add("loss", "grad", "0.5*||X@w - y||^2 + 0.5*lam*||w||^2 wrt w", "X'@(X@w - y) + lam*w", "ridge, Bishop PRML",
    lambda X, w, y, lam: 0.5 * np.sum((X @ w - y) ** 2) + 0.5 * lam * (w @ w), domain={"lam": "pos"})
add("loss", "grad", "||X@W - Y||_F^2 wrt W", "2*X'@(X@W - Y)", "multi-output least squares",
    lambda X, W, Y: np.sum((X @ W - Y) ** 2))
add("loss", "grad", "sum((y - X@w)^2)/(2*sigma^2) wrt w", "-X'@(y - X@w)/sigma^2",
    "Gaussian likelihood, Bishop PRML", lambda y, X, w, sigma: np.sum((y - X @ w) ** 2) / (2 * sigma ** 2),
    domain={"sigma": "pos"})
add("loss", "grad", "-sum(y*log(sigmoid(X@w)) + (1 - y)*log(1 - sigmoid(X@w))) wrt w", "X'@(sigmoid(X@w) - y)",
    "logistic regression, 0/1 labels, Bishop PRML",
    lambda y, X, w: -np.sum(y * np.log(sig(X @ w)) + (1 - y) * np.log(1 - sig(X @ w))), domain={"y": "labels01"})
add("loss", "grad", "sum(log(1 + exp(-y*(X@w)))) wrt w", "-X'@(y*sigmoid(-y*(X@w)))",
    "logistic regression, ±1 labels, Murphy PML1 ch. 10",
    lambda y, X, w: np.sum(np.log1p(np.exp(-y * (X @ w)))), domain={"y": "pm1"})
add("loss", "grad", "sum(softplus(-y*(X@w))) wrt w", "-X'@(y*sigmoid(-y*(X@w)))",
    "logistic regression, ±1 labels, softplus form",
    lambda y, X, w: np.sum(np.log1p(np.exp(-y * (X @ w)))), domain={"y": "pm1"})
add("loss", "grad", "sum(softplus(X@w) - y*(X@w)) wrt w", "X'@(sigmoid(X@w) - y)",
    "logistic regression, 0/1 labels, logit form",
    lambda X, w, y: np.sum(np.log1p(np.exp(X @ w)) - y * (X @ w)), domain={"y": "labels01"})
add("loss", "grad", "logsumexp(z) - y'@z wrt z", "softmax(z) - y", "softmax cross-entropy, ∂E/∂aₖ = yₖ − tₖ (Bishop PRML §4.3.4)",
    lambda z, y: lse(z) - y @ z)
add("loss", "grad", "logsumexp(W@x) - y'@W@x wrt x", "W'@(softmax(W@x) - y)", "multinomial logistic, input gradient",
    lambda W, x, y: lse(W @ x) - y @ W @ x)
add("loss", "grad", "logsumexp(W@x) - y'@W@x wrt W", "(softmax(W@x) - y)@x'", "multinomial logistic, Bishop PRML",
    lambda W, x, y: lse(W @ x) - y @ W @ x)
add("loss", "grad", "logsumexp(x) wrt x", "softmax(x)", SOFTMAX_IS_GRAD, lambda x: lse(x),
    also=(("exp(x)/sum(exp(x))", LSE),))
add("loss", "grad", "log(sum(exp(x))) wrt x", "exp(x)/sum(exp(x))", LSE,
    lambda x: np.log(np.sum(np.exp(x))), also=(("softmax(x)", SOFTMAX_IS_GRAD),))
add("loss", "grad", "logsumexp(X@w) wrt w", "X'@softmax(X@w)", "log-sum-exp of an affine map", lambda X, w: lse(X @ w))
add("loss", "grad", "sum(sqrt(1 + (X@w - y)^2)) wrt w", "X'@((X@w - y)/sqrt(1 + (X@w - y)^2))",
    "pseudo-Huber, δ = 1 (Hartley & Zisserman A6.8)", lambda X, w, y: np.sum(np.sqrt(1 + (X @ w - y) ** 2)))
add("loss", "grad", "sum(sqrt(1 + x^2) - 1) wrt x", "x/sqrt(1 + x^2)", "pseudo-Huber of a residual vector",
    lambda x: np.sum(np.sqrt(1 + x ** 2) - 1))
add("loss", "grad", "sum(relu(1 - y*(X@w))^2) wrt w", "-2*X'@(y*relu(1 - y*(X@w)))",
    "squared hinge (L2-SVM), Chang, Hsieh & Lin 2008", lambda y, X, w: np.sum(relu(1 - y * (X @ w)) ** 2),
    domain={"y": "pm1"})
add("loss", "grad", "sum(exp(X@w) - y*(X@w)) wrt w", "X'@(exp(X@w) - y)", "Poisson regression, McCullagh & Nelder §6",
    lambda X, w, y: np.sum(np.exp(X @ w) - y * (X @ w)), domain={"X": "small", "y": "pos"})
add("loss", "grad", "sum(log(1 + (X@w - y)^2)) wrt w", "X'@(2*(X@w - y)/(1 + (X@w - y)^2))",
    "Cauchy (Lorentzian) loss", lambda X, w, y: np.sum(np.log(1 + (X @ w - y) ** 2)))
add("loss", "grad", "sum(log(cosh(X@w - y))) wrt w", "X'@tanh(X@w - y)", "log-cosh loss",
    lambda X, w, y: np.sum(np.log(np.cosh(X @ w - y))))
add("loss", "grad", "0.5*(x - mu)'@inv(S)@(x - mu) wrt mu", "-0.5*(inv(S) + inv(S)')@(x - mu)",
    f"Gaussian NLL, mean, general Σ ({MC_QF})", lambda x, mu, S: 0.5 * (x - mu) @ inv(S) @ (x - mu),
    domain={"S": "spd"})
add("loss", "grad", "0.5*logdet(S) + 0.5*(x - mu)'@inv(S)@(x - mu) wrt S",
    "0.5*inv(S)' - 0.5*inv(S)'@(x - mu)@(x - mu)'@inv(S)'", f"Gaussian NLL, covariance ({MC_DET}, {MC_INV})",
    lambda x, mu, S: 0.5 * logdet(S) + 0.5 * (x - mu) @ inv(S) @ (x - mu), domain={"S": "spd"})
add("loss", "grad", "dot(x, y)/(norm2(x)*norm2(y)) wrt x", "y/(||x||*||y||) - (x'@y)*x/(||x||^3*||y||)",
    "cosine similarity", lambda x, y: x @ y / (nrm(x) * nrm(y)))
add("loss", "grad", "x'@y/(||x||*||y||) wrt x", "y/(||x||*||y||) - (x'@y)*x/(||x||^3*||y||)",
    "cosine similarity", lambda x, y: x @ y / (nrm(x) * nrm(y)))
add("loss", "grad", "exp(-gamma*||x - y||^2) wrt x", "-2*gamma*exp(-gamma*||x - y||^2)*(x - y)",
    "RBF kernel, Schölkopf & Smola", lambda gamma, x, y: np.exp(-gamma * np.sum((x - y) ** 2)),
    domain={"gamma": "pos", "x": "small", "y": "small"})
add("loss", "grad", "exp(-||x - y||^2/(2*sigma^2)) wrt x", "-exp(-||x - y||^2/(2*sigma^2))*(x - y)/sigma^2",
    "Gaussian kernel, Rasmussen & Williams §4.2",
    lambda x, y, sigma: np.exp(-np.sum((x - y) ** 2) / (2 * sigma ** 2)), domain={"sigma": "pos", "x": "small", "y": "small"})
add("loss", "grad", "0.5*||tanh(X@W1)@w2 - y||^2 wrt w2", "tanh(X@W1)'@(tanh(X@W1)@w2 - y)",
    "two-layer net, output weights, Bishop PRML §5.3", lambda X, W1, w2, y: 0.5 * np.sum((np.tanh(X @ W1) @ w2 - y) ** 2),
    domain={"X": "small"})
add("loss", "grad", "0.5*||tanh(X@W1)@w2 - y||^2 wrt W1",
    "X'@(((tanh(X@W1)@w2 - y)@w2')*(1 - tanh(X@W1)^2))", "two-layer net, backpropagation, Bishop PRML",
    lambda X, W1, w2, y: 0.5 * np.sum((np.tanh(X @ W1) @ w2 - y) ** 2), domain={"X": "small"})
add("loss", "grad", "sum(tanh(W@x)) wrt W", "(1 - tanh(W@x)^2)@x'", "one tanh layer",
    lambda W, x: np.sum(np.tanh(W @ x)), domain={"W": "small"})
add("loss", "grad", "u'@tanh(W@x) wrt W", "(u*(1 - tanh(W@x)^2))@x'", "one tanh layer, weighted output",
    lambda u, W, x: u @ np.tanh(W @ x), domain={"W": "small"})
add("loss", "grad", "u'@softmax(W@x) wrt x", "W'@(diag(softmax(W@x)) - softmax(W@x)@softmax(W@x)')@u",
    "attention-like softmax(Wx), input gradient", lambda u, W, x: u @ softmax(W @ x), domain={"W": "small"})
add("loss", "grad", "sum(exp(x)) wrt x", "exp(x)", "exponential sum", lambda x: np.sum(np.exp(x)))
add("loss", "grad", "sum(x*log(x)) wrt x", "log(x) + 1", "negative entropy, Boyd & Vandenberghe §3.1.5",
    lambda x: np.sum(x * np.log(x)), domain={"x": "pos"})
add("loss", "grad", "sum(sigmoid(x)) wrt x", "sigmoid(x)*(1 - sigmoid(x))", "logistic sigmoid, Bishop PRML",
    lambda x: np.sum(sig(x)))
add("loss", "grad", "-sum(log(y - A@x)) wrt x", "A'@(1/(y - A@x))", "log barrier, Boyd & Vandenberghe",
    lambda y, A, x: -np.sum(np.log(y - A @ x)), domain={"y": "big", "A": "small", "x": "small"})
add("loss", "grad", "0.5*x'@A@x - u'@x wrt x", "0.5*(A + A')@x - u", "quadratic objective, Nocedal & Wright §5.1",
    lambda x, A, u: 0.5 * x @ A @ x - u @ x)
add("loss", "grad", "exp(u'@x) wrt x", "exp(u'@x)*u", "exponential of a linear form", lambda u, x: np.exp(u @ x),
    domain={"u": "small"})
add("loss", "grad", "log(u'@x) wrt x", "u/(u'@x)", "logarithm of a linear form", lambda u, x: np.log(u @ x),
    domain={"u": "pos", "x": "pos"})
add("loss", "grad", "sqrt(1 + ||x||^2) wrt x", "x/sqrt(1 + ||x||^2)", "smoothed norm", lambda x: np.sqrt(1 + x @ x))

# ------------------------------------------------------------------ Jacobians (numerator layout)
add("jacobian", "grad", "A@x wrt x", "A", f"{MC_QF}, ∂Ax/∂x", lambda A, x: A @ x)
add("jacobian", "grad", "x'@A wrt x", "A'", "issue 19: a row vector xᵀA, numerator layout", lambda x, A: x @ A)
add("jacobian", "grad", "(A@x)' wrt x", "A", "a row vector (Ax)ᵀ, numerator layout", lambda A, x: A @ x)
add("jacobian", "grad", "x'@A@B wrt x", "B'@A'", "a row vector xᵀAB, numerator layout", lambda x, A, B: x @ A @ B)
add("jacobian", "grad", "W@x + v wrt v", "eye(m)", "an affine map", lambda W, x, v: W @ x + v)
add("jacobian", "grad", "exp(x) wrt x", "diag(exp(x))", "element-wise exp", lambda x: np.exp(x))
add("jacobian", "grad", "tanh(x) wrt x", "diag(1 - tanh(x)^2)", "element-wise tanh", lambda x: np.tanh(x))
add("jacobian", "grad", "sigmoid(x) wrt x", "diag(sigmoid(x)*(1 - sigmoid(x)))", "element-wise sigmoid",
    lambda x: sig(x))
add("jacobian", "grad", "x^2 wrt x", "2*diag(x)", "element-wise square", lambda x: x ** 2)
add("jacobian", "grad", "log(x) wrt x", "diag(1/x)", "element-wise log", lambda x: np.log(x), domain={"x": "pos"})
add("jacobian", "grad", "sqrt(x) wrt x", "diag(1/(2*sqrt(x)))", "element-wise sqrt", lambda x: np.sqrt(x),
    domain={"x": "pos"})
add("jacobian", "grad", "softplus(x) wrt x", "diag(sigmoid(x))", "element-wise softplus", lambda x: np.log1p(np.exp(x)))
add("jacobian", "grad", "sin(x)*cos(x) wrt x", "diag(cos(x)^2 - sin(x)^2)", "a product rule",
    lambda x: np.sin(x) * np.cos(x))
add("jacobian", "grad", "x*y wrt x", "diag(y)", "Hadamard product", lambda x, y: x * y)
add("jacobian", "grad", "a*x wrt x", "a*eye(m)", "scaling", lambda a, x: a * x)
add("jacobian", "grad", "x*a wrt a", "x", "a vector wrt a scalar", lambda x, a: x * a)
add("jacobian", "grad", "A*a wrt a", "A", "a matrix wrt a scalar", lambda A, a: A * a)
add("jacobian", "grad", "exp(a*x) wrt a", "x*exp(a*x)", "a vector wrt a scalar", lambda a, x: np.exp(a * x))
add("jacobian", "grad", "softmax(x) wrt x", "diag(softmax(x)) - softmax(x)@softmax(x)'",
    "softmax Jacobian ∂pᵢ/∂xⱼ = pᵢ(δᵢⱼ − pⱼ) (Wikipedia, “Softmax function”), as a matrix", lambda x: softmax(x))
add("jacobian", "grad", "softmax(W@x) wrt x", "(diag(softmax(W@x)) - softmax(W@x)@softmax(W@x)')@W",
    "attention-like softmax(Wx)", lambda W, x: softmax(W @ x), domain={"W": "small"})
add("jacobian", "grad", "x/||x|| wrt x", "(eye(m) - x@x'/||x||^2)/||x||", "normalisation x/‖x‖",
    lambda x: x / nrm(x))
add("jacobian", "grad", "x/sum(x) wrt x", "(eye(m) - x@ones(m)'/sum(x))/sum(x)", "normalisation x/Σx",
    lambda x: x / np.sum(x), domain={"x": "pos"})
add("jacobian", "grad", "exp(A@x) wrt x", "diag(exp(A@x))@A", "chain rule", lambda A, x: np.exp(A @ x),
    domain={"A": "small"})
add("jacobian", "grad", "tanh(W@x + v) wrt x", "diag(1 - tanh(W@x + v)^2)@W", "a tanh layer, input Jacobian",
    lambda W, x, v: np.tanh(W @ x + v))
add("jacobian", "grad", "tanh(W@x + v) wrt v", "diag(1 - tanh(W@x + v)^2)", "a tanh layer, bias Jacobian",
    lambda W, x, v: np.tanh(W @ x + v))
add("jacobian", "grad", "A@tanh(B@x) wrt x", "A@diag(1 - tanh(B@x)^2)@B", "two layers, chain rule",
    lambda A, B, x: A @ np.tanh(B @ x))
add("jacobian", "grad", "(A@x)*(B@x) wrt x", "diag(B@x)@A + diag(A@x)@B", "product rule",
    lambda A, B, x: (A @ x) * (B @ x))
add("jacobian", "grad", "sigmoid(W@x) wrt x", "diag(sigmoid(W@x)*(1 - sigmoid(W@x)))@W", "a sigmoid layer",
    lambda W, x: sig(W @ x))
add("jacobian", "grad", "u*(x'@x) wrt x", "2*u@x'", "a vector times a quadratic form", lambda u, x: u * (x @ x))
add("jacobian", "grad", "x*(u'@x) wrt x", "(u'@x)*eye(m) + x@u'", "product rule", lambda u, x: x * (u @ x))

# ------------------------------------------------------------------ Hessians
add("hessian", "hess", "x'@A@x wrt x", "A + A'", f"{MC_QF}, ∂²xᵀAx/∂x²", lambda x, A: x @ A @ x)
add("hessian", "hess", "x'@x wrt x", "2*eye(m)", "∂²‖x‖²", lambda x: x @ x)
add("hessian", "hess", "||x||^2 wrt x", "2*eye(m)", "∂²‖x‖²", lambda x: x @ x)
add("hessian", "hess", "0.5*x'@A@x - u'@x wrt x", "0.5*(A + A')", "quadratic objective, Nocedal & Wright §5.1",
    lambda x, A, u: 0.5 * x @ A @ x - u @ x)
add("hessian", "hess", "||A@x - y||^2 wrt x", "2*A'@A", "least squares, Boyd & Vandenberghe",
    lambda A, x, y: np.sum((A @ x - y) ** 2))
add("hessian", "hess", "0.5*||X@w - y||^2 wrt w", "X'@X", "least squares, Bishop PRML §3.1",
    lambda X, w, y: 0.5 * np.sum((X @ w - y) ** 2))
add("hessian", "hess", "||y - X@w||^2 + lam*||w||^2 wrt w", "2*X'@X + 2*lam*eye(n)", f"ridge, {ESL} §3.4",
    lambda X, y, w, lam: np.sum((y - X @ w) ** 2) + lam * (w @ w), domain={"lam": "pos"})
add("hessian", "hess", "-sum(y*log(sigmoid(X@w)) + (1 - y)*log(1 - sigmoid(X@w))) wrt w",
    "X'@diag(sigmoid(X@w)*(1 - sigmoid(X@w)))@X", "logistic regression, Bishop PRML",
    lambda y, X, w: -np.sum(y * np.log(sig(X @ w)) + (1 - y) * np.log(1 - sig(X @ w))), domain={"y": "labels01"})
add("hessian", "hess", "sum(softplus(X@w) - y*(X@w)) wrt w", "X'@diag(sigmoid(X@w)*(1 - sigmoid(X@w)))@X",
    "logistic regression, logit form", lambda X, w, y: np.sum(np.log1p(np.exp(X @ w)) - y * (X @ w)),
    domain={"y": "labels01"})
add("hessian", "hess", "logsumexp(x) wrt x", "diag(softmax(x)) - softmax(x)@softmax(x)'",
    "log-sum-exp: the gradient softmax's Jacobian diag(p) − ppᵀ", lambda x: lse(x),
    also=(("diag(exp(x))/sum(exp(x)) - exp(x)@exp(x)'/sum(exp(x))^2",
           "Boyd & Vandenberghe §3.1.5 (log-sum-exp): diag(z)/(𝟙ᵀz) − zzᵀ/(𝟙ᵀz)², z = eˣ"),))
add("hessian", "hess", "logsumexp(z) - y'@z wrt z", "diag(softmax(z)) - softmax(z)@softmax(z)'",
    "softmax cross-entropy", lambda z, y: lse(z) - y @ z)
add("hessian", "hess", "logsumexp(X@w) wrt w", "X'@(diag(softmax(X@w)) - softmax(X@w)@softmax(X@w)')@X",
    "log-sum-exp of an affine map", lambda X, w: lse(X @ w))
add("hessian", "hess", "||x|| wrt x", "(eye(m) - x@x'/||x||^2)/||x||", "Euclidean norm", lambda x: nrm(x))
add("hessian", "hess", "1/||x|| wrt x", "(3*x@x' - ||x||^2*eye(m))/||x||^5",
    "∂ᵢ∂ⱼ(1/r) = (3xᵢxⱼ − r²δᵢⱼ)/r⁵, the quadrupole term of the multipole expansion (Jackson, Classical "
    "Electrodynamics §4.1)", lambda x: 1 / nrm(x))
add("hessian", "hess", "sqrt(1 + ||x||^2) wrt x", "(eye(m) - x@x'/(1 + ||x||^2))/sqrt(1 + ||x||^2)",
    "smoothed norm", lambda x: np.sqrt(1 + x @ x))
add("hessian", "hess", "sum(sqrt(1 + (X@w - y)^2)) wrt w", "X'@diag((1 + (X@w - y)^2)^-1.5)@X",
    "pseudo-Huber, δ = 1 (issue 19)", lambda X, w, y: np.sum(np.sqrt(1 + (X @ w - y) ** 2)))
add("hessian", "hess", "sum(sqrt(1 + x^2) - 1) wrt x", "diag((1 + x^2)^-1.5)", "pseudo-Huber of a residual vector",
    lambda x: np.sum(np.sqrt(1 + x ** 2) - 1))
add("hessian", "hess", "sum(log(1 + (X@w - y)^2)) wrt w",
    "X'@diag(2*(1 - (X@w - y)^2)/(1 + (X@w - y)^2)^2)@X", "Cauchy (Lorentzian) loss",
    lambda X, w, y: np.sum(np.log(1 + (X @ w - y) ** 2)))
add("hessian", "hess", "sum(log(cosh(X@w - y))) wrt w", "X'@diag(1 - tanh(X@w - y)^2)@X", "log-cosh loss",
    lambda X, w, y: np.sum(np.log(np.cosh(X @ w - y))))
add("hessian", "hess", "sum(exp(X@w) - y*(X@w)) wrt w", "X'@diag(exp(X@w))@X", "Poisson regression",
    lambda X, w, y: np.sum(np.exp(X @ w) - y * (X @ w)), domain={"X": "small", "y": "pos"})
add("hessian", "hess", "exp(-gamma*||x - y||^2) wrt x",
    "exp(-gamma*||x - y||^2)*(4*gamma^2*(x - y)@(x - y)' - 2*gamma*eye(m))", "RBF kernel (issue 19)",
    lambda gamma, x, y: np.exp(-gamma * np.sum((x - y) ** 2)), domain={"gamma": "pos", "x": "small", "y": "small"})
add("hessian", "hess", "dot(x, y)/(norm2(x)*norm2(y)) wrt x",
    "3*(x'@y)*x@x'/(||x||^5*||y||) - (x@y' + y@x')/(||x||^3*||y||) - (x'@y)*eye(m)/(||x||^3*||y||)",
    "cosine similarity (issue 19)", lambda x, y: x @ y / (nrm(x) * nrm(y)))
add("hessian", "hess", "sum(exp(x)) wrt x", "diag(exp(x))", "exponential sum", lambda x: np.sum(np.exp(x)))
add("hessian", "hess", "sum(log(x)) wrt x", "-diag(1/x^2)", "log sum (barrier)", lambda x: np.sum(np.log(x)),
    domain={"x": "pos"})
add("hessian", "hess", "sum(x*log(x)) wrt x", "diag(1/x)", "negative entropy, Boyd & Vandenberghe §3.1.5",
    lambda x: np.sum(x * np.log(x)), domain={"x": "pos"})
add("hessian", "hess", "-sum(log(y - A@x)) wrt x", "A'@diag(1/(y - A@x)^2)@A", "log barrier, Boyd & Vandenberghe",
    lambda y, A, x: -np.sum(np.log(y - A @ x)), domain={"y": "big", "A": "small", "x": "small"})
add("hessian", "hess", "sum(softplus(x)) wrt x", "diag(sigmoid(x)*(1 - sigmoid(x)))", "softplus sum",
    lambda x: np.sum(np.log1p(np.exp(x))))
add("hessian", "hess", "(u'@x)^2 wrt x", "2*u@u'", "squared linear form", lambda u, x: (u @ x) ** 2)
add("hessian", "hess", "exp(u'@x) wrt x", "exp(u'@x)*u@u'", "exponential of a linear form",
    lambda u, x: np.exp(u @ x), domain={"u": "small"})
add("hessian", "hess", "log(u'@x) wrt x", "-u@u'/(u'@x)^2", "logarithm of a linear form",
    lambda u, x: np.log(u @ x), domain={"u": "pos", "x": "pos"})
add("hessian", "hess", "sum(sigmoid(x)) wrt x", "diag(sigmoid(x)*(1 - sigmoid(x))*(1 - 2*sigmoid(x)))",
    "logistic sigmoid, second derivative", lambda x: np.sum(sig(x)))
add("hessian", "hess", "x'@A@x/(x'@x) wrt x",
    "((A + A') - 2*(x'@A@x)/(x'@x)*eye(m))/(x'@x) - 2*((A + A')@x@x' + x@x'@(A + A'))/(x'@x)^2 "
    "+ 8*(x'@A@x)*x@x'/(x'@x)^3",
    "Rayleigh quotient, general A", lambda x, A: x @ A @ x / (x @ x))

# ------------------------------------------------------------------ more families (Cookbook inverses and
# determinants, norms of residuals, Gaussian likelihoods, Mahalanobis distance, attention, centering)
add("cookbook", "grad", "tr(A@inv(X)) wrt X", "-(inv(X)@A@inv(X))'", f"{MC_TR} with B = I",
    lambda A, X: np.trace(A @ inv(X)),
    also=(("-inv(X)'@A'@inv(X)'", f"{MC_TR}, second form −X⁻ᵀAᵀBᵀX⁻ᵀ, B = I"),))
add("cookbook", "grad", "tr(X@X@X) wrt X", "3*(X@X)'", f"{MC_TR}, ∂Tr(Xᵏ)/∂X = k(Xᵏ⁻¹)ᵀ, k = 3",
    lambda X: np.trace(X @ X @ X))
add("cookbook", "grad", "det(X'@X) wrt X where X: (m, n)", "2*det(X'@X)*X@inv(X'@X)", f"{MC_DET}, det(XᵀX)",
    lambda X: det(X.T @ X), sizes={"m": 4, "n": 2})
add("cookbook", "grad", "u'@X'@D@X@v wrt X", "D'@X@u@v' + D@X@v@u'", f"{MC_QF}, ∂bᵀXᵀDXc/∂X",
    lambda u, X, D, v: u @ X.T @ D @ X @ v)
add("cookbook", "grad", "u'@X'@X@u wrt X", "2*X@u@u'", f"{MC_QF}, ∂bᵀXᵀXb/∂X", lambda u, X: u @ X.T @ X @ u)
add("cookbook", "grad", "x'@A@x wrt A", "x@x'", f"{MC_QF}, ∂aᵀXa/∂X", lambda x, A: x @ A @ x)
add("cookbook", "grad", "||A@x - b|| wrt x", "A'@(A@x - b)/||A@x - b||",
    f"{MC_NORM}, ∂‖x‖/∂x and the chain rule",
    lambda A, x, b: nrm(A @ x - b))
add("loss", "grad", "-0.5*logdet(P) + 0.5*(x - mu)'@P@(x - mu) wrt P", "-0.5*inv(P)' + 0.5*(x - mu)@(x - mu)'",
    f"Gaussian NLL, precision P ({MC_DET}, {MC_QF})",
    lambda P, x, mu: -0.5 * logdet(P) + 0.5 * (x - mu) @ P @ (x - mu), domain={"P": "spd"})
add("loss", "grad", "0.5*(x - mu)'@P@(x - mu) wrt mu", "-0.5*(P + P')@(x - mu)",
    f"Gaussian NLL, mean, precision P, general P ({MC_QF})", lambda x, mu, P: 0.5 * (x - mu) @ P @ (x - mu),
    domain={"P": "spd"})
add("loss", "grad", "logdet(S) + tr(inv(S)@M) wrt S", "inv(S)' - (inv(S)@M@inv(S))'",
    f"Gaussian covariance MLE, scatter M ({MC_DET}, {MC_TR})", lambda S, M: logdet(S) + np.trace(inv(S) @ M),
    domain={"S": "spd", "M": "spd"},
    also=(("inv(S)' - inv(S)'@M'@inv(S)'",
           f"{MC_DET}; {MC_TR}, Tr(AX⁻¹B)'s second form −X⁻ᵀAᵀBᵀX⁻ᵀ, A = I"),))
add("loss", "grad", "sqrt((x - mu)'@inv(S)@(x - mu)) wrt x",
    "(inv(S) + inv(S)')@(x - mu)/(2*sqrt((x - mu)'@inv(S)@(x - mu)))",
    f"Mahalanobis distance, general S ({MC_QF} and the chain rule)",
    lambda x, mu, S: np.sqrt((x - mu) @ inv(S) @ (x - mu)), domain={"S": "spd"})
add("loss", "grad", "log(sigmoid(u'@x)) wrt x", "(1 - sigmoid(u'@x))*u", "log-likelihood of one positive example, "
    "σ'(a) = σ(a)(1 − σ(a)) (Bishop PRML §4.3.2)", lambda u, x: np.log(sig(u @ x)))
add("jacobian", "grad", "softmax(Q@k/sqrt(d)) wrt k",
    "(diag(softmax(Q@k/sqrt(d))) - softmax(Q@k/sqrt(d))@softmax(Q@k/sqrt(d))')@Q/sqrt(d)",
    "scaled dot-product attention weights (Vaswani et al. 2017), the softmax Jacobian and the chain rule",
    lambda Q, k, d: softmax(Q @ k / np.sqrt(d)), domain={"d": "big", "Q": "small"})
add("jacobian", "grad", "x - mean(x) wrt x where x: (m)", "eye(m) - ones(m)@ones(m)'/m",
    "centering (as in LayerNorm): the centering matrix I − 𝟙𝟙ᵀ/n", lambda x: x - np.mean(x))
add("loss", "grad", "exp(-0.5*(x - mu)'@P@(x - mu)) wrt x",
    "-0.5*exp(-0.5*(x - mu)'@P@(x - mu))*(P + P')@(x - mu)",
    f"unnormalised Gaussian density, general precision P ({MC_QF} and the chain rule)",
    lambda x, mu, P: np.exp(-0.5 * (x - mu) @ P @ (x - mu)), domain={"P": "spd", "x": "small", "mu": "small"})
add("hessian", "hess", "(x - mu)'@inv(S)@(x - mu) wrt x", "inv(S) + inv(S)'",
    f"squared Mahalanobis distance, general S ({MC_QF})", lambda x, mu, S: (x - mu) @ inv(S) @ (x - mu),
    domain={"S": "spd"})
add("hessian", "hess", "0.5*(x - mu)'@P@(x - mu) wrt mu", "0.5*(P + P')", "Gaussian NLL, mean, precision P",
    lambda x, mu, P: 0.5 * (x - mu) @ P @ (x - mu), domain={"P": "spd"})
add("hessian", "hess", "log(sigmoid(u'@x)) wrt x", "-sigmoid(u'@x)*(1 - sigmoid(u'@x))*u@u'",
    "log-likelihood of one positive example (Bishop PRML §4.3.3)", lambda u, x: np.log(sig(u @ x)))
