"""How a message names the caller's options: Python keywords, or the command line's flags.

Why: the same application code (gradcli.run) serves `gradcli.grad(...)` and `gradcli grad ...`.
A notebook user who passed `tol=-1` must not be told about `--tol`, and the command line must
keep saying `--tol`.  The application builds its messages from a `Spelling`: `PYTHON` (the
keywords, the default) or the one the CLI passes (its flags): the CLI translates by choosing
the spelling, not by rewriting text.  The stages below the application (data files, -o
folders, backends, claims) speak of flags; `Spelling.translate` turns those into keywords for
Python callers, one token at a time (`-o DIR: …` becomes `save DIR: …`).
"""

from __future__ import annotations

import re
from .errors import GradcliError
from .record import record

# a flag as a whole word: `-d x=1`, `(--allow-nonfinite …)`; never the `-d` of "3-d arrays", nor
# a negated symbol in a formula (`exp(-s)`): a one-letter flag starts the message or follows a space
_FLAG = re.compile(r"(?:(?<![\w-])--[a-z][a-z-]*[a-z]|(?:^|(?<= ))-[a-z])(?![\w-])")
KEYWORDS = {"-d": "data", "-o": "save", "-s": "shapes", "--fn": "fns", "--random": "random=True",
            "--seed": "seed", "--tol": "tol", "--check": "check=True", "--claim": "claims",
            "--wrt": "wrt", "--layout": "layout", "--backend": "backend", "--scheduler": "scheduler",
            "--chunk-rows": "chunk_rows", "--allow-nonfinite": "allow_nonfinite=True",
            "--direction": "direction", "--order": "order"}


@record
class Spelling:
    """The words messages use for options; templates take `{name}`, `{builtin}`, `{value}`."""

    wrt: str = "wrt=[...]"
    fns: str = "fns"
    fn_item: str = "fns={{{name!r}: {builtin!r}}}"
    tol: str = "tol={value!r}"
    check: str = "check=True"
    random: str = "random=True"
    seed: str = "seed="
    save: str = "save="
    data: str = "arrays or data="
    data_with: str = "arrays or data="
    claim: str = "claims="
    order_item: str = "order={value}"
    direction_item: str = "direction={value!r}"
    flags: bool = False  # whether the flags the stages below speak of are this caller's words

    def fn(self, name: str, builtin: str) -> str:
        return self.fn_item.format(name=name, builtin=builtin)

    def tolerance(self, value: float) -> str:
        return self.tol.format(value=value)

    def order(self, value: int) -> str:
        return self.order_item.format(value=value)

    def direction(self, value: str) -> str:
        return self.direction_item.format(value=value)

    def translate(self, err: GradcliError) -> GradcliError:
        """The error in this caller's words (flags named by their keywords for Python)."""
        if not self.flags:
            err.message = _FLAG.sub(lambda m: KEYWORDS.get(m.group(0), m.group(0)), err.message)
            err.args = (err.message,)
        return err


PYTHON = Spelling()
CLI = Spelling(wrt="--wrt NAME", fns="--fn", fn_item="--fn {name}={builtin}", tol="--tol {value}",
               check="--check", random="--random", seed="--seed", save="-o", data="-d data",
               data_with="data with -d", claim="--claim", order_item="--order {value}", direction_item="--direction {value}",
               flags=True)
