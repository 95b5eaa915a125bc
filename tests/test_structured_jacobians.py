"""Jacobians, Hessians and higher derivatives wrt a declared-structured S (issue 17): each entry
of f (of the gradient, for a Hessian) is differentiated over matrices of S's structure, so the
value is the unstructured tensor projected on S's two axes, ½(J[…,k,l] + J[…,l,k]) (sym),
J[…,k,l] + J[…,l,k] − δ(k,l) J[…,k,l] (vech), δ(k,l) J[…,k,l] (diagonal).

The oracle shares nothing with gradcli: f and its closed-form gradients written in numpy here,
central differences along the symmetric directions eᵢeⱼᵀ + eⱼeᵢᵀ (eᵢeᵢᵀ) computed here, the
third derivative of log det from its closed form, and printed formulas evaluated by the
independent translation of tests/oracle.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradcli
from gradcli.errors import GradcliError
from oracle import translate

N = 3


def spd(rng, n=N):
    a = rng.standard_normal((n, n))
    return a @ a.T / n + np.eye(n)


def symmetric_directions(n, structure):
    """(i, j, E) for the directions of the structure, E = eᵢeⱼᵀ + eⱼeᵢᵀ (eᵢeᵢᵀ on the diagonal)."""
    pairs = [(i, i) for i in range(n)] if structure == "diagonal" else \
        [(i, j) for i in range(n) for j in range(i, n)]
    for i, j in pairs:
        e = np.zeros((n, n))
        e[i, j] = e[j, i] = 1.0
        yield i, j, e


def along(f, S, E, h=1e-6):
    return (np.asarray(f(S + h * E)) - np.asarray(f(S - h * E))) / (2 * h)


def expected_from_differences(f, S, structure, convention):
    """The projected derivative (f's axes, then S's two), built entry by entry from central
    differences along the structure's directions: what each convention says it is."""
    n = S.shape[0]
    shape = np.shape(f(S))
    out = np.zeros(shape + (n, n))
    for i, j, E in symmetric_directions(n, structure):
        d = along(f, S, E)  # Σ_kl J[…,k,l] E[k,l]: the derivative wrt the distinct entry (i, j)
        if structure == "diagonal" or convention == "vech" or i == j:
            out[..., i, j] = out[..., j, i] = d
        else:  # sym: ½(J + Jᵀ) read at (i, j), while E counts the pair twice
            out[..., i, j] = out[..., j, i] = d / 2
    return out


def value(S, **arrays):
    return arrays


# f and, where a Hessian is taken, its gradient over symmetric matrices, in numpy
CASES = {
    "inv(S)@x": lambda S, x, A: np.linalg.solve(S, x),
    "S@x": lambda S, x, A: S @ x,
    "S@A@S": lambda S, x, A: S @ A @ S,
    "x'@S": lambda S, x, A: x @ S,
    "exp(S)@x": lambda S, x, A: np.exp(S) @ x,
}


@pytest.mark.parametrize("text", list(CASES))
@pytest.mark.parametrize("structure, convention", [("symmetric", "sym"), ("spd", "vech"), ("spd", "sym"),
                                                    ("diagonal", "sym")])
@pytest.mark.parametrize("seed", [0, 1])
def test_jacobians_wrt_a_structured_matrix_match_differences_along_its_directions(text, structure, convention, seed):
    rng = np.random.default_rng(seed)
    S = spd(rng) if structure != "diagonal" else np.diag(rng.uniform(1, 2, N))
    x, A = rng.standard_normal(N), rng.standard_normal((N, N))
    arrays = {k: v for k, v in {"S": S, "x": x, "A": A}.items() if k in text}
    r = gradcli.grad(f"{text} wrt S where S: (n, n) {structure}", symmetric_gradient=convention, **arrays, check=True)
    f = CASES[text]
    expected = expected_from_differences(lambda s: f(s, x, A), S, structure, convention)
    got = r["S"].value.reshape(expected.shape)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert np.allclose(got, np.swapaxes(got, -1, -2))  # a derivative wrt S is of S's structure
    assert r.checks.ok  # --check perturbs along the structure too


def test_the_closed_form_of_the_inverse_is_projected():
    """∂(S⁻¹x)ᵢ/∂S_kl over symmetric S: the symmetric part of −(S⁻¹)ᵢₖ(S⁻¹x)ₗ."""
    rng = np.random.default_rng(3)
    S, x = spd(rng), rng.standard_normal(N)
    Si = np.linalg.inv(S)
    general = -np.einsum("ik,l->ikl", Si, Si @ x)
    r = gradcli.grad("inv(S)@x wrt S where S: (n, n) symmetric", S=S, x=x)
    assert np.allclose(r["S"].value, (general + general.transpose(0, 2, 1)) / 2)
    vech = gradcli.grad("inv(S)@x wrt S where S: (n, n) symmetric", S=S, x=x, symmetric_gradient="vech")
    assert np.allclose(vech["S"].value, general + general.transpose(0, 2, 1) - general * np.eye(N))
    assert "symmetric part over S's two axes" in "\n".join(n.message for n in r.problem.notes)


@pytest.mark.parametrize("convention", ["sym", "vech"])
def test_printed_formulas_say_they_are_projected_and_the_vec_form_evaluates_to_the_values(convention):
    rng = np.random.default_rng(4)
    S, x, A = spd(rng), rng.standard_normal(N), rng.standard_normal((N, N))
    for text, arrays in [("inv(S)@x", dict(S=S, x=x)), ("S@A@S", dict(S=S, A=A))]:
        r = gradcli.grad(f"{text} wrt S where S: (n, n) spd", symmetric_gradient=convention, **arrays)
        shown = r["S"].formula
        assert ("½(T[" if convention == "sym" else "δ(") in shown and "T[" in shown, shown
        assert (r"\tfrac{1}{2}(T_{" if convention == "sym" else r"\delta_{") in r["S"].latex
        vec = gradcli.grad(f"{text} wrt S where S: (n, n) spd", symmetric_gradient=convention, layout="vec", **arrays)
        assert "commutation(3, 3)" in vec["S"].ascii  # J (I + K)/2, J (I + K − Diag(vec I))
        assert np.allclose(np.asarray(translate(vec["S"].ascii)(arrays), float), vec["S"].value)
        # and the vec value is the tensor's, columns stacked (numpy's order="F" is vec)
        f_size = int(np.prod(np.shape(CASES[text](S, x, A))))
        tensor = r["S"].value.reshape(np.shape(CASES[text](S, x, A)) + (N, N))
        assert np.allclose(vec["S"].value, np.reshape(tensor, (f_size, N * N), order="F"))


def _gradient_sym(S, x):
    """∇ over symmetric S of logdet(S) + xᵀS⁻¹x (symmetric already): S⁻¹ − S⁻¹xxᵀS⁻¹."""
    Si = np.linalg.inv(S)
    return Si - Si @ np.outer(x, x) @ Si


@pytest.mark.parametrize("layout", [None, "denominator", "vec"])
def test_hessians_wrt_a_symmetric_matrix_are_projected_on_both_pairs(layout):
    rng = np.random.default_rng(5)
    S, x = spd(rng), rng.standard_normal(N)
    r = gradcli.hess("logdet(S) + x'@inv(S)@x wrt S where S: (n, n) spd", S=S, x=x, layout=layout, check=True)
    expected = expected_from_differences(lambda s: _gradient_sym(s, x), S, "spd", "sym")
    got = r["S"].value
    if layout == "vec":
        assert np.allclose(got, np.reshape(expected, (N * N, N * N), order="F"), rtol=1e-6, atol=1e-8)
        assert np.allclose(np.asarray(translate(r["S"].ascii)(dict(S=S, x=x)), float), got)
    else:
        assert np.allclose(got, expected, rtol=1e-6, atol=1e-8)  # (symmetric: either layout)
        assert np.allclose(got, got.transpose(1, 0, 2, 3)) and np.allclose(got, got.transpose(0, 1, 3, 2))
    assert r.checks.ok


def test_mixed_hessian_blocks_project_only_the_structured_pair():
    rng = np.random.default_rng(6)
    S, x = spd(rng), rng.standard_normal(N)
    r = gradcli.hess("x'@inv(S)@x wrt S, x where S: (n, n) symmetric", S=S, x=x, check=True)
    Si = np.linalg.inv(S)
    # ∂f/∂x = 2S⁻¹x: its derivative over symmetric S along the structure's directions
    expected = expected_from_differences(lambda s: 2 * np.linalg.solve(s, x), S, "symmetric", "sym")
    assert np.allclose(r["x,S"].value, expected, rtol=1e-6, atol=1e-8)
    # ∂f/∂S = −S⁻¹xxᵀS⁻¹ (symmetric): its derivative wrt x, not projected on x's axis
    h = 1e-6
    fd = np.stack([(-(Si @ np.outer(x + h * e, x + h * e) @ Si) + Si @ np.outer(x - h * e, x - h * e) @ Si) / (2 * h)
                   for e in np.eye(N)], axis=-1)
    assert np.allclose(r["S,x"].value, fd, rtol=1e-6, atol=1e-8)
    assert r.checks.ok


def test_third_derivative_of_logdet_over_symmetric_matrices_is_the_closed_form():
    """D³ log det(S)[A, B, C] = tr(S⁻¹AS⁻¹BS⁻¹C) + tr(S⁻¹AS⁻¹CS⁻¹B) for symmetric A, B, C; the
    projected tensor is symmetric in each pair."""
    rng = np.random.default_rng(7)
    S = spd(rng)
    Si = np.linalg.inv(S)
    r = gradcli.grad("logdet(S) wrt S where S: (n, n) spd", S=S, order=3, check=True)
    T = r["S"].value
    for a, b in [(0, 1), (2, 3), (4, 5)]:
        assert np.allclose(T, np.swapaxes(T, a, b))
    for _ in range(3):
        A, B, C = ((m + m.T) for m in rng.standard_normal((3, N, N)))
        closed = np.trace(Si @ A @ Si @ B @ Si @ C) + np.trace(Si @ A @ Si @ C @ Si @ B)
        assert np.isclose(np.einsum("ijklpq,ij,kl,pq->", T, A, B, C), closed)
    assert r.checks.ok


def test_the_hessian_of_a_vector_f_wrt_s_is_projected_on_both_pairs():
    rng = np.random.default_rng(8)
    S, x = spd(rng), rng.standard_normal(N)
    r = gradcli.hess("inv(S)@x wrt S where S: (n, n) symmetric", S=S, x=x, check=True)

    def jacobian_sym(s):  # the projected Jacobian, in closed form
        si = np.linalg.inv(s)
        j = -np.einsum("ik,l->ikl", si, si @ x)
        return (j + j.transpose(0, 2, 1)) / 2
    expected = expected_from_differences(jacobian_sym, S, "symmetric", "sym")
    assert np.allclose(r["S"].value, expected, rtol=1e-6, atol=1e-8)
    assert "on each pair" in r["S"].formula
    assert r.checks.ok


@pytest.mark.parametrize("convention", ["sym", "vech"])
def test_hessian_vector_products_wrt_s_are_the_derivative_of_the_gradient_along_v(convention):
    rng = np.random.default_rng(9)
    S, x = spd(rng), rng.standard_normal(N)
    V = rng.standard_normal((N, N))
    V = V + V.T

    def gradient(s):
        g = _gradient_sym(s, x)
        return g if convention == "sym" else 2 * g - g * np.eye(N)
    r = gradcli.hess("logdet(S) + x'@inv(S)@x wrt S where S: (n, n) spd", S=S, x=x, V=V, direction={"S": "V"},
                     symmetric_gradient=convention, check=True)
    assert np.allclose(r["S"].value, along(gradient, S, V), rtol=1e-6, atol=1e-8)
    assert r.checks.ok
    d = gradcli.grad("logdet(S) + x'@inv(S)@x wrt S where S: (n, n) spd", S=S, x=x, V=V, direction={"S": "V"})
    Si = np.linalg.inv(S)
    assert np.isclose(d["S"].value, np.sum((Si - Si @ np.outer(x, x) @ Si) * V))


def test_a_direction_of_a_structured_matrix_has_its_structure():
    rng = np.random.default_rng(10)
    S = spd(rng)
    with pytest.raises(GradcliError, match="its direction must be symmetric"):
        gradcli.grad("logdet(S) wrt S where S: (n, n) spd", S=S, V=rng.standard_normal((N, N)),
                     direction={"S": "V"})["S"].value
    r = gradcli.grad("logdet(S) wrt S where S: (n, n) spd", S=S, direction={"S": "V"}, random=True, check=True)
    assert r.checks.ok  # the drawn direction is symmetric: S + tV stays so


def test_emitted_code_projects_as_the_evaluator_does(tmp_path):
    from helpers import load_module

    rng = np.random.default_rng(11)
    S, x, A = spd(rng), rng.standard_normal(N), rng.standard_normal((N, N))
    for text, arrays, structure, convention, hessian in [
            ("inv(S)@x", dict(S=S, x=x), "symmetric", "sym", False),
            ("S@A@S", dict(S=S, A=A), "spd", "vech", False),
            ("S@x", dict(S=np.diag(np.diag(S)), x=x), "diagonal", "sym", False),
            ("logdet(S) + x'@inv(S)@x", dict(S=S, x=x), "spd", "sym", True)]:
        call = gradcli.hess if hessian else gradcli.grad
        r = call(f"{text} wrt S where S: (n, n) {structure}", symmetric_gradient=convention, **arrays)
        module = load_module(r.emit("numpy"), tmp_path, f"m{abs(hash(text))}")
        _, out = (module.value_and_hess if hessian else module.value_and_grad)(**arrays)
        assert np.allclose(out["S"], r["S"].value)


def test_the_identity_in_an_index_form_is_a_delta_and_the_form_evaluates_right(tmp_path):
    """The vech Hessian of logdet(S) has G ⊙ I in its gradient; its index form printed the
    identity as an opaque entry `(I)[i,j]`.  It is δ(i,j), contracted like the others; the
    emitted module (which evaluates the index form by einsum) equals central differences of the
    vech gradient 2S⁻¹ − diag(diag(S⁻¹)) (numpy), projected on the second pair as vech says."""
    from helpers import load_module

    rng = np.random.default_rng(5)
    S = spd(rng)
    r = gradcli.hess("logdet(S) wrt S where S: (n, n) symmetric", symmetric_gradient="vech", S=S)
    text = r["S"].formula
    assert "(I)" not in text and "δ(i,j)" in text
    module = load_module(r.emit("numpy"), tmp_path, "m_vech_logdet")
    _, out = module.value_and_hess(S=S)

    def g(M):
        inv = np.linalg.inv(M)
        return 2 * inv - np.diag(np.diag(inv))

    h, T = 1e-6, np.zeros((N, N, N, N))
    for k, l in itertools.product(range(N), repeat=2):
        E = np.zeros((N, N))
        E[k, l] = h
        T[:, :, k, l] = (g(S + E) - g(S - E)) / (2 * h)
    expected = T + T.transpose(0, 1, 3, 2) - T * np.eye(N)[None, None]
    assert np.allclose(out["S"], expected, atol=1e-6)
    assert np.allclose(r["S"].value, expected, atol=1e-6)
