"""How results show themselves: plain text for a console, and for Jupyter LaTeX (the formulas),
Markdown and HTML (the formulas and a table of symbols and shapes).

Why here and not in the result classes: Jupyter asks an object for `_repr_latex_`,
`_repr_markdown_` and `_repr_html_` and shows the richest its front end renders; the three
views (and the text one) say the same things and share the pieces below.  The LaTeX is the
same whole-equation LaTeX that `--latex` prints (latexdoc), inside `$$ … $$`.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .latexdoc import derivative_label, _name as latex_name, _shape as latex_shape
from .language.render import render_formulas
from .language.shapes import fmt_dims

if TYPE_CHECKING:
    from .api import Problem
    from .derivative import Derivative
    from .results import Result, Results


def _ascii_label(d: Derivative) -> str:
    """df/dtheta, d2f/dx2, d2f/dxdy: a label typed as the formulas are (ASCII)."""
    if d.kind == "directional":
        return " + ".join(f"df/d{x}*{v}" for x, v in d.direction)
    if d.kind == "hessian-vector":
        return " + ".join(f"d2f/d{d.wrt}{'2' if x == d.wrt else 'd' + x}*{v}" for x, v in d.direction)
    if d.kind == "tensor":
        return f"d{d.order}f/d{d.wrt}{d.order}"
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        return f"d2f/d{a}2" if not b or a == b else f"d2f/d{a}d{b}"
    return f"df/d{d.wrt}"


def _summary(value: Any) -> str:
    import numpy as np

    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.10g}"
    if arr.size <= 12:
        return np.array2string(arr, precision=6, separator=", ", max_line_width=80).replace("\n", "")
    return f"array {arr.shape}: min {arr.min():.4g}, max {arr.max():.4g}, ‖·‖ {np.linalg.norm(arr):.4g}"


# ------------------------------------------------------------------------------- plain text
def result_text(r: Result) -> str:
    """`df/dtheta = -2*X' @ (y - X @ theta)    # gradient, shape (n,)`: the formula in gradcli's
    own language, which reads back in."""
    d = r.derivative
    where = f"# {d.kind}, shape {fmt_dims(d.shape)}, {d.layout} layout"
    ascii_text = r.ascii
    if ascii_text is None:
        return f"{_ascii_label(d)}: {where[2:]}"
    sep = "" if ascii_text.startswith("[") else " = "
    out = f"{_ascii_label(d)}{sep}{ascii_text}    {where}"
    value = r.value
    return out if value is None else out + f"\n  value: {_summary(value)}"


def results_text(rs: Results) -> str:
    p = rs.problem
    lines = [f"f = {p.text('ascii')}    # shape {fmt_dims(p.shape)}"
             + (f", value {_summary(rs.value)}" if rs.value is not None else ""),
             "  symbols: " + ", ".join(f"{n} {fmt_dims(s)}" for n, s in rs.symbols.items())]
    lines += [result_text(r) for r in rs.values()]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- LaTeX
def _aligned(equations: list[str]) -> str:
    """Equations `lhs = rhs` aligned at their first `=`, in display math."""
    rows = []
    for eq in equations:
        lhs, sep, rhs = eq.partition(" = ")
        rows.append(f"{lhs} &= {rhs}" if sep else eq)
    return "$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"


def _symbol_array(problem: Problem) -> str:
    rows = [rf"{latex_name(n)} & {latex_shape(s.shape)} & \text{{{s.source}}}" for n, s in problem.symbols.items()]
    return ("$$\n\\begin{array}{lll}\n\\text{symbol} & \\text{shape} & \\text{source} \\\\ \\hline\n"
            + " \\\\\n".join(rows) + "\n\\end{array}\n$$")


def _equations(rs: Results) -> list[str]:
    """f, every derivative (a whole equation each) and the shared subexpressions they name."""
    eqs = [rs.latex]
    if not rs._formulas:
        return eqs
    bindings, texts = render_formulas([d.shown() for d in rs.derivatives], "latex")
    for d, text in zip(rs.derivatives, texts):
        eq = f"{derivative_label(d)} = {text}" if text else d.formula("latex")
        if eq:
            eqs.append(eq)
    return eqs + [rf"\text{{where }} {name} = {text}" for name, text in bindings]


def results_latex(rs: Results) -> str:
    return _aligned(_equations(rs)) + "\n" + _symbol_array(rs.problem)


def result_latex(r: Result) -> str:
    eq = r.latex or rf"{derivative_label(r.derivative)} \in \mathbb{{R}}^{{{latex_shape(r.shape)}}}"
    return _aligned([eq])


def problem_latex(problem: Problem) -> str:
    return _aligned([f"f = {problem.text('latex')}"]) + "\n" + _symbol_array(problem)


def derivative_latex(d: Derivative) -> str:
    text = d.text("latex")
    eq = f"{derivative_label(d)} = {text}" if text else d.formula("latex")
    return _aligned([eq or rf"{derivative_label(d)}"])


# ------------------------------------------------------------------------------- Markdown
def _md_table(header: list[str], rows: list[list[str]]) -> str:
    cells = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells)


def _symbols_md(problem: Problem) -> str:
    return _md_table(["symbol", "shape", "source"],
                     [[f"${latex_name(n)}$", f"`{fmt_dims(s.shape)}`", s.source] for n, s in problem.symbols.items()])


def _derivatives_rows(rs: Results) -> list[list[str]]:
    rows = []
    for r in rs.values():
        value = r.value
        rows.append([f"${derivative_label(r.derivative)}$", r.kind, f"`{fmt_dims(r.shape)}`", r.layout,
                     "" if value is None else _summary(value)])
    return rows


def results_markdown(rs: Results) -> str:
    f_value = rs.value
    parts = [_aligned(_equations(rs)), "",
             f"f has shape `{fmt_dims(rs.shape)}`" + (f", value {_summary(f_value)}" if f_value is not None else ""),
             "", _symbols_md(rs.problem), "",
             _md_table(["derivative", "kind", "shape", "layout", "value"], _derivatives_rows(rs))]
    return "\n".join(parts)


def result_markdown(r: Result) -> str:
    value = r.value
    tail = f"{r.kind}, shape `{fmt_dims(r.shape)}`, {r.layout} layout"
    return result_latex(r) + "\n\n" + tail + ("" if value is None else f"; value {_summary(value)}")


def problem_markdown(problem: Problem) -> str:
    return _aligned([f"f = {problem.text('latex')}"]) + f"\n\nf has shape `{fmt_dims(problem.shape)}`\n\n" \
        + _symbols_md(problem)


# ------------------------------------------------------------------------------- HTML
def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def results_html(rs: Results) -> str:
    """The equations (typeset by the notebook's MathJax/KaTeX) and two tables."""
    symbols = [[html.escape(f"${latex_name(n)}$"), f"<code>{html.escape(fmt_dims(s.shape))}</code>",
                html.escape(s.source)] for n, s in rs.problem.symbols.items()]
    derivs = [[html.escape(c) if i != 2 else f"<code>{html.escape(c.strip('`'))}</code>" for i, c in enumerate(row)]
              for row in _derivatives_rows(rs)]
    f_value = rs.value
    return ("<div class='gradcli'>" + html.escape(_aligned(_equations(rs)))
            + f"<p>f has shape <code>{html.escape(fmt_dims(rs.shape))}</code>"
            + (f", value {html.escape(_summary(f_value))}" if f_value is not None else "") + "</p>"
            + _html_table(["symbol", "shape", "source"], symbols)
            + _html_table(["derivative", "kind", "shape", "layout", "value"], derivs) + "</div>")


def result_html(r: Result) -> str:
    value = r.value
    return ("<div class='gradcli'>" + html.escape(result_latex(r))
            + f"<p>{html.escape(r.kind)}, shape <code>{html.escape(fmt_dims(r.shape))}</code>, "
            + f"{html.escape(r.layout)} layout"
            + ("" if value is None else f"; value {html.escape(_summary(value))}") + "</p></div>")
