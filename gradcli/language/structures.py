"""Declared matrix structure: `where S: (n, n) symmetric` (also `spd`, `diagonal`), `-s S=n,n,sym`.

A structure is a fact about a symbol the user vouches for, so it lives on the symbol node itself
(its params: (name, shape, structure)): two symbols that differ in structure are different
nodes, and every rule that asks "is this matrix symmetric?" reads it there.  What it changes:
Sᵀ simplifies to S, the gradient wrt S is taken over matrices of that structure (see
`project_gradient`), `--check` perturbs along such matrices, `--random` draws them, and data that
contradicts the declaration is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import GradcliError
from .expr import Expr, make
from .shapes import Ty, fmt_dims

if TYPE_CHECKING:  # for checkers only: infer imports this module
    from collections.abc import Callable, Generator

    from .infer import Symbol
    from .syntax import Formula

# the words a user may write → the structure's one name
SPELLINGS = {"symmetric": "symmetric", "sym": "symmetric", "spd": "spd", "diagonal": "diagonal",
             "diag": "diagonal"}
STRUCTURES = ("symmetric", "spd", "diagonal")
CONVENTIONS = ("sym", "vech")  # --symmetric-gradient


def canonical(word: str) -> str | None:
    """The structure a word names, or None."""
    return SPELLINGS.get(word)


def known_words() -> str:
    return "symmetric (sym), spd, diagonal (diag)"


def square_problem(name: str, structure: str, ty: Ty) -> str | None:
    """Why `name` cannot carry `structure` with shape `ty` (not a square matrix), or None."""
    if ty.is_matrix and ty.dims[0] == ty.dims[1]:
        return None
    return f"{name} is declared {structure}, which needs a square matrix, but its shape is {fmt_dims(ty.full_dims)}"


def structure_of(params: tuple[object, ...]) -> str:
    """The structure a symbol node's params carry ('' for a general symbol)."""
    return str(params[2]) if len(params) > 2 else ""


def gradient_note(name: str, structure: str, convention: str) -> str:
    """The one line that says which convention a structured gradient follows."""
    if structure == "diagonal":
        return (f"{name} is diagonal: ∂f/∂{name} is the diagonal part of the unstructured gradient G "
                "(the derivative wrt its diagonal entries, off-diagonal entries 0)")
    if convention == "vech":
        return (f"{name} is {structure}: ∂f/∂{name} = G + Gᵀ − G⊙I for the unstructured gradient G (the "
                "derivative wrt the n(n+1)/2 distinct entries; --symmetric-gradient sym gives (G + Gᵀ)/2)")
    return (f"{name} is {structure}: ∂f/∂{name} = (G + Gᵀ)/2, the symmetric part of the unstructured "
            "gradient G (Srinivasan & Panda 2019; --symmetric-gradient vech gives G + Gᵀ − G⊙I)")


def declared_structures(formula: Formula, given: Mapping[str, str] | None) -> dict[str, str]:
    """Each symbol's structure: from the where clause, else from -s (the where clause is the
    formula's own word; -s a default for it, like shapes)."""
    out = dict(given or {})
    for decl in formula.where:
        if decl.structure:
            out[decl.name] = decl.structure
    return out


def check_square(formula: Formula, structures: Mapping[str, str], symbols: Mapping[str, Symbol]) -> None:
    """A structure on a symbol that is not a square matrix is a shape error, at the column of
    the structure's word (or the symbol's declaration)."""
    cols = {d.name: d.structure_col or d.col for d in formula.where}
    for name, structure in structures.items():
        found = symbols.get(name)
        if found is None:
            continue
        why = square_problem(name, structure, found.ty)
        if why is not None:
            raise GradcliError("shape", why, cols.get(name), formula.text)


def declared_symmetric(e: Expr) -> Generator[Expr, bool, bool]:
    """The symmetry rule of a symbol (simplify.is_symmetric): symmetric when declared so
    (symmetric, spd and diagonal matrices all are), so Sᵀ simplifies to S."""
    return bool(structure_of(e.params))
    yield e  # a generator, like every symmetry rule


def project_gradient(g: Expr, structure: str, convention: str) -> Expr:
    """The gradient wrt a structured matrix, from the unstructured gradient G:

    symmetric/spd, convention "sym": (G + Gᵀ)/2, the symmetric part — the gradient on the space
    of symmetric matrices with the Frobenius inner product (Srinivasan & Panda 2019), so that
    f(S + εE) ≈ f(S) + ε⟨∇, E⟩ for every symmetric E;  convention "vech": G + Gᵀ − G⊙I, the
    derivative wrt the n(n+1)/2 distinct entries (each off-diagonal entry appears twice in S);
    diagonal: the diagonal part of G, the derivative wrt the diagonal entries."""
    from . import simplify as S

    if structure == "diagonal":
        return make("diagm", make("diagv", g))
    both = S.add(g, S.T(g))
    if convention == "vech":
        return S.sub(both, S.mul(g, S.eye(g.ty.dims[0])))
    return S.div(both, S.const(2.0))


def split_structure(text: str) -> tuple[str, str]:
    """-s S=n,n,sym: (the shape's text, the structure) — the last comma-separated word, when it
    names a structure and follows a shape ('n,sym' stays the shape (n, sym))."""
    head, sep, last = text.rpartition(",")
    word = canonical(last.strip())
    if sep and word is not None and ("," in head or "x" in head.replace(" ", "").strip("()")):
        return head, word
    return text, ""


# ----------------------------------------------------------------------------- Jacobians and Hessians
# The same convention for a derivative with more axes than a gradient: each entry of f (each
# entry of the gradient, for a Hessian block) is a scalar function of S, and its gradient over
# matrices of S's structure is taken as above.  So a Jacobian or Hessian wrt S is the
# unstructured one J projected on S's two axes (k, l): sym ½(J[…,k,l] + J[…,l,k]); vech
# J[…,k,l] + J[…,l,k] − δ(k,l) J[…,k,l]; diagonal δ(k,l) J[…,k,l].  A Hessian block wrt S and S
# is projected on both pairs: the first by the projected gradient it differentiates.

def convention_of(structure: str, symmetric_gradient: str) -> str:
    """The projection a derivative wrt a symbol of this structure takes ('' for none)."""
    if not structure:
        return ""
    return "diagonal" if structure == "diagonal" else symmetric_gradient


def projected_entry(convention: str, k: str, l: str, entry: Callable[[str, str], str], style: str) -> str:
    """One entry of the projection of a tensor T on the axes indexed k, l, as text; entry(a, b)
    writes T's entry with a, b in those places."""
    delta = rf"\delta_{{{k}{l}}}" if style == "latex" else f"delta({k},{l})" if style == "ascii" else f"δ({k},{l})"
    if convention == "diagonal":
        return f"{delta} {entry(k, l)}"
    both = f"{entry(k, l)} + {entry(l, k)}"
    if convention == "vech":
        return f"{both} − {delta} {entry(k, l)}" if style != "ascii" else f"{both} - {delta} {entry(k, l)}"
    half = r"\tfrac{1}{2}" if style == "latex" else "½" if style == "unicode" else "0.5 "
    return f"{half}({both})"


def jacobian_note(name: str, structure: str, convention: str, hessian: bool) -> str:
    """The line that says how a Jacobian (or Hessian) wrt a structured matrix is taken."""
    of = "the gradient's entries" if hessian else "f's entries"
    if convention == "diagonal":
        how = f"δ(k,l) J[…,k,l], the diagonal part over {name}'s two axes k, l"
    elif convention == "vech":
        how = (f"J[…,k,l] + J[…,l,k] − δ(k,l) J[…,k,l] over {name}'s two axes k, l (the derivative wrt the "
               "n(n+1)/2 distinct entries; --symmetric-gradient sym gives ½(J[…,k,l] + J[…,l,k]))")
    else:
        how = (f"½(J[…,k,l] + J[…,l,k]), the symmetric part over {name}'s two axes k, l "
               "(--symmetric-gradient vech gives J[…,k,l] + J[…,l,k] − δ(k,l) J[…,k,l])")
    return (f"{name} is {structure}: {of} are differentiated over {structure} matrices, so "
            f"∂/∂{name} of them is {how}, for the unstructured J")


def vec_projector(convention: str, n: object) -> Expr:
    """The (n², n²) matrix P with vec(proj(E)) = P vec(E): the projection in the vec layout,
    so the derivative there is J P (K the commutation matrix, K vec(E) = vec(Eᵀ)):
    sym (I + K)/2, vech I + K − Diag(vec(I)), diagonal Diag(vec(I))."""
    from . import simplify as S
    from .shapes import product

    eye = S.eye(n)  # type: ignore[arg-type]
    diagonal = make("diagm", make("vec", eye))
    if convention == "diagonal":
        return diagonal
    both = S.add(S.eye(product(n, n)), make("commutation", params=(n, n)))  # type: ignore[arg-type]
    if convention == "vech":
        return S.sub(both, diagonal)
    return S.div(both, S.const(2.0))
