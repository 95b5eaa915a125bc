"""Issue 19's figures: how many derivatives gradcli prints as the textbook does, and how long.

The table (tests/textbook_table.py: Matrix Cookbook, ML losses, Jacobians, Hessians, each
checked numerically by tests/test_textbook_table.py) and the comparator (tests/textbook_compare.py:
equal up to the ordering of sums and scalar factors, `.T` vs `'`, and brackets; length = printed
symbols of the ASCII form, gradcli's with its z-bindings) live with the tests; this prints

- rows, % equal after trivial rewrites, median / worst-tenth / max length ratio (gradcli/textbook),
- the same per group,
- every row that differs: formula, gradcli's print, textbook form, ratio.

    python -m bench --part textbook

No timing: the figures are properties of the printed formulas, the same on any machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def _modules():
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import textbook_compare
    import textbook_table

    return textbook_table, textbook_compare


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`" if text else ""


def textbook_table() -> None:
    table, compare = _modules()
    results = [(row, compare.compare(row)) for row in table.ROWS]
    print("#### Textbook forms (`python -m bench --part textbook`; issue 19: goal ≥ 95% equal, max ratio ≤ 1.5)\n")
    print("| rows | group | equal after trivial rewrites | median ratio | worst tenth (p90) | max ratio |")
    print("|---|---|---|---|---|---|")
    for group in (None, *table.GROUPS):
        chosen = [c for row, c in results if group is None or row.group == group]
        f = compare.figures(chosen)
        print(f"| {f.rows} | {group or 'all'} | {f.equal} ({f.percent_equal:.1f}%) | {f.median_ratio:.2f} | "
              f"{f.worst_tenth_ratio:.2f} | {f.max_ratio:.2f} |")
    differing = [(row, c) for row, c in results if not c.equal]
    print(f"\n{len(differing)} rows differ (ratio = gradcli's printed symbols / the textbook's):\n")
    print("| command | formula | gradcli prints | textbook (the row's shortest form) | ratio |")
    print("|---|---|---|---|---|")
    for row, c in sorted(differing, key=lambda rc: -rc[1].ratio):
        print(f"| {row.command} | {_cell(row.formula)} | {_cell(c.shown)} | {_cell(c.textbook)} | {c.ratio:.2f} |")
    print()
