"""The parse tree's typed form: small immutable nodes that remember their column.

The parser builds these; the shape checker (`infer.py`) turns them into the typed expression
graph.  Nothing here knows about shapes or derivatives: this is just what the user wrote.
The nodes a parse makes by the thousand write their own __init__ (plain assignments, no
generic argument handling); `@record` keeps it and adds the repr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeAlias

from ..record import record

if TYPE_CHECKING:  # for checkers only: a declared size is one the shape system holds (m*n too)
    from . import shapes

Dim: TypeAlias = "shapes.Dim"
ShapeSpec: TypeAlias = "tuple[Dim, ...]"  # () is a scalar, (n,) a column vector, (m, n) a matrix


@record
class Node:
    col: int  # 1-based column of the token that names this node (operator, name, bracket)


@record
class Num(Node):
    value: float
    text: str

    def __init__(self, col: int, value: float, text: str):
        self.col, self.value, self.text = col, value, text


@record
class Sym(Node):
    name: str

    def __init__(self, col: int, name: str):
        self.col, self.name = col, name


@record
class Binary(Node):
    op: str  # one of + - * / @ ^
    left: Node
    right: Node

    def __init__(self, col: int, op: str, left: Node, right: Node):
        self.col, self.op, self.left, self.right = col, op, left, right


@record
class Unary(Node):
    op: str  # - or +
    operand: Node

    def __init__(self, col: int, op: str, operand: Node):
        self.col, self.op, self.operand = col, op, operand


@record
class Transpose(Node):
    operand: Node

    def __init__(self, col: int, operand: Node):
        self.col, self.operand = col, operand


@record
class Call(Node):
    name: str
    args: tuple[Node, ...]
    deriv: int = 0  # h'(z) has deriv 1: the derivative of an abstract function

    def __init__(self, col: int, name: str, args: tuple[Node, ...], deriv: int = 0):
        self.col, self.name, self.args, self.deriv = col, name, args, deriv


@record
class Norm(Node):
    operand: Node
    kind: str  # as numpy's ord: "" (no subscript), "2", "1", "inf", "F", "*"


@record
class Keyword(Node):
    """`axis=0` inside a call (col: the keyword's name)."""

    name: str
    value: Node


@record
class Decl:
    name: str
    shape: ShapeSpec
    col: int
    structure: str = ""  # symmetric | spd | diagonal (`where S: (n, n) symmetric`), else ""
    structure_col: int = 0


@record
class Formula:
    """One parsed line: `EXPR [wrt ...] [where ...]`."""

    text: str
    expr: Node
    wrt: tuple[tuple[str, int], ...] = ()
    where: tuple[Decl, ...] = ()


def postorder(root: Node, children: Callable[[Node], Iterable[Node]]) -> list[Node]:
    """Every node under root that `children` reaches, operands before the nodes that use them;
    iterative, because formulas nest thousands deep (shape inference and rank decision both walk
    the tree this way, each with its own notion of which children count).

    Built as the reverse of a pre-order that takes the last operand first: reversed, that is
    exactly the post-order with operands left to right (no marker per node, one list)."""
    out: list[Node] = []
    stack = [root]
    pop, visit, push = stack.pop, out.append, stack.extend
    while stack:
        node = pop()
        visit(node)
        push(children(node))
    out.reverse()
    return out
