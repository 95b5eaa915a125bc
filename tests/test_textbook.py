"""Worked examples of the matrix-calculus textbooks and ML losses: the printed formula reads as
the textbook writes it, and its value agrees with an independent closed form."""

import numpy as np
import pytest

import gradcli
from helpers import fd_errors, grad_text

rng = np.random.default_rng(7)


@pytest.mark.parametrize("text, expected", [
    ("||y - X@theta||^2 wrt theta", ["−2Xᵀ(y − Xθ)"]),
    ("x'@A@x wrt x", ["(A + Aᵀ)x"]),
    ("x'@B@x wrt x", ["(B + Bᵀ)x"]),
    ("u'@X@v wrt X", ["uvᵀ"]),
    ("(x - A@s)'@W@(x - A@s) wrt s", ["−Aᵀ(W + Wᵀ)(x − As)"]),
    ("log(det(X)) wrt X", ["X⁻ᵀ"]),
    ("logdet(X) wrt X", ["X⁻ᵀ"]),
    ("log(det(inv(X))) wrt X", ["−X⁻ᵀ"]),
    ("tr(A@X@B) wrt X", ["AᵀBᵀ"]),
    ("tr(A@X'@B@X@C) wrt X", ["BᵀXAᵀCᵀ + BXCA"]),
    ("logsumexp(theta) - y'@theta wrt theta", ["softmax(θ) − y"]),
    ("sum(log(1 + exp(-y*(X@w)))) wrt w", ["−Xᵀ(σ(−y ⊙ Xw) ⊙ y)"]),
    ("||M - U@V'||_F^2 wrt U, V", ["−2(M − UVᵀ)V", "−2(M − UVᵀ)ᵀU"]),
    ("0.5*sum((y - h(X@Theta))^2) wrt Theta where X: (M, in), Theta: (in, out), y: (M, out)",
     ["Xᵀ((h(XΘ) − y) ⊙ h'(XΘ))"]),
    ("||y - X@theta||^2 + lam*||theta||^2 wrt theta", ["2λ·θ − 2Xᵀ(y − Xθ)"]),
    ("sqrt(x'@x) wrt x", ["x / √(xᵀx)"]),
    ("||A||_F wrt A", ["A / ‖A‖"]),
    ("tr(X'@X) wrt X", ["2X"]),
    # binary cross-entropy: the chain rule's ((y − 1) ⊘ (1 − σ) + y ⊘ σ) ⊙ σ(1 − σ) collects to σ − y
    ("-sum(y*log(sigmoid(X@w)) + (1-y)*log(1-sigmoid(X@w))) wrt w", ["Xᵀ(σ(Xw) − y)"]),
    ("-mean(y*log(sigmoid(X@w)) + (1-y)*log(1-sigmoid(X@w))) wrt w", ["−Xᵀ(y − σ(Xw)) / m"]),
    ("x'@A@x/(x'@x) wrt x", ["((A + Aᵀ)x − 2xᵀAx·x / (xᵀx)) / (xᵀx)"]),  # the Rayleigh quotient
    ("sqrt(sum((x - y)^2)) wrt x", ["(x − y) / ‖x − y‖"]),
    ("dot(x, y)/(norm2(x)*norm2(y)) wrt x", ["y / (‖x‖·‖y‖) − xᵀy·x / (‖y‖·‖x‖³)"]),  # cosine similarity
    ("softmax(W@x) wrt x", ["(diag(softmax(Wx)) − softmax(Wx) softmax(Wx)ᵀ)W"]),
])
def test_formula_reads_like_the_textbook(text, expected):
    assert grad_text(text) == expected


def test_least_squares_gradient_value_matches_closed_form():
    X, y, th = rng.normal(size=(20, 4)), rng.normal(size=20), rng.normal(size=4)
    p = gradcli.analyze("||y - X@theta||^2 wrt theta", data_shapes={"X": X.shape, "y": y.shape,
                                                                     "theta": th.shape})
    f, g = p.compile()(X=X, y=y, theta=th)
    assert np.isclose(f, np.sum((y - X @ th) ** 2))
    assert np.allclose(g["theta"], 2 * X.T @ (X @ th - y))


def test_softmax_cross_entropy_gradient_is_softmax_minus_y():
    z = rng.normal(size=5)
    y = np.eye(5)[2]
    p = gradcli.analyze("-sum(y*log(softmax(z))) wrt z", data_shapes={"z": (5,), "y": (5,)})
    f, g = p.compile()(z=z, y=y)
    s = np.exp(z) / np.exp(z).sum()
    assert np.isclose(f, -np.log(s[2]))
    assert np.allclose(g["z"], s - y)


def test_mlp_layer_gradients_match_closed_form():
    X, W1, W2 = rng.normal(size=(8, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    p = gradcli.analyze("sum(tanh(X@W1)@W2) wrt W1, W2",
                        data_shapes={"X": X.shape, "W1": W1.shape, "W2": W2.shape})
    _, g = p.compile()(X=X, W1=W1, W2=W2)
    H = np.tanh(X @ W1)
    G = np.ones((8, 2))
    assert np.allclose(g["W2"], H.T @ G)
    assert np.allclose(g["W1"], X.T @ ((G @ W2.T) * (1 - H ** 2)))


def test_logdet_gradient_is_inverse_transpose():
    X = rng.normal(size=(4, 4)) + 4 * np.eye(4)
    p = gradcli.analyze("log(det(X)) wrt X", data_shapes={"X": X.shape})
    f, g = p.compile()(X=X)
    assert np.isclose(f, np.log(np.linalg.det(X)))
    assert np.allclose(g["X"], np.linalg.inv(X).T)


@pytest.mark.parametrize("text, shapes, positive", [
    ("sum(log(1 + exp(-y*(X@w)))) + 0.5*lam*w'@w wrt w", {"X": (9, 3)}, False),
    ("-sum(y*log(sigmoid(X@w)) + (1 - y)*log(1 - sigmoid(X@w))) wrt w", {"X": (9, 3)}, False),
    ("tr(A@X'@B@X@C) wrt X", {"A": (2, 3), "X": (4, 3), "B": (4, 4), "C": (3, 2)}, False),
    ("(x - A@s)'@W@(x - A@s) wrt s, A, W", {"A": (4, 2)}, False),
    ("0.5*sum((y - h(X@Theta))^2) wrt Theta", {"X": (6, 3), "Theta": (3, 2), "y": (6, 2)}, False),
    ("sum((tanh(X@W1 + b1')@W2 - Y)^2) wrt W1, b1, W2", {"X": (6, 3), "W1": (3, 5), "W2": (5, 2)}, False),
    ("logdet(X) + tr(inv(X)@S) wrt X, S", {"X": (3, 3)}, False),
    ("||M - U@V'||_F^2 + lam*(||U||_F^2 + ||V||_F^2) wrt U, V", {"M": (5, 4), "U": (5, 2)}, False),
])
def test_losses_match_finite_differences(text, shapes, positive):
    p = gradcli.analyze(text, shapes=shapes)
    numeric = {n: tuple(d if isinstance(d, int) else 3 for d in s.shape) for n, s in p.symbols.items()}
    errors = fd_errors(text, shapes=numeric, positive=positive, fns={"h": "tanh"})
    assert all(e < 1e-6 for e in errors.values()), errors


@pytest.mark.parametrize("text, expected", [
    ("x'@A@x wrt x", "A + Aᵀ"),
    ("logsumexp(x) wrt x", "diag(softmax(x)) − softmax(x) softmax(x)ᵀ"),
    ("sqrt(1 + x'@x) wrt x", "(I − xxᵀ / (1 + xᵀx)) / √(1 + xᵀx)"),
    ("sum(softplus(X@w)) - y'@X@w + 0.5*lam*w'@w wrt w", "Xᵀ diag(σ(Xw) ⊙ (1 − σ(Xw))) X + λ·I"),
    ("u'@x * v'@x wrt x", "uvᵀ + vuᵀ"),
    ("sum(W@x) wrt W", "0"),
    ("tr(X'@A@X) wrt X", "δ(j,l) (A + Aᵀ)[i,k]"),  # a symmetric factor's indices in order
    ("logsumexp(W@x) wrt x", "Wᵀ(diag(softmax(Wx)) − softmax(Wx) softmax(Wx)ᵀ)W"),
    ("-sum(y*log(sigmoid(X@w)) + (1-y)*log(1-sigmoid(X@w))) wrt w", "Xᵀ diag(σ(Xw) ⊙ (1 − σ(Xw))) X"),  # linear in W: a zero 4-index Hessian, printed as 0
])
def test_hessians_read_like_the_textbook(text, expected):
    (h,) = gradcli.analyze(text).hessians()
    assert (h.text() if len(h.shape) <= 2 else h.index_text()) == expected
