"""An independent translation of gradcli formulas into autograd.numpy, for differential tests.

It reads the parse tree (what the user wrote) and gives it numpy meaning directly — nothing from
gradcli's operator table, simplifier, differentiator or evaluator is used — so HIPS autograd's
derivatives of this translation are an independent oracle for gradcli's symbolic derivatives.
Vectors are 1-d arrays; a transposed vector is tracked as a row only to tell the outer product
`x@y'` from the inner one.
"""

from __future__ import annotations

import autograd.numpy as anp

from gradcli.language.parse import parse
from gradcli.language.syntax import Binary, Call, Keyword, Norm, Num, Sym, Transpose, Unary

ELEMENTWISE = {
    "exp": anp.exp, "log": anp.log, "sqrt": anp.sqrt, "sin": anp.sin, "cos": anp.cos, "tan": anp.tan,
    "tanh": anp.tanh, "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)), "relu": lambda z: anp.maximum(z, 0.0),
    "softplus": lambda z: anp.log1p(anp.exp(z)), "abs": anp.abs, "sign": anp.sign,
    "square": anp.square, "reciprocal": anp.reciprocal, "log1p": anp.log1p, "expm1": anp.expm1,
    "log2": anp.log2, "log10": anp.log10, "sinh": anp.sinh, "cosh": anp.cosh, "arcsin": anp.arcsin,
    "arccos": anp.arccos, "arctan": anp.arctan, "arcsinh": anp.arcsinh, "arctanh": anp.arctanh,
    "cbrt": lambda z: anp.sign(z) * anp.abs(z) ** (1.0 / 3.0),
}


def _singular_values(a):
    return anp.linalg.svd(a, full_matrices=False, compute_uv=False)


def _norm(v, kind):
    """numpy's norm(v, ord), spelled with autograd primitives: ord 2 and 'nuc' of a matrix from
    its singular values, the induced 1 and inf norms as the largest column and row sums."""
    if anp.ndim(v) == 2:
        if kind in ("", "F"):
            return anp.sqrt(anp.sum(v * v))
        if kind == "2":
            return _singular_values(v)[0]
        if kind == "*":
            return anp.sum(_singular_values(v))
        return anp.max(anp.sum(anp.abs(v), axis=0 if kind == "1" else 1))
    if kind == "1":
        return anp.sum(anp.abs(v))
    if kind == "inf":
        return anp.max(anp.abs(v))
    return anp.sqrt(anp.sum(v * v))


def _u1v1(a):
    u, s, vt = anp.linalg.svd(a, full_matrices=False)
    return anp.outer(u[:, 0], vt[0])


def _polar(a):
    u, s, vt = anp.linalg.svd(a, full_matrices=False)
    return anp.dot(u, vt)


def _ismax(a):
    hit = (a == anp.max(a)) * 1.0
    return hit / anp.sum(hit)


def _softmax(v):
    e = anp.exp(v - anp.max(v))
    return e / anp.sum(e)


def _logsumexp(a):
    m = anp.max(a)
    return m + anp.log(anp.sum(anp.exp(a - m)))


def _kron(a, b):
    if anp.ndim(a) == 1:  # two vectors: the 1-D product, as np.kron
        return anp.reshape(a[:, None] * b[None, :], (-1,))
    (m, n), (p, q) = anp.shape(a), anp.shape(b)
    return anp.reshape(a[:, None, :, None] * b[None, :, None, :], (m * p, n * q))


def _kron_a(g, b):  # Σ_kl G[(i,k),(j,l)] B[k,l]
    if anp.ndim(b) == 1:
        return anp.einsum("ik,k->i", anp.reshape(g, (-1, anp.shape(b)[0])), b)
    (p, q), (r, c) = anp.shape(b), anp.shape(g)
    return anp.einsum("ikjl,kl->ij", anp.reshape(g, (r // p, p, c // q, q)), b)


def _kron_b(g, a):  # Σ_ij G[(i,k),(j,l)] A[i,j]
    if anp.ndim(a) == 1:
        return anp.einsum("ik,i->k", anp.reshape(g, (anp.shape(a)[0], -1)), a)
    (m, n), (r, c) = anp.shape(a), anp.shape(g)
    return anp.einsum("ikjl,ij->kl", anp.reshape(g, (m, r // m, n, c // n)), a)


# every other function a formula may call (sum and mean, which take an axis, are read above)
FUNCTIONS = {
    "sum": anp.sum, "mean": anp.mean, "logsumexp": _logsumexp, "softmax": _softmax,
    "norm": lambda v: _norm(v, ""), "norm2": lambda v: _norm(v, "2"),
    "norm1": lambda v: _norm(v, "1"), "tr": anp.trace, "trace": anp.trace,
    "max": anp.max, "min": anp.min, "prod": anp.prod, "u1v1": _u1v1, "polar": _polar,
    "ismax": _ismax, "ismin": lambda a: _ismax(-a),
    "det": anp.linalg.det, "logdet": lambda a: anp.linalg.slogdet(a)[1], "inv": anp.linalg.inv,
    "diag": anp.diag, "dot": anp.dot, "outer": anp.outer,
    "kron": _kron, "kron_a": _kron_a, "kron_b": _kron_b,
    "vec": lambda a: anp.reshape(anp.transpose(a), (-1,)),  # the columns stacked
    "unvec": lambda g, m: anp.transpose(anp.reshape(g, (-1, int(m)))),
}
def _commutation(dims):
    """K_{m,n} = Σᵢⱼ Hᵢⱼ ⊗ Hᵢⱼᵀ, Hᵢⱼ the m×n matrix with a one at (i, j) (Magnus & Neudecker)."""
    m, n = dims
    out = anp.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            h = anp.zeros((m, n))
            h[i, j] = 1.0
            out = out + anp.kron(h, h.T)
    return out


DIMENSION_FUNCTIONS = {"eye": anp.eye, "ones": anp.ones, "zeros": anp.zeros, "commutation": _commutation}


def translate(text: str, fns: dict | None = None):
    """A function of a dict of arrays computing the formula (the wrt/where clauses are ignored)."""
    tree = parse(text).expr
    fns = fns or {}

    def ev(node, env):  # returns (value, is_row)
        if isinstance(node, Num):
            return node.value, False
        if isinstance(node, Sym):
            return env[node.name], False
        if isinstance(node, Unary):
            v, row = ev(node.operand, env)
            return (-v if node.op == "-" else v), row
        if isinstance(node, Transpose):
            v, row = ev(node.operand, env)
            if anp.ndim(v) == 2:
                return anp.transpose(v), False
            return v, (not row) if anp.ndim(v) == 1 else row
        if isinstance(node, Norm):
            v, _ = ev(node.operand, env)
            return _norm(v, node.kind), False
        if isinstance(node, Binary):
            if (node.op == "^" and isinstance(node.left, Norm) and node.left.kind in ("", "2", "F")
                    and (node.left.kind != "2" or anp.ndim(ev(node.left.operand, env)[0]) < 2)
                    and isinstance(node.right, Num) and node.right.value == 2):
                v, _ = ev(node.left.operand, env)  # ‖v‖² as Σv²: differentiable at v = 0
                return anp.sum(v * v), False
            (a, ra), (b, rb) = ev(node.left, env), ev(node.right, env)
            if node.op == "+":
                return a + b, ra and rb
            if node.op == "-":
                return a - b, ra and rb
            if node.op == "*":
                return a * b, ra or rb
            if node.op == "/":
                return a / b, ra or rb
            if node.op == "^":
                return a ** b, ra
            if anp.ndim(a) == 1 and anp.ndim(b) == 1 and not ra and rb:
                return anp.outer(a, b), False
            out = anp.dot(a, b)
            return out, (anp.ndim(out) == 1 and ra)
        if isinstance(node, Call):
            name = node.name
            args = [ev(a.value if isinstance(a, Keyword) else a, env)[0] for a in node.args]
            if node.deriv:
                raise NotImplementedError("derivative calls are not translated")
            if name in fns:
                return ELEMENTWISE[fns[name]](args[0]), False
            if name in ELEMENTWISE:
                return ELEMENTWISE[name](args[0]), False
            if name in ("sum", "mean"):
                reduce = anp.sum if name == "sum" else anp.mean
                # the axis evaluated as the number it is (axis=1, -1)
                return (reduce(args[0]) if len(args) == 1 else reduce(args[0], axis=int(args[1]))), False
            if name in DIMENSION_FUNCTIONS:  # eye(3), ones(3, 4): dimensions as arguments
                # a named dimension (eye(m)) takes its size from env, where the caller puts it
                dims = tuple(int(a.value) if isinstance(a, Num) else int(env[a.name]) for a in node.args)
                return DIMENSION_FUNCTIONS[name](dims[0] if name == "eye" else dims), False
            return FUNCTIONS[name](*args), False
        raise TypeError(node)

    return lambda env: ev(tree, env)[0]
