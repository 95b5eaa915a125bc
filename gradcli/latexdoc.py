"""LaTeX that pastes into a paper unchanged: whole equations and a standalone document.

Why a module of its own: the renderer gives the right-hand sides; a paper needs the left-hand
side too (`\\frac{\\partial f}{\\partial X} = …`, never the terminal's Unicode `∂f/∂X`), tensors
written with subscripts, and a document that compiles as it is.  Everything here needs only
amsmath and amssymb (README: LaTeX).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .language.render import latex_subscript, pretty_name, render_formulas

if TYPE_CHECKING:
    from .api import Problem
    from .derivative import Derivative
    from .language.shapes import Dim

PACKAGES = ("amsmath", "amssymb")


def _name(name: str) -> str:
    return pretty_name(name, "latex")


def _sub(name: str, indices: Iterable[str]) -> str:
    idx = list(indices)
    return latex_subscript(_name(name), idx) if idx else _name(name)


def derivative_label(d: Derivative) -> str:
    """`\\frac{\\partial f}{\\partial X}`; `\\frac{\\partial^{2} f}{\\partial x^{2}}` for a
    Hessian, `\\frac{\\partial^{2} f}{\\partial x \\, \\partial y}` for a mixed block;
    `\\frac{\\partial f}{\\partial x} v` along a direction, `\\frac{\\partial^{3} f}{\\partial x^{3}}`."""
    if d.kind == "directional":
        return " + ".join(rf"\frac{{\partial f}}{{\partial {_name(x)}}} {_name(v)}" for x, v in d.direction)
    if d.kind == "hessian-vector":
        return " + ".join((rf"\frac{{\partial^{{2}} f}}{{\partial {_brace(_name(d.wrt))}^{{2}}}}" if x == d.wrt else
                           rf"\frac{{\partial^{{2}} f}}{{\partial {_name(d.wrt)} \, \partial {_name(x)}}}") + f" {_name(v)}"
                          for x, v in d.direction)
    if d.kind == "tensor":
        return rf"\frac{{\partial^{{{d.order}}} f}}{{\partial {_brace(_name(d.wrt))}^{{{d.order}}}}}"
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        if not b or a == b:
            return rf"\frac{{\partial^{{2}} f}}{{\partial {_brace(_name(a))}^{{2}}}}"
        return rf"\frac{{\partial^{{2}} f}}{{\partial {_name(a)} \, \partial {_name(b)}}}"
    return rf"\frac{{\partial f}}{{\partial {_name(d.wrt)}}}"


def _brace(text: str) -> str:
    """A base that carries a subscript gets braces before a superscript: {W_{1}}^{2}."""
    return "{" + text + "}" if "_" in text or "^" in text else text


def indexed_label(d: Derivative) -> str:
    """The left-hand side of a derivative in index notation, one entry of the tensor:
    `\\frac{\\partial f_{ij}}{\\partial X_{kl}}` (f's indices i, j, …; x's k, l, …, as on the
    right-hand side), `\\frac{\\partial^{2} f}{\\partial a_{ij} \\, \\partial b_{kl}}` for a
    Hessian block (i, j index the gradient wrt a)."""
    from .calculus.indexform import F_INDEX, X_INDEX

    f_idx = F_INDEX[:len(d.f_ty.dims)]
    x_idx = X_INDEX[:len(d.x_ty.dims)]
    if d.tensor is not None:  # T_{ijk}: the tensor's entry at its indices
        return latex_subscript(rf"\left({derivative_label(d)}\right)", d.index_names())
    x_name = d.x.params[0] if d.x is not None else d.wrt.partition(",")[-1]
    if d.kind == "hessian":
        a = d.wrt.partition(",")[0]
        return rf"\frac{{\partial^{{2}} f}}{{\partial {_sub(a, f_idx)} \, \partial {_sub(x_name, x_idx)}}}"
    f = latex_subscript("f", f_idx) if f_idx else "f"
    return rf"\frac{{\partial {f}}}{{\partial {_sub(x_name, x_idx)}}}"


def equations(problem: Problem, derivs: list[Derivative]) -> tuple[list[str], list[str]]:
    """(equations, bindings): `f = …`, one whole equation per derivative (its formula, else
    index notation; a tensor with neither is left out), and `z_{1} = …` for the subexpressions
    the derivatives share."""
    bindings, texts = render_formulas([d.shown() for d in derivs], "latex")
    lines = [f"f = {problem.text('latex')}"]
    for d, text in zip(derivs, texts):
        if text:
            lines.append(f"{derivative_label(d)} = {text}")
        else:
            index = d.formula("latex")
            if index:
                lines.append(index)
    return lines, [f"{name} = {text}" for name, text in bindings]


def _shape(dims: tuple[Dim, ...]) -> str:
    """(m, n) as LaTeX: a scalar is `()`, names set in math italics."""
    if not dims:
        return r"\text{scalar}"
    return r" \times ".join(_name(str(d)) if not isinstance(d, int) else str(d) for d in dims)


def document(problem: Problem, derivs: list[Derivative], source: str | None = None) -> str:
    """A standalone LaTeX document (article, amsmath and amssymb) with f, its symbols and
    shapes, and every derivative: `pdflatex` compiles it as it is."""
    return "\n".join([*preamble(), "", *body(problem, derivs, source), "", r"\end{document}", ""])


def preamble() -> list[str]:
    return [r"\documentclass{article}", r"\usepackage{" + ",".join(PACKAGES) + "}", r"\begin{document}"]


def body(problem: Problem, derivs: list[Derivative], source: str | None = None) -> list[str]:
    """The document's content for one formula (several formulas can share one document)."""
    eqs, bindings = equations(problem, derivs)
    rows = [rf"  ${_name(n)}$ & ${_shape(s.shape)}$ & {s.source} \\" for n, s in problem.symbols.items()]
    rows += [rf"  ${derivative_label(d)}$ & ${_shape(d.shape)}$ & {d.kind}, {d.layout} layout \\"
             for d in derivs]
    out = [r"% Generated by gradcli from: " + ascii_comment(" ".join(source.split())), ""] if source is not None else []
    out += [r"\begin{align*}", "  " + eqs[0], r"\end{align*}", "",
            r"\begin{tabular}{lll}", r"  symbol & shape & source \\ \hline", *rows, r"\end{tabular}", ""]
    for eq in eqs[1:]:
        out += [r"\begin{align*}", "  " + eq, r"\end{align*}"]
    if bindings:
        out += ["where", r"\begin{align*}", " \\\\\n".join("  " + b for b in bindings), r"\end{align*}"]
    return out


_ASCII = {"∂": "d", "−": "-", "·": "*", "×": "x", "‖": "||", "⊙": "*", "⊘": "/", "𝟙": "1", "Σ": "sum",
          "δ": "delta", "≤": "<=", "≥": ">=", "…": "...", "∘": "o", "⟨": "<", "⟩": ">", "→": "->",
          "’": "'", "ᵀ": "'", "²": "^2", "³": "^3", "⁻": "^-"}


def ascii_comment(text: str) -> str:
    """A terminal annotation made ASCII for a LaTeX comment line: θ → theta, ∂fᵢ/∂xⱼ → dfi/dxj,
    any character left without an ASCII spelling → ?.  pdflatex skips comments, but a paper's
    source (and an old TeX) should not carry Unicode it never asked for."""
    import unicodedata

    from .language.render import GREEK

    greek = {uni: name for name, (uni, _) in GREEK.items() if name not in ("eps", "lam")}
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        spelled = _ASCII.get(ch) or greek.get(ch)
        if spelled is None:
            plain = unicodedata.normalize("NFKD", ch)
            spelled = plain if plain.isascii() and plain else "?"
        out.append(spelled)
    return "".join(out)
