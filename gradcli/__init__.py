"""gradcli: matrix calculus at the command line — derivatives in matrix notation, the shape of
every symbol and derivative, and their numeric values.

The pipeline, a package per stage (README, "How the code is organised"):
    language/ (text → syntax → shapes → the typed graph; the operators, one record each)
    → calculus/ (reverse mode, Jacobians, index notation, steps)
    → numeric/ (the evaluator, --emit, data) → checks/ (--claim, check files)
and the front door here: api.py (`Problem`), run.py (one call a command), cli.py.

In Python: `gradcli.grad(formula, **arrays)` (and `hess`, `shape`, `check`) returns the
derivatives keyed by the wrt names, shown rendered in Jupyter (gradcli.run makes them,
gradcli.results holds them; the command line is a thin layer over the same calls); `analyze`
gives the pipeline's own objects (gradcli.api).

The names below are loaded on first use: importing the package costs nothing, so the command's
entry point (gradcli.process) can install its signal handlers before anything heavy is imported.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (checkers read the name as True)
if TYPE_CHECKING:  # what a checker reads for the names loaded on first use (nothing imported here)
    from types import ModuleType

    from .api import Compiled, Derivative, Problem, analyze, derivation, emit_code, parse_dims
    from .errors import GradcliError
    from .language.parse import parse
    from .results import Result, Results, Steps
    from .run import check, check_files, grad, hess, shape

__version__ = "0.1.0"
__all__ = ["grad", "hess", "shape", "check", "check_files", "Results", "Result", "Steps", "analyze", "parse", "parse_dims",
           "Problem", "Derivative", "Compiled", "GradcliError", "derivation", "emit_code", "__version__"]

_HOMES = {"parse": "language.parse", "analyze": "api", "parse_dims": "api", "Problem": "api", "Derivative": "api",
          "Compiled": "api", "GradcliError": "errors", "derivation": "api", "emit_code": "api",
          # the application (gradcli.run): one call a command, results keyed by wrt name (gradcli.results)
          "grad": "run", "hess": "run", "shape": "run", "check": "run", "check_files": "run",
          "Results": "results", "Result": "results", "Steps": "results"}


def _load(module: str) -> ModuleType:
    import importlib

    importlib.import_module(".language.operators", __name__)  # fills the operator table every stage reads
    return importlib.import_module("." + module, __name__)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
    value = getattr(_load(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
