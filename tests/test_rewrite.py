"""rewrite.rewrite: the one loop that rebuilds a graph bottom-up (columns.py, and the stages
that substitute, bind or regroup nodes)."""

from gradcli.language import operators  # noqa: F401  (fills the operator registry)
from gradcli.language import simplify as S
from gradcli.language.rewrite import rewrite
from gradcli.language.shapes import SCALAR, col, mat


def _graph():
    x = S.sym("x", col("n"))
    A = S.sym("A", mat("n", "n"))
    shared = S.fn("tanh", S.matmul(A, x))
    return x, A, shared, S.add(S.summ(shared), S.summ(S.mul(shared, shared)))


def test_untouched_nodes_come_back_as_themselves():
    *_, f = _graph()
    assert rewrite([f], lambda node, args: None) == [f]


def test_each_node_is_visited_once_with_its_arguments_already_rewritten():
    x, A, shared, f = _graph()
    seen = []

    def visit(node, args):
        seen.append(node)
        assert all(new is old for new, old in zip(args, node.args))  # nothing replaced yet
        return None

    rewrite([f, shared], visit)
    assert len(seen) == len(set(seen)) and shared in seen and x in seen and A in seen


def test_a_replaced_symbol_is_rebuilt_into_every_user_through_the_constructors():
    x, A, shared, f = _graph()
    y = S.sym("y", col("n"))
    (g,) = rewrite([f], lambda node, args: y if node is x else None)
    built = S.fn("tanh", S.matmul(A, y))  # hash-consed: the same objects as rebuilt directly
    assert g is S.add(S.summ(built), S.summ(S.mul(built, built)))
    # replacing x by 0 folds through the simplifying constructors: tanh(A·0) = tanh(0)
    zero = S.zeros(col("n"))
    (h,) = rewrite([S.summ(S.matmul(A, x))], lambda node, args: zero if node is x else None)
    assert h.ty == SCALAR and "x" not in {n.params[0] for n in _leaves(h) if n.op == "sym"}


def test_a_given_order_is_followed_and_repeats_are_visited_once():
    x, A, shared, f = _graph()
    from gradcli.language.expr import topological

    order = topological([f])
    seen = []
    rewrite([f], lambda node, args: seen.append(node), order=order + order)
    assert seen == order


def _leaves(e):
    from gradcli.language.expr import topological

    return [n for n in topological([e]) if not n.args]


def test_rebuilt_raw_keeps_a_node_exactly_as_written():
    """The evaluator's rewrites (regrouping, binding, row blocks) change how a value is computed,
    never the formula: rebuilt over new arguments, a node is not simplified."""
    from gradcli.language.rewrite import rebuilt_raw

    x, A, shared, f = _graph()
    zero = S.zeros(col("n"))
    product = S.matmul(A, x)
    (simplified,) = rewrite([product], lambda node, args: zero if node is x else None)
    (raw,) = rewrite([product], lambda node, args: zero if node is x else None, rebuild=rebuilt_raw)
    assert simplified.op != "matmul"  # A·0 folds to 0 through the constructors
    assert raw.op == "matmul" and raw.args == (A, zero)


def test_the_table_of_what_each_node_became_is_the_callers():
    """A visit may read below its own arguments (a chain of products reads its factors' rewrites)
    through `done`, which the walk fills as it goes and the caller keeps."""
    x, A, shared, f = _graph()
    y = S.sym("y", col("n"))
    done: dict = {}
    product = shared.args[0]
    read = []

    def visit(node, args):
        if node is shared:
            read.append(done[product.args[1]])  # x's rewrite, two levels down
        return y if node is x else None

    (g,) = rewrite([f], visit, done=done)
    assert read == [y] and done[f] is g and done[x] is y and set(done) >= {f, shared, product, x, A}
