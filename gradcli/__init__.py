"""gradcli: matrix calculus at the command line — derivatives in matrix notation, the shape of
every symbol and derivative, and their numeric values.

The pipeline, one module per stage:
    parse.py (text → syntax) → infer.py (shapes, typed graph) → differentiate.py (reverse mode)
    → render.py (unicode / ASCII / LaTeX) and evaluate.py (numbers, via an array namespace).
ops.py is the table of operators: shape rule, derivative rule, numpy implementation, notation.
"""

from . import ops as _ops  # noqa: F401  (fills the operator table)
from .api import Compiled, Derivative, Problem, analyze, parse_dims
from .errors import GradcliError
from .parse import parse

__version__ = "0.1.0"
__all__ = ["analyze", "parse", "parse_dims", "Problem", "Derivative", "Compiled", "GradcliError",
           "__version__"]
