"""The registry of operators, one record each (`expr.Op`), grouped by family, a module each:

    structure.py    leaves (const, sym, numel), transpose, fill/expand, diag, eye
    arithmetic.py   + * / ^ and the matrix product @
    elementwise.py  exp, log, sin, sigmoid, relu, ... and a user's function h
    reductions.py   sum, mean, logsumexp, the vector norms, max, min, prod (and softmax)
    linalg.py       tr, det, logdet, inv, the matrix norms, evaluation-only rewrites
    commutation.py  the commutation matrix K_{m,n} of the vec layout

Importing this package fills `expr.OPS`, which every later stage reads.  `base.py` holds what
the families share (precedence of notation, notation helpers, numeric helpers).
"""

from ..expr import OPS
from . import structure, arithmetic, elementwise, reductions, linalg, commutation  # noqa: F401  (each registers its family)

# The element-wise builtins (`--fn h=tanh` binds h to one of them, `exp'(x)` is defined): every
# one-argument entry-wise operator a formula can call by name, in the order registered.
ELEMENTWISE = tuple(op.name for op in OPS.values() if op.entrywise and op.names and op.arity == (1,))
