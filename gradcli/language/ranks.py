"""Shapes from use: the rank of every undeclared symbol, decided before any dimension is.

SPEC §1: an undeclared name takes the shape its use demands, and its default by name decides
only what use leaves open.  Every expression has a kind — scalar S, column C, row R, matrix M —
and every undeclared symbol a set of kinds it may still take (a declared one has exactly one).

What fits where is not restated here: the shape checker's own rules say it.  `kind_rule` (given
by infer.py) builds an operator once on stand-in operands of the kinds asked about and reports
the result's kind, or None when the operator refuses them; results are remembered per
operator and kinds.  SPEC adds one rule of its own: the operands of `+` and `-` have the same
kind unless one of them is a literal or a declared symbol (then numpy broadcasting applies).
`*` and `/` get no such rule — `c*x` leaves c open — so their operands keep what use and the
defaults give them, combined by broadcasting.

Propagation narrows the sets (bottom-up: which kinds each node can have; top-down: which of
its operands' kinds lead to a kind its parent accepts; repeated until nothing changes).  Then
the symbols still open are decided one at a time — upper-case (matrix) names first, then
vectors, then scalars, the weakest default (the Matrix Cookbook writes a, b for vectors), each
in order of first appearance — by their default, or, where use excludes the default, by the
nearest kind it allows (S–C–M; a tie is no decision).  When use cannot be satisfied or does
not decide, every open symbol keeps its default and the shape checker reports what fails with
its usual message.
"""

from __future__ import annotations

from itertools import product
from collections.abc import Callable, Container, Hashable
from typing import Any

from .syntax import Binary, Call, Keyword, Node, Norm, Num, Sym, Transpose, Unary, postorder

KIND_RANK = {"S": 0, "C": 1, "R": 1, "M": 2}
RANK_KIND = {0: "S", 1: "C", 2: "M"}
SYMBOL_KINDS = frozenset("SCM")  # a symbol is never a row: rows come from transposes
DECISION_ORDER = {2: 0, 1: 1, 0: 2}  # matrices decide first, scalars last

KindRule = Callable[[Node, dict[str, int]], "str | None"]
Kinds = frozenset[str]  # the kinds a node may still take
Signature = tuple[Any, ...]  # an operator without its operands and columns (`_signature`)
# what decides ranks about a formula (`skeleton`): its post-order, its names, their declared ranks
Skeleton = tuple[tuple[Hashable, ...], tuple[str, ...], tuple[tuple[str, int], ...]]


def is_literal(node: Node) -> bool:
    """A number, possibly signed: `x + 1` does not make x a scalar."""
    while isinstance(node, Unary):
        node = node.operand
    return isinstance(node, Num)


def _is_setting(node: Node) -> bool:
    """A call's argument that is not an operand: a number (`sum(A, 0)`) or a keyword (`axis=0`)."""
    return is_literal(node) or isinstance(node, Keyword)


def is_fixed(node: Node, declared: Container[str]) -> bool:
    """A literal or a declared symbol (signed or transposed): SPEC's exception to the rule that
    the operands of + and - have the same shape."""
    while isinstance(node, (Unary, Transpose)):
        node = node.operand
    return isinstance(node, Num) or (isinstance(node, Sym) and node.name in declared)


_SCALAR_KIND = frozenset("S")


def _arity(node: Node) -> int:
    """How many operands `children` gives node (without building the list)."""
    cls = type(node)
    if cls is Binary:
        return 2
    if isinstance(node, Call):
        return sum(1 for a in node.args if not _is_setting(a))
    if cls in (Unary, Transpose, Norm):
        return 1
    return 0


def children(node: Node) -> list[Node]:
    """The operands of a node that are expressions (a call's literal arguments are not)."""
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, (Unary, Transpose, Norm)):
        return [node.operand]
    if isinstance(node, Call):
        return [a for a in node.args if not _is_setting(a)]
    return []


_BINARY_SIGNATURES = {op: ("B", op) for op in "+-*/@^"}  # one tuple each, not one per node


def _signature(node: Node) -> Signature:
    """What an operator node is, without its columns and operands (the memo key)."""
    if type(node) is Binary:
        return _BINARY_SIGNATURES.get(node.op) or ("B", node.op)
    if isinstance(node, Unary):
        return ("U", node.op)
    if isinstance(node, Transpose):
        return ("T",)
    if isinstance(node, Norm):
        return ("N", node.kind)
    assert isinstance(node, Call)
    return ("C", node.name, node.deriv, tuple(repr(_strip(a)) if _is_setting(a) else None for a in node.args))


def _strip(node: Node) -> Hashable:
    """A setting without its columns: `-1` at column 9 and at column 3 are one key."""
    if isinstance(node, Unary):
        return (node.op, _strip(node.operand))
    if isinstance(node, Keyword):
        return (node.name, _strip(node.value))
    if isinstance(node, Num):
        return node.value
    return repr(node)


STAND_IN = "\0k"


def _stand_in(i: int, kind: str, col: int) -> Node:
    sym = Sym(col, f"{STAND_IN}{i}")
    return Transpose(col, sym) if kind == "R" else sym


def template(node: Node, kinds: tuple[str, ...]) -> tuple[Node, dict[str, int]]:
    """The node with its expression operands replaced by stand-in symbols of the given kinds,
    and the stand-ins' ranks."""
    col = node.col
    subs = iter(_stand_in(i, k, col) for i, k in enumerate(kinds))
    ranks = {f"{STAND_IN}{i}": KIND_RANK[k] for i, k in enumerate(kinds)}
    if isinstance(node, Binary):
        return Binary(col, node.op, next(subs), next(subs)), ranks
    if isinstance(node, Unary):
        return Unary(col, node.op, next(subs)), ranks
    if isinstance(node, Transpose):
        return Transpose(col, next(subs)), ranks
    if isinstance(node, Norm):
        return Norm(col, next(subs), node.kind), ranks
    assert isinstance(node, Call)
    args = tuple(a if _is_setting(a) else next(subs) for a in node.args)
    return Call(col, node.name, args, node.deriv), ranks


def _postorder(root: Node) -> list[Node]:
    return postorder(root, children)


def propagate(revise: Callable[[int, list[int]], None], queue: list[int]) -> None:
    """Arc consistency's worklist, shared by both searches: revise each constraint in the given
    order, and again whenever a revision narrows something it reads (`revise(i, more)` appends
    the constraints to look at again), each at most once in the list at a time."""
    pending = set(queue)
    queue = list(reversed(queue))  # pop() takes them in the given order
    while queue:
        index = queue.pop()
        if index not in pending:
            continue
        pending.discard(index)
        more: list[int] = []
        revise(index, more)
        for j in more:
            if j not in pending:
                pending.add(j)
                queue.append(j)


class Unsatisfiable(Exception):
    """No kinds of the open symbols fit an operator (`node`: its index, where known)."""

    def __init__(self, node: int = -1):
        super().__init__(node)
        self.node = node


_MEMO: dict[tuple[Signature, tuple[str, ...], Hashable], str | None] = {}  # (operator, operand kinds) -> result kind | None
_REVISED: dict[tuple[Signature, bool, Kinds, tuple[Kinds, ...], Hashable], tuple[Kinds, tuple[Kinds, ...]]] = {}  # (operator, same-kind rule, its kinds, operands' kinds) -> what survives


class Uses:
    """The kind constraints of one formula and the search that decides them.

    Every node of the parse tree is a variable (its set of kinds); every occurrence of a symbol
    shares the symbol's set.  Each operator node is one constraint between its own kinds and
    its operands'.  Propagation is AC-3 with a work list, so deciding one symbol costs only the
    constraints whose sets actually change (a sum of 10,000 terms stays linear); an undo trail
    takes a decision back when it turns out inconsistent.
    """

    def __init__(self, root: Node, declared: dict[str, int], default_rank: Callable[[str], int],
                 kind_rule: KindRule, context: Hashable = None, order: list[Node] | None = None):
        self.order = _postorder(root) if order is None else order
        self.declared = declared
        self.default_rank = default_rank
        self.kind_rule = kind_rule
        self.context = context  # what else the rules depend on (--fn names): part of memo keys
        # one pass over the post-order: a node's operands are the subtrees just before it, so a
        # stack of finished subtrees gives each node its operands' indices (no id() table)
        n_nodes = len(self.order)
        self.kids: list[list[int]] = [[]] * n_nodes
        self.parent = [-1] * n_nodes
        self.signature: list[Signature] = [()] * n_nodes
        self.same_kind = [False] * n_nodes
        self.node_domain: list[Kinds] = [SYMBOL_KINDS] * n_nodes
        self.sym_name: list[str | None] = [None] * n_nodes
        self.occurrences: dict[str, list[int]] = {}  # undeclared symbols, in order of appearance
        first: dict[str, int] = {}
        done: list[int] = []
        parent, kids_of = self.parent, self.kids
        all_kinds, no_kids = frozenset(KIND_RANK), list[int]()
        for i, n in enumerate(self.order):
            cls = type(n)
            if isinstance(n, Sym):
                kids_of[i] = no_kids
                name = n.name
                if name in declared:
                    self.node_domain[i] = frozenset(RANK_KIND.get(declared[name], "M"))
                else:
                    self.occurrences.setdefault(name, []).append(i)
                    if n.col < first.get(name, n.col + 1):
                        first[name] = n.col
                    self.node_domain[i] = SYMBOL_KINDS
                    self.sym_name[i] = name
            elif cls is Num:
                kids_of[i] = no_kids
                self.node_domain[i] = _SCALAR_KIND
            else:
                count = _arity(n)
                if count:
                    ks = done[-count:]
                    del done[-count:]
                    for k in ks:
                        parent[k] = i
                else:
                    ks = no_kids
                kids_of[i] = ks
                self.node_domain[i] = all_kinds
                if ks:
                    self.signature[i] = _signature(n)
                    self.same_kind[i] = self._same_kind(n)
            done.append(i)
        self.names = sorted(first, key=first.__getitem__)
        self.domain: dict[str, Kinds] = {name: SYMBOL_KINDS for name in self.names}
        self.trail: list[tuple[str | None, int, Kinds]] = []  # (symbol, or None and a node)
        self.broken: set[int] = set()  # operators no kinds can satisfy: their error is real

    def _same_kind(self, node: Node) -> bool:
        """SPEC: the operands of + and - have the same shape unless one is a literal or a
        declared symbol (signed or transposed)."""
        return isinstance(node, Binary) and node.op in "+-" and not (self._fixed(node.left) or
                                                                     self._fixed(node.right))

    def _fixed(self, node: Node) -> bool:
        return is_fixed(node, self.declared)

    # ------------------------------------------------------------------ one operator
    def result(self, i: int, kinds: tuple[str, ...]) -> str | None:
        if self.same_kind[i] and kinds[0] != kinds[1]:
            return None
        key = (self.signature[i], kinds, self.context)
        if key not in _MEMO:
            _MEMO[key] = self.kind_rule(*template(self.order[i], kinds))
        return _MEMO[key]

    # ------------------------------------------------------------------ propagation
    def get(self, i: int) -> Kinds:
        name = self.sym_name[i]
        return self.node_domain[i] if name is None else self.domain[name]

    def narrow(self, i: int, kinds: Kinds, queue: list[int], revised: int = -1) -> None:
        """Set node i's kinds to a subset of what they were, queueing what must be revised.
        `revised`: the operator whose revision narrows i — consistent already once its revision
        is done (every kind kept has its support kept), so it is not queued again; a symbol's
        narrowing queues every use, that one too (x + x: the two operands are one set)."""
        name = self.sym_name[i]
        old = self.node_domain[i] if name is None else self.domain[name]
        if kinds == old:
            return
        if not kinds:
            raise Unsatisfiable(i)
        if name is not None:
            self.trail.append((name, -1, old))
            self.domain[name] = kinds
            parent = self.parent
            for j in self.occurrences[name]:
                if parent[j] >= 0:
                    queue.append(parent[j])
            return
        self.trail.append((None, i, old))
        self.node_domain[i] = kinds
        up = self.parent[i]
        if up >= 0 and up != revised:
            queue.append(up)
        if self.kids[i] and i != revised:
            queue.append(i)

    def revise(self, i: int, queue: list[int]) -> None:
        if i in self.broken:
            return
        kids = self.kids[i]
        sym_name, node_domain, domain = self.sym_name, self.node_domain, self.domain
        here = self.get(i)
        # the operands' sets, as `get` gives them (inlined: this is the hot loop of propagation)
        domains = tuple([node_domain[k] if (name := sym_name[k]) is None else domain[name] for k in kids])
        key = (self.signature[i], self.same_kind[i], here, domains, self.context)
        found = _REVISED.get(key)
        if found is None:
            results: set[str] = set()
            per_kid: list[set[str]] = [set() for _ in kids]
            for kinds in product(*(sorted(d) for d in domains)):
                r = self.result(i, kinds)
                if r is not None and r in here:
                    results.add(r)
                    for j, k in enumerate(kinds):
                        per_kid[j].add(k)
            found = _REVISED[key] = (frozenset(results), tuple(frozenset(ks) for ks in per_kid))
        if found[0] != here:
            self.narrow(i, found[0], queue, i)
        for kid, ks in zip(kids, found[1]):
            self.narrow(kid, ks, queue, i)

    def propagate(self, queue: list[int]) -> None:
        propagate(self.revise, queue)

    def undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            name, i, old = self.trail.pop()
            if name is not None:
                self.domain[name] = old
            else:
                self.node_domain[i] = old

    # ------------------------------------------------------------------ decisions
    def candidates(self, name: str) -> list[list[str]]:
        """The kinds use allows, nearest the default first, in groups of equal distance."""
        rank = self.default_rank(name)
        groups: dict[int, list[str]] = {}
        for k in sorted(self.domain[name]):
            groups.setdefault(abs(KIND_RANK[k] - rank), []).append(k)
        return [groups[d] for d in sorted(groups)]

    def settle(self) -> None:
        """Propagate from scratch; an operator that no kinds satisfy is set aside (its error is
        real, and the shape checker will report it) and the rest is solved without it."""
        while True:
            try:
                self.propagate([i for i, ks in enumerate(self.kids) if ks and i not in self.broken])
                return
            except Unsatisfiable as failed:
                self.undo(0)
                if failed.node < 0 or failed.node in self.broken:
                    raise
                self.broken.add(failed.node)

    def attempt(self, name: str, kind: str) -> int | None:
        """Decide name's kind and propagate: None if consistent (kept), else the operator
        that failed (everything taken back)."""
        mark = len(self.trail)
        try:
            queue: list[int] = []
            self.narrow(self.occurrences[name][0], frozenset(kind), queue)
            self.propagate(queue)
            return None
        except Unsatisfiable as failed:
            self.undo(mark)
            return failed.node

    def choose(self, name: str) -> int | None:
        """Give name the nearest kind to its default that stays consistent; None when done (or
        when two kinds at one distance both fit: use does not decide, the default stands),
        else the operator that refused the nearest kind."""
        blame = None
        for group in self.candidates(name):
            fits = []
            for kind in group:
                mark = len(self.trail)
                failed = self.attempt(name, kind)
                if failed is None and len(group) == 1:
                    return None  # the only kind at this distance fits: keep it, don't redo it
                if failed is None:
                    fits.append(kind)
                    self.undo(mark)
                elif blame is None:
                    blame = failed
            if len(fits) == 1:
                self.attempt(name, fits[0])
                return None
            if len(fits) > 1:
                return None
        return blame if blame is not None else -1

    def decide(self) -> dict[str, int]:
        """Ranks of the symbols use and the defaults decide; a symbol left out keeps its default.
        When no kind of a symbol is consistent (arc consistency cannot see every conflict), the
        operator that refused its nearest kind is set aside, as `settle` does, and the
        decisions so far are replayed."""
        self.settle()
        chosen: dict[str, str] = {}
        order = sorted(self.names, key=lambda s: DECISION_ORDER[self.default_rank(s)])  # stable
        for name in order:
            while len(self.domain[name]) > 1:
                blame = self.choose(name)
                if blame is None:
                    break
                if blame < 0 or blame in self.broken:
                    break
                self.broken.add(blame)
                self.undo(0)
                self.settle()
                for done, kind in chosen.items():
                    if len(self.domain[done]) > 1 and kind in self.domain[done]:
                        self.attempt(done, kind)
            if len(self.domain[name]) == 1:
                chosen[name] = next(iter(self.domain[name]))
        return {name: KIND_RANK[next(iter(kinds))] for name, kinds in self.domain.items() if len(kinds) == 1}


_DECIDED: dict[Hashable, dict[str, int]] = {}  # skeleton of a formula -> its decided ranks (see `skeleton`)
_DECIDED_LIMIT = 4096  # a check file of distinct skeletons must not grow this without end
# nodes beyond which a formula is decided without its skeleton: the memo is for the many short
# formulas of a check file, and the key of a 100,000-term sum is a pass over it for a memo
# that a formula this long never hits
_SKELETON_LIMIT = 2000


def skeleton(order: list[Node], declared: dict[str, int]) -> Skeleton:
    """All that decides ranks about a formula, as a key: the operators (their signatures and
    operand counts, in post-order, which fixes the tree), the symbols at the leaves, numbers
    as just numbers, the declared ranks of the symbols that occur, and the order of first
    appearance.  Formulas that differ only in their literals or columns share it
    (`x'@A@x + 1*c`, `x'@A@x + 2*c`)."""
    parts: list[Hashable] = []
    add = parts.append
    first: dict[str, int] = {}
    for n in order:
        cls = type(n)
        if isinstance(n, Sym):
            name = n.name
            add(name)
            if n.col < first.get(name, n.col + 1):
                first[name] = n.col
        elif cls is Num:
            add(0)
        else:
            add((_signature(n), _arity(n)))
    names = tuple(sorted(first, key=first.__getitem__))
    return (tuple(parts), names, tuple((name, declared[name]) for name in names if name in declared))


def decide_ranks(root: Node, declared: dict[str, int], default_rank: Callable[[str], int],
                 kind_rule: KindRule, context: Hashable = None,
                 order: list[Node] | None = None) -> dict[str, int]:
    """The rank of the undeclared symbols of root as their use decides it (see the module
    docstring); a symbol use does not decide (or cannot satisfy) is left out: its default
    by name stands, and the shape checker reports any mismatch.  Remembered per skeleton:
    a check file repeats the same shapes of formula with other numbers.  `order`: root's
    post-order by `children`, when the caller has it."""
    if order is None:
        order = _postorder(root)
    if len(order) > _SKELETON_LIMIT:  # a formula this long is not one of many alike: decide it
        return _decide(root, declared, default_rank, kind_rule, context, order)
    shape = skeleton(order, declared)
    if all(name in declared for name in shape[1]):
        return {}  # every symbol is declared: nothing to decide, no constraints to build
    key = (shape, default_rank, context)
    found = _DECIDED.get(key)
    if found is None:
        found = _decide(root, declared, default_rank, kind_rule, context, order)
        if len(_DECIDED) >= _DECIDED_LIMIT:
            _DECIDED.clear()
        _DECIDED[key] = found
    return dict(found)


def _decide(root: Node, declared: dict[str, int], default_rank: Callable[[str], int], kind_rule: KindRule,
            context: Hashable, order: list[Node]) -> dict[str, int]:
    try:
        classes = Classes(order, declared, default_rank, kind_rule, context)
        if not classes.names:
            return {}
        return classes.decide()
    except _Undecided:  # something use cannot satisfy: the search that sets operators aside
        pass
    uses = Uses(root, declared, default_rank, kind_rule, context, order)
    if not uses.names:
        return {}
    try:
        return uses.decide()
    except Unsatisfiable:
        return {}


class _Undecided(Exception):
    """`Classes` met an operator no kinds satisfy: which one to set aside is `Uses`'s to say."""


ALL_KINDS = tuple(KIND_RANK)


class Classes:
    """The search of `Uses` over classes of nodes that must have one kind, each constraint once.

    The nodes of a `+` or `-` whose operands must have one kind (SPEC's rule), and whose result
    then has that kind too, all have one set of kinds at every fixpoint of `Uses`'s
    propagation; so do the occurrences of a symbol.  Here each such class is one variable
    (union-find), and operators that say the same about the same classes are one constraint:
    the 100,000 `+` of a long sum are no constraint at all, its 50,000 terms `k*x` one.  The
    fixpoints, and so every decision, are those of `Uses` (the greatest arc-consistent sets do
    not depend on how equal sets are represented); where no kind of a symbol is consistent,
    `Uses` decides instead, since which operator to set aside depends on its order of work."""

    def __init__(self, order: list[Node], declared: dict[str, int], default_rank: Callable[[str], int],
                 kind_rule: KindRule, context: Hashable = None):
        self.order = order
        self.declared = declared
        self.default_rank = default_rank
        self.kind_rule = kind_rule
        self.context = context
        n = len(order)
        parent = list(range(n))

        def find(i: int) -> int:
            root = i
            while parent[root] != root:
                root = parent[root]
            while parent[i] != root:
                parent[i], i = root, parent[i]
            return root

        domain: dict[int, Kinds] = {}  # a class's root -> its kinds (roots only, at the end)
        first: dict[str, int] = {}  # column of each undeclared symbol's first occurrence
        self.symbol_class: dict[str, int] = {}
        # leaves of one fixed kind (numbers, declared symbols) are one class per kind: a set of
        # one kind can only lose it, which fails the search wherever it happens
        fixed: dict[Kinds, int] = {}
        keeping: dict[Signature, Kinds | None] = {}  # signature -> the kinds a same-kind operator keeps, or None
        operators: list[tuple[int, Signature, bool, list[int]]] = []  # (node, signature, same kind, kids)
        done: list[int] = []
        all_kinds = frozenset(KIND_RANK)
        for i, node in enumerate(order):
            cls = type(node)
            if isinstance(node, Sym):
                name = node.name
                if name in declared:
                    kinds = frozenset(RANK_KIND.get(declared[name], "M"))
                    root = find(fixed.setdefault(kinds, i))
                    parent[i] = root
                    if root == i:
                        domain[i] = kinds
                else:
                    if node.col < first.get(name, node.col + 1):
                        first[name] = node.col
                    root = find(self.symbol_class.setdefault(name, i))
                    parent[i] = root
                    if root == i:
                        domain[i] = SYMBOL_KINDS
            elif cls is Num:
                root = find(fixed.setdefault(_SCALAR_KIND, i))
                parent[i] = root
                if root == i:
                    domain[i] = _SCALAR_KIND
            else:
                count = _arity(node)
                if not count:
                    domain[i] = all_kinds
                    done.append(i)
                    continue
                ks = done[-count:]
                del done[-count:]
                sig = _signature(node)
                same = self._same_kind(node)
                keeps = None
                if same:
                    if sig not in keeping:
                        results = {k: self.result(i, sig, True, (k, k)) for k in KIND_RANK}
                        keeping[sig] = (frozenset(k for k, r in results.items() if r == k)
                                        if all(r in (k, None) for k, r in results.items()) else None)
                    keeps = keeping[sig]
                if keeps is None:
                    domain[i] = all_kinds
                    operators.append((i, sig, same, ks))
                else:  # one class with its operands: no constraint of its own
                    top = find(i)
                    restricted = keeps
                    for k in ks:
                        other = find(k)
                        if other != top:
                            restricted = restricted & domain.pop(other)
                            parent[other] = top
                    domain[top] = restricted & domain.get(top, all_kinds)
            done.append(i)
        self.find = find
        self.names = sorted(first, key=first.__getitem__)
        self.domain = domain
        self.constraints: list[tuple[int, Signature, bool, int, tuple[int, ...]]] = []
        self.watch: dict[int, list[int]] = {}
        known: set[tuple[Signature, bool, int, tuple[int, ...]]] = set()
        for i, sig, same, ks in operators:
            key = (sig, same, find(i), tuple([find(k) for k in ks]))
            if key in known:
                continue
            known.add(key)
            index = len(self.constraints)
            self.constraints.append((i, sig, same, key[2], key[3]))
            for c in {key[2], *key[3]}:
                self.watch.setdefault(c, []).append(index)
        self.trail: list[tuple[int, Kinds]] = []
        if any(not d for d in domain.values()):
            raise _Undecided

    def _same_kind(self, node: Node) -> bool:
        return type(node) is Binary and node.op in "+-" and not (
            is_fixed(node.left, self.declared) or is_fixed(node.right, self.declared))

    def result(self, i: int, signature: Signature, same: bool, kinds: tuple[str, ...]) -> str | None:
        if same and kinds[0] != kinds[1]:
            return None
        key = (signature, kinds, self.context)
        if key not in _MEMO:
            _MEMO[key] = self.kind_rule(*template(self.order[i], kinds))
        return _MEMO[key]

    def narrow(self, c: int, kinds: Kinds, queue: list[int]) -> None:
        old = self.domain[c]
        if kinds == old:
            return
        if not kinds:
            raise Unsatisfiable
        self.trail.append((c, old))
        self.domain[c] = kinds
        queue.extend(self.watch.get(c, ()))

    def revise(self, index: int, queue: list[int]) -> None:
        i, sig, same, c, kid_classes = self.constraints[index]
        domain = self.domain
        here = domain[c]
        domains = tuple([domain[k] for k in kid_classes])
        key = (sig, same, here, domains, self.context)
        found = _REVISED.get(key)
        if found is None:
            results: set[str] = set()
            per_kid: list[set[str]] = [set() for _ in kid_classes]
            for kinds in product(*(sorted(d) for d in domains)):
                r = self.result(i, sig, same, kinds)
                if r is not None and r in here:
                    results.add(r)
                    for j, k in enumerate(kinds):
                        per_kid[j].add(k)
            found = _REVISED[key] = (frozenset(results), tuple(frozenset(ks) for ks in per_kid))
        self.narrow(c, found[0] & domain[c], queue)
        for kid, ks in zip(kid_classes, found[1]):
            self.narrow(kid, ks & domain[kid], queue)

    def propagate(self, queue: list[int]) -> None:
        propagate(self.revise, queue)

    def undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            c, old = self.trail.pop()
            self.domain[c] = old

    def kinds(self, name: str) -> Kinds:
        return self.domain[self.find(self.symbol_class[name])]

    def attempt(self, name: str, kind: str) -> bool:
        mark = len(self.trail)
        try:
            queue: list[int] = []
            self.narrow(self.find(self.symbol_class[name]), frozenset(kind), queue)
            self.propagate(queue)
            return True
        except Unsatisfiable:
            self.undo(mark)
            return False

    def choose(self, name: str) -> None:
        """As `Uses.choose`; no kind consistent: `_Undecided`."""
        rank = self.default_rank(name)
        groups: dict[int, list[str]] = {}
        for k in sorted(self.kinds(name)):
            groups.setdefault(abs(KIND_RANK[k] - rank), []).append(k)
        for distance in sorted(groups):
            group = groups[distance]
            fits = []
            for kind in group:
                mark = len(self.trail)
                if self.attempt(name, kind):
                    if len(group) == 1:
                        return
                    fits.append(kind)
                    self.undo(mark)
            if len(fits) == 1:
                self.attempt(name, fits[0])
                return
            if fits:
                return
        raise _Undecided

    def decide(self) -> dict[str, int]:
        try:
            self.propagate(list(range(len(self.constraints))))
        except Unsatisfiable:
            raise _Undecided from None
        for name in sorted(self.names, key=lambda s: DECISION_ORDER[self.default_rank(s)]):
            if len(self.kinds(name)) > 1:
                self.choose(name)
        out = {}
        for name in self.names:
            kinds = self.kinds(name)
            if len(kinds) == 1:
                out[name] = KIND_RANK[next(iter(kinds))]
        return out
